#pragma once
// Background jobs of the server: long operations a request starts (a
// promotion that re-evaluates production on a test split) run here, on ONE
// worker thread owned by the server, never on a connection thread next to
// the batch workers. The request gets a job id at once (HTTP 202 with
// Location: /v1/jobs/{id}) and polls it, as Triton's async model load,
// SageMaker's CreateEndpoint or Azure's long-running operations do.
//
// Jobs live in memory only: a job is a handle on work this process is doing,
// and what the work changes is durable where it belongs (a promotion's alias
// move and its gate table are in the registry's audit log). A restart
// forgets them; ids are random, so an old id answers 404 instead of naming
// another job.
//
// Internal to serve. JSON here is the route's answer, built by the job.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/core.h"
#include "core/parallel.h"

namespace detops::serve {

enum class JobState { kQueued, kRunning, kSucceeded, kFailed };
const char* JobStateName(JobState s);  // "queued", "running", "succeeded", "failed"

// What a job's function returns: succeeded with a result, or failed with an
// error and, when there is one, a result too (a refused promotion's gate
// table).
struct JobOutcome {
  Status error;  // Ok: succeeded
  Json result;   // null when there is none
};

// A job's state as a poller sees it.
struct JobSnapshot {
  std::string id;       // 16 lower-case hex digits
  std::string kind;     // "promote"
  std::string subject;  // what it acts on: "cars@3 -> production"
  std::string actor;
  JobState state = JobState::kQueued;
  std::string progress;  // the step it is on now ("" before the first report)
  Json result;
  Status error;
  int64_t created_ms = 0, started_ms = 0, finished_ms = 0;  // Unix ms; 0 = not yet
  bool finished() const { return state == JobState::kSucceeded || state == JobState::kFailed; }
};

struct JobRunnerOptions {
  size_t queue_max = 4;       // jobs waiting behind the running one; more are refused
  size_t keep_finished = 64;  // finished jobs kept for polling (oldest forgotten first)
};

// Runs jobs one at a time in submission order. Thread-safe.
class JobRunner {
 public:
  // Reports the step a job is on; callable from the job's function only.
  using Progress = std::function<void(const std::string&)>;
  using Run = std::function<JobOutcome(const Progress&)>;
  // Called on the worker after a job finished (for the event log); may be null.
  using Observer = std::function<void(const JobSnapshot&)>;

  explicit JobRunner(JobRunnerOptions options = {}, Observer on_finished = nullptr);
  ~JobRunner();  // Shutdown()
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  struct Submitted {
    std::string id;
    size_t ahead = 0;  // jobs queued or running before this one
  };
  // Queues `run`. Unavailable when queue_max jobs already wait ("N jobs
  // queued"), or once Shutdown began. `run` must not throw; an exception
  // that escapes it fails the job with Internal.
  Result<Submitted> Submit(std::string kind, std::string subject, std::string actor, Run run);

  // The job now; nullopt when the id is unknown or forgotten.
  std::optional<JobSnapshot> Get(const std::string& id) const;

  // Blocks until `until(job)` holds (checked at every state or progress
  // change) or `timeout` passes; returns the job then. The id must be known.
  JobSnapshot WaitFor(const std::string& id, const std::function<bool(const JobSnapshot&)>& until,
                      std::chrono::milliseconds timeout) const;

  // Refuses new jobs, fails the queued ones ("the server stopped before the
  // job started") and waits for the running one to finish: every job ends
  // settled. Idempotent.
  void Shutdown();

 private:
  void Execute(const std::string& id, const Run& run);
  void ForgetOldLocked();

  const JobRunnerOptions options_;
  const Observer on_finished_;
  mutable std::mutex mu_;  // guards everything below
  mutable std::condition_variable changed_;
  std::map<std::string, JobSnapshot> jobs_;
  std::map<int64_t, std::string> finished_order_;  // sequence -> id, for forgetting
  int64_t sequence_ = 0;
  size_t pending_ = 0;  // queued or running
  bool stopping_ = false;
  std::unique_ptr<ThreadPool> worker_;  // one thread; last, so it stops first
};

}  // namespace detops::serve
