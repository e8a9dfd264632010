#pragma once
// The pipeline runner: executes a pipeline file's steps in order, each a
// built-in step (steps.h) that calls one of the jobs in pipeline/.
//  - Cache: a step's outputs are stored under the hash of its type, its
//    expanded inputs and the outside facts it depends on (a source folder's
//    files, the production version it warm-starts from...). A step whose key
//    is stored is not run again ("cached"); an unchanged pipeline run again
//    runs nothing and says so.
//  - Retries: a failed attempt is retried `retries` times, after
//    backoff_seconds, doubling (cap 300 s); cancelling interrupts the wait.
//  - State: pipeline_runs and step_runs rows (migration 8) say at every
//    moment what ran, with what, for how long, and why it ended; each step
//    writes its log to <workspace>/logs/pipelines/<run>/<step>.log.
//  - Crashes: the run row names its owner (host:pid) and a heartbeat. A run
//    whose owner died (kill -9, a reboot) is resumed by ResumePipelineRun:
//    finished steps keep their outputs, the step that was running starts
//    again from what it saved (a training step continues its checkpoint).
//  - Every exit settles the run: succeeded, failed (the step and its
//    error), or cancelled (who and why).

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/core.h"
#include "orchestrate/pipeline_spec.h"
#include "pipeline/pipeline.h"
#include "store/store.h"

namespace detops {

// States of a pipeline run and of a step run: the one list.
inline constexpr const char* kRunRunning = "running";
inline constexpr const char* kRunSucceeded = "succeeded";
inline constexpr const char* kRunFailed = "failed";
inline constexpr const char* kRunCancelled = "cancelled";
inline constexpr const char* kStepPending = "pending";
inline constexpr const char* kStepRunning = "running";
inline constexpr const char* kStepSucceeded = "succeeded";
inline constexpr const char* kStepCached = "cached";
inline constexpr const char* kStepSkipped = "skipped";
inline constexpr const char* kStepFailed = "failed";
inline constexpr const char* kStepNotRun = "not_run";  // an earlier step failed or it was cancelled

// The pipeline files that ship with detops, by name (`retrain`).
const std::map<std::string, std::string>& BuiltinPipelines();
// A file path, or the name of a built-in pipeline.
Result<PipelineSpec> LoadPipeline(const std::string& file_or_name, std::string* text = nullptr);

struct PipelineRunOptions {
  std::string pipeline;  // file path or built-in name
  std::map<std::string, std::string> params;
  std::string trigger = "manual";  // manual | inbox | drift | decay | schedule
  std::string trigger_detail;      // e.g. "alert 12: input.brightness at retrain"
  std::string model_name;          // the model it is about ("" = params.model when given)
  std::string actor;
  BuildInfo build;
  int threads = 2;
  // Each log line of each step as it is written ("" step = the runner).
  std::function<void(const std::string& step, const std::string& line)> on_log;
  // Set: stop (a signal, the controller stopping). The run stays
  // resumable; a cancel request in the database settles it instead.
  const std::atomic<bool>* stop = nullptr;
  // A failpoint for crash tests: the runner kills itself with SIGKILL right
  // after it marked this step running, as a crash there would (the CLI
  // sets it from $DETOPS_TEST_KILL_AT_STEP). "" = never.
  std::string kill_at_step;
};

struct StepRunInfo {
  int64_t id = 0;
  std::string step, uses, state, error, cache_key;
  int position = 0;
  int attempts = 0;
  Json inputs = Json::object(), outputs = Json::object(), resume = Json::object();
  std::string started_at, finished_at;
  double duration_ms = 0;
  std::string log_path;
};

struct PipelineRunInfo {
  int64_t id = 0;
  std::string pipeline, spec_path, trigger, trigger_detail, model_name, state, reason, owner;
  std::map<std::string, std::string> params;
  bool cancel_requested = false;
  int64_t heartbeat_ms = 0;
  std::string created_at, finished_at;
  std::vector<StepRunInfo> steps;  // in run order
  int executed = 0;                // steps run (not cached or skipped) by this call
  int cached = 0;
};

// Creates the run (checked: the file, its parameters, every step's inputs)
// and executes it to the end in this thread.
Result<PipelineRunInfo> RunPipeline(Workspace& ws, const PipelineRunOptions& options);
// Creates the run without executing it (for a caller that executes it on
// its own thread).
Result<PipelineRunInfo> CreatePipelineRun(Workspace& ws, const PipelineRunOptions& options);
// Executes (or resumes) a created run owned by nobody alive. `options`
// supplies the callbacks, threads, build and stop flag; the pipeline and
// parameters are the run's own. AlreadyExists when a live process owns
// it; InvalidInput when it is settled.
Result<PipelineRunInfo> ExecutePipelineRun(Workspace& ws, int64_t run_id,
                                           const PipelineRunOptions& options);

// Runs in state running whose owner is gone: a pid on this host that no
// longer exists, or a heartbeat older than `stale_ms` (another host).
Result<std::vector<int64_t>> FindOrphanedRuns(Workspace& ws, int64_t stale_ms = 60000);

// Asks a running run to stop; a run whose owner is gone is settled as
// cancelled at once.
Result<PipelineRunInfo> CancelPipelineRun(Workspace& ws, int64_t run_id, const std::string& actor,
                                          const std::string& reason);

Result<PipelineRunInfo> GetPipelineRun(Workspace& ws, int64_t run_id);
struct PipelineRunFilter {
  std::string pipeline, state, model_name, trigger;
  int limit = 50;
};
Result<std::vector<PipelineRunInfo>> ListPipelineRuns(Workspace& ws, const PipelineRunFilter& f);
Json PipelineRunToJson(const PipelineRunInfo& r);

}  // namespace detops
