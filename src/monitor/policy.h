#pragma once
// The monitoring policy: which signals are watched, the thresholds of each
// level, window sizes, SLOs, the business-KPI thresholds, predictive
// alerts, automatic actions and notifications. YAML, every key optional
// (docs/monitoring.md lists the defaults and their measured false-alarm
// rate).
//
// Levels follow the car-damage case study's two thresholds: `warn` is worth
// a look, `retrain` (moderate drift) asks for retraining on new data,
// `escalate` (severe drift) sends the problem back to experimentation and
// freezes automatic promotion until a person acknowledges the alert.

#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/core.h"

namespace detops {

enum class Level { kOk = 0, kWarn = 1, kRetrain = 2, kEscalate = 3 };
const char* LevelName(Level level);  // "ok", "warn", "retrain", "escalate"
std::optional<Level> ParseLevel(std::string_view name);

// The thresholds of one signal. A level is reached when the value is at or
// beyond its threshold (above it, or below it when lower_is_worse);
// infinity (NaN-free "never") switches a level off.
struct Thresholds {
  double warn = std::numeric_limits<double>::infinity();
  double retrain = std::numeric_limits<double>::infinity();
  double escalate = std::numeric_limits<double>::infinity();
  bool lower_is_worse = false;
};

// The highest level whose threshold `value` reaches; kOk for NaN.
Level Classify(const Thresholds& t, double value);
// The threshold of `level` (kOk: the warn threshold).
double ThresholdOf(const Thresholds& t, Level level);

// One watched signal: its name (the one source for signal names), the
// statistic its value is, and its default thresholds.
struct SignalInfo {
  std::string name;       // "input.brightness"
  std::string statistic;  // "psi", "mmd2", "abs_change", "p95_ms", "rate", "drop"
  std::string description;
  Thresholds defaults;
};
// Every signal, in report order:
//   input.{brightness,contrast,sharpness,mean_b,mean_g,mean_r,width,height}  psi
//   embedding.mmd                                                            mmd2
//   prediction.{detections_per_image,score}                                  psi
//   prediction.low_confidence_share                                          abs_change
//   prediction.class_mix                                                     psi
//   service.latency_p95_ms                                                   p95_ms
//   service.error_rate, service.log_drop_rate                                rate
//   accuracy.map50, accuracy.f1   (registered test figure - live figure)    drop
//   kpi.automation_rate                                                      rate (lower is worse)
const std::vector<SignalInfo>& MonitorSignals();
const SignalInfo* FindSignal(std::string_view name);

struct MonitorPolicy {
  // ---- windows ----
  int window_size = 200;      // predictions per count window
  int min_samples = 50;       // fewer: the window is reported, not scored
  int window_seconds = 3600;  // a window also closes when its first prediction is this old
  // A drift level above ok also needs the signal's two-sample test (KS for
  // distributions, the permutation test for embeddings) to reject
  // same-distribution at this significance, so small windows do not alarm
  // on noise.
  double alpha = 0.01;
  int mmd_permutations = 200;
  int mmd_max_samples = 200;  // live vectors used for the embedding test
  // Signal name -> thresholds; every MonitorSignals() entry is present.
  std::map<std::string, Thresholds> thresholds;
  // ---- SLOs (service.* thresholds are derived from them unless given) ----
  double slo_latency_p95_ms = 250;
  double slo_error_rate = 0.01;  // 5xx answers / requests
  // ---- accuracy from feedback ----
  int min_labels = 20;  // labelled predictions before accuracy is scored
  // ---- business KPIs (car-damage study) ----
  // An inspection (prediction) is settled automatically when every
  // detection scores >= confident and none lies in [uncertain, confident).
  double confident = 0.6;
  double uncertain = 0.3;
  // ---- predictive alerts ----
  bool predict = true;
  int trend_windows = 6;      // recent windows the trend is fitted on
  int horizon_windows = 4;    // alert when `retrain` is crossed within this many windows
  int min_trend_windows = 4;  // fewer windows: no projection
  // ---- episodes ----
  int resolve_after_ok_windows = 3;  // an open alert resolves itself after this many ok windows
  // ---- automatic incident response ----
  bool auto_rollback = true;
  int rollback_slo_windows = 3;  // consecutive windows breaking an SLO
  // Feedback accuracy: roll back when map50 drops this far below the
  // version's registered test figure (with >= min_labels labels) within
  // rollback_after_promotion_hours of its promotion.
  double rollback_accuracy_drop = 0.2;
  double rollback_after_promotion_hours = 72;
  bool freeze_on_escalate = true;
  // ---- notifications ----
  std::string webhook;          // POSTs the alert as JSON ("" = none)
  std::string command;          // runs with the alert JSON on stdin ("" = none)
  int notify_retries = 3;       // attempts after the first
  int notify_backoff_ms = 500;  // doubled after each failed attempt
  int notify_timeout_ms = 5000;
};

MonitorPolicy DefaultMonitorPolicy();

// YAML, every key optional:
//   window: {size: 200, min_samples: 50, seconds: 3600}
//   alpha: 0.01
//   embedding: {permutations: 200, max_samples: 200}
//   thresholds:
//     input.brightness: {warn: 0.1, retrain: 0.25, escalate: 2}
//     input: {retrain: 0.3}          # a family prefix sets every input.* signal
//   slo: {latency_p95_ms: 250, error_rate: 0.01}
//   accuracy: {min_labels: 20}
//   kpi: {confident: 0.6, uncertain: 0.3}
//   predictive: {enabled: true, windows: 6, horizon: 4, min_windows: 4}
//   resolve_after_ok_windows: 3
//   actions: {rollback: true, rollback_slo_windows: 3, rollback_accuracy_drop: 0.2,
//             rollback_after_promotion_hours: 72, freeze_on_escalate: true}
//   notify: {webhook: "http://...", command: "...", retries: 3, backoff_ms: 500,
//            timeout_ms: 5000}
// A threshold may be `off`. Unknown keys or signals, wrong types, negative
// numbers, uncertain > confident and thresholds out of order (warn <=
// retrain <= escalate, reversed when lower is worse) are InvalidInput naming
// the source, line and key ("policy.yaml:7: thresholds.input.brightness.warn:
// expected a number, got 'high'").
Result<MonitorPolicy> ParseMonitorPolicy(std::string_view yaml, const std::string& source);
Result<MonitorPolicy> LoadMonitorPolicy(const std::filesystem::path& file);
// Every field, thresholds included ("off" for infinity).
Json MonitorPolicyToJson(const MonitorPolicy& policy);

}  // namespace detops
