// The monitor on synthetic traffic drawn from known distributions: levels
// of a brightness shift, the false-alarm rate of same-distribution windows,
// the embedding test catching a shift the image statistics miss, windows
// cut by count, version and time, one alert per episode, predicted alerts
// ahead of a gradual drift, accuracy from feedback, and the automatic
// rollback of a version that breaks its latency SLO.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <random>

#include "eval/eval.h"
#include "monitor/evaluator.h"
#include "monitor/synthetic_traffic.h"
#include "registry/registry.h"
#include "testing/testutil.h"

namespace detops {
namespace {

using testing::TempDir;

constexpr int kDim = 16;

// Normal traffic, darker photos (shift in reference standard deviations of
// brightness), other scenes at the same lighting, or slower answers.
SyntheticTraffic Traffic(double brightness_shift_sd = 0, bool other_scenes = false,
                         double latency_ms = 20, int version = 1) {
  SyntheticTraffic t;
  t.brightness_shift_sd = brightness_shift_sd;
  t.other_scenes = other_scenes;
  t.latency_ms = latency_ms;
  t.version = version;
  t.embedding_dim = kDim;
  return t;
}

PredictionRecord Draw(std::mt19937_64& rng, const SyntheticTraffic& t, int version = 1) {
  SyntheticTraffic v = t;
  v.version = version;
  return DrawSyntheticPrediction(rng, v);
}

std::string ReferenceJson() { return SyntheticReferenceJson(Traffic()); }

const ReferenceProfile& Reference() {
  static const ReferenceProfile ref = *ParseReferenceProfile(ReferenceJson());
  return ref;
}

std::vector<StoredPrediction> Window(std::mt19937_64& rng, const SyntheticTraffic& t, int n,
                                     int64_t start_ms = 1'000'000, int version = 1) {
  std::vector<StoredPrediction> out;
  for (int i = 0; i < n; ++i) {
    StoredPrediction p;
    p.record = Draw(rng, t, version);
    p.record.time_ms = start_ms + i * 100;
    out.push_back(std::move(p));
  }
  return out;
}

WindowReport Score(const std::vector<StoredPrediction>& preds, const MonitorPolicy& policy,
                   uint64_t seed = 1) {
  WindowInput in;
  in.model_name = "cars";
  in.model_version = 1;
  in.predictions = preds;
  in.reference = &Reference();
  in.classes = {"dent", "scratch"};
  in.seed = seed;
  return ScoreWindow(in, policy);
}

Level LevelOf(const WindowReport& r, const std::string& signal) {
  const SignalValue* s = r.Find(signal);
  EXPECT_NE(s, nullptr) << signal;
  return s ? s->level : Level::kOk;
}

TEST(ScoreWindowTest, ABrightnessShiftIsRetrainALargerOneEscalates) {
  const MonitorPolicy policy = DefaultMonitorPolicy();
  std::mt19937_64 rng(1);
  const WindowReport same = Score(Window(rng, Traffic(), 200), policy);
  EXPECT_EQ(LevelOf(same, "input.brightness"), Level::kOk);
  const WindowReport darker = Score(Window(rng, Traffic(-0.6), 200), policy);
  EXPECT_EQ(LevelOf(darker, "input.brightness"), Level::kRetrain)
      << darker.Find("input.brightness")->value;
  EXPECT_LT(darker.Find("input.brightness")->p_value, 1e-4);
  EXPECT_LT(darker.Find("input.brightness")->live, darker.Find("input.brightness")->reference);
  // The examples are the darkest photos of the window.
  ASSERT_FALSE(darker.Find("input.brightness")->examples.empty());
  const WindowReport dark = Score(Window(rng, Traffic(-2.0), 200), policy);
  EXPECT_EQ(LevelOf(dark, "input.brightness"), Level::kEscalate)
      << dark.Find("input.brightness")->value;
  EXPECT_EQ(dark.level, Level::kEscalate);
}

TEST(ScoreWindowTest, SameDistributionWindowsRarelyAlarm) {
  // The false-alarm rate of the default policy: any signal above ok in a
  // window of same-distribution traffic (docs/monitoring.md quotes it).
  const MonitorPolicy policy = DefaultMonitorPolicy();
  for (int size : {200, 50}) {
    int alarms = 0;
    std::map<std::string, int> by_signal;
    const int windows = 200;
    for (int w = 0; w < windows; ++w) {
      std::mt19937_64 rng(1000 + w);
      const WindowReport r = Score(Window(rng, Traffic(), size), policy, 7 + w);
      bool any = false;
      for (const SignalValue& s : r.signals) {
        if (s.level > Level::kOk && s.signal.rfind("service.", 0) != 0) {
          any = true;
          ++by_signal[s.signal];
        }
      }
      alarms += any;
    }
    const double rate = static_cast<double>(alarms) / windows;
    std::cout << "false-alarm rate, windows of " << size << ": " << alarms << "/" << windows
              << " = " << rate;
    for (const auto& [s, n] : by_signal) std::cout << "  " << s << " " << n;
    std::cout << "\n";
    EXPECT_LE(rate, 0.03) << "windows of " << size;
  }
}

TEST(ScoreWindowTest, TheEmbeddingTestCatchesAShiftTheImageStatisticsMiss) {
  const MonitorPolicy policy = DefaultMonitorPolicy();
  std::mt19937_64 rng(5);
  const WindowReport other = Score(Window(rng, Traffic(0, true), 200), policy);
  for (const char* s : {"input.brightness", "input.contrast", "input.sharpness", "input.mean_g"}) {
    EXPECT_EQ(LevelOf(other, s), Level::kOk) << s;
  }
  const SignalValue* e = other.Find("embedding.mmd");
  ASSERT_NE(e, nullptr);
  EXPECT_GT(e->level, Level::kOk) << "mmd2 " << e->value << " p " << e->p_value;
  EXPECT_LT(e->p_value, 0.01);
  const WindowReport same = Score(Window(rng, Traffic(), 200), policy);
  EXPECT_EQ(LevelOf(same, "embedding.mmd"), Level::kOk) << same.Find("embedding.mmd")->value;
}

TEST(ScoreWindowTest, ATooSmallWindowSaysSoInsteadOfScoring) {
  const MonitorPolicy policy = DefaultMonitorPolicy();
  std::mt19937_64 rng(3);
  const WindowReport r = Score(Window(rng, Traffic(-3), 12), policy);
  EXPECT_FALSE(r.scored);
  EXPECT_EQ(r.level, Level::kOk);
  EXPECT_NE(r.note.find("too few samples"), std::string::npos) << r.note;
  EXPECT_NE(r.note.find("12"), std::string::npos) << r.note;
}

TEST(ScoreWindowTest, KpisCountInspectionsSettledWithoutAPerson) {
  MonitorPolicy policy = DefaultMonitorPolicy();
  policy.min_samples = 1;
  std::vector<StoredPrediction> preds(4);
  const double scores[4][2] = {{0.9, 0.1}, {0.9, 0.45}, {0.2, 0}, {0.61, 0.7}};
  for (int i = 0; i < 4; ++i) {
    preds[i].record.id = "p" + std::to_string(i);
    preds[i].record.time_ms = 3'600'000LL * i / 3;  // 4 inspections over 1 hour
    for (double s : scores[i]) {
      if (s > 0) preds[i].record.detections.push_back({"dent", 0, s, 0, 0, 10, 10});
    }
  }
  const WindowReport r = Score(preds, policy);
  // Uncertain band [0.3, 0.6): only the second inspection needs a person.
  EXPECT_EQ(r.kpis.automated, 3);
  EXPECT_DOUBLE_EQ(r.kpis.automation_rate, 0.75);
  EXPECT_DOUBLE_EQ(r.kpis.manual_review_rate, 0.25);
  EXPECT_NEAR(r.kpis.inspections_per_hour, 4.0, 1e-9);
}

TEST(AccuracyTest, FeedbackAccuracyIsWhatEvalComputesOnTheSameBoxes) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<LabelledPrediction> labelled;
  std::vector<EvalImage> images;
  const std::vector<std::string> classes = {"dent", "scratch"};
  for (int i = 0; i < 60; ++i) {
    LabelledPrediction l;
    EvalImage img;
    const double x = 50 + 300 * u(rng), y = 50 + 200 * u(rng);
    const int cls = u(rng) < 0.5 ? 0 : 1;
    l.truth.push_back({classes[cls], x, y, x + 80, y + 60});
    img.truth.push_back({cls, float(x), float(y), float(x + 80), float(y + 60), false});
    const double jitter = u(rng) < 0.7 ? 5 : 60;  // some detections miss
    const double score = u(rng);
    l.prediction.record.detections.push_back(
        {classes[cls], cls, score, x + jitter, y, x + 80 + jitter, y + 60});
    img.detections.push_back(
        {cls, float(score), float(x + jitter), float(y), float(x + 80 + jitter), float(y + 60)});
    labelled.push_back(std::move(l));
    images.push_back(std::move(img));
  }
  const FeedbackAccuracy acc = AccuracyFromFeedback(labelled, classes);
  const EvalReport want = Evaluate(images, classes);
  EXPECT_EQ(acc.labels, 60);
  EXPECT_NEAR(acc.map50, want.map50, 1e-6);
  EXPECT_NEAR(acc.precision, want.precision, 1e-9);
  EXPECT_NEAR(acc.recall, want.recall, 1e-9);
  EXPECT_LE(acc.map50_ci.low, acc.map50);
  EXPECT_GE(acc.map50_ci.high, acc.map50);
  EXPECT_LT(acc.map50_ci.high - acc.map50_ci.low, 0.6);
}

// Labelled answers from one model: a share `hit` of its boxes on the truth,
// the rest 60 px off.
std::vector<LabelledPrediction> LabelledAnswers(int n, double hit, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<LabelledPrediction> out;
  for (int i = 0; i < n; ++i) {
    LabelledPrediction l;
    const double x = 50 + 300 * u(rng), y = 50 + 200 * u(rng);
    l.truth.push_back({"dent", x, y, x + 80, y + 60});
    const double jitter = u(rng) < hit ? 5 : 60;
    l.prediction.record.detections.push_back(
        {"dent", 0, u(rng), x + jitter, y, x + 80 + jitter, y + 60});
    out.push_back(std::move(l));
  }
  return out;
}

TEST(AccuracyTest, TheDifferenceIntervalIsWideOnFewPhotosAndClearOnARealDrop) {
  const std::vector<std::string> classes = {"dent"};
  // The same model on other photos: 20 against 80 labels. The point
  // difference is noise; the interval covers 0 and is wide.
  const auto prod = LabelledAnswers(80, 0.7, 1), same = LabelledAnswers(20, 0.7, 2);
  const Interval noise = Map50DifferenceInterval(prod, classes, same, classes, false);
  EXPECT_LT(noise.low, 0);
  EXPECT_GT(noise.high, 0);
  EXPECT_GT(noise.high - noise.low, 0.15);
  // A model that misses most boxes: the whole interval is above a 0.05 drop.
  const auto worse = LabelledAnswers(20, 0.1, 3);
  const Interval drop = Map50DifferenceInterval(prod, classes, worse, classes, false);
  EXPECT_GT(drop.low, 0.05);
  // Paired on the same answers: no difference at all, and seeded.
  const Interval paired = Map50DifferenceInterval(prod, classes, prod, classes, true);
  EXPECT_DOUBLE_EQ(paired.low, 0);
  EXPECT_DOUBLE_EQ(paired.high, 0);
  const Interval again = Map50DifferenceInterval(prod, classes, same, classes, false);
  EXPECT_DOUBLE_EQ(again.low, noise.low);
}

// ---- the monitor over a real workspace ----

class MonitorTickTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SyntheticModel m;
    m.versions = 2;
    m.profile_json = ReferenceJson();
    auto opened = OpenSyntheticWorkspace(dir_.path(), m);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    ws_ = std::move(opened->ws);
    registry_ = std::move(opened->registry);
    policy_ = DefaultMonitorPolicy();
    policy_.window_size = 100;
    policy_.min_samples = 50;
    policy_.mmd_permutations = 50;
  }

  // Logs `n` predictions from `t`, 100 ms apart after the last ones.
  void Log(int n, const SyntheticTraffic& t, int version = 1) {
    auto log = PredictionLog::Open(*ws_);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < n; ++i) {
      PredictionRecord r = Draw(rng_, t, version);
      r.time_ms = (clock_ms_ += 100);
      (*log)->Append(std::move(r));
    }
    ASSERT_TRUE((*log)->Flush().ok());
  }

  TickResult Tick(int64_t now_ms = 0) {
    if (!monitor_) {
      MonitorOptions o;
      o.policy = policy_;
      o.model = "cars";
      auto m = Monitor::Open(*ws_, o);
      EXPECT_TRUE(m.ok());
      monitor_ = std::move(*m);
    }
    auto r = monitor_->Tick(now_ms ? now_ms : clock_ms_ + 2000);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : TickResult{};
  }

  std::vector<Alert> Alerts(const std::string& kind = "") {
    auto all = ListAlerts(*ws_, {"cars", "", "", 0});
    EXPECT_TRUE(all.ok());
    std::vector<Alert> out;
    for (const Alert& a : *all) {
      if (kind.empty() || a.kind == kind) out.push_back(a);
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Workspace> ws_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<Monitor> monitor_;
  MonitorPolicy policy_;
  std::mt19937_64 rng_{42};
  int64_t clock_ms_ = 1'700'000'000'000;
};

TEST_F(MonitorTickTest, WindowsCloseByCountByVersionAndByTime) {
  Log(250, Traffic());
  TickResult r = Tick();
  ASSERT_EQ(r.windows.size(), 2u);  // 50 wait for more
  EXPECT_EQ(r.windows[0].n, 100);
  EXPECT_TRUE(r.windows[0].scored);
  EXPECT_EQ(Tick().windows.size(), 0u);  // nothing new: nothing scored twice
  Log(30, Traffic(), 2);                 // a new version closes the 50
  r = Tick();
  ASSERT_EQ(r.windows.size(), 1u);
  EXPECT_EQ(r.windows[0].n, 50);
  EXPECT_EQ(r.windows[0].model_version, 1);
  // An hour later the 30 of version 2 close by time: too few to score.
  r = Tick(clock_ms_ + 3'700'000);
  ASSERT_EQ(r.windows.size(), 1u);
  EXPECT_EQ(r.windows[0].model_version, 2);
  EXPECT_FALSE(r.windows[0].scored);
  EXPECT_NE(r.windows[0].note.find("too few samples"), std::string::npos);
  auto stored = ListWindowReports(*ws_, "cars", 0, 0);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->size(), 4u);
}

TEST_F(MonitorTickTest, OneEpisodeIsOneAlertThatUpdatesThenResolves) {
  Log(100, Traffic());
  Log(300, Traffic(-0.8));  // three dark windows
  TickResult r = Tick();
  ASSERT_EQ(r.windows.size(), 4u);
  std::vector<Alert> brightness;
  for (const Alert& a : Alerts(kAlertThreshold)) {
    if (a.signal == "input.brightness") brightness.push_back(a);
  }
  ASSERT_EQ(brightness.size(), 1u);
  EXPECT_EQ(brightness[0].windows, 3);
  EXPECT_EQ(brightness[0].state, kAlertOpen);
  EXPECT_GE(brightness[0].level, Level::kRetrain);
  EXPECT_FALSE(brightness[0].example_ids.empty());
  EXPECT_NE(brightness[0].message.find("input.brightness"), std::string::npos);
  const int64_t first = brightness[0].id;
  // Back to normal for resolve_after_ok_windows windows: resolved by the monitor.
  Log(300, Traffic());
  Tick();
  auto a = GetAlert(*ws_, first);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->state, kAlertResolved);
  EXPECT_EQ(a->resolved_by, "monitor");
  // Dark again: a new episode, a new alert.
  Log(100, Traffic(-0.8));
  Tick();
  int episodes = 0;
  for (const Alert& x : Alerts(kAlertThreshold)) episodes += x.signal == "input.brightness";
  EXPECT_EQ(episodes, 2);
}

TEST_F(MonitorTickTest, APredictedAlertFiresBeforeAGradualDriftCrossesRetrain) {
  // The photos darken a little more every window.
  policy_.window_size = 200;
  int predicted_at = -1, crossed_at = -1;
  for (int w = 0; w < 20 && crossed_at < 0; ++w) {
    Log(200, Traffic(-0.04 * w));
    TickResult r = Tick();
    for (const Alert& a : r.alerts) {
      if (a.signal != "input.brightness") continue;
      if (a.kind == kAlertPredicted && a.state == kAlertOpen && predicted_at < 0) predicted_at = w;
      if (a.kind == kAlertThreshold && a.level >= Level::kRetrain) crossed_at = w;
    }
  }
  ASSERT_GE(crossed_at, 0) << "the drift never reached retrain";
  ASSERT_GE(predicted_at, 0) << "no predicted alert";
  std::cout << "predicted at window " << predicted_at << ", crossed at window " << crossed_at
            << ": lead " << crossed_at - predicted_at << " windows\n";
  EXPECT_LT(predicted_at, crossed_at);
  // Once crossed, the prediction is superseded.
  for (const Alert& a : Alerts(kAlertPredicted)) {
    if (a.signal == "input.brightness") {
      EXPECT_EQ(a.state, kAlertResolved) << a.note;
    }
  }
}

TEST_F(MonitorTickTest, StableTrafficGivesNoPredictedAlert) {
  policy_.window_size = 200;
  for (int w = 0; w < 12; ++w) Log(200, Traffic());
  Tick();
  EXPECT_TRUE(Alerts(kAlertPredicted).empty());
}

TEST_F(MonitorTickTest, ASlowVersionIsRolledBackAndTheAuditSaysWhy) {
  policy_.slo_latency_p95_ms = 100;
  policy_.thresholds["service.latency_p95_ms"] = {80, std::numeric_limits<double>::infinity(), 100,
                                                  false};
  policy_.rollback_slo_windows = 2;
  Log(100, Traffic());  // version 1, fast
  ASSERT_TRUE(ForceProduction(*registry_, "cars", 2).ok());
  Log(100, Traffic(0, false, 400), 2);  // version 2 at 400 ms: one window, no rollback yet
  TickResult r = Tick();
  EXPECT_TRUE(r.actions.empty());
  Log(100, Traffic(0, false, 400), 2);  // the second consecutive window
  r = Tick();
  ASSERT_EQ(r.actions.size(), 1u);
  EXPECT_NE(r.actions[0].find("rolled back cars production from 2 to 1"), std::string::npos)
      << r.actions[0];
  auto now = registry_->AliasVersion("cars", kProduction);
  ASSERT_TRUE(now.ok() && *now);
  EXPECT_EQ(**now, 1);
  auto history = registry_->History("cars");
  ASSERT_TRUE(history.ok());
  const AuditEntry& last = history->back();
  EXPECT_EQ(last.action, "rollback");
  EXPECT_EQ(last.actor, "monitor");
  EXPECT_NE(last.reason.find("alert #"), std::string::npos) << last.reason;
  EXPECT_NE(last.reason.find("service.latency_p95_ms"), std::string::npos) << last.reason;
  bool action_recorded = false;
  for (const Alert& a : Alerts(kAlertThreshold)) {
    action_recorded |= a.action.find("rolled back") != std::string::npos;
  }
  EXPECT_TRUE(action_recorded);
}

TEST_F(MonitorTickTest, EscalateFreezesPromotionUntilAcknowledged) {
  Log(100, Traffic(-2.5));
  Tick();
  auto freeze = PromotionFreeze(*ws_, "cars");
  ASSERT_TRUE(freeze.ok());
  ASSERT_TRUE(freeze->has_value());
  auto status = GetMonitorStatus(*ws_, "cars");
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->size(), 1u);
  EXPECT_EQ((*status)[0].level, Level::kEscalate);
  EXPECT_TRUE((*status)[0].freeze.has_value());
  // Every escalated signal (brightness and the colour means) is one alert;
  // the freeze holds until a person has acknowledged each.
  for (int i = 0; i < 20; ++i) {
    auto f = PromotionFreeze(*ws_, "cars");
    ASSERT_TRUE(f.ok());
    if (!f->has_value()) break;
    ASSERT_TRUE(AcknowledgeAlert(*ws_, (*f)->id, "alice", "looking").ok());
  }
  auto after = PromotionFreeze(*ws_, "cars");
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->has_value());
}

}  // namespace
}  // namespace detops
