#pragma once
// Releases under live traffic (issue 23): a candidate model version next to
// the production one, in one of two modes.
//  - shadow: every live request is also scored by the candidate; its answer
//    is logged (shadow_predictions, with its agreement with production's
//    answer), never returned.
//  - canary: a share of live requests (the stages: 10 %, then 50 %, say) is
//    answered by the candidate (logged in predictions with the candidate's
//    version); the rest by production. A failed candidate answer is retried
//    on production, so a canary never fails a request.
// The server reads the active rollout of the model it serves (polling, as it
// follows the alias) and routes; whoever drives the release (the pipeline's
// promote step) calls AdvanceRollout until the rollout is settled: it
// compares the two arms on the monitor's signals over the current stage and
// moves to the next stage, finishes (state "passed": the caller promotes),
// or aborts with the reason (production keeps serving; nothing to undo).
// Every decision is written to the audit log with its numbers. Table
// rollouts and shadow_predictions (migration 8).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/core.h"
#include "store/store.h"

namespace detops {

inline constexpr const char* kRolloutShadow = "shadow";
inline constexpr const char* kRolloutCanary = "canary";

inline constexpr const char* kRolloutActive = "active";
inline constexpr const char* kRolloutPassed = "passed";    // the candidate may be promoted
inline constexpr const char* kRolloutAborted = "aborted";  // the candidate lost; production kept

struct RolloutPolicy {
  std::vector<double> stages = {0.1, 0.5};  // canary shares, in order (shadow: ignored)
  int min_requests = 50;      // candidate-arm requests a stage needs before a decision
  double stage_seconds = 0;   // and at least this long at the stage
  double timeout_seconds = 1800;  // a stage that never gets enough traffic aborts
  double max_p95_ratio = 1.5;     // candidate p95 latency / production p95
  double max_error_rate_increase = 0.01;  // candidate failures / requests, minus production's
  // Mean detection confidence (the monitor's prediction.score level), and the
  // share of low-confidence images: the candidate may not be worse by more.
  double max_low_confidence_increase = 0.15;
  // With feedback labels on both arms (at least min_labels each): mAP50
  // from feedback may not drop by more than this.
  int min_labels = 10;
  double max_accuracy_drop = 0.05;
  double min_agreement = 0;  // shadow: mean agreement with production to pass (0 = not used)
};

// The two arms over one period, as the monitor measures them.
struct ArmFigures {
  int model_version = 0;
  int64_t requests = 0;  // answered (canary) or scored (shadow) in the period
  int64_t failures = 0;  // candidate answers that failed (retried on production)
  double p95_ms = 0;
  double mean_score = 0;             // mean confidence of the detections
  double low_confidence_share = 0;   // images whose best detection is under the policy's bar
  double detections_per_image = 0;
  int64_t labelled = 0;              // feedback labels on this arm's answers
  double map50 = -1;                 // from feedback; -1 = too few labels
  double agreement = -1;             // shadow only: mean F1 at IoU .5 with production; -1 = n/a
};

struct RolloutReport {
  ArmFigures production, candidate;
  std::vector<std::string> failed;   // the checks the candidate failed, each with its numbers
  std::vector<std::string> passed;   // the checks it passed
  bool enough = false;               // the stage has enough traffic and time to decide
};

struct Rollout {
  int64_t id = 0;
  std::string model_name;
  int candidate_version = 0;
  int baseline_version = 0;  // production when it started
  std::string mode;          // kRolloutShadow | kRolloutCanary
  std::vector<double> stages;
  int stage = 0;             // index into stages
  double share = 0;          // canary share now (0 when settled or shadow)
  std::string state;         // kRolloutActive | kRolloutPassed | kRolloutAborted
  std::string reason;
  RolloutPolicy policy;
  RolloutReport report;      // the last comparison
  std::string actor;
  int64_t started_at_ms = 0, stage_started_at_ms = 0;
  std::string finished_at;
};

// Starts a rollout of `candidate_version` against the model's production
// version. Idempotent: an active rollout of the same candidate is returned
// as it is (a resumed pipeline continues it); one of another candidate is a
// conflict (FailedPrecondition naming it). No production version:
// FailedPrecondition.
Result<Rollout> StartRollout(Workspace& ws, const std::string& model_name, int candidate_version,
                             const std::string& mode, const RolloutPolicy& policy,
                             const std::string& actor);

// The active rollout of a model, if any (the server's routing reads this).
Result<std::optional<Rollout>> ActiveRollout(Workspace& ws, const std::string& model_name);
Result<Rollout> GetRollout(Workspace& ws, int64_t id);
Result<std::vector<Rollout>> ListRollouts(Workspace& ws, const std::string& model_name, int limit);

// Compares the arms over the current stage (pure read).
Result<RolloutReport> CompareArms(Workspace& ws, const Rollout& rollout, int64_t now_ms);

// One decision step, in one transaction: with enough traffic, a failed
// check aborts; all passed moves to the next stage, or after the last one
// settles the rollout as passed; a stage past its timeout aborts. Writes
// the audit log (action "rollout.stage", "rollout.passed",
// "rollout.aborted") with the report's numbers. Returns the rollout as it
// is now; a settled one is returned unchanged.
Result<Rollout> AdvanceRollout(Workspace& ws, int64_t id, int64_t now_ms);

// Ends an active rollout (a person's or the pipeline's cancel): aborted
// with the reason.
Result<Rollout> AbortRollout(Workspace& ws, int64_t id, const std::string& actor,
                             const std::string& reason);

// Canary routing: whether a request with this id goes to the candidate.
// Deterministic in the id (a hash against the share), so a retried request
// lands on the same arm.
bool RoutesToCandidate(const std::string& request_id, double share);

// Records the candidate's shadow answer to a request production answered.
struct ShadowAnswer {
  int64_t rollout = 0;
  std::string prediction_id;
  int64_t at_ms = 0;
  int model_version = 0;
  std::string detections_json;  // as the predictions table stores them
  double inference_ms = 0;
  double agreement = 0;  // F1 at IoU .5 between the two answers (1 = same boxes)
  std::string error;     // the candidate failed ("" = answered)
};
Status RecordShadowAnswer(Workspace& ws, const ShadowAnswer& answer);

Json RolloutToJson(const Rollout& r);
Json RolloutPolicyToJson(const RolloutPolicy& p);
// Unknown keys are InvalidInput naming the key.
Result<RolloutPolicy> RolloutPolicyFromJson(const Json& j);

}  // namespace detops
