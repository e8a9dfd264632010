// Rollouts over a real workspace with synthetic traffic: a good candidate
// goes through its stages and passes; a worse one (accuracy from feedback,
// latency, failures) is aborted with the numbers in the audit log; a stage
// without traffic times out; starting is idempotent and one rollout per
// model; routing is a stable share of ids; shadow answers compare on the
// same requests; and the monitor's windows leave the candidate arm out.

#include "monitor/rollout.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "monitor/evaluator.h"
#include "monitor/synthetic_traffic.h"
#include "registry/registry.h"
#include "testing/testutil.h"

namespace detops {
namespace {

using testing::TempDir;

constexpr int kDim = 16;

class RolloutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SyntheticTraffic t;
    t.embedding_dim = kDim;
    SyntheticModel m;
    m.versions = 3;
    m.profile_json = SyntheticReferenceJson(t);
    m.metrics = {{"map50", 0.6}};
    auto opened = OpenSyntheticWorkspace(dir_.path(), m);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    ws_ = std::move(opened->ws);
    registry_ = std::move(opened->registry);
    policy_.stages = {0.1, 0.5};
    policy_.min_requests = 60;
    policy_.min_labels = 10;
  }

  Rollout Start(int candidate, const std::string& mode = kRolloutCanary) {
    auto r = StartRollout(*ws_, "cars", candidate, mode, policy_, "pipeline");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    clock_ms_ = std::max(clock_ms_, r.ok() ? r->stage_started_at_ms : 0);
    return r.ok() ? *r : Rollout{};
  }

  // Logs `production` answers of version 1 and `candidate` answers of
  // `version`, interleaved, 10 ms apart; returns the candidate's ids.
  // `label` sends feedback for each answer: the truth is where version 1's
  // boxes are, so a candidate `misplaced` answers elsewhere.
  std::vector<std::string> Log(int production, int candidate, int version,
                               double candidate_latency_ms = 20, bool label = false,
                               bool misplaced = false) {
    auto log = PredictionLog::Open(*ws_);
    EXPECT_TRUE(log.ok());
    std::vector<PredictionRecord> records;
    std::vector<std::string> ids;
    const int total = production + candidate;
    int c = 0;
    for (int i = 0; i < total; ++i) {
      const bool to_candidate = c < candidate && (i * candidate) / total >= c;
      SyntheticTraffic t;
      t.embedding_dim = kDim;
      t.version = to_candidate ? version : 1;
      t.latency_ms = to_candidate ? candidate_latency_ms : 20;
      PredictionRecord r = DrawSyntheticPrediction(rng_, t);
      r.time_ms = (clock_ms_ += 10);
      if (to_candidate) {
        ++c;
        ids.push_back(r.id);
        if (misplaced) {
          for (LoggedDetection& d : r.detections) d.x1 += 300, d.x2 += 300;
        }
      }
      records.push_back(r);
      (*log)->Append(std::move(r));
    }
    EXPECT_TRUE((*log)->Flush().ok());
    if (label) {
      for (const PredictionRecord& r : records) {
        std::vector<FeedbackBox> truth;
        for (int k = 0; k < 2; ++k) truth.push_back({k ? "scratch" : "dent", 100, 100, 200, 180});
        auto f = RecordFeedback(*ws_, r.id, truth, {"dent", "scratch"}, "qa");
        EXPECT_TRUE(f.ok()) << f.status().ToString();
      }
    }
    return ids;
  }

  Rollout Advance(const Rollout& r) {
    auto a = AdvanceRollout(*ws_, r.id, clock_ms_ += 10);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? *a : r;
  }

  std::vector<AuditEntry> RolloutAudit() {
    auto h = registry_->History("cars");
    EXPECT_TRUE(h.ok());
    std::vector<AuditEntry> out;
    for (const AuditEntry& e : *h) {
      if (e.action.rfind("rollout.", 0) == 0) out.push_back(e);
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Workspace> ws_;
  std::unique_ptr<Registry> registry_;
  RolloutPolicy policy_;
  std::mt19937_64 rng_{7};
  int64_t clock_ms_ = 0;
};

TEST_F(RolloutTest, AGoodCandidateGoesThroughItsStagesAndPasses) {
  // The default allowance (0.05): mAP50 on 60 labelled photos against 540
  // differs by more than that between two draws of the same model; the
  // check judges the drop's interval, not the point.
  Rollout r = Start(2);
  EXPECT_EQ(r.state, kRolloutActive);
  EXPECT_EQ(r.baseline_version, 1);
  EXPECT_DOUBLE_EQ(r.share, 0.1);
  // Too little traffic: nothing decided, the report says why.
  Log(100, 10, 2);
  r = Advance(r);
  EXPECT_EQ(r.state, kRolloutActive);
  EXPECT_EQ(r.stage, 0);
  EXPECT_FALSE(r.report.enough);
  EXPECT_EQ(r.report.candidate.requests, 10);
  Log(540, 60, 2, 20, /*label=*/true);
  r = Advance(r);
  ASSERT_EQ(r.state, kRolloutActive) << r.reason;
  EXPECT_EQ(r.stage, 1);
  EXPECT_DOUBLE_EQ(r.share, 0.5);
  EXPECT_TRUE(r.report.failed.empty());
  EXPECT_EQ(r.report.candidate.model_version, 2);
  EXPECT_EQ(r.report.candidate.requests, 70);
  EXPECT_GE(r.report.candidate.labelled, 60);
  EXPECT_GT(r.report.candidate.map50, 0);
  EXPECT_GT(r.report.production.map50, 0);
  EXPECT_NEAR(r.report.candidate.p95_ms, r.report.production.p95_ms, 5);
  // The new stage starts empty: the rows before it do not count.
  r = Advance(r);
  EXPECT_EQ(r.report.candidate.requests, 0);
  Log(70, 70, 2);
  r = Advance(r);
  EXPECT_EQ(r.state, kRolloutPassed) << r.reason;
  EXPECT_DOUBLE_EQ(r.share, 0);
  EXPECT_FALSE(r.finished_at.empty());
  auto active = ActiveRollout(*ws_, "cars");
  ASSERT_TRUE(active.ok());
  EXPECT_FALSE(active->has_value());
  // Production did not move: promoting is the caller's decision.
  EXPECT_EQ(**registry_->AliasVersion("cars", kProduction), 1);
  const auto audit = RolloutAudit();
  ASSERT_EQ(audit.size(), 3u);
  EXPECT_EQ(audit[0].action, kAuditRolloutStart);
  EXPECT_EQ(audit[1].action, kAuditRolloutStage);
  EXPECT_EQ(audit[2].action, kAuditRolloutPassed);
  EXPECT_EQ(audit[2].actor, "pipeline");
  EXPECT_EQ(audit[2].to_version, 2);
  EXPECT_TRUE(audit[2].gates.passed());
  EXPECT_FALSE(audit[2].gates.checks.empty());
  EXPECT_NE(audit[1].reason.find("now stage 2/2 (50 %)"), std::string::npos) << audit[1].reason;
  // Rollout entries move no alias: a rollback still finds nothing earlier.
  EXPECT_FALSE(registry_->Rollback("cars", kProduction, "test", "no").ok());
}

TEST_F(RolloutTest, LowerAccuracyFromFeedbackAborts) {
  Rollout r = Start(2);
  Log(540, 60, 2, 20, /*label=*/true, /*misplaced=*/true);
  r = Advance(r);
  ASSERT_EQ(r.state, kRolloutAborted);
  EXPECT_NE(r.reason.find("accuracy map50"), std::string::npos) << r.reason;
  EXPECT_LT(r.report.candidate.map50, r.report.production.map50 - 0.05);
  const auto audit = RolloutAudit();
  ASSERT_EQ(audit.back().action, kAuditRolloutAborted);
  EXPECT_FALSE(audit.back().gates.passed());
  EXPECT_NE(audit.back().reason.find("accuracy map50"), std::string::npos);
  EXPECT_EQ(**registry_->AliasVersion("cars", kProduction), 1);
}

TEST_F(RolloutTest, HigherLatencyAborts) {
  Rollout r = Start(2);
  Log(540, 60, 2, /*candidate_latency_ms=*/60);
  r = Advance(r);
  ASSERT_EQ(r.state, kRolloutAborted);
  EXPECT_NE(r.reason.find("latency p95"), std::string::npos) << r.reason;
  EXPECT_GT(r.report.candidate.p95_ms, 2 * r.report.production.p95_ms);
}

TEST_F(RolloutTest, MoreFailuresAbort) {
  Rollout r = Start(2);
  const auto ids = Log(540, 55, 2);
  // Five candidate failures, answered by production.
  for (int i = 0; i < 5; ++i) {
    ShadowAnswer a;
    a.rollout = r.id;
    a.prediction_id = ids[i];
    a.at_ms = clock_ms_;
    a.model_version = 2;
    a.error = "forward pass failed";
    ASSERT_TRUE(RecordShadowAnswer(*ws_, a).ok());
  }
  r = Advance(r);
  ASSERT_EQ(r.state, kRolloutAborted);
  EXPECT_EQ(r.report.candidate.failures, 5);
  EXPECT_EQ(r.report.candidate.requests, 60);
  EXPECT_NE(r.reason.find("error rate 0.083 (5 of 60)"), std::string::npos) << r.reason;
}

TEST_F(RolloutTest, AStageWithoutTrafficTimesOut) {
  policy_.timeout_seconds = 60;
  Rollout r = Start(2);
  Log(100, 5, 2);
  r = Advance(r);
  EXPECT_EQ(r.state, kRolloutActive);
  clock_ms_ = r.stage_started_at_ms + 61'000;
  r = Advance(r);
  ASSERT_EQ(r.state, kRolloutAborted);
  EXPECT_NE(r.reason.find("timed out after 61 s with 5 of 60 candidate requests"),
            std::string::npos)
      << r.reason;
  // Settled: later steps change nothing.
  const Rollout again = Advance(r);
  EXPECT_EQ(again.state, kRolloutAborted);
  EXPECT_EQ(again.reason, r.reason);
}

TEST_F(RolloutTest, StartIsIdempotentAndOneRolloutPerModel) {
  const Rollout a = Start(2);
  const Rollout b = Start(2);
  EXPECT_EQ(a.id, b.id);
  auto other = StartRollout(*ws_, "cars", 3, kRolloutCanary, policy_, "pipeline");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(other.status().message().find("rollout #" + std::to_string(a.id)), std::string::npos);
  auto aborted = AbortRollout(*ws_, a.id, "alice", "wrong candidate");
  ASSERT_TRUE(aborted.ok());
  EXPECT_EQ(aborted->state, kRolloutAborted);
  EXPECT_NE(aborted->reason.find("alice: wrong candidate"), std::string::npos);
  EXPECT_FALSE(AbortRollout(*ws_, a.id, "alice", "again").ok());
  const Rollout c = Start(3, kRolloutShadow);
  EXPECT_NE(c.id, a.id);
  EXPECT_DOUBLE_EQ(c.share, 0);
  auto listed = ListRollouts(*ws_, "cars", 0);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].id, c.id);  // newest first
  auto got = GetRollout(*ws_, a.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, kRolloutAborted);
  EXPECT_EQ(GetRollout(*ws_, 99).status().code(), StatusCode::kNotFound);
  // Bad starts.
  EXPECT_EQ(StartRollout(*ws_, "cars", 1, kRolloutCanary, policy_, "p").status().code(),
            StatusCode::kAlreadyExists);  // the shadow of 3 is active
  ASSERT_TRUE(AbortRollout(*ws_, c.id, "alice", "done").ok());
  EXPECT_EQ(StartRollout(*ws_, "cars", 1, kRolloutCanary, policy_, "p").status().code(),
            StatusCode::kInvalidInput);  // production already
  EXPECT_EQ(StartRollout(*ws_, "cars", 9, kRolloutCanary, policy_, "p").status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(StartRollout(*ws_, "cars", 2, "blue-green", policy_, "p").status().code(),
            StatusCode::kInvalidInput);
  RolloutPolicy bad = policy_;
  bad.stages = {0.5, 0.2};
  EXPECT_EQ(StartRollout(*ws_, "cars", 2, kRolloutCanary, bad, "p").status().code(),
            StatusCode::kInvalidInput);
}

TEST_F(RolloutTest, NoProductionVersionIsNotFound) {
  NewModelVersion nv;
  nv.name = "roads";
  nv.run_id = "r";
  nv.weights = dir_ / "w.pt";
  nv.profile_json = "{}";
  nv.spec.imgsz = 64;
  nv.spec.classes = {"pothole"};
  auto registered = registry_->Register(nv);
  ASSERT_TRUE(registered.ok()) << registered.status().ToString();
  auto r = StartRollout(*ws_, "roads", 1, kRolloutCanary, policy_, "p");
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << r.status().ToString();
}

TEST(RolloutRoutingTest, TheShareOfIdsIsCloseToTheShareAndStablePerId) {
  for (double share : {0.1, 0.5}) {
    int routed = 0;
    for (int i = 0; i < 10000; ++i) {
      const std::string id = NewPredictionId();
      const bool a = RoutesToCandidate(id, share);
      EXPECT_EQ(a, RoutesToCandidate(id, share));  // the same arm on a retry
      if (a) {
        EXPECT_TRUE(RoutesToCandidate(id, 0.9));  // monotone in the share
      }
      routed += a;
    }
    // 4 standard deviations of a binomial share over 10,000.
    EXPECT_NEAR(routed / 10000.0, share, 4 * std::sqrt(share * (1 - share) / 10000)) << share;
  }
  EXPECT_FALSE(RoutesToCandidate("abc", 0));
  EXPECT_TRUE(RoutesToCandidate("abc", 1));
}

TEST(RolloutAgreementTest, F1AtIou50BetweenTheTwoAnswers) {
  const LoggedDetection a{"dent", 0, 0.9, 10, 10, 50, 50};
  const LoggedDetection b{"scratch", 1, 0.8, 100, 100, 150, 160};
  LoggedDetection near = a;
  near.x2 = 52;  // IoU 0.95
  LoggedDetection far = a;
  far.x1 += 200, far.x2 += 200;
  EXPECT_DOUBLE_EQ(AnswerAgreement({}, {}), 1);
  EXPECT_DOUBLE_EQ(AnswerAgreement({a}, {}), 0);
  EXPECT_DOUBLE_EQ(AnswerAgreement({a, b}, {near, b}), 1);
  EXPECT_DOUBLE_EQ(AnswerAgreement({a, b}, {far, b}), 0.5);
  LoggedDetection wrong_class = b;
  wrong_class.class_name = "dent";
  EXPECT_DOUBLE_EQ(AnswerAgreement({b}, {wrong_class}), 0);
}

TEST_F(RolloutTest, ShadowAnswersCompareOnTheSameRequests) {
  policy_.min_agreement = 0.9;
  Rollout r = Start(2, kRolloutShadow);
  Log(60, 0, 2, 20, /*label=*/true);
  auto logged = ListPredictions(*ws_, "cars", 0);
  ASSERT_TRUE(logged.ok());
  for (const StoredPrediction& p : *logged) {
    ShadowAnswer a;
    a.rollout = r.id;
    a.prediction_id = p.record.id;
    a.at_ms = p.record.time_ms;
    a.model_version = 2;
    a.detections = p.record.detections;
    a.inference_ms = 12;
    a.agreement = AnswerAgreement(p.record.detections, a.detections);
    ASSERT_TRUE(RecordShadowAnswer(*ws_, a).ok());
  }
  auto shadow = ListShadowAnswers(*ws_, r.id, 0);
  ASSERT_TRUE(shadow.ok());
  ASSERT_EQ(shadow->size(), 60u);
  EXPECT_EQ((*shadow)[0].detections.size(), logged->back().record.detections.size());
  r = Advance(r);
  ASSERT_EQ(r.state, kRolloutPassed) << r.reason;
  EXPECT_EQ(r.report.candidate.requests, 60);
  EXPECT_DOUBLE_EQ(r.report.candidate.agreement, 1);
  EXPECT_EQ(r.report.candidate.labelled, r.report.production.labelled);
  EXPECT_NEAR(r.report.candidate.map50, r.report.production.map50, 1e-9);
  EXPECT_DOUBLE_EQ(r.report.candidate.p95_ms, 12);
}

TEST_F(RolloutTest, TheMonitorsWindowsLeaveTheCandidateArmOut) {
  Rollout r = Start(2);
  Log(200, 40, 2);  // interleaved: every sixth answer is the candidate's
  MonitorOptions o;
  o.policy = DefaultMonitorPolicy();
  o.policy.window_size = 100;
  o.policy.min_samples = 50;
  o.policy.mmd_permutations = 20;
  o.model = "cars";
  auto monitor = Monitor::Open(*ws_, o);
  ASSERT_TRUE(monitor.ok());
  auto tick = (*monitor)->Tick(clock_ms_ + 2000);
  ASSERT_TRUE(tick.ok()) << tick.status().ToString();
  ASSERT_EQ(tick->windows.size(), 2u);
  for (const WindowReport& w : tick->windows) {
    EXPECT_EQ(w.model_version, 1);
    EXPECT_EQ(w.n, 100);
    EXPECT_TRUE(w.scored);
  }
  // Once settled (and its grace passed), that version's answers are the
  // monitor's again.
  ASSERT_TRUE(AbortRollout(*ws_, r.id, "test", "done").ok());
  auto spans = CanaryCandidateSpans(*ws_, "cars");
  ASSERT_TRUE(spans.ok());
  ASSERT_EQ(spans->size(), 1u);
  EXPECT_EQ((*spans)[0].version, 2);
  EXPECT_LT((*spans)[0].to_ms, std::numeric_limits<int64_t>::max());
}

TEST(RolloutPolicyTest, JsonRoundTripAndUnknownKeys) {
  RolloutPolicy p;
  p.stages = {0.05, 0.25, 1};
  p.min_requests = 200;
  p.max_accuracy_drop = 0.02;
  auto back = RolloutPolicyFromJson(RolloutPolicyToJson(p));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->stages, p.stages);
  EXPECT_EQ(back->min_requests, 200);
  EXPECT_DOUBLE_EQ(back->max_accuracy_drop, 0.02);
  auto partial = RolloutPolicyFromJson(Json{{"min_requests", 5}});
  ASSERT_TRUE(partial.ok());
  EXPECT_EQ(partial->stages, RolloutPolicy{}.stages);
  auto unknown = RolloutPolicyFromJson(Json{{"min_request", 5}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("'min_request'"), std::string::npos);
  EXPECT_FALSE(RolloutPolicyFromJson(Json{{"stages", {0.5, 1.5}}}).ok());
  EXPECT_FALSE(RolloutPolicyFromJson(Json{{"max_p95_ratio", "x"}}).ok());
}

}  // namespace
}  // namespace detops
