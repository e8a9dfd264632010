// The promote step: a candidate through the gates (its own test split and
// every extra slice, e.g. held-out images of new conditions), then, by
// policy, straight to the alias or through a shadow or canary release under
// live traffic first. Automatic: an escalate-level alert freezes it.

#include <chrono>
#include <sstream>
#include <thread>

#include "core/fs.h"
#include "monitor/rollout.h"
#include "orchestrate/runner_internal.h"
#include "orchestrate/steps_internal.h"
#include "registry/registry.h"

namespace detops {
namespace {

std::string GateSummary(const GateReport& g) {
  std::string s;
  for (const GateCheck& c : g.checks) {
    s += (s.empty() ? "" : "; ") + c.gate + " " + c.actual + " (needs " + c.required + ")" +
         (c.passed ? "" : " FAILED");
  }
  return s;
}

Result<RolloutPolicy> PolicyOf(StepContext& c) {
  RolloutPolicy p;
  // rollout_policy: the policy as JSON, inline ({...}) or a file; the
  // single inputs below override it.
  if (const std::string text = c.Get("rollout_policy"); !text.empty()) {
    std::string json = text;
    if (text.front() != '{') {
      ASSIGN_OR_RETURN(json, ReadFile(text));
    }
    ASSIGN_OR_RETURN(Json j, ParseJson(json, "step " + c.step_id + ": rollout_policy"));
    ASSIGN_OR_RETURN(p, RolloutPolicyFromJson(j));
  }
  if (!c.Get("stages").empty()) {
    p.stages.clear();
    for (const std::string& s : CommaList(c.Get("stages"))) {
      char* end = nullptr;
      double v = std::strtod(s.c_str(), &end);
      if (*end != '\0' || v <= 0 || v > 1) {
        return Status::InvalidInput("step " + c.step_id +
                                    ": stages must be shares in (0, 1]; got '" + s + "'");
      }
      p.stages.push_back(v);
    }
  }
  ASSIGN_OR_RETURN(double min_requests,
                   c.Number("min_requests", static_cast<double>(p.min_requests)));
  p.min_requests = static_cast<int>(min_requests);
  ASSIGN_OR_RETURN(p.stage_seconds, c.Number("stage_seconds", p.stage_seconds));
  ASSIGN_OR_RETURN(p.timeout_seconds, c.Number("timeout_seconds", p.timeout_seconds));
  ASSIGN_OR_RETURN(p.max_accuracy_drop, c.Number("max_accuracy_drop", p.max_accuracy_drop));
  return p;
}

// Drives a rollout to its end; the rollout's id is saved so that a resumed
// step continues it.
Result<Rollout> Release(StepContext& c, const ModelVersion& cand, const std::string& mode) {
  ASSIGN_OR_RETURN(RolloutPolicy policy, PolicyOf(c));
  ASSIGN_OR_RETURN(Rollout r, StartRollout(c.ws, cand.name, cand.version, mode, policy, c.actor));
  Json resume = c.resume;
  resume["rollout"] = r.id;
  RETURN_IF_ERROR(c.save_resume(resume));
  c.log(mode + " release of " + cand.Ref() + " against " + cand.name + "@" +
        std::to_string(r.baseline_version) + " (rollout " + std::to_string(r.id) + ")");
  int stage = -1;
  while (r.state == kRolloutActive) {
    if (c.stop && c.stop->load()) {
      ASSIGN_OR_RETURN(r, AbortRollout(c.ws, r.id, c.actor, "the pipeline run was cancelled"));
      return Status::Unavailable("cancelled during the " + mode + " release");
    }
    if (r.stage != stage) {
      stage = r.stage;
      if (mode == kRolloutCanary) {
        c.log("canary stage " + std::to_string(stage + 1) + " of " +
              std::to_string(r.stages.size()) + ": " +
              std::to_string(static_cast<int>(r.share * 100 + 0.5)) + " % of requests");
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    ASSIGN_OR_RETURN(r, AdvanceRollout(c.ws, r.id, NowMillis()));
  }
  std::string checks;
  for (const std::string& s : r.report.passed) checks += (checks.empty() ? "" : "; ") + s;
  for (const std::string& s : r.report.failed) checks += (checks.empty() ? "" : "; ") + s;
  c.log(mode + " " + r.state + ": " + r.reason + (checks.empty() ? "" : " [" + checks + "]"));
  return r;
}

}  // namespace

StepType PromoteStep() {
  StepType t;
  t.name = "promote";
  t.summary =
      "a model version through the gates (its test split and every extra test set), "
      "then to the alias, directly or after a shadow or canary release";
  t.required = {"model"};
  t.optional = {
      "to",           "policy",        "extra_tests",     "rollout",           "stages",
      "min_requests", "stage_seconds", "timeout_seconds", "max_accuracy_drop", "rollout_policy",
      "reason"};
  // No outside facts: a candidate promoted once is not promoted again by a
  // re-run, even when a person has rolled it back since.
  t.run = [](StepContext& c) -> Result<Json> {
    PromoteJobOptions o;
    ASSIGN_OR_RETURN(o.model, c.Require("model"));
    o.to = c.Get("to", kProduction);
    o.policy_file = c.Get("policy");
    o.extra_tests = CommaList(c.Get("extra_tests"));
    o.actor = c.actor;
    o.automatic = true;
    o.threads = c.threads;
    o.on_progress = c.log;
    const std::string mode = c.Get("rollout", "none");
    if (mode != "none" && mode != kRolloutShadow && mode != kRolloutCanary) {
      return Status::InvalidInput("step " + c.step_id +
                                  ": rollout must be none, shadow or canary; got '" + mode + "'");
    }
    // The gates first: nobody's traffic meets a candidate that fails them.
    o.dry_run = true;
    ASSIGN_OR_RETURN(PromoteJobResult check, RunPromoteJob(c.ws, o));
    Json out = {{"model", check.candidate.Ref()}, {"to", o.to}, {"rollout", ""}};
    if (check.unchanged) {
      c.log(check.candidate.Ref() + " is " + o.to + " already");
      out["applied"] = "true";
      out["gates"] = "";
      return out;
    }
    const std::string gates = GateSummary(check.gates);
    out["gates"] = gates;
    c.log("gates: " + gates);
    if (!check.gates.passed()) {
      return Status::InvalidInput(check.candidate.Ref() + " refused by the gates: " + gates);
    }
    std::string how = "gates passed";
    if (mode != "none" && o.to == kProduction && check.production) {
      ASSIGN_OR_RETURN(Rollout r, Release(c, check.candidate, mode));
      out["rollout"] = std::to_string(r.id);
      if (r.state != kRolloutPassed) {
        return Status::InvalidInput(mode + " release of " + check.candidate.Ref() + " " + r.state +
                                    ": " + r.reason);
      }
      how += ", " + mode + " passed (rollout " + std::to_string(r.id) + ")";
    }
    o.dry_run = false;
    o.reason = c.Get("reason", "pipeline run " + std::to_string(c.pipeline_run)) + ": " + how;
    ASSIGN_OR_RETURN(PromoteJobResult done, RunPromoteJob(c.ws, o));
    for (const std::string& n : done.notes) c.log(n);
    if (!done.applied && !done.unchanged) {
      return Status::InvalidInput(check.candidate.Ref() +
                                  " refused by the gates: " + GateSummary(done.gates));
    }
    c.log(check.candidate.Ref() + " is now " + o.to + " (" + how + ")");
    out["applied"] = "true";
    return out;
  };
  return t;
}

}  // namespace detops
