// Pipeline files: what a valid file becomes (order, implied needs, values as
// text), each mistake named by file, line and name, references and their
// expansion, and files built to be large or to expand hugely.

#include "orchestrate/pipeline_spec.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "testing/testutil.h"

namespace detops {
namespace {

PipelineSpec Parse(const std::string& yaml) {
  auto spec = ParsePipelineSpec(yaml, "pipe.yaml");
  EXPECT_TRUE(spec.ok()) << yaml << "\n" << spec.status().ToString();
  return spec.ok() ? *spec : PipelineSpec{};
}

// The error's message, checked to be InvalidInput and to hold each of `parts`.
std::string ExpectError(const std::string& yaml, const std::vector<std::string>& parts) {
  auto spec = ParsePipelineSpec(yaml, "pipe.yaml");
  EXPECT_FALSE(spec.ok()) << yaml;
  if (spec.ok()) return "";
  EXPECT_EQ(spec.status().code(), StatusCode::kInvalidInput) << spec.status().ToString();
  for (const std::string& p : parts) {
    EXPECT_NE(spec.status().message().find(p), std::string::npos)
        << "'" << p << "' not in: " << spec.status().message();
  }
  return spec.status().message();
}

std::vector<std::string> Ids(const PipelineSpec& spec) {
  std::vector<std::string> ids;
  for (const StepSpec& s : spec.steps) ids.push_back(s.id);
  return ids;
}

const StepSpec& Step(const PipelineSpec& spec, const std::string& id) {
  for (const StepSpec& s : spec.steps) {
    if (s.id == id) return s;
  }
  ADD_FAILURE() << "no step " << id;
  static const StepSpec kNone;
  return kNone;
}

using Strings = std::vector<std::string>;

// A step that names a later one: the file order is not the run order.
const char kRetrain[] = R"(name: retrain
description: Retrain on new data
params:
  dataset: cars
  minutes: 3
  source: null
  train: true
steps:
  - id: report
    uses: shell
    with:
      command: echo ${steps.eval.outputs.map50} for $${HOME}
  - id: data
    uses: import
    with:
      dataset: ${params.dataset}
      source: ${params.source}
  - id: train
    uses: train
    needs: data
    if: ${params.train}
    retries: 2
    backoff_seconds: 1.5
    cache: false
    with: {dataset: "${steps.data.outputs.dataset}", minutes: 3, lr: 0.010, amp: yes}
  - id: eval
    uses: evaluate
    needs: [train, data]
    with:
      run: ${steps.train.outputs.run}
)";

TEST(PipelineSpecTest, ParsesAValidPipelineInRunOrder) {
  const PipelineSpec spec = Parse(kRetrain);
  EXPECT_EQ(spec.name, "retrain");
  EXPECT_EQ(spec.description, "Retrain on new data");
  EXPECT_EQ(spec.path, "");
  ASSERT_EQ(spec.params.size(), 4u);
  EXPECT_EQ(spec.params.at("dataset"), "cars");
  EXPECT_EQ(spec.params.at("minutes"), "3");
  EXPECT_EQ(spec.params.at("source"), std::nullopt);
  EXPECT_EQ(spec.params.at("train"), "true");
  EXPECT_EQ(Ids(spec), (Strings{"data", "train", "eval", "report"}));

  const StepSpec& data = Step(spec, "data");
  EXPECT_EQ(data.uses, "import");
  EXPECT_TRUE(data.needs.empty());
  EXPECT_EQ(data.with.at("dataset"), "${params.dataset}");
  EXPECT_EQ(data.line, 13);
  EXPECT_EQ(data.retries, 0);
  EXPECT_EQ(data.backoff_seconds, 5);
  EXPECT_TRUE(data.cache);
  EXPECT_EQ(data.if_expr, "");

  const StepSpec& train = Step(spec, "train");
  EXPECT_EQ(train.needs, (Strings{"data"}));
  EXPECT_EQ(train.if_expr, "${params.train}");
  EXPECT_EQ(train.retries, 2);
  EXPECT_DOUBLE_EQ(train.backoff_seconds, 1.5);
  EXPECT_FALSE(train.cache);
  // Numbers and booleans are kept as written.
  EXPECT_EQ(train.with.at("minutes"), "3");
  EXPECT_EQ(train.with.at("lr"), "0.010");
  EXPECT_EQ(train.with.at("amp"), "yes");
  EXPECT_EQ(train.line, 18);

  EXPECT_EQ(Step(spec, "eval").needs, (Strings{"data", "train"}));  // sorted, unique
  // A reference alone makes a need; an escaped one does not.
  EXPECT_EQ(Step(spec, "report").needs, (Strings{"eval"}));
  EXPECT_EQ(Step(spec, "report").with.at("command"),
            "echo ${steps.eval.outputs.map50} for $${HOME}");
}

TEST(PipelineSpecTest, OrderIsFileOrderAmongReadySteps) {
  const PipelineSpec spec = Parse(R"(name: p
steps:
  - {id: c, uses: shell, needs: a}
  - {id: a, uses: shell}
  - {id: b, uses: shell}
  - {id: d, uses: shell, needs: [b, c]}
  - {id: e, uses: shell}
)");
  // Ready at first: a, b, e; c becomes ready after a and comes first in the file.
  EXPECT_EQ(Ids(spec), (Strings{"a", "c", "b", "d", "e"}));
}

TEST(PipelineSpecTest, MinimalPipelineAndOptionalSections) {
  const PipelineSpec spec =
      Parse("name: x.1\nparams:\ndescription:\nsteps: [{id: only, uses: promote}]\n");
  EXPECT_EQ(spec.name, "x.1");
  EXPECT_TRUE(spec.params.empty());
  EXPECT_EQ(Ids(spec), (Strings{"only"}));
  for (const std::string& type : StepTypes()) {
    Parse("name: p\nsteps: [{id: s, uses: " + type + "}]\n");
  }
  EXPECT_EQ(StepTypes().size(), 8u);
}

TEST(PipelineSpecTest, UnknownKeysNameTheKeyLineAndAllowedKeys) {
  ExpectError("name: p\nstep: []\n",
              {"pipe.yaml:2:", "unknown key 'step'", "allowed: name, description, params, steps"});
  ExpectError("name: p\nsteps:\n  - id: a\n    uses: shell\n    retry: 2\n",
              {"pipe.yaml:5:", "step a: unknown key 'retry'",
               "allowed: id, uses, needs, with, if, retries, backoff_seconds, cache"});
  ExpectError("name: p\nname: q\nsteps: [{id: a, uses: shell}]\n",
              {"pipe.yaml:2:", "duplicate key 'name'", "first at line 1"});
  ExpectError("name: p\nsteps:\n  - id: a\n    uses: shell\n    with:\n      x: 1\n      x: 2\n",
              {"pipe.yaml:7:", "duplicate key 'x'"});
}

TEST(PipelineSpecTest, WithValuesMustBeScalars) {
  ExpectError(R"(name: p
steps:
  - id: a
    uses: shell
    with:
      ok: fine
      opts: {deep: 1}
)",
              {"pipe.yaml:7:", "step a, with.opts", "got a mapping"});
  ExpectError("name: p\nsteps:\n  - id: a\n    uses: shell\n    with:\n      list:\n        - 1\n",
              {"pipe.yaml:7:", "with.list", "got a list"});
  ExpectError("name: p\nsteps:\n  - id: a\n    uses: shell\n    with:\n      empty:\n",
              {"pipe.yaml:6:", "with.empty", "got nothing"});
  ExpectError("name: p\nsteps:\n  - id: a\n    uses: shell\n    with: [1]\n",
              {"pipe.yaml:5:", "step a", "with must be a mapping"});
}

TEST(PipelineSpecTest, StepFieldsAreChecked) {
  const std::string head = "name: p\nsteps:\n  - id: a\n    uses: shell\n";
  ExpectError(head + "    retries: 11\n", {"pipe.yaml:5:", "step a: retries", "0..10", "11"});
  ExpectError(head + "    retries: -1\n", {"pipe.yaml:5:", "retries"});
  ExpectError(head + "    retries: two\n", {"pipe.yaml:5:", "expected an integer", "two"});
  ExpectError(head + "    backoff_seconds: -1\n",
              {"pipe.yaml:5:", "backoff_seconds must not be negative"});
  ExpectError(head + "    backoff_seconds: .inf\n", {"pipe.yaml:5:", "backoff_seconds"});
  ExpectError(head + "    cache: maybe\n", {"pipe.yaml:5:", "cache: expected true or false"});
  ExpectError(head + "    if: ''\n", {"pipe.yaml:5:", "step a: if is empty"});
  ExpectError("name: p\nsteps:\n  - uses: shell\n", {"pipe.yaml:3:", "needs an id"});
  ExpectError("name: p\nsteps:\n  - id: a\n", {"pipe.yaml:3:", "step a", "needs uses"});
  ExpectError("name: p\nsteps:\n  - id: Bad\n    uses: shell\n", {"pipe.yaml:3:", "step id 'Bad'"});
  ExpectError("name: p\nsteps:\n  - just-a-string\n", {"pipe.yaml:3:", "must be a mapping"});
}

TEST(PipelineSpecTest, NameAndStepsAreRequired) {
  ExpectError("steps: [{id: a, uses: shell}]\n", {"pipe.yaml:1:", "needs a name"});
  ExpectError("name: _bad\nsteps: [{id: a, uses: shell}]\n",
              {"pipe.yaml:1:", "pipeline name '_bad'"});
  ExpectError("name: p\n", {"pipe.yaml:1:", "needs steps"});
  ExpectError("name: p\nsteps: []\n", {"pipe.yaml:2:", "non-empty list"});
  ExpectError("name: p\nsteps:\n", {"pipe.yaml:2:", "non-empty list"});
  ExpectError("", {"pipe.yaml:1:", "empty"});
  ExpectError("- a\n- b\n", {"pipe.yaml:1:", "must be a mapping"});
}

TEST(PipelineSpecTest, ParamsAreScalarsWithNames) {
  ExpectError("name: p\nparams:\n  x: [1]\nsteps: [{id: a, uses: shell}]\n",
              {"pipe.yaml:3:", "params.x", "got a list"});
  ExpectError("name: p\nparams:\n  bad name: 1\nsteps: [{id: a, uses: shell}]\n",
              {"pipe.yaml:3:", "parameter name 'bad name'"});
  ExpectError("name: p\nparams: [a]\nsteps: [{id: a, uses: shell}]\n",
              {"pipe.yaml:2:", "params must be a mapping"});
  const PipelineSpec spec =
      Parse("name: p\nparams:\n  a: ~\n  b: '~'\n  c: ''\nsteps: [{id: s, uses: shell}]\n");
  EXPECT_EQ(spec.params.at("a"), std::nullopt);
  EXPECT_EQ(spec.params.at("b"), "~");  // quoted: a string
  EXPECT_EQ(spec.params.at("c"), "");
}

TEST(PipelineSpecTest, BadYamlReportsALine) {
  ExpectError("name: p\nsteps:\n  - id: a\n    uses: shell\n    needs: [x, y\n",
              {"pipe.yaml:", "not valid YAML"});
  const std::string unbalanced =
      ExpectError("name: p\nsteps: [{id: a, uses: shell}\nparams: {}\n", {"not valid YAML"});
  EXPECT_EQ(unbalanced.rfind("pipe.yaml:3:", 0), 0u) << unbalanced;
  ExpectError("name: p\nsteps:\n  - id: a\n\t  uses: shell\n",
              {"pipe.yaml:4:", "not valid YAML", "tab"});
}

TEST(PipelineSpecTest, DuplicateIdsNameBothLines) {
  ExpectError(R"(name: p
steps:
  - id: a
    uses: shell
  - id: b
    uses: shell
  - id: a
    uses: train
)",
              {"pipe.yaml:7:", "duplicate step id 'a'", "first at line 3"});
}

TEST(PipelineSpecTest, UnknownStepTypeListsTheKnownOnes) {
  ExpectError("name: p\nsteps:\n  - id: a\n    uses: trian\n",
              {"pipe.yaml:4:", "step a", "unknown step type 'trian'",
               "known: import, validate, feedback-export, train, evaluate, register, promote, "
               "shell"});
}

TEST(PipelineSpecTest, NeedsOnAnUnknownStep) {
  ExpectError(
      "name: p\nsteps:\n  - id: a\n    uses: shell\n  - id: b\n    uses: shell\n"
      "    needs: [a, c]\n",
      {"pipe.yaml:7:", "step b", "needs unknown step 'c'", "steps: a, b"});
  ExpectError("name: p\nsteps:\n  - id: a\n    uses: shell\n    needs: {x: 1}\n",
              {"pipe.yaml:5:", "step a: needs"});
}

TEST(PipelineSpecTest, ReferencesAreChecked) {
  const std::string head = "name: p\nparams: {dataset: cars}\nsteps:\n  - id: a\n    uses: shell\n";
  ExpectError(
      head + "    with:\n      x: ${params.datset}\n",
      {"pipe.yaml:7:", "step a, with.x", "unknown parameter 'datset'", "declared: dataset"});
  ExpectError(head + "    if: ${steps.nope.outputs.ok}\n",
              {"pipe.yaml:6:", "step a, if", "unknown step 'nope'", "steps: a"});
  ExpectError(head + "    with: {x: \"go ${env.HOME}\"}\n",
              {"pipe.yaml:6:", "with.x", "'${env.HOME}' is not a reference"});
  ExpectError(head + "    with: {x: \"${steps.a.result}\"}\n",
              {"pipe.yaml:6:", "'${steps.a.result}' is not a reference"});
  ExpectError(head + "    with: {x: \"${params.dataset\"}\n", {"pipe.yaml:6:", "no closing '}'"});
  ExpectError(head + "    with: {x: \"${}\"}\n", {"pipe.yaml:6:", "'${}' is not a reference"});
  // Escaped, and a lone $, are text.
  const PipelineSpec spec = Parse(head + "    with: {x: \"$${params.nope} costs $5\"}\n");
  EXPECT_TRUE(spec.steps[0].needs.empty());
}

TEST(PipelineSpecTest, CycleNamesTheStepsInOrder) {
  ExpectError(R"(name: p
steps:
  - {id: start, uses: shell}
  - {id: a, uses: shell, needs: [start, c]}
  - {id: b, uses: shell, needs: a}
  - {id: c, uses: shell, needs: b}
)",
              {"pipe.yaml:4:", "cycle: a -> c -> b -> a"});
  ExpectError("name: p\nsteps:\n  - {id: a, uses: shell, needs: a}\n",
              {"pipe.yaml:3:", "cycle: a -> a"});
  // A long cycle is named by its ends: s0 needs s29, s1 needs s0, ...
  std::string ring = "name: p\nsteps:\n";
  for (int i = 0; i < 30; ++i) {
    ring += "  - {id: s" + std::to_string(i) + ", uses: shell, needs: s" +
            std::to_string((i + 29) % 30) + "}\n";
  }
  ExpectError(ring, {"pipe.yaml:3:",
                     "cycle: s0 -> s29 -> s28 -> s27 -> s26 -> s25 -> s24 -> s23 -> s22 -> s21 -> "
                     "(16 more) -> s4 -> s3 -> s2 -> s1 -> s0 (each step needs the next)"});
}

TEST(PipelineSpecTest, AReferenceDownstreamIsACycleThatSaysWhy) {
  ExpectError(R"(name: p
steps:
  - id: data
    uses: import
    with:
      model: ${steps.train.outputs.model}
  - id: train
    uses: train
    needs: data
)",
              {"pipe.yaml:3:", "cycle: data -> train -> data",
               "data refers to ${steps.train.outputs.model} at line 6"});
}

TEST(PipelineSpecTest, ResolveParams) {
  const PipelineSpec spec = Parse(kRetrain);
  auto missing = ResolveParams(spec, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(missing.status().message().find("pipeline retrain"), std::string::npos);
  EXPECT_NE(missing.status().message().find("parameter source is required"), std::string::npos)
      << missing.status().message();

  auto undeclared = ResolveParams(spec, {{"source", "/in"}, {"epochs", "3"}});
  ASSERT_FALSE(undeclared.ok());
  EXPECT_NE(undeclared.status().message().find("unknown parameter 'epochs'"), std::string::npos);
  EXPECT_NE(undeclared.status().message().find("declared: dataset, minutes, source, train"),
            std::string::npos)
      << undeclared.status().message();

  auto ok = ResolveParams(spec, {{"source", "/in"}, {"minutes", "10"}});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok,
            (std::map<std::string, std::string>{
                {"dataset", "cars"}, {"minutes", "10"}, {"source", "/in"}, {"train", "true"}}));
}

TEST(PipelineSpecTest, Expand) {
  const std::map<std::string, std::string> params = {{"dataset", "cars"}, {"note", "${params.x}"}};
  const std::map<std::string, Json> outputs = {
      {"data", Json{{"dataset", "cars"}, {"version", "v3"}, {"images", 120}}},
      {"eval", Json{{"map50", 0.5}, {"passed", true}, {"extra", nullptr}}},
      {"odd", Json("not an object")}};
  auto expand = [&](const std::string& text) {
    auto r = Expand(text, params, outputs, "step x, with.y");
    EXPECT_TRUE(r.ok()) << text << ": " << r.status().ToString();
    return r.ok() ? *r : "";
  };
  EXPECT_EQ(expand("plain"), "plain");
  EXPECT_EQ(expand(""), "");
  EXPECT_EQ(expand("${params.dataset}/${steps.data.outputs.version}:${steps.data.outputs.images}"),
            "cars/v3:120");
  EXPECT_EQ(
      expand(
          "${steps.eval.outputs.map50} ${steps.eval.outputs.passed}[${steps.eval.outputs.extra}]"),
      "0.5 true[]");
  EXPECT_EQ(expand("$${params.dataset} is ${params.dataset}, $$x, $"),
            "${params.dataset} is cars, $$x, $");
  EXPECT_EQ(expand("$$${params.dataset}"), "$${params.dataset}");
  // One pass: a value that looks like a reference stays as it is.
  EXPECT_EQ(expand("${params.note}"), "${params.x}");

  auto error = [&](const std::string& text, const std::vector<std::string>& parts) {
    auto r = Expand(text, params, outputs, "step x, with.y");
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput);
    for (const std::string& p : parts) {
      EXPECT_NE(r.status().message().find(p), std::string::npos)
          << "'" << p << "' not in: " << r.status().message();
    }
  };
  error("${steps.data.outputs.versoin}", {"step x, with.y", "step data has no output 'versoin'",
                                          "its outputs: dataset, images, version"});
  error("${steps.train.outputs.model}", {"step x, with.y", "step train has no outputs"});
  error("${steps.odd.outputs.a}", {"step odd has no output 'a'", "its outputs: none"});
  error("${params.nope}", {"step x, with.y", "unknown parameter 'nope'"});
  error("${steps.${params.dataset}.outputs.x}", {"step x, with.y", "is not a reference"});
  error("tail ${params.dataset", {"no closing '}'"});
}

TEST(PipelineSpecTest, Truthy) {
  for (const char* no : {"", "0", "false", "no", "off", "False", "NO", " off ", "\n"}) {
    EXPECT_FALSE(Truthy(no)) << "'" << no << "'";
  }
  for (const char* yes : {"1", "true", "yes", "on", "cars", "00", "n o", "-1", "0.0"}) {
    EXPECT_TRUE(Truthy(yes)) << "'" << yes << "'";
  }
}

TEST(PipelineSpecTest, LongChainParsesQuickly) {
  // Written last step first, each referring to the one before it.
  std::string yaml = "name: chain\nsteps:\n";
  for (int i = 199; i >= 0; --i) {
    yaml += "  - id: s" + std::to_string(i) + "\n    uses: shell\n";
    if (i > 0) yaml += "    with: {in: \"${steps.s" + std::to_string(i - 1) + ".outputs.out}\"}\n";
  }
  const auto start = std::chrono::steady_clock::now();
  const PipelineSpec spec = Parse(yaml);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(spec.steps.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(spec.steps[i].id, "s" + std::to_string(i));
  EXPECT_LT(seconds, 1.0);
}

TEST(PipelineSpecTest, AliasBombIsRefusedCheaply) {
  // The billion laughs (9^9 leaves): yaml-cpp shares the nodes an alias
  // names, and the reader stops at the first value that is not a scalar.
  auto bomb = [](const std::string& indent) {
    std::string s = indent + "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
    for (char c = 'b'; c <= 'i'; ++c) {
      s += indent + c + ": &" + c + " [";
      for (int k = 0; k < 9; ++k) s += std::string(k ? ", " : "") + "*" + char(c - 1);
      s += "]\n";
    }
    return s;
  };
  const auto start = std::chrono::steady_clock::now();
  ExpectError("name: p\nx:\n" + bomb("  ") + "steps: [{id: a, uses: shell}]\n",
              {"pipe.yaml:2:", "unknown key 'x'"});
  ExpectError("name: p\nsteps:\n  - id: a\n    uses: shell\n    with:\n" + bomb("      "),
              {"pipe.yaml:6:", "with.a", "got a list"});
  ExpectError("name: p\nparams:\n" + bomb("  ") + "steps: [{id: a, uses: shell}]\n",
              {"pipe.yaml:3:", "params.a", "got a list"});
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.0);

  // Aliases of a large text in every step: refused once the copies pass 4 MiB.
  std::string big = "name: p\nparams: {big: &big \"" + std::string(100000, 'x') + "\"}\nsteps:\n";
  for (int i = 0; i < 2000; ++i) {
    big += "  - {id: s" + std::to_string(i) + ", uses: shell, with: {a: *big, b: *big, c: *big}}\n";
  }
  ASSERT_LT(big.size(), kMaxPipelineBytes);
  ExpectError(big, {"pipe.yaml:", "expands to more than 4 MiB"});
}

TEST(PipelineSpecTest, LargeTextIsRefused) {
  const std::string huge = "name: p\ndescription: \"" + std::string(10 << 20, 'x') + "\"\n";
  ExpectError(huge, {"pipe.yaml", "at most 1 MiB"});
}

TEST(PipelineSpecTest, LoadFile) {
  testing::TempDir dir;
  testing::WriteText(dir / "retrain.yaml", kRetrain);
  auto spec = LoadPipelineSpec(dir / "retrain.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->path, (dir / "retrain.yaml").string());
  EXPECT_EQ(spec->steps.size(), 4u);

  testing::WriteText(dir / "bad.yaml", "name: p\nsteps:\n  - id: a\n    uses: nope\n");
  auto bad = LoadPipelineSpec(dir / "bad.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind((dir / "bad.yaml").string() + ":4:", 0), 0u)
      << bad.status().message();

  auto missing = LoadPipelineSpec(dir / "none.yaml");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);

  {
    std::ofstream out(dir / "huge.yaml", std::ios::binary);
    out.seekp((10 << 20) - 1);  // a sparse 10 MB file
    out.put('\n');
  }
  auto huge = LoadPipelineSpec(dir / "huge.yaml");
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(huge.status().message().find("10485760 bytes"), std::string::npos)
      << huge.status().message();
}

}  // namespace
}  // namespace detops
