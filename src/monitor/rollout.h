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
//
// Driving a canary to the end (the pipeline's promote step):
//   ASSIGN_OR_RETURN(Rollout r, StartRollout(ws, "cars", 4, kRolloutCanary, policy, actor));
//   while (r.state == kRolloutActive) {
//     sleep(poll);  // the server needs traffic to route
//     ASSIGN_OR_RETURN(r, AdvanceRollout(ws, r.id, NowMs()));
//   }
//   if (r.state == kRolloutPassed) { ... promote cars@4 to production ... }
//
// Where the candidate's failures go: a canary request the candidate fails
// (its forward pass fails, or its weights did not load) is answered by
// production, logged in predictions with production's version, and
// recorded as a shadow_predictions row with `error` set and the id of
// production's answer; CompareArms counts those rows as the candidate's
// failures. In shadow mode a failed candidate answer is such a row too.
//
// The monitor and canary rows: the monitor (monitor/evaluator.h) cuts
// windows of consecutive predictions of one version. Candidate answers
// interleaved with production's would cut production's windows into
// fragments too small to score, and candidate-only windows could raise
// alerts against the model. So the monitor leaves out the candidate arm
// (CanaryCandidateSpans: the candidate's version from the rollout's start
// until kCanaryGraceMs after it settled); its windows hold production's
// answers only, and the candidate is judged by CompareArms alone. Its rows
// stay in the log (feedback, export, and the candidate's accuracy once
// promoted).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/core.h"
#include "monitor/monitor.h"
#include "registry/registry.h"
#include "store/store.h"

namespace detops {

inline constexpr const char* kRolloutShadow = "shadow";
inline constexpr const char* kRolloutCanary = "canary";

inline constexpr const char* kRolloutActive = "active";
inline constexpr const char* kRolloutPassed = "passed";    // the candidate may be promoted
inline constexpr const char* kRolloutAborted = "aborted";  // the candidate lost; production kept

// Audit log actions (Registry::History shows them; their alias is "").
inline constexpr const char* kAuditRolloutStart = "rollout.start";
inline constexpr const char* kAuditRolloutStage = "rollout.stage";
inline constexpr const char* kAuditRolloutPassed = "rollout.passed";
inline constexpr const char* kAuditRolloutAborted = "rollout.aborted";

// Servers follow a rollout by polling; candidate answers logged this long
// after it settled still belong to the candidate arm (see the file comment).
inline constexpr int64_t kCanaryGraceMs = 10'000;

struct RolloutPolicy {
  std::vector<double> stages = {0.1, 0.5};  // canary shares in (0, 1], increasing (shadow: ignored)
  int min_requests = 50;          // candidate-arm requests a stage needs before a decision
  double stage_seconds = 0;       // and at least this long at the stage
  double timeout_seconds = 1800;  // a stage that never gets enough traffic aborts
  // Canary: candidate p95 latency / production p95. Shadow latency is
  // reported, not judged: the candidate runs after the answer, beside
  // production, on a thread of its own.
  double max_p95_ratio = 1.5;
  double max_error_rate_increase = 0.01;  // candidate failures / requests, minus production's
  // The monitor's prediction signals: the mean detection confidence may not
  // drop by more than this, and the low-confidence share (per image, the
  // share of its detections scored under 0.5, averaged over images, as
  // prediction.low_confidence_share) may not rise by more.
  double max_low_confidence_increase = 0.15;
  // With feedback labels on both arms (at least min_labels each): mAP50
  // from feedback may not drop by more than this at 95 % confidence (the
  // 5th percentile of a bootstrap over the labelled photos; shadow mode
  // resamples both arms' answers to the same photos together). A point
  // comparison on a few dozen photos would abort good releases on noise.
  int min_labels = 30;
  double max_accuracy_drop = 0.05;
  double min_agreement = 0;  // shadow: mean agreement with production to pass (0 = not used)
};

// The two arms over one period, as the monitor measures them.
struct ArmFigures {
  int model_version = 0;
  int64_t requests = 0;  // answered (canary) or scored (shadow) in the period, failures included
  // Candidate: its failed answers (shadow_predictions rows with an error).
  // Production: 5xx answers of the predict routes in the period, from the
  // servers' service samples (0 when there are none).
  int64_t failures = 0;
  double error_rate = 0;  // failures / requests (production: / the routes' requests)
  // Canary: total_ms of each arm's answers. Shadow: inference_ms (the
  // candidate scores off the request path; its total would not compare).
  double p95_ms = 0;
  double mean_score = 0;            // mean confidence of the detections
  double low_confidence_share = 0;  // as RolloutPolicy says
  double detections_per_image = 0;
  int64_t labelled = 0;   // feedback labels on this arm's answers
  double map50 = -1;      // from feedback; -1 = too few labels
  double agreement = -1;  // shadow only: mean F1 at IoU .5 with production; -1 = n/a
};

struct RolloutReport {
  ArmFigures production, candidate;
  std::vector<std::string> failed;   // the checks the candidate failed, each with its numbers
  std::vector<std::string> passed;   // the checks it passed
  std::vector<std::string> skipped;  // checks without the data to decide (too few labels, ...)
  GateReport checks;                 // failed and passed as gates (the audit entry's)
  bool enough = false;               // the stage has enough traffic and time to decide
  int64_t from_ms = 0, to_ms = 0;    // the period compared
};

struct Rollout {
  int64_t id = 0;
  std::string model_name;
  int candidate_version = 0;
  int baseline_version = 0;  // production when it started
  std::string mode;          // kRolloutShadow | kRolloutCanary
  std::vector<double> stages;
  int stage = 0;      // index into stages
  double share = 0;   // canary share now (0 when settled or shadow)
  std::string state;  // kRolloutActive | kRolloutPassed | kRolloutAborted
  std::string reason;
  RolloutPolicy policy;
  RolloutReport report;  // the last comparison
  std::string actor;
  int64_t started_at_ms = 0, stage_started_at_ms = 0;
  std::string finished_at;     // ISO-8601; "" while active
  int64_t finished_at_ms = 0;  // 0 while active
};

// Starts a rollout of `candidate_version` against the model's production
// version. Idempotent: an active rollout of the same candidate is returned
// as it is (a resumed pipeline continues it); one of another candidate is a
// conflict (AlreadyExists naming it). No production version, or an unknown
// candidate: NotFound. The candidate in production already, a bad mode or
// policy: InvalidInput. Writes the audit entry "rollout.start".
Result<Rollout> StartRollout(Workspace& ws, const std::string& model_name, int candidate_version,
                             const std::string& mode, const RolloutPolicy& policy,
                             const std::string& actor);

// The active rollout of a model, if any (the server's routing reads this).
Result<std::optional<Rollout>> ActiveRollout(Workspace& ws, const std::string& model_name);
// NotFound for an unknown id.
Result<Rollout> GetRollout(Workspace& ws, int64_t id);
// Newest first; `model_name` "" = every model; limit 0 = all.
Result<std::vector<Rollout>> ListRollouts(Workspace& ws, const std::string& model_name, int limit);

// Compares the arms over the current stage, [stage_started_at_ms, now_ms]
// (pure read). Accuracy comes from AccuracyFromFeedback on each arm's
// labelled answers (shadow: the same labelled requests on both arms).
Result<RolloutReport> CompareArms(Workspace& ws, const Rollout& rollout, int64_t now_ms);

// One decision step: with enough traffic, a failed check aborts; all
// passed moves to the next stage, or after the last one settles the
// rollout as passed; a stage past its timeout without enough traffic
// aborts, and so does a production alias that moved off the baseline.
// The comparison reads outside the write; the decision is one transaction
// that re-reads the row (a concurrent step or abort wins, and its result
// is returned). Writes the audit log (action "rollout.stage",
// "rollout.passed", "rollout.aborted") with the report's numbers and
// checks (as gates). Returns the rollout as it is now, with the new report
// (stored even when nothing was decided); a settled one is returned
// unchanged.
Result<Rollout> AdvanceRollout(Workspace& ws, int64_t id, int64_t now_ms);

// Ends an active rollout (a person's or the pipeline's cancel): aborted
// with the reason. A settled one: InvalidInput saying how it ended.
Result<Rollout> AbortRollout(Workspace& ws, int64_t id, const std::string& actor,
                             const std::string& reason);

// Canary routing: whether a request with this id goes to the candidate.
// Deterministic in the id (a hash against the share), so a retried request
// lands on the same arm; monotone in the share, so a request on the
// candidate at 10 % stays there at 50 %.
bool RoutesToCandidate(const std::string& request_id, double share);

// Records the candidate's answer to a request production answered (shadow),
// or a candidate failure (canary or shadow: `error` set).
struct ShadowAnswer {
  int64_t rollout = 0;
  std::string prediction_id;  // production's answer (the predictions row)
  int64_t at_ms = 0;          // 0 = now
  int model_version = 0;
  std::vector<LoggedDetection> detections;  // original image pixels
  double inference_ms = 0;
  double agreement = 0;  // F1 at IoU .5 between the two answers (1 = same boxes)
  std::string error;     // the candidate failed ("" = answered)
};
Status RecordShadowAnswer(Workspace& ws, const ShadowAnswer& answer);
// The candidate's answers and failures of a rollout, oldest first; limit 0 = all.
Result<std::vector<ShadowAnswer>> ListShadowAnswers(Workspace& ws, int64_t rollout, int limit);

// F1 at IoU .5 of `candidate`'s boxes against `production`'s taken as the
// truth (eval's matching, class by class, every detection counted): 1 when
// both are empty, 0 when only one is.
double AnswerAgreement(const std::vector<LoggedDetection>& production,
                       const std::vector<LoggedDetection>& candidate);

// Where the candidate arm of a canary lies in the prediction log: its
// version from the rollout's start to kCanaryGraceMs after it settled (no
// end while active). The monitor leaves these rows out of its windows.
struct CandidateSpan {
  int version = 0;
  int64_t from_ms = 0, to_ms = 0;  // inclusive
};
Result<std::vector<CandidateSpan>> CanaryCandidateSpans(Workspace& ws,
                                                        const std::string& model_name);

Json RolloutToJson(const Rollout& r);
Json RolloutReportToJson(const RolloutReport& r);
Json RolloutPolicyToJson(const RolloutPolicy& p);
// Keys as RolloutPolicyToJson writes them; those left out keep their
// defaults. Unknown keys, wrong types and values out of range (stages not
// in (0, 1] or not increasing, negative numbers) are InvalidInput naming
// the key.
Result<RolloutPolicy> RolloutPolicyFromJson(const Json& j);

}  // namespace detops
