// The monitoring policy: the signal catalogue and its defaults, levels,
// the YAML reader (family prefixes, `off`, SLO-derived service levels) and
// the mistakes it names by file, line and key.

#include "monitor/policy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "testing/testutil.h"

namespace detops {
namespace {

constexpr double kOff = std::numeric_limits<double>::infinity();

MonitorPolicy Parse(const std::string& yaml) {
  auto p = ParseMonitorPolicy(yaml, "policy.yaml");
  EXPECT_TRUE(p.ok()) << yaml << "\n" << p.status().ToString();
  return p.ok() ? *p : MonitorPolicy{};
}

void ExpectLevels(const Thresholds& t, double warn, double retrain, double escalate,
                  const std::string& what) {
  EXPECT_DOUBLE_EQ(t.warn, warn) << what;
  EXPECT_DOUBLE_EQ(t.retrain, retrain) << what;
  EXPECT_DOUBLE_EQ(t.escalate, escalate) << what;
}

TEST(MonitorSignalsTest, CatalogueInReportOrderWithItsStatistics) {
  std::vector<std::string> names;
  for (const SignalInfo& s : MonitorSignals()) names.push_back(s.name);
  const std::vector<std::string> expected = {
      "input.brightness",     "input.contrast",
      "input.sharpness",      "input.mean_b",
      "input.mean_g",         "input.mean_r",
      "input.width",          "input.height",
      "embedding.mmd",        "prediction.detections_per_image",
      "prediction.score",     "prediction.low_confidence_share",
      "prediction.class_mix", "service.latency_p95_ms",
      "service.error_rate",   "service.log_drop_rate",
      "accuracy.map50",       "accuracy.f1",
      "kpi.automation_rate",  "data.validation"};
  EXPECT_EQ(names, expected);
  for (const SignalInfo& s : MonitorSignals()) {
    EXPECT_FALSE(s.description.empty()) << s.name;
    EXPECT_EQ(FindSignal(s.name), &s);
  }
  EXPECT_EQ(FindSignal("input.brightnes"), nullptr);
  EXPECT_EQ(FindSignal("input"), nullptr);  // a family, not a signal
}

TEST(MonitorSignalsTest, DefaultThresholds) {
  const MonitorPolicy p = DefaultMonitorPolicy();
  ASSERT_EQ(p.thresholds.size(), MonitorSignals().size());
  for (const char* s : {"input.brightness", "input.height", "prediction.detections_per_image",
                        "prediction.score", "prediction.class_mix"}) {
    ExpectLevels(p.thresholds.at(s), 0.1, 0.25, 2.0, s);
    EXPECT_EQ(FindSignal(s)->statistic, "psi");
  }
  ExpectLevels(p.thresholds.at("prediction.low_confidence_share"), 0.1, 0.2, 0.4, "low conf");
  ExpectLevels(p.thresholds.at("embedding.mmd"), 0.01, 0.07, 0.45, "mmd");
  EXPECT_EQ(FindSignal("embedding.mmd")->statistic, "mmd2");
  // Derived from the default SLOs (250 ms, 1%).
  ExpectLevels(p.thresholds.at("service.latency_p95_ms"), 200, kOff, 250, "latency");
  ExpectLevels(p.thresholds.at("service.error_rate"), 0.005, kOff, 0.01, "errors");
  ExpectLevels(p.thresholds.at("service.log_drop_rate"), 0.001, kOff, 0.05, "drops");
  ExpectLevels(p.thresholds.at("accuracy.map50"), 0.05, 0.1, 0.2, "map50");
  ExpectLevels(p.thresholds.at("accuracy.f1"), 0.05, 0.1, 0.2, "f1");
  EXPECT_EQ(FindSignal("accuracy.f1")->statistic, "drop");
  const Thresholds& kpi = p.thresholds.at("kpi.automation_rate");
  ExpectLevels(kpi, kOff, kOff, kOff, "kpi");
  EXPECT_TRUE(kpi.lower_is_worse);
  EXPECT_FALSE(p.thresholds.at("input.brightness").lower_is_worse);
}

TEST(LevelTest, ClassifyAtOrBeyondEachThreshold) {
  const Thresholds t{0.1, 0.25, 2.0, false};
  EXPECT_EQ(Classify(t, 0.0), Level::kOk);
  EXPECT_EQ(Classify(t, 0.099), Level::kOk);
  EXPECT_EQ(Classify(t, 0.1), Level::kWarn);  // at the threshold reaches it
  EXPECT_EQ(Classify(t, 0.25), Level::kRetrain);
  EXPECT_EQ(Classify(t, 1.9), Level::kRetrain);
  EXPECT_EQ(Classify(t, 2.0), Level::kEscalate);
  EXPECT_EQ(Classify(t, kOff), Level::kEscalate);
  EXPECT_EQ(Classify(t, std::nan("")), Level::kOk);

  const Thresholds off_retrain{200, kOff, 250, false};
  EXPECT_EQ(Classify(off_retrain, 220), Level::kWarn);
  EXPECT_EQ(Classify(off_retrain, 260), Level::kEscalate);

  // Lower is worse: an automation rate falling below its floors; off stays
  // off in this direction too.
  const Thresholds lower{0.8, 0.6, kOff, true};
  EXPECT_EQ(Classify(lower, 0.9), Level::kOk);
  EXPECT_EQ(Classify(lower, 0.8), Level::kWarn);
  EXPECT_EQ(Classify(lower, 0.1), Level::kRetrain);
  EXPECT_EQ(Classify(Thresholds{kOff, kOff, kOff, true}, 0.0), Level::kOk);

  EXPECT_DOUBLE_EQ(ThresholdOf(t, Level::kOk), 0.1);
  EXPECT_DOUBLE_EQ(ThresholdOf(t, Level::kWarn), 0.1);
  EXPECT_DOUBLE_EQ(ThresholdOf(t, Level::kRetrain), 0.25);
  EXPECT_DOUBLE_EQ(ThresholdOf(t, Level::kEscalate), 2.0);
}

TEST(LevelTest, NamesRoundTrip) {
  for (Level l : {Level::kOk, Level::kWarn, Level::kRetrain, Level::kEscalate}) {
    EXPECT_EQ(ParseLevel(LevelName(l)), l);
  }
  EXPECT_EQ(std::string(LevelName(Level::kRetrain)), "retrain");
  EXPECT_FALSE(ParseLevel("high").has_value());
  EXPECT_FALSE(ParseLevel("").has_value());
}

TEST(MonitorPolicyTest, EmptyIsTheDefault) {
  for (const char* yaml : {"", "# nothing\n", "{}"}) {
    MonitorPolicy p = Parse(yaml);
    EXPECT_EQ(MonitorPolicyToJson(p), MonitorPolicyToJson(DefaultMonitorPolicy())) << yaml;
  }
}

TEST(MonitorPolicyTest, EveryKey) {
  MonitorPolicy p = Parse(R"(
window: {size: 100, min_samples: 30, seconds: 600}
alpha: 0.05
embedding: {permutations: 500, max_samples: 64}
slo: {latency_p95_ms: 100, error_rate: 0.02}
accuracy: {min_labels: 40}
kpi: {confident: 0.7, uncertain: 0.2}
predictive: {enabled: false, windows: 8, horizon: 2, min_windows: 5}
resolve_after_ok_windows: 5
actions: {rollback: false, rollback_slo_windows: 2, rollback_accuracy_drop: 0.15,
          rollback_after_promotion_hours: 24, freeze_on_escalate: false}
notify: {webhook: "http://127.0.0.1:9000/hook", command: "cat > /tmp/a.json", retries: 1,
         backoff_ms: 0, timeout_ms: 250}
)");
  EXPECT_EQ(p.window_size, 100);
  EXPECT_EQ(p.min_samples, 30);
  EXPECT_EQ(p.window_seconds, 600);
  EXPECT_DOUBLE_EQ(p.alpha, 0.05);
  EXPECT_EQ(p.mmd_permutations, 500);
  EXPECT_EQ(p.mmd_max_samples, 64);
  EXPECT_DOUBLE_EQ(p.slo_latency_p95_ms, 100);
  EXPECT_DOUBLE_EQ(p.slo_error_rate, 0.02);
  EXPECT_EQ(p.min_labels, 40);
  EXPECT_DOUBLE_EQ(p.confident, 0.7);
  EXPECT_DOUBLE_EQ(p.uncertain, 0.2);
  EXPECT_FALSE(p.predict);
  EXPECT_EQ(p.trend_windows, 8);
  EXPECT_EQ(p.horizon_windows, 2);
  EXPECT_EQ(p.min_trend_windows, 5);
  EXPECT_EQ(p.resolve_after_ok_windows, 5);
  EXPECT_FALSE(p.auto_rollback);
  EXPECT_EQ(p.rollback_slo_windows, 2);
  EXPECT_DOUBLE_EQ(p.rollback_accuracy_drop, 0.15);
  EXPECT_DOUBLE_EQ(p.rollback_after_promotion_hours, 24);
  EXPECT_FALSE(p.freeze_on_escalate);
  EXPECT_EQ(p.webhook, "http://127.0.0.1:9000/hook");
  EXPECT_EQ(p.command, "cat > /tmp/a.json");
  EXPECT_EQ(p.notify_retries, 1);
  EXPECT_EQ(p.notify_backoff_ms, 0);
  EXPECT_EQ(p.notify_timeout_ms, 250);
  // The service levels follow the SLOs given.
  ExpectLevels(p.thresholds.at("service.latency_p95_ms"), 80, kOff, 100, "latency");
  ExpectLevels(p.thresholds.at("service.error_rate"), 0.01, kOff, 0.02, "errors");
}

TEST(MonitorPolicyTest, FamilyThenExactNamesWhateverTheOrder) {
  // The exact name comes first in the file and still wins over its family.
  MonitorPolicy p = Parse(R"(
thresholds:
  input.brightness: {warn: 0.2}
  input: {warn: 0.15, retrain: 0.3}
  prediction.score: {escalate: off}
)");
  ExpectLevels(p.thresholds.at("input.brightness"), 0.2, 0.3, 2.0, "exact over family");
  for (const char* s : {"input.contrast", "input.mean_r", "input.height"}) {
    ExpectLevels(p.thresholds.at(s), 0.15, 0.3, 2.0, s);
  }
  ExpectLevels(p.thresholds.at("prediction.score"), 0.1, 0.25, kOff, "off");
  // Other families keep their defaults.
  ExpectLevels(p.thresholds.at("prediction.detections_per_image"), 0.1, 0.25, 2.0, "untouched");
  ExpectLevels(p.thresholds.at("embedding.mmd"), 0.01, 0.07, 0.45, "untouched");
}

TEST(MonitorPolicyTest, ServiceLevelsDeriveFromTheSloUnlessGiven) {
  MonitorPolicy p = Parse(R"(
thresholds:
  service.latency_p95_ms: {warn: 150, retrain: 180}
slo: {latency_p95_ms: 400, error_rate: 0.1}
)");
  // Given explicitly (warn, retrain): kept; escalate still from the SLO.
  ExpectLevels(p.thresholds.at("service.latency_p95_ms"), 150, 180, 400, "latency");
  ExpectLevels(p.thresholds.at("service.error_rate"), 0.05, kOff, 0.1, "errors");
  // A family entry is explicit too.
  p = Parse("thresholds: {service: {warn: off}}\nslo: {error_rate: 0.04}\n");
  ExpectLevels(p.thresholds.at("service.error_rate"), kOff, kOff, 0.04, "family");
  ExpectLevels(p.thresholds.at("service.log_drop_rate"), kOff, kOff, 0.05, "family");
}

TEST(MonitorPolicyTest, LowerIsWorseKpiTakesReversedOrder) {
  MonitorPolicy p = Parse("thresholds:\n  kpi: {warn: 0.8, retrain: 0.6, escalate: 0.3}\n");
  const Thresholds& t = p.thresholds.at("kpi.automation_rate");
  ExpectLevels(t, 0.8, 0.6, 0.3, "kpi");
  EXPECT_TRUE(t.lower_is_worse);
  EXPECT_EQ(Classify(t, 0.5), Level::kRetrain);
  auto bad = ParseMonitorPolicy("thresholds:\n  kpi.automation_rate: {warn: 0.5, retrain: 0.7}\n",
                                "k.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("k.yaml:2: thresholds.kpi.automation_rate: warn (0.5) "
                                        "must not be below retrain (0.7)"),
            std::string::npos)
      << bad.status().message();
}

TEST(MonitorPolicyTest, JsonHasEveryFieldAndReadsBack) {
  MonitorPolicy p = Parse(R"(
window: {size: 64}
thresholds:
  input: {retrain: off}
  kpi: {warn: 0.9}
notify: {webhook: "https://hooks.example.com/x", retries: 0}
)");
  Json j = MonitorPolicyToJson(p);
  EXPECT_EQ(j["window"]["size"], 64);
  EXPECT_EQ(j["thresholds"]["input.brightness"]["retrain"], "off");
  EXPECT_EQ(j["thresholds"]["input.brightness"]["warn"], 0.1);
  EXPECT_EQ(j["thresholds"]["kpi.automation_rate"]["lower_is_worse"], true);
  EXPECT_EQ(j["thresholds"].size(), MonitorSignals().size());
  EXPECT_EQ(j["notify"]["webhook"], "https://hooks.example.com/x");
  EXPECT_EQ(j["notify"]["retries"], 0);
  for (const char* key : {"window", "alpha", "embedding", "thresholds", "slo", "accuracy", "kpi",
                          "predictive", "resolve_after_ok_windows", "actions", "notify"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  // JSON is YAML: the printed policy reads back as the same policy.
  MonitorPolicy again = Parse(j.dump(2));
  EXPECT_EQ(MonitorPolicyToJson(again), j);
}

TEST(MonitorPolicyTest, LoadNamesTheFile) {
  testing::TempDir dir;
  auto missing = LoadMonitorPolicy(dir / "nope.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.yaml"), std::string::npos);

  auto folder = LoadMonitorPolicy(dir.path());
  ASSERT_FALSE(folder.ok());
  EXPECT_EQ(folder.status().code(), StatusCode::kIOError);

  testing::WriteText(dir / "m.yaml", "window:\n  size: 10\n  min_samples: x\n");
  auto bad = LoadMonitorPolicy(dir / "m.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            (dir / "m.yaml").string() + ":3: window.min_samples: expected an integer, got 'x'");

  testing::WriteText(dir / "ok.yaml", "alpha: 0.001\n");
  auto ok = LoadMonitorPolicy(dir / "ok.yaml");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_DOUBLE_EQ(ok->alpha, 0.001);
}

TEST(MonitorPolicyTest, MistakesNameTheFileLineAndKey) {
  struct Case {
    const char* yaml;
    const char* expect;
  } cases[] = {
      {"window: {size: 10}\nwindw: {}\n", "p.yaml:2: unknown key 'windw' (known: thresholds,"},
      {"window:\n  sise: 3\n",
       "p.yaml:2: unknown key 'window.sise' (known: size, min_samples, "
       "seconds)"},
      {"thresholds:\n  input.brightness: {warn: high}\n",
       "p.yaml:2: thresholds.input.brightness.warn: expected a number, got 'high'"},
      {"thresholds:\n  input.brightnes: {warn: 0.1}\n",
       "p.yaml:2: thresholds: unknown signal 'input.brightnes' (known: input, embedding, "
       "prediction, service, accuracy, kpi, data, input.brightness,"},
      {"thresholds:\n  input: {warn: 0.1, panic: 3}\n",
       "p.yaml:2: unknown key 'thresholds.input.panic' (known: warn, retrain, escalate)"},
      {"thresholds:\n  input: 0.3\n", "p.yaml:2: thresholds.input must be a mapping"},
      {"thresholds: [1]\n", "thresholds must be a mapping"},
      {"thresholds:\n  embedding.mmd: {warn: -0.1}\n", "must not be negative, got -0.1"},
      {"thresholds:\n  input: {retrain: 0.3}\n  input.contrast: {escalate: 0.2}\n",
       "p.yaml:3: thresholds.input.contrast: retrain (0.3) must not be above escalate (0.2)"},
      {"thresholds:\n  input: {warn: 0.5}\n",
       "p.yaml:2: thresholds.input.brightness: warn (0.5) must not be above retrain (0.25)"},
      {"thresholds:\n  input: {lower_is_worse: true}\n", "a signal's direction cannot change"},
      {"window: {size: 0}\n", "p.yaml:1: window.size must be at least 1, got 0"},
      {"window: {size: 2.5}\n", "window.size: expected an integer, got '2.5'"},
      {"window: {min_samples: }\n", "window.min_samples: expected an integer, got nothing"},
      {"window: 3\n", "p.yaml:1: window must be a mapping (keys: size, min_samples, seconds)"},
      {"alpha: 1\n", "p.yaml:1: alpha must lie strictly between 0 and 1, got 1"},
      {"alpha: 0\n", "alpha must lie strictly between 0 and 1"},
      {"alpha: [0.1]\n", "alpha: expected a number, got a collection"},
      {"kpi:\n  confident: 0.3\n  uncertain: 0.5\n",
       "p.yaml:2: kpi.uncertain (0.5) must not be above kpi.confident (0.3)"},
      {"kpi: {confident: 1.5}\n", "kpi.confident must be at most 1, got 1.5"},
      {"slo: {error_rate: -1}\n", "slo.error_rate must not be negative"},
      {"predictive: {windows: 3, min_windows: 4}\n",
       "predictive.min_windows (4) must not exceed predictive.windows (3)"},
      {"predictive: {enabled: maybe}\n", "predictive.enabled: expected true or false"},
      {"resolve_after_ok_windows: 0\n", "resolve_after_ok_windows must be at least 1, got 0"},
      {"notify: {retries: -1}\n", "notify.retries must be at least 0, got -1"},
      {"notify: {timeout_ms: 0}\n", "notify.timeout_ms must be at least 1"},
      {"notify:\n  webhook: ftp://x\n",
       "p.yaml:2: notify.webhook must start with http:// or https://, got 'ftp://x'"},
      {"actions: {rollback_slo_windows: 0}\n", "actions.rollback_slo_windows must be at least 1"},
      {"window: {size: 10\n", "p.yaml:"},
      {"- a\n- b\n", "p.yaml:1: a monitoring policy must be a mapping"},
  };
  for (const Case& c : cases) {
    auto p = ParseMonitorPolicy(c.yaml, "p.yaml");
    ASSERT_FALSE(p.ok()) << c.yaml;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidInput) << c.yaml;
    EXPECT_NE(p.status().message().find(c.expect), std::string::npos)
        << c.yaml << " -> " << p.status().message();
  }
}

}  // namespace
}  // namespace detops
