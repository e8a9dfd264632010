#include "serve/jobs.h"

#include "monitor/monitor.h"

namespace detops::serve {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

const char* JobStateName(JobState s) {
  switch (s) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
  }
  return "unknown";
}

JobRunner::JobRunner(JobRunnerOptions options, Observer on_finished)
    : options_(options),
      on_finished_(std::move(on_finished)),
      worker_(std::make_unique<ThreadPool>(1)) {}

JobRunner::~JobRunner() { Shutdown(); }

Result<JobRunner::Submitted> JobRunner::Submit(std::string kind, std::string subject,
                                               std::string actor, Run run) {
  Submitted out;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Status::Unavailable("the server is shutting down");
    // pending_ counts the running job too: queue_max is what waits behind it.
    if (pending_ > options_.queue_max) {
      return Status::Unavailable(std::to_string(pending_ - 1) +
                                 " jobs are queued behind the running one; try again later");
    }
    JobSnapshot job;
    // Random (as prediction ids are), so that an id from before a restart
    // cannot name a new job.
    do {
      job.id = NewPredictionId();
    } while (jobs_.count(job.id));
    job.kind = std::move(kind);
    job.subject = std::move(subject);
    job.actor = std::move(actor);
    job.created_ms = NowMs();
    out.id = job.id;
    out.ahead = pending_++;
    jobs_.emplace(job.id, std::move(job));
    // Under the lock, so that Shutdown cannot take the worker away meanwhile.
    worker_->Submit([this, id = out.id, run = std::move(run)] { Execute(id, run); });
  }
  return out;
}

void JobRunner::Execute(const std::string& id, const Run& run) {
  {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(id);
    // Failed by Shutdown before it started (and perhaps forgotten since).
    if (it == jobs_.end() || it->second.finished()) return;
    it->second.state = JobState::kRunning;
    it->second.started_ms = NowMs();
  }
  changed_.notify_all();
  JobOutcome outcome;
  try {
    outcome = run([this, &id](const std::string& step) {
      {
        std::lock_guard lock(mu_);
        jobs_.at(id).progress = step;
      }
      changed_.notify_all();
    });
  } catch (const std::exception& e) {
    outcome.error = Status::Internal(std::string("the job failed: ") + e.what());
  } catch (...) {
    outcome.error = Status::Internal("the job failed: unknown exception");
  }
  JobSnapshot done;
  {
    std::lock_guard lock(mu_);
    JobSnapshot& job = jobs_.at(id);
    job.state = outcome.error.ok() ? JobState::kSucceeded : JobState::kFailed;
    job.error = std::move(outcome.error);
    job.result = std::move(outcome.result);
    job.finished_ms = NowMs();
    --pending_;
    finished_order_.emplace(sequence_++, id);
    done = job;
    ForgetOldLocked();
  }
  changed_.notify_all();
  if (on_finished_) on_finished_(done);
}

void JobRunner::ForgetOldLocked() {
  while (finished_order_.size() > options_.keep_finished) {
    jobs_.erase(finished_order_.begin()->second);
    finished_order_.erase(finished_order_.begin());
  }
}

std::optional<JobSnapshot> JobRunner::Get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  return it->second;
}

JobSnapshot JobRunner::WaitFor(const std::string& id,
                               const std::function<bool(const JobSnapshot&)>& until,
                               std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  // Forgotten only after finishing, and `until` sees it finished first.
  auto at = [&]() -> const JobSnapshot& { return jobs_.at(id); };
  changed_.wait_for(lock, timeout, [&] { return jobs_.count(id) == 0 || until(at()); });
  auto it = jobs_.find(id);
  if (it == jobs_.end()) {
    JobSnapshot gone;
    gone.id = id;
    gone.state = JobState::kFailed;
    gone.error = Status::NotFound("job " + id + " was forgotten");
    return gone;
  }
  return it->second;
}

void JobRunner::Shutdown() {
  std::vector<JobSnapshot> cancelled;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [id, job] : jobs_) {
      if (job.state != JobState::kQueued) continue;
      job.state = JobState::kFailed;
      job.error = Status::Unavailable("the server stopped before the job started");
      job.finished_ms = NowMs();
      --pending_;
      finished_order_.emplace(sequence_++, id);
      cancelled.push_back(job);
    }
  }
  changed_.notify_all();
  if (on_finished_) {
    for (const JobSnapshot& job : cancelled) on_finished_(job);
  }
  worker_.reset();  // the running job finishes; the cancelled ones return at once
}

}  // namespace detops::serve
