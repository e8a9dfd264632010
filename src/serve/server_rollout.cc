// Rollouts inside the server (monitor/rollout.h): a follower thread polls
// the served model's active rollout, loads its candidate off the request
// path and publishes both through one pointer; requests are routed when
// they are prepared (canary); after an answer, one rollout worker scores
// the candidate on the same decoded image (shadow) or records the
// candidate's failure. When the rollout settles the candidate is released
// with its last request and every request goes to production.

#include "serve/server_internal.h"

namespace detops::serve {
namespace {

// Rollout tasks (shadow scorings, failure records) waiting beyond this are
// dropped and counted: shadow work must not grow without bound when the
// candidate is slower than the traffic.
constexpr int kRolloutPendingMax = 64;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::string Share(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g %%", share * 100);
  return buf;
}

std::string Describe(const Rollout& r) {
  return "rollout #" + std::to_string(r.id) + " (" + r.mode +
         (r.mode == kRolloutCanary ? " " + Share(r.share) : "") + ") of " + r.model_name + "@" +
         std::to_string(r.candidate_version) + " against " + std::to_string(r.baseline_version);
}

}  // namespace

Status ServerImpl::InitRolloutMetrics() {
  MetricsRegistry& r = m_.registry;
  ASSIGN_OR_RETURN(rollout_share_,
                   r.AddGauge("detops_rollout_share",
                              "Share of requests the candidate of the active rollout answers "
                              "(canary; 0 in shadow mode and once settled)",
                              {"model", "candidate", "mode"}));
  ASSIGN_OR_RETURN(rollout_requests_,
                   r.AddCounter("detops_rollout_requests_total",
                                "Requests during a rollout by arm: answered by production or "
                                "the candidate, or scored by the candidate in shadow",
                                {"arm"}));
  ASSIGN_OR_RETURN(auto failures,
                   r.AddCounter("detops_rollout_candidate_failures_total",
                                "Requests the candidate failed (canary: answered by production)"));
  rollout_failures_ = &failures->With({});
  ASSIGN_OR_RETURN(auto dropped,
                   r.AddCounter("detops_rollout_dropped_total",
                                "Shadow scorings and failure records dropped because the "
                                "rollout worker fell behind"));
  rollout_dropped_ = &dropped->With({});
  return Status::Ok();
}

Status ServerImpl::StartRollouts() {
  // A server pinned to a version, or following another alias, serves what
  // it was told: rollouts compare against production.
  follow_rollouts_ = o_.version == 0 && o_.alias == kProduction;
  if (!follow_rollouts_) return Status::Ok();
  rollout_worker_ = std::make_unique<ThreadPool>(1);
  FollowRollout();  // at once: a server started mid-rollout routes from its first request
  rollout_thread_ = std::thread([this] { RolloutLoop(); });
  return Status::Ok();
}

void ServerImpl::StopRollouts() {
  {
    std::lock_guard lock(rollout_mu_);
    rollout_stop_ = true;
  }
  rollout_cv_.notify_all();
  if (rollout_thread_.joinable()) rollout_thread_.join();
  rollout_draining_ = true;
  rollout_worker_.reset();  // records what is queued (shadow scorings are skipped), joins
}

void ServerImpl::RolloutLoop() {
  std::unique_lock lock(rollout_mu_);
  while (!rollout_stop_) {
    rollout_cv_.wait_for(lock, std::chrono::milliseconds(std::max(50, o_.poll_ms)),
                         [this] { return rollout_stop_; });
    if (rollout_stop_) break;
    lock.unlock();
    FollowRollout();
    lock.lock();
  }
}

std::shared_ptr<const RolloutServing> ServerImpl::CurrentRollout() const {
  std::lock_guard lock(rollout_mu_);
  return rollout_;
}

void ServerImpl::FollowRollout() {
  auto active = ActiveRollout(ws_, o_.model);
  if (!active.ok()) {
    Log("rollout: " + active.status().message());
    return;
  }
  std::shared_ptr<const RolloutServing> now = CurrentRollout();
  auto publish = [this](std::shared_ptr<const RolloutServing> next) {
    std::lock_guard lock(rollout_mu_);
    rollout_ = std::move(next);
  };
  auto set_share = [this](const Rollout& r, double share) {
    rollout_share_->With({r.model_name, std::to_string(r.candidate_version), r.mode}).Set(share);
  };
  if (now && (!*active || (*active)->id != now->rollout.id)) {
    // Settled (or replaced): production answers everything from here; the
    // candidate goes with its last request.
    auto settled = GetRollout(ws_, now->rollout.id);
    publish(nullptr);
    set_share(now->rollout, 0);
    Log(Describe(now->rollout) + " " +
        (settled.ok() ? settled->state + (settled->reason.empty() ? "" : ": " + settled->reason)
                      : "ended") +
        "; candidate unloaded, production answers every request");
    now = nullptr;
  }
  if (!*active) return;
  const Rollout& r = **active;
  if (now) {
    if (now->rollout.stage == r.stage && now->rollout.share == r.share) return;
    auto next = std::make_shared<RolloutServing>(*now);
    next->rollout = r;
    publish(next);
    set_share(r, r.mode == kRolloutCanary ? r.share : 0);
    Log(Describe(r) + ": stage " + std::to_string(r.stage + 1));
    return;
  }
  // A new rollout: its candidate loads here, while production answers.
  auto next = std::make_shared<RolloutServing>();
  next->rollout = r;
  ModelHostOptions ho;
  ho.name = o_.model;
  ho.version = r.candidate_version;
  ho.detector.device = o_.device;
  ho.detector.precision = plan_.precision;
  ho.replicas = plan_.workers;
  auto host = ModelHost::Start(ws_, ho);
  if (host.ok()) {
    next->candidate = (*host)->Current();
    if (next->candidate->version.spec.classes != host_->Current()->version.spec.classes) {
      next->candidate = nullptr;
      next->load_error = "its classes differ from production's";
    }
  } else {
    next->load_error = host.status().message();
  }
  if (!next->load_error.empty()) {
    next->load_error = "cannot load " + o_.model + "@" + std::to_string(r.candidate_version) +
                       ": " + next->load_error;
  }
  publish(next);
  set_share(r, r.mode == kRolloutCanary ? r.share : 0);
  Log(Describe(r) + ": " +
      (next->candidate ? "candidate loaded"
                       : next->load_error + " (its requests count as its failures)"));
}

void ServerImpl::Route(PredictJob& job) {
  job.id = NewPredictionId();
  if (!follow_rollouts_) return;
  job.rollout = CurrentRollout();
  if (!job.rollout || !job.rollout->canary()) return;
  if (!RoutesToCandidate(job.id, job.rollout->rollout.share)) return;
  job.model = job.rollout->candidate;
  if (!job.model) job.candidate_error = job.rollout->load_error;
}

bool ServerImpl::SubmitRolloutTask(std::function<void()> task) {
  if (!rollout_worker_ || ++rollout_pending_ > kRolloutPendingMax) {
    --rollout_pending_;
    rollout_dropped_->Inc();
    return false;
  }
  rollout_worker_->Submit([this, task = std::move(task)] {
    task();
    --rollout_pending_;
  });
  return true;
}

void ServerImpl::AfterAnswer(const PredictOutcome& r, const PredictionRecord& answer) {
  const RolloutServing& serving = *r.rollout;
  const Rollout& rollout = serving.rollout;
  rollout_requests_->With({r.by_candidate ? "candidate" : "production"}).Inc();
  ShadowAnswer base;
  base.rollout = rollout.id;
  base.prediction_id = answer.id;
  base.at_ms = answer.time_ms;
  base.model_version = rollout.candidate_version;
  if (!r.candidate_error.empty()) {
    rollout_failures_->Inc();
    base.error = r.candidate_error;
    SubmitRolloutTask([this, base] {
      Status s = RecordShadowAnswer(ws_, base);
      if (!s.ok()) Log("rollout: recording a candidate failure: " + s.message());
    });
    return;
  }
  if (serving.canary() || !serving.candidate || r.pixels.empty()) return;
  // Shadow: the candidate scores the same decoded image, after the answer.
  SubmitRolloutTask([this, base, serving = r.rollout, pixels = r.pixels, image = r.image,
                     options = r.options, production = answer.detections]() mutable {
    if (rollout_draining_) return;  // stopping: not worth a forward pass
    const auto t0 = Clock::now();
    Result<std::vector<std::vector<Detection>>> dets = Status::Internal("not run");
    try {
      dets = serving->candidate->WithReplica(
          [&](Detector& d) { return d.Predict({pixels}, options); });
    } catch (const std::exception& e) {
      dets = Status::Internal(e.what());
    }
    base.inference_ms = Ms(Clock::now() - t0);
    if (dets.ok() && dets->size() == 1) {
      for (const Detection& d : (*dets)[0]) {
        if (d.score >= options.conf) base.detections.push_back(ToOriginalPixels(d, image));
      }
      base.agreement = AnswerAgreement(production, base.detections);
      rollout_requests_->With({"shadow"}).Inc();
    } else {
      base.error = dets.ok() ? "no answer" : dets.status().message();
      rollout_failures_->Inc();
    }
    Status s = RecordShadowAnswer(ws_, base);
    if (!s.ok()) Log("rollout: recording a shadow answer: " + s.message());
  });
}

}  // namespace detops::serve
