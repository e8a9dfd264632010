#pragma once
// The monitor: scores windows of the prediction log against the reference
// profile of the version that served them, stores each scored window,
// keeps one alert per episode, projects drift trends into predicted alerts,
// and responds to incidents (rollback, promotion freeze) as the policy
// allows. It runs inside `detops serve` (a background thread, off the
// request path) and as `detops monitor watch` against the store.
//
// Windows: consecutive predictions of one model version, closed when they
// hold policy.window_size predictions, or when their first prediction is
// policy.window_seconds old (then scored if they hold min_samples, else
// recorded as "too few samples"). A version change closes a window.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/core.h"
#include "monitor/alerts.h"
#include "monitor/monitor.h"
#include "monitor/policy.h"
#include "monitor/resources.h"
#include "monitor/stats.h"
#include "store/store.h"

namespace detops {

class Registry;

// ---- the reference profile (pipeline/model_profile.cc writes it) ----

struct ReferenceProfile {
  int64_t images = 0;
  std::string precision;  // the network's when profiled ("fp32", "bf16"; "" = unknown)
  // image feature -> sorted sample of order statistics ("brightness", ...,
  // "width", "height"), and how many images each stands for.
  std::map<std::string, std::vector<double>> image;
  std::map<std::string, int64_t> image_count;
  std::vector<std::vector<float>> embeddings;
  std::vector<double> detections_per_image, score;  // sorted samples
  int64_t detections_count = 0, score_count = 0;
  double low_confidence_mean = 0;
  std::map<std::string, double> class_share;
};
Result<ReferenceProfile> ParseReferenceProfile(const std::string& json);

// ---- what one window says ----

struct SignalValue {
  std::string signal;     // a MonitorSignals() name
  std::string statistic;  // its statistic ("psi", "mmd2", ...)
  double value = 0;       // what the thresholds compare
  Level level = Level::kOk;
  double threshold = 0;        // of the level reached; the warn threshold when ok
  double reference = 0;        // the reference's figure (mean, share, SLO, registered metric)
  double live = 0;             // the window's figure (mean, share, p95, rate, metric)
  double test_statistic = -1;  // KS D (or MMD threshold); -1 when no test
  double p_value = -1;         // -1 when no test
  int64_t n = 0;               // samples behind the figure
  double low = -1, high = -1;  // interval of `live` (accuracy), -1 when none
  bool scored = true;          // false: too few samples / nothing to compare
  std::string note;            // why not scored, or why the level was held at ok
  std::vector<std::string> examples;  // prediction ids that show it best
};

// Business KPIs of the car-damage study over a window.
struct Kpis {
  int64_t inspections = 0, automated = 0, labelled = 0;
  double automation_rate = 0;  // settled without a person
  double manual_review_rate = 0;
  double inspections_per_hour = 0;
  double labelled_share = 0;  // predictions with feedback
};

// Counters the server samples (cumulative since it started) and its
// resources; the monitor takes differences between two samples.
struct ServiceSample {
  int64_t at_ms = 0;
  std::string instance;  // host:pid of the server
  std::string model_name;
  int model_version = 0;
  int64_t requests = 0;                      // predict requests answered
  std::map<std::string, int64_t> by_status;  // "200" -> count, ...
  int64_t log_written = 0, log_dropped = 0;
  int64_t queue_depth = 0;
  int64_t connections = 0;
  ResourceSample resources;
};
Json ServiceSampleToJson(const ServiceSample& s);
ServiceSample ServiceSampleFromJson(const Json& j);
Status RecordServiceSample(Workspace& ws, const ServiceSample& s);
// The samples of `model_name` with at_ms in [from_ms, to_ms], oldest first.
Result<std::vector<ServiceSample>> ListServiceSamples(Workspace& ws, const std::string& model_name,
                                                      int64_t from_ms, int64_t to_ms);

// Service health over a window, from the service samples around it.
struct ServiceFigures {
  bool known = false;  // false without two samples around the window
  int64_t requests = 0, errors_5xx = 0, errors_4xx = 0, log_dropped = 0, log_written = 0;
  std::map<std::string, int64_t> by_status;
  double throughput_rps = 0;
  int64_t queue_depth_max = 0;
  ResourceSample resources;  // the last sample's
};
// Differences between the last sample at or before start_ms (or the first
// after it) and the first sample at or after end_ms (or the last before).
ServiceFigures ServiceFiguresBetween(const std::vector<ServiceSample>& samples, int64_t start_ms,
                                     int64_t end_ms);

struct WindowReport {
  int64_t id = 0;  // monitor_windows row (0 before it is stored)
  std::string model_name;
  int model_version = 0;
  int64_t start_ms = 0, end_ms = 0, n = 0;
  std::string last_id;  // the last prediction in the window
  bool scored = false;  // false: fewer than min_samples
  std::string note;
  Level level = Level::kOk;  // the highest of its signals
  std::vector<SignalValue> signals;
  Kpis kpis;
  ServiceFigures service;
  double latency_p50_ms = 0, latency_p95_ms = 0, latency_p99_ms = 0;
  const SignalValue* Find(const std::string& signal) const;
};
Json WindowReportToJson(const WindowReport& r);
Result<WindowReport> WindowReportFromJson(const Json& j);

// A logged prediction and the truth a person gave for it.
struct LabelledPrediction {
  StoredPrediction prediction;
  std::vector<FeedbackBox> truth;
};

struct FeedbackAccuracy {
  int64_t labels = 0;  // labelled predictions
  int64_t truth_boxes = 0;
  double precision = 0, recall = 0, f1 = 0, map50 = -1, map = -1;
  Interval precision_ci, recall_ci, map50_ci;  // 95 %: Wilson; bootstrap over images for map50
};
// Scores the logged detections against the feedback boxes with the eval
// module (the same matching and COCO AP as `detops eval`); class names map
// to ids by `classes`, unknown names are skipped. `operating_confidence` as
// EvalOptions.
FeedbackAccuracy AccuracyFromFeedback(const std::vector<LabelledPrediction>& labelled,
                                      const std::vector<std::string>& classes,
                                      double operating_confidence = 0.25);

// The interval of `a`'s mAP50 minus `b`'s (the `tail` and 1 - `tail`
// quantiles of a bootstrap over photos): `paired` when both answered the
// same photos, in the same order (one draw of indices for both), else each
// resampled apart. Seeded by the sizes: the same rows, the same interval.
// Both need at least one labelled prediction.
Interval Map50DifferenceInterval(const std::vector<LabelledPrediction>& a,
                                 const std::vector<std::string>& a_classes,
                                 const std::vector<LabelledPrediction>& b,
                                 const std::vector<std::string>& b_classes, bool paired,
                                 double tail = 0.05);

// Everything one window needs; pure.
struct WindowInput {
  std::string model_name;
  int model_version = 0;
  std::vector<StoredPrediction> predictions;  // oldest first
  const ReferenceProfile* reference = nullptr;
  std::map<std::string, double> registered_metrics;  // test figures ("map50", "f1", ...)
  std::vector<std::string> classes;
  std::vector<LabelledPrediction> labelled;  // for accuracy.* (may reach before the window)
  int64_t labelled_in_window = 0;
  ServiceFigures service;
  uint64_t seed = 1;  // the permutation test's
  // The precision the predictions were made in ("" = unknown): embeddings
  // from a bf16 network are not compared with an fp32 reference.
  std::string serving_precision;
};
// Scores every signal of the policy; a window under min_samples is
// returned unscored with a note.
WindowReport ScoreWindow(const WindowInput& in, const MonitorPolicy& policy);

// ---- the monitor ----

struct MonitorOptions {
  MonitorPolicy policy;
  std::string model;  // registry model name
  std::string alias = "production";
  std::string actor = "monitor";
  bool act = true;                // may roll back (policy.auto_rollback permitting)
  bool notify = true;             // may call the webhook / command
  std::string serving_precision;  // the server's ("" = unknown: detops monitor watch)
};

struct TickResult {
  std::vector<WindowReport> windows;  // scored or recorded in this tick
  std::vector<Alert> alerts;          // opened, updated or resolved
  std::vector<std::string> actions;   // what the monitor did, in words
};

class Monitor {
 public:
  static Result<std::unique_ptr<Monitor>> Open(Workspace& ws, MonitorOptions options);
  // Scores every window completed since the last stored one (and a window
  // whose first prediction is window_seconds older than now_ms), stores
  // them, observes alerts, projects trends and acts. Safe to call from one
  // thread at a time; several processes watching one model serialize on
  // the store (a window already stored is not scored twice).
  Result<TickResult> Tick(int64_t now_ms);
  const MonitorOptions& options() const { return options_; }

 private:
  Monitor(Workspace& ws, MonitorOptions options) : ws_(ws), options_(std::move(options)) {}
  // Scores one window, stores it (false when another monitor already
  // did), then observes its signals.
  Result<bool> ScoreAndAct(Registry& registry, std::vector<StoredPrediction> window,
                           TickResult& result);
  Status ObserveSignals(Registry& registry, const WindowReport& report, TickResult& result);
  // A predicted alert when the signal's trend crosses `retrain` within the
  // horizon; resolves an active one as superseded once it is crossed.
  Status Predict(const WindowReport& report, const SignalValue& s,
                 const std::vector<WindowReport>& previous, const Alert* active_predicted,
                 TickResult& result);
  Status MaybeRollback(Registry& registry, const WindowReport& report,
                       const std::vector<WindowReport>& previous,
                       const std::vector<std::pair<Alert, const SignalValue*>>& raised,
                       TickResult& result);
  Status Notify(const AlertChange& change);
  Workspace& ws_;
  MonitorOptions options_;
  std::map<int, ReferenceProfile> references_;  // by version
};

// Stored windows of `model_name`, oldest first, with end_ms >= since_ms;
// limit 0 = all (the newest `limit` when set).
Result<std::vector<WindowReport>> ListWindowReports(Workspace& ws, const std::string& model_name,
                                                    int64_t since_ms, int limit);

struct MonitorStatus {
  std::string model_name;
  std::optional<int> production;     // the version the alias points at
  std::optional<WindowReport> last;  // the newest stored window
  std::vector<Alert> active;         // open and acknowledged alerts
  std::optional<Alert> freeze;       // the alert that freezes automatic promotion
  Level level = Level::kOk;          // the newest window's level, raised by active alerts
};
// "" = every model that has stored windows or registered versions.
Result<std::vector<MonitorStatus>> GetMonitorStatus(Workspace& ws, const std::string& model_name);
Json MonitorStatusToJson(const MonitorStatus& s);

// PNG charts of the windows: drift scores (one line per drift signal, with
// the retrain threshold), latency p50/p95/p99 against the SLO, automation
// rate and accuracy. Files: drift.png, embedding.png (MMD^2 on its own
// scale), latency.png, kpi.png in `dir`.
Status WriteMonitorPlots(const std::vector<WindowReport>& windows, const MonitorPolicy& policy,
                         const std::filesystem::path& dir);

}  // namespace detops
