// `detops pipelines` end to end through the real binary: an unchanged
// pipeline run again does nothing and a changed source folder runs the
// steps downstream again; a runner killed (-9) at any step, or in the
// middle of training, resumes without redoing or duplicating work; retries
// back off and give up naming the step; bad files are refused naming file,
// line and name before anything runs; cancel stops a training cleanly; the
// built-in retrain pipeline is a file `run` accepts.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "core/core.h"
#include "testing/testutil.h"

namespace detops {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::RunCommand;
using testing::TempDir;

// import -> validate -> train -> register -> evaluate, with training as
// small as it gets (one epoch at 128 px).
constexpr const char* kTrainPipeline = R"yaml(name: tiny
params:
  source: null
steps:
  - id: import
    uses: import
    with: {dataset: cars, source: "${params.source}"}
  - id: validate
    uses: validate
    with: {dataset: "${steps.import.outputs.dataset}"}
  - id: train
    uses: train
    with: {dataset: "${steps.validate.outputs.dataset}", init: none, epochs: 1, imgsz: 128}
  - id: register
    uses: register
    with: {run: "${steps.train.outputs.run}", name: cars-det}
  - id: evaluate
    uses: evaluate
    with: {model: "${steps.train.outputs.run}", dataset: "${steps.validate.outputs.dataset}"}
)yaml";
const std::vector<std::string> kTrainPipelineSteps = {"import", "validate", "train", "register",
                                                      "evaluate"};

// import -> train for long enough to be stopped in the middle.
constexpr const char* kLongPipeline = R"yaml(name: long
params:
  source: null
  epochs: 8
steps:
  - id: import
    uses: import
    with: {dataset: cars, source: "${params.source}"}
  - id: train
    uses: train
    with: {dataset: "${steps.import.outputs.dataset}", init: none, epochs: "${params.epochs}",
           imgsz: 128}
)yaml";

// Synthetic data made once for the whole binary: 16 car scenes, the
// source the pipelines import, and 4 more to take a new picture from.
const fs::path& SharedData() {
  static TempDir dir;
  static bool made = [] {
    for (const auto& [name, seed] : {std::pair{"src", "1"}, std::pair{"more", "2"}}) {
      CommandResult s = RunCommand(testing::DetopsBin() + " synth " + (dir / name).string() +
                                   " --kind car --n " + (name == std::string("src") ? "16" : "4") +
                                   " --seed " + seed + " --width 160 --height 120");
      if (s.exit_code != 0) {
        ADD_FAILURE() << s.out;
        return false;
      }
    }
    return true;
  }();
  EXPECT_TRUE(made);
  return dir.path();
}

class PipelinesCli : public ::testing::Test {
 protected:
  void SetUp() override { source_ = SharedData() / "src"; }
  std::string Source() const { return source_.string(); }
  std::string Ws() const { return (dir_ / "ws").string(); }
  std::string Detops() const { return testing::DetopsBin() + " --workspace " + Ws() + " "; }
  CommandResult Run(const std::string& args) { return RunCommand(Detops() + args); }
  Json RunJson(const std::string& args, int want_exit = 0) {
    CommandResult r = RunCommand(Detops() + args, false);
    EXPECT_EQ(r.exit_code, want_exit) << args << "\n" << r.out;
    auto j = ParseJson(r.out, args);
    EXPECT_TRUE(j.ok()) << args << "\n" << r.out;
    return j.ok() ? *j : Json();
  }
  std::string WritePipeline(const std::string& name, const std::string& text) {
    testing::WriteText(dir_ / name, text);
    return (dir_ / name).string();
  }
  // `pipelines run` of the tiny training pipeline on the source folder.
  // One thread: on a busy machine it is the quicker.
  std::string RunTrainPipelineArgs() {
    return "pipelines run " + WritePipeline("tiny.yaml", kTrainPipeline) +
           " -p source=" + Source() + " -q --threads 1";
  }
  Json Show(int64_t id) { return RunJson("pipelines show " + std::to_string(id) + " --json"); }
  // The runs of `detops runs ls` by kind (train, eval).
  std::map<std::string, std::vector<Json>> TrackedRuns() {
    std::map<std::string, std::vector<Json>> out;
    for (const Json& r : RunJson("runs ls --json")) out[r["kind"]].push_back(r);
    return out;
  }
  size_t ModelVersions() { return RunJson("models ls --json").size(); }

  TempDir dir_;
  fs::path source_;
};

// The step run `id` of a pipeline run's JSON.
Json StepOf(const Json& run, const std::string& id) {
  for (const Json& s : run["steps"]) {
    if (s["step"] == id) return s;
  }
  ADD_FAILURE() << "no step " << id << " in " << run.dump();
  return Json::object();
}

std::string ReadLog(const Json& step) {
  std::string path = step.value("log", "");
  if (path.empty()) return "";
  auto text = ReadFile(path);
  return text.ok() ? *text : "";
}

TEST_F(PipelinesCli, AnUnchangedPipelineRunsNothingAndANewImageRunsTheStepsDownstream) {
  // A source folder of this test's own: it gets a new picture below.
  source_ = dir_ / "src";
  fs::copy(SharedData() / "src", source_, fs::copy_options::recursive);
  Json first = RunJson(RunTrainPipelineArgs() + " --json");
  ASSERT_EQ(first["state"], "succeeded") << first.dump(1);
  for (const std::string& id : kTrainPipelineSteps) {
    EXPECT_EQ(StepOf(first, id)["state"], "succeeded") << id;
    EXPECT_EQ(StepOf(first, id)["attempts"], 1) << id;
  }
  EXPECT_EQ(StepOf(first, "import")["outputs"]["dataset"], "cars@1");

  // Again, unchanged: nothing runs, nothing new is trained or registered.
  Json second = RunJson(RunTrainPipelineArgs() + " --json");
  EXPECT_EQ(second["state"], "succeeded");
  EXPECT_NE(second["id"], first["id"]);
  EXPECT_NE(second["reason"].get<std::string>().find("nothing to do"), std::string::npos)
      << second["reason"];
  for (const std::string& id : kTrainPipelineSteps) {
    EXPECT_EQ(StepOf(second, id)["state"], "cached") << id;
    EXPECT_EQ(StepOf(second, id)["attempts"], 0) << id;
    EXPECT_EQ(StepOf(second, id)["outputs"], StepOf(first, id)["outputs"]) << id;
  }
  auto runs = TrackedRuns();
  EXPECT_EQ(runs["train"].size(), 1u);
  EXPECT_EQ(runs["eval"].size(), 1u);
  EXPECT_EQ(ModelVersions(), 1u);

  // A new picture in the source folder: import and everything after it
  // run again, on the new version.
  fs::path image;
  for (const auto& e : fs::directory_iterator(SharedData() / "more/images/train")) image = e.path();
  ASSERT_FALSE(image.empty());
  fs::path label = SharedData() / "more/labels/train" / (image.stem().string() + ".txt");
  ASSERT_TRUE(fs::exists(label)) << label;
  fs::copy_file(image, source_ / "images/train" / ("extra" + image.extension().string()));
  fs::copy_file(label, source_ / "labels/train/extra.txt");

  Json third = RunJson(RunTrainPipelineArgs() + " --json");
  EXPECT_EQ(third["state"], "succeeded") << third.dump(1);
  for (const std::string& id : kTrainPipelineSteps) {
    EXPECT_EQ(StepOf(third, id)["state"], "succeeded") << id;
  }
  EXPECT_EQ(StepOf(third, "import")["outputs"]["dataset"], "cars@2");
  EXPECT_EQ(StepOf(third, "import")["outputs"]["images"], "17");
  EXPECT_EQ(StepOf(third, "train")["outputs"]["dataset"], "cars@2");
  EXPECT_NE(StepOf(third, "train")["outputs"]["run"], StepOf(first, "train")["outputs"]["run"]);
  EXPECT_EQ(StepOf(third, "register")["outputs"]["model"], "cars-det@2");
  EXPECT_EQ(TrackedRuns()["train"].size(), 2u);
  EXPECT_EQ(ModelVersions(), 2u);
}

// A runner killed (SIGKILL) right after it marked a step running, then
// resumed: steps that finished are not redone, the killed step runs once
// more, and the end state is as if nothing had happened.
class PipelinesKilledAt : public PipelinesCli, public ::testing::WithParamInterface<std::string> {};

TEST_P(PipelinesKilledAt, ResumeFinishesWithoutRedoingOrDuplicating) {
  const std::string killed = GetParam();
  CommandResult crash =
      RunCommand("DETOPS_TEST_KILL_AT_STEP=" + killed + " " + Detops() + RunTrainPipelineArgs());
  ASSERT_EQ(crash.exit_code, 128 + SIGKILL) << crash.out;

  Json before = Show(1);  // the workspace's first run
  EXPECT_EQ(before["state"], "running");
  EXPECT_EQ(StepOf(before, killed)["state"], "running");
  EXPECT_EQ(StepOf(before, killed)["attempts"], 1);

  if (killed == "register") {
    // As if the runner had died just after registering: the step must
    // find that version rather than add a second one.
    CommandResult r =
        Run("models register " + StepOf(before, "train")["outputs"]["run"].get<std::string>() +
            " --name cars-det");
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }

  Json after = RunJson("pipelines resume 1 --json -q --threads 1");
  ASSERT_EQ(after["state"], "succeeded") << after.dump(1);
  EXPECT_EQ(after["owner"], "");
  if (killed == "register") {
    std::string log = ReadLog(StepOf(after, "register"));
    EXPECT_NE(log.find("registered already as cars-det@1"), std::string::npos) << log;
  }
  bool finished = true;  // before the killed step
  for (const std::string& step : kTrainPipelineSteps) {
    SCOPED_TRACE(step);
    Json b = StepOf(before, step), a = StepOf(after, step);
    EXPECT_EQ(a["state"], "succeeded");
    if (step == killed) {
      finished = false;
      EXPECT_EQ(a["attempts"], 2);
      EXPECT_EQ(a["started_at"], b["started_at"]);
    } else if (finished) {
      EXPECT_EQ(b["state"], "succeeded");
      EXPECT_EQ(a["attempts"], 1);
      EXPECT_EQ(a["started_at"], b["started_at"]);
      EXPECT_EQ(a["outputs"], b["outputs"]);
    } else {
      EXPECT_EQ(b["state"], "pending");
      EXPECT_EQ(a["attempts"], 1);
    }
  }
  auto runs = TrackedRuns();
  EXPECT_EQ(runs["train"].size(), 1u);
  EXPECT_EQ(runs["eval"].size(), 1u);
  Json models = RunJson("models ls --json");
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0]["ref"], "cars-det@1");
  EXPECT_EQ(models[0]["run_id"], StepOf(after, "train")["outputs"]["run"]);
}

INSTANTIATE_TEST_SUITE_P(EachStep, PipelinesKilledAt, ::testing::ValuesIn(kTrainPipelineSteps),
                         [](const auto& info) { return info.param; });

TEST_F(PipelinesCli, AKillInTheMiddleOfTrainingContinuesTheSameRun) {
  testing::ChildProcess runner({testing::DetopsBin(), "--workspace", Ws(), "pipelines", "run",
                                WritePipeline("long.yaml", kLongPipeline), "-p",
                                "source=" + Source(), "-q", "--threads", "1"},
                               dir_ / "runner.out");
  // Killed once the train step logged its first epoch (and so saved its
  // first checkpoint). The log is read where `pipelines show` says it is:
  // asking `show` each time would be too slow to catch a short epoch.
  const fs::path log = dir_ / "ws/logs/pipelines/1/train.log";
  auto epoch_logged = [&] {
    auto text = ReadFile(log);
    return text.ok() && text->find("epoch 1/8") != std::string::npos;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!epoch_logged() && runner.Running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(epoch_logged()) << runner.Output();
  runner.Signal(SIGKILL);
  ASSERT_EQ(runner.Wait(30), 128 + SIGKILL);

  Json before = Show(1);
  EXPECT_EQ(before["state"], "running");
  EXPECT_EQ(StepOf(before, "train")["state"], "running");
  EXPECT_EQ(StepOf(before, "train")["log"], log.string());
  std::vector<Json> train_runs = TrackedRuns()["train"];
  ASSERT_EQ(train_runs.size(), 1u);
  EXPECT_EQ(train_runs[0]["status"], "running");  // as the kill left it

  Json after = RunJson("pipelines resume 1 --json -q --threads 1");
  ASSERT_EQ(after["state"], "succeeded") << after.dump(1);
  Json train = StepOf(after, "train");
  EXPECT_EQ(train["attempts"], 2);
  EXPECT_EQ(StepOf(after, "import")["attempts"], 1);
  EXPECT_EQ(train["outputs"]["run"], train_runs[0]["id"]);
  EXPECT_NE(ReadLog(train).find("resuming run"), std::string::npos) << ReadLog(train);
  train_runs = TrackedRuns()["train"];
  ASSERT_EQ(train_runs.size(), 1u);
  EXPECT_EQ(train_runs[0]["status"], "finished");
  EXPECT_EQ(train_runs[0]["tags"]["resumed"], "true");
  EXPECT_EQ(train_runs[0]["tags"]["pipeline_run"], "1");
}

// A shell step that fails twice (counting its attempts in `dir`), then
// succeeds; a step after it.
std::string FlakyPipeline(const fs::path& dir, int retries) {
  return "name: flaky\nsteps:\n"
         "  - id: flaky\n"
         "    uses: shell\n"
         "    retries: " +
         std::to_string(retries) +
         "\n"
         "    backoff_seconds: 0.1\n"
         "    with:\n"
         "      run: 'mkdir -p " +
         dir.string() + " && cd " + dir.string() +
         " && n=$(cat count 2>/dev/null || echo 0) && echo $((n+1)) > count && "
         "if [ \"$n\" -lt 2 ]; then echo \"not yet: attempt $((n+1))\"; exit 1; fi'\n"
         "  - id: after\n"
         "    uses: shell\n"
         "    needs: [flaky]\n"
         "    with: {run: 'echo after'}\n";
}

TEST_F(PipelinesCli, AFailingStepIsRetriedWithBackoffThenGivesUpNamingTheStep) {
  // Fails twice, succeeds on the third attempt of four.
  Json ok = RunJson("pipelines run " + WritePipeline("p3.yaml", FlakyPipeline(dir_ / "f3", 3)) +
                    " --json -q");
  EXPECT_EQ(ok["state"], "succeeded") << ok.dump(1);
  Json flaky = StepOf(ok, "flaky");
  EXPECT_EQ(flaky["state"], "succeeded");
  EXPECT_EQ(flaky["attempts"], 3);
  EXPECT_EQ(StepOf(ok, "after")["state"], "succeeded");
  std::string log = ReadLog(flaky);
  EXPECT_NE(log.find("not yet: attempt 2"), std::string::npos) << log;
  // The back-off doubles.
  EXPECT_NE(log.find("retrying in 0.1"), std::string::npos) << log;
  EXPECT_NE(log.find("retrying in 0.2"), std::string::npos) << log;
  CommandResult logs = Run("pipelines logs " + ok["id"].dump() + " flaky");
  EXPECT_EQ(logs.exit_code, 0);
  EXPECT_NE(logs.out.find("attempt 3 (retries: 3)"), std::string::npos) << logs.out;

  // One retry is not enough: the run fails naming the step and its error.
  Json run = RunJson(
      "pipelines run " + WritePipeline("p1.yaml", FlakyPipeline(dir_ / "f1", 1)) + " --json -q", 1);
  EXPECT_EQ(run["state"], "failed");
  const std::string reason = run["reason"];
  EXPECT_NE(reason.find("step flaky (shell) failed after 2 attempts"), std::string::npos) << reason;
  EXPECT_NE(reason.find("exited with 1: not yet: attempt 2"), std::string::npos) << reason;
  EXPECT_EQ(StepOf(run, "flaky")["state"], "failed");
  EXPECT_EQ(StepOf(run, "flaky")["attempts"], 2);
  EXPECT_EQ(StepOf(run, "after")["state"], "not_run");
  EXPECT_EQ(StepOf(run, "after")["attempts"], 0);
}

TEST_F(PipelinesCli, BadFilesAreRefusedNamingFileLineAndNameAndNothingRuns) {
  // Every file starts with a step that would leave a mark if it ran.
  const std::string mark = (dir_ / "ran").string();
  const std::string head =
      "name: bad\nparams:\n  source: null\nsteps:\n  - id: first\n"
      "    uses: shell\n    with: {run: 'touch " +
      mark + "'}\n";  // lines 1-7
  struct Case {
    std::string file, body, args;
    int exit_code;
    std::vector<std::string> says;
  };
  const std::vector<Case> cases = {
      {"cycle.yaml",
       "  - id: a\n    uses: shell\n    needs: [b]\n    with: {run: 'true'}\n"
       "  - id: b\n    uses: shell\n    needs: [a]\n    with: {run: 'true'}\n",
       "-p source=x",
       2,
       {"cycle.yaml:8:", "cycle: a -> b -> a"}},
      {"type.yaml",
       "  - id: fit\n    uses: trian\n    with: {dataset: cars}\n",
       "-p source=x",
       2,
       {"type.yaml:9:", "step fit", "unknown step type 'trian'"}},
      {"ref.yaml",
       "  - id: a\n    uses: shell\n    with: {run: 'echo ${steps.nosuch.outputs.x}'}\n",
       "-p source=x",
       2,
       {"ref.yaml:10:", "step a", "unknown step 'nosuch'"}},
      {"needs.yaml",
       "  - id: a\n    uses: shell\n    needs: [gone]\n    with: {run: 'true'}\n",
       "-p source=x",
       2,
       {"needs.yaml:10:", "step a", "needs unknown step 'gone'"}},
      {"param.yaml", "", "", 2, {"parameter source is required"}},
      {"input.yaml",
       "  - id: train\n    uses: train\n    with: {dataset: cars, bogus: 1}\n",
       "-p source=x",
       2,
       {"input.yaml:8:", "step train (train)", "unknown input 'bogus'"}},
      {"required.yaml",
       "  - id: train\n    uses: train\n    with: {epochs: 1}\n",
       "-p source=x",
       2,
       {"required.yaml:8:", "step train (train)", "input 'dataset' is required"}},
      {"yaml.yaml",
       "  - id: a\n    uses: shell\n    with: {run: 'true'\n",
       "-p source=x",
       2,
       {"yaml.yaml:", "not valid YAML"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    CommandResult r =
        Run("pipelines run " + WritePipeline(c.file, head + c.body) + " " + c.args + " -q");
    EXPECT_EQ(r.exit_code, c.exit_code) << r.out;
    for (const std::string& s : c.says) EXPECT_NE(r.out.find(s), std::string::npos) << r.out;
  }
  CommandResult missing = Run("pipelines run " + (dir_ / "nosuch.yaml").string());
  EXPECT_EQ(missing.exit_code, 3) << missing.out;
  EXPECT_NE(missing.out.find("nosuch.yaml"), std::string::npos) << missing.out;

  EXPECT_FALSE(fs::exists(mark)) << "a step ran from a file that was refused";
  EXPECT_EQ(RunJson("pipelines ls --json"), Json::array());
}

TEST_F(PipelinesCli, CancelStopsTheTrainingAndSettlesTheRun) {
  const std::string file =
      WritePipeline("long.yaml", std::string(kLongPipeline) +
                                     "  - id: register\n    uses: register\n"
                                     "    with: {run: \"${steps.train.outputs.run}\"}\n");
  testing::ChildProcess runner({testing::DetopsBin(), "--workspace", Ws(), "pipelines", "run", file,
                                "-p", "source=" + Source(), "-p", "epochs=500", "--threads", "1"},
                               dir_ / "runner.out");
  ASSERT_TRUE(runner.WaitForOutput("[train] epoch 1/500", 120)) << runner.Output();

  // Owned by a live runner: a resume is refused rather than run twice.
  CommandResult resume = Run("pipelines resume 1");
  EXPECT_EQ(resume.exit_code, 2) << resume.out;
  EXPECT_NE(resume.out.find("being executed by"), std::string::npos) << resume.out;

  CommandResult cancel = Run("pipelines cancel 1 --reason 'wrong data'");
  EXPECT_EQ(cancel.exit_code, 0) << cancel.out;
  EXPECT_EQ(runner.Wait(60), 1) << runner.Output();

  Json run = Show(1);
  EXPECT_EQ(run["state"], "cancelled");
  EXPECT_NE(run["reason"].get<std::string>().find("wrong data"), std::string::npos)
      << run["reason"];
  EXPECT_EQ(run["owner"], "");
  EXPECT_EQ(StepOf(run, "import")["state"], "succeeded");
  EXPECT_EQ(StepOf(run, "train")["state"], "not_run");
  EXPECT_EQ(StepOf(run, "train")["error"].get<std::string>().rfind("cancelled: training", 0), 0u)
      << StepOf(run, "train")["error"];
  EXPECT_EQ(StepOf(run, "register")["state"], "not_run");
  std::vector<Json> train_runs = TrackedRuns()["train"];
  ASSERT_EQ(train_runs.size(), 1u);
  EXPECT_NE(train_runs[0]["status"], "running");
  EXPECT_EQ(ModelVersions(), 0u);

  CommandResult twice = Run("pipelines cancel 1");
  EXPECT_EQ(twice.exit_code, 2) << twice.out;
  EXPECT_NE(twice.out.find("already cancelled"), std::string::npos) << twice.out;
}

TEST_F(PipelinesCli, TheBuiltInRetrainPipelineIsAFileRunAccepts) {
  CommandResult cat = RunCommand(Detops() + "pipelines cat retrain", false);
  ASSERT_EQ(cat.exit_code, 0);
  EXPECT_EQ(cat.out.rfind("name: retrain\n", 0), 0u) << cat.out.substr(0, 200);
  const std::string file = WritePipeline("retrain.yaml", cat.out);
  // Parsed and checked: refused for the parameter, not for the file.
  CommandResult r = Run("pipelines run " + file + " -p model=cars-det -p no_such_param=1");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("unknown parameter 'no_such_param'"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("YAML"), std::string::npos) << r.out;
  r = Run("pipelines run " + file);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("parameter model is required"), std::string::npos) << r.out;
  EXPECT_EQ(RunJson("pipelines ls --json"), Json::array());

  CommandResult unknown = Run("pipelines cat nosuch");
  EXPECT_EQ(unknown.exit_code, 3) << unknown.out;
  EXPECT_NE(unknown.out.find("retrain"), std::string::npos) << unknown.out;

  CommandResult steps = RunCommand("COLUMNS=200 " + Detops() + "pipelines steps", false);
  ASSERT_EQ(steps.exit_code, 0);
  for (const char* type : {"import", "validate", "feedback-export", "train", "evaluate", "register",
                           "promote", "shell"}) {
    EXPECT_NE(steps.out.find(std::string("\n") + type + " "), std::string::npos) << type << "\n"
                                                                                 << steps.out;
  }
}

}  // namespace
}  // namespace detops
