#pragma once
// A pipeline file: a YAML DAG of built-in steps with parameters and
// references to earlier steps' outputs. Parsing and checking only; the
// runner (runner.h) executes it.
//
//   name: retrain
//   description: ...
//   params:                       # defaults; `detops pipelines run --param k=v` overrides
//     dataset: cars
//     minutes: 3
//     source: null                # required: no default
//   steps:
//     - id: data                  # [a-z0-9_-], unique
//       uses: import              # a built-in step (kStepTypes)
//       with:                     # scalar values; ${params.X} and ${steps.ID.outputs.Y}
//         dataset: ${params.dataset}
//         source: ${params.source}
//     - id: train
//       uses: train
//       needs: [data]             # extra ordering; references imply it too
//       if: ${params.train}       # skipped when it expands to "", "0", "false", "no"
//       retries: 2                # attempts after the first, for transient failures
//       backoff_seconds: 5        # before the first retry; doubles each time (cap 300)
//       cache: true               # default true; false: always runs
//       with: {dataset: "${steps.data.outputs.dataset}"}
//
// Errors (InvalidInput) name the file, the line and the name at fault: bad
// YAML, an unknown key, an unknown step type, a duplicate id, a `needs` or
// a reference to a step that does not exist or is not upstream-reachable
// (a reference creates the edge, so it may not point downstream), an
// unknown parameter, a cycle (naming the steps on it), a required parameter
// left without a value.

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/core.h"

namespace detops {

// The built-in step types, the one list (docs and errors print it).
// import, validate, feedback-export, train, evaluate, register, promote, shell.
const std::vector<std::string>& StepTypes();

struct StepSpec {
  std::string id;
  std::string uses;
  std::vector<std::string> needs;           // explicit plus implied by references, sorted, unique
  std::map<std::string, std::string> with;  // raw values, ${...} unexpanded
  std::string if_expr;                      // raw; "" = always
  int retries = 0;
  double backoff_seconds = 5;
  bool cache = true;
  int line = 0;  // 1-based, where the step starts
};

struct PipelineSpec {
  std::string name;
  std::string description;
  std::string path;                                          // the file it came from ("" = text)
  std::map<std::string, std::optional<std::string>> params;  // nullopt = required
  std::vector<StepSpec> steps;  // in a topological order (stable: file order among ready steps)
};

// The largest pipeline file (or text) accepted: 1 MiB. YAML aliases may
// not make the steps copy out more than 4 MiB of text either.
inline constexpr size_t kMaxPipelineBytes = size_t{1} << 20;

// Parses and checks. `file_label` is used in errors (the path, or a name for
// built-in text). Text over kMaxPipelineBytes is InvalidInput; Load checks
// the file's size before reading it (NotFound when there is no file).
Result<PipelineSpec> ParsePipelineSpec(const std::string& yaml_text, const std::string& file_label);
Result<PipelineSpec> LoadPipelineSpec(const std::filesystem::path& file);

// The parameters a run uses: the defaults overridden by `overrides`. An
// override of a parameter the pipeline does not declare, or a required one
// left without a value, is InvalidInput naming it.
Result<std::map<std::string, std::string>> ResolveParams(
    const PipelineSpec& spec, const std::map<std::string, std::string>& overrides);

// Expands ${params.X} and ${steps.ID.outputs.Y} in `text`. `outputs` holds
// finished steps' outputs by step id. A reference to an output the step did
// not produce is InvalidInput naming the step, the output and `where` (e.g.
// "step train, with.dataset"). "$${" is a literal "${". One pass: what a
// reference expands to is not expanded again. Outputs that are not strings
// are written as JSON ("3", "true", "0.61"; null as "").
Result<std::string> Expand(const std::string& text,
                           const std::map<std::string, std::string>& params,
                           const std::map<std::string, Json>& outputs, const std::string& where);

// Whether an expanded `if:` is true ("", "0", "false", "no", "off" are
// false, in any case and with spaces around them).
bool Truthy(const std::string& value);

}  // namespace detops
