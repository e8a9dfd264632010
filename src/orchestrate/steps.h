#pragma once
// The built-in step types a pipeline file may use (`uses:`), each a thin
// adapter from a step's inputs to one job of pipeline/. Internal to
// orchestrate; the runner (runner.h) calls them.

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/core.h"
#include "pipeline/pipeline.h"
#include "store/store.h"

namespace detops {

struct StepContext {
  explicit StepContext(Workspace& w) : ws(w) {}
  Workspace& ws;
  int64_t pipeline_run = 0;
  std::string step_id;
  std::map<std::string, std::string> with;  // expanded inputs
  // What an earlier attempt of this step saved (a train run's id); a step
  // saves through save_resume as soon as it has something to continue from.
  Json resume = Json::object();
  std::function<Status(const Json&)> save_resume;
  std::function<void(const std::string&)> log;  // one line of the step's log
  const std::atomic<bool>* stop = nullptr;
  std::string actor;
  int threads = 2;
  BuildInfo build;

  // Inputs, with a clear error naming the step and key.
  std::string Get(const std::string& key, const std::string& fallback = "") const;
  Result<std::string> Require(const std::string& key) const;
  Result<double> Number(const std::string& key, double fallback) const;
  bool Flag(const std::string& key, bool fallback) const;
};

struct StepType {
  std::string name;
  std::string summary;                // one line for docs and `detops pipelines steps`
  std::vector<std::string> required;  // keys of `with`
  std::vector<std::string> optional;
  // Facts outside the inputs that the outputs depend on, hashed into the
  // cache key (a folder's fingerprint, the production version). nullptr:
  // none.
  std::function<Result<Json>(StepContext&)> fingerprint;
  std::function<Result<Json>(StepContext&)> run;  // the outputs
};

// Every built-in step; its names are pipeline_spec.h's StepTypes().
const std::vector<StepType>& BuiltinSteps();
const StepType* FindStepType(const std::string& name);

// "a, b,c" -> {"a", "b", "c"}: list inputs (extra_tests, stages, shift).
std::vector<std::string> CommaList(const std::string& text);

// The training augmentation that matches a shift the monitor names: its
// signals (input.brightness, input.contrast, input.sharpness, ...) ->
// augment keys (dark, haze, blur...). The one mapping; the drift trigger
// passes the signals, the train step applies the keys.
std::map<std::string, double> AugmentForSignals(const std::vector<std::string>& signals);

}  // namespace detops
