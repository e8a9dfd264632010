// The monitor's tick: cut the prediction log into windows, score and store
// them, keep the alert episodes, project drift trends, and act.

#include "monitor/evaluator.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>

#include "core/names.h"
#include "monitor/monitor_internal.h"
#include "registry/registry.h"

namespace detops {
namespace {

// Predictions younger than this are left for the next tick: another
// process's log writer may still be committing ones that sort before them.
constexpr int64_t kSettleMs = 1000;
// Signals whose trend is projected into predicted alerts.
bool IsDriftSignal(const std::string& s) {
  return s.rfind("input.", 0) == 0 || s.rfind("embedding.", 0) == 0 ||
         s.rfind("prediction.", 0) == 0;
}

// "2026-12-07T10:00:00.123Z" (or without fraction) -> Unix ms; 0 if unreadable.
int64_t MsFromIso(const std::string& iso) {
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
    return 0;
  }
  if (auto dot = iso.find('.'); dot != std::string::npos) ms = std::atoi(iso.c_str() + dot + 1);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// "input.brightness psi 0.41 >= retrain 0.25 (live mean 61.2, reference 118.4, n 200)".
std::string Describe(const SignalValue& s) {
  std::string m = s.signal + " " + s.statistic + " " + Fixed(s.value, 3);
  if (s.level != Level::kOk) {
    m += std::string(" ") +
         (FindSignal(s.signal) && FindSignal(s.signal)->defaults.lower_is_worse ? "<= " : ">= ") +
         LevelName(s.level) + " " + Fixed(s.threshold, 3);
  }
  m += " (live " + Fixed(s.live, 3) + ", reference " + Fixed(s.reference, 3) + ", n " +
       std::to_string(s.n);
  if (s.p_value >= 0) m += ", p " + Fixed(s.p_value, 4);
  return m + ")";
}

Result<std::vector<WindowReport>> QueryWindows(Workspace& ws, const std::string& sql,
                                               const std::vector<SqlValue>& params) {
  ASSIGN_OR_RETURN(auto rows, ws.db().Query(sql, params));
  std::vector<WindowReport> out;
  out.reserve(rows.size());
  for (const SqlRow& r : rows) {
    ASSIGN_OR_RETURN(Json j, ParseJson(r.Text(1), "monitor window " + r.Text(0)));
    ASSIGN_OR_RETURN(WindowReport w, WindowReportFromJson(j));
    w.id = r.Int(0);
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace

Result<std::vector<LabelledPrediction>> RecentLabelled(Workspace& ws, const std::string& model,
                                                       int version, int64_t from_ms,
                                                       int64_t until_ms, int limit) {
  ASSIGN_OR_RETURN(
      auto rows,
      // Driven from the feedback (CROSS JOIN keeps SQLite's join order):
      // labels are few, predictions many.
      ws.db().Query("SELECT f.prediction_id, f.boxes_json FROM feedback f "
                    "CROSS JOIN predictions p ON p.id = f.prediction_id "
                    "WHERE p.model_name = ? AND p.model_version = ? AND p.at_ms >= ? "
                    "AND p.at_ms <= ? "
                    "AND f.id = (SELECT MAX(g.id) FROM feedback g WHERE g.prediction_id = "
                    "f.prediction_id) ORDER BY p.at_ms DESC LIMIT ?",
                    {model, int64_t{version}, from_ms, until_ms, int64_t{limit}}));
  std::vector<LabelledPrediction> out;
  for (const SqlRow& r : rows) {
    ASSIGN_OR_RETURN(Json boxes, ParseJson(r.Text(1), "feedback for " + r.Text(0)));
    auto truth = FeedbackBoxesFromJson(boxes);
    if (!truth.ok()) continue;  // checked when recorded; a bad row is skipped
    ASSIGN_OR_RETURN(StoredPrediction p, GetPrediction(ws, r.Text(0)));
    out.push_back({std::move(p), std::move(*truth)});
  }
  // Oldest first: COCO AP breaks ties between equal scores by image order.
  std::reverse(out.begin(), out.end());
  return out;
}

namespace {

// How many of `ids` have feedback.
Result<int64_t> CountLabelled(Workspace& ws, int64_t from_ms, int64_t to_ms,
                              const std::string& model) {
  ASSIGN_OR_RETURN(auto rows,
                   ws.db().Query("SELECT COUNT(DISTINCT f.prediction_id) FROM feedback f JOIN "
                                 "predictions p ON p.id = f.prediction_id WHERE p.model_name = ? "
                                 "AND p.at_ms >= ? AND p.at_ms <= ?",
                                 {model, from_ms, to_ms}));
  return rows.empty() ? 0 : rows[0].Int(0);
}

// Mann-Kendall's share of rising pairs: near 1 for a steady rise, near 0.5
// for noise. Guards the projection against a slope fitted to noise.
double RisingShare(const std::vector<double>& y) {
  int up = 0, pairs = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    for (size_t j = i + 1; j < y.size(); ++j) {
      if (y[j] == y[i]) continue;
      ++pairs;
      if (y[j] > y[i]) ++up;
    }
  }
  return pairs ? static_cast<double>(up) / pairs : 0.0;
}

}  // namespace

Result<std::unique_ptr<Monitor>> Monitor::Open(Workspace& ws, MonitorOptions options) {
  RETURN_IF_ERROR(CheckName("model", options.model));
  return std::unique_ptr<Monitor>(new Monitor(ws, std::move(options)));
}

Result<TickResult> Monitor::Tick(int64_t now_ms) {
  const MonitorPolicy& policy = options_.policy;
  TickResult result;
  ASSIGN_OR_RETURN(auto registry, Registry::Open(ws_));
  ASSIGN_OR_RETURN(auto last, QueryWindows(ws_,
                                           "SELECT id, report_json FROM monitor_windows WHERE "
                                           "model_name = ? ORDER BY end_ms DESC, id DESC LIMIT 1",
                                           {options_.model}));
  int64_t cursor_ms = last.empty() ? 0 : last[0].end_ms;
  std::string cursor_id = last.empty() ? "" : last[0].last_id;
  const int size = std::max(1, policy.window_size);
  // A canary's candidate answers are the rollout's to judge, not the
  // monitor's (monitor/rollout.h): windows hold production's answers.
  ASSIGN_OR_RETURN(auto canary, CanaryCandidateSpans(ws_, options_.model));
  for (;;) {
    ASSIGN_OR_RETURN(auto batch, ListPredictionsAfter(ws_, options_.model, cursor_ms, cursor_id,
                                                      now_ms - kSettleMs, size + 1, canary));
    if (batch.empty()) break;
    const int version = batch[0].record.model_version;
    size_t k = 0;
    while (k < batch.size() && static_cast<int>(k) < size &&
           batch[k].record.model_version == version) {
      ++k;
    }
    const bool full = static_cast<int>(k) == size;
    const bool version_changed = k < batch.size() && !full;
    const bool timed_out =
        now_ms - batch[0].record.time_ms >= int64_t{policy.window_seconds} * 1000;
    if (!full && !version_changed && !timed_out) break;
    batch.resize(k);
    cursor_ms = batch.back().record.time_ms;
    cursor_id = batch.back().record.id;
    ASSIGN_OR_RETURN(bool stored, ScoreAndAct(*registry, std::move(batch), result));
    if (!stored) break;  // another monitor got there first; it carries on
  }
  return result;
}

Result<bool> Monitor::ScoreAndAct(Registry& registry, std::vector<StoredPrediction> window,
                                  TickResult& result) {
  const MonitorPolicy& policy = options_.policy;
  WindowInput in;
  in.model_name = options_.model;
  in.model_version = window[0].record.model_version;
  const int64_t start = window.front().record.time_ms, end = window.back().record.time_ms;
  in.seed = static_cast<uint64_t>(start) ^ 0x9e3779b97f4a7c15ull;
  in.serving_precision = options_.serving_precision;
  auto version = registry.Get(ModelRef{options_.model, in.model_version, ""});
  if (version.ok()) {
    in.registered_metrics = version->metrics;
    in.classes = version->spec.classes;
    auto cached = references_.find(in.model_version);
    if (cached == references_.end()) {
      auto text = registry.Profile(*version);
      if (text.ok()) {
        auto parsed = ParseReferenceProfile(*text);
        if (parsed.ok()) cached = references_.emplace(in.model_version, *parsed).first;
      }
    }
    if (cached != references_.end()) in.reference = &cached->second;
  }
  ASSIGN_OR_RETURN(in.labelled, RecentLabelled(ws_, options_.model, in.model_version, 0, end,
                                               policy.window_size));
  ASSIGN_OR_RETURN(in.labelled_in_window, CountLabelled(ws_, start, end, options_.model));
  ASSIGN_OR_RETURN(auto samples,
                   ListServiceSamples(ws_, options_.model, start - 120'000, end + 120'000));
  in.service = ServiceFiguresBetween(samples, start, end);
  in.predictions = std::move(window);
  WindowReport report = ScoreWindow(in, policy);

  // Stored once: a second monitor on the same model finds the row.
  bool stored = false;
  RETURN_IF_ERROR(ws_.db().InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(auto dup, ws_.db().Query("SELECT 1 FROM monitor_windows WHERE model_name = ? "
                                              "AND last_id = ? AND end_ms = ?",
                                              {report.model_name, report.last_id, report.end_ms}));
    if (!dup.empty()) return Status::Ok();
    RETURN_IF_ERROR(ws_.db().Exec(
        "INSERT INTO monitor_windows (model_name, model_version, start_ms, end_ms, last_id, n, "
        "level, report_json, evaluated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        {report.model_name, int64_t{report.model_version}, report.start_ms, report.end_ms,
         report.last_id, report.n, std::string(LevelName(report.level)),
         WindowReportToJson(report).dump(), IsoFromMs(NowMs())}));
    ASSIGN_OR_RETURN(auto id, ws_.db().Query("SELECT last_insert_rowid()"));
    report.id = id.empty() ? 0 : id[0].Int(0);
    stored = true;
    return Status::Ok();
  }));
  if (!stored) return false;
  if (report.scored) RETURN_IF_ERROR(ObserveSignals(registry, report, result));
  result.windows.push_back(std::move(report));
  return true;
}

Status Monitor::ObserveSignals(Registry& registry, const WindowReport& report, TickResult& result) {
  const MonitorPolicy& policy = options_.policy;
  ASSIGN_OR_RETURN(auto active, ListAlerts(ws_, {options_.model, "active", "", 0}));
  auto has_active = [&](const std::string& signal, const char* kind) -> const Alert* {
    for (const Alert& a : active) {
      if (a.signal == signal && a.kind == kind) return &a;
    }
    return nullptr;
  };
  // The previous windows of this version, newest first, for trends and
  // consecutive SLO breaches.
  const int history = std::max(policy.trend_windows, policy.rollback_slo_windows);
  ASSIGN_OR_RETURN(auto previous,
                   QueryWindows(ws_,
                                "SELECT id, report_json FROM monitor_windows WHERE model_name = ? "
                                "AND model_version = ? AND id < ? ORDER BY id DESC LIMIT ?",
                                {report.model_name, int64_t{report.model_version}, report.id,
                                 int64_t{history}}));
  std::vector<std::pair<Alert, const SignalValue*>> raised;  // for actions
  for (const SignalValue& s : report.signals) {
    if (!s.scored) continue;
    if (s.level > Level::kOk || has_active(s.signal, kAlertThreshold)) {
      AlertObservation obs;
      obs.model_name = report.model_name;
      obs.model_version = report.model_version;
      obs.signal = s.signal;
      obs.statistic = s.statistic;
      obs.level = s.level;
      obs.value = s.value;
      obs.threshold = s.threshold;
      obs.window_start_ms = report.start_ms;
      obs.window_end_ms = report.end_ms;
      obs.window_n = report.n;
      obs.example_ids = s.examples;
      obs.message =
          report.model_name + "@" + std::to_string(report.model_version) + ": " + Describe(s);
      ASSIGN_OR_RETURN(auto change, ObserveAlert(ws_, obs, policy.resolve_after_ok_windows));
      if (change) {
        if (s.level > Level::kOk) raised.emplace_back(change->alert, &s);
        RETURN_IF_ERROR(Notify(*change));
        result.alerts.push_back(change->alert);
      }
    }
    if (policy.predict && IsDriftSignal(s.signal)) {
      RETURN_IF_ERROR(Predict(report, s, previous, has_active(s.signal, kAlertPredicted), result));
    }
  }
  if (options_.act && policy.auto_rollback) {
    RETURN_IF_ERROR(MaybeRollback(registry, report, previous, raised, result));
  }
  return Status::Ok();
}

Status Monitor::Predict(const WindowReport& report, const SignalValue& s,
                        const std::vector<WindowReport>& previous, const Alert* active_predicted,
                        TickResult& result) {
  const MonitorPolicy& policy = options_.policy;
  auto t = policy.thresholds.find(s.signal);
  if (t == policy.thresholds.end() || !std::isfinite(t->second.retrain)) return Status::Ok();
  const double retrain = t->second.retrain;
  if (s.level >= Level::kRetrain) {
    // The threshold alert has it now.
    if (active_predicted) {
      ASSIGN_OR_RETURN(Alert a, ResolveAlert(ws_, active_predicted->id, options_.actor,
                                             "superseded: the retrain threshold was crossed"));
      result.alerts.push_back(a);
    }
    return Status::Ok();
  }
  // PSI and MMD^2 grow with the square of a shift: their square roots grow
  // linearly under a steady drift, so the line is fitted to those.
  const bool squared = s.statistic == "psi" || s.statistic == "mmd2";
  auto lin = [squared](double v) { return squared ? std::sqrt(std::max(0.0, v)) : v; };
  std::vector<double> series;  // oldest first
  const size_t take =
      std::min(previous.size(), static_cast<size_t>(std::max(0, policy.trend_windows - 1)));
  for (size_t i = take; i-- > 0;) {
    const SignalValue* p = previous[i].Find(s.signal);
    if (p && p->scored) series.push_back(lin(p->value));
  }
  series.push_back(lin(s.value));
  Level level = Level::kOk;
  double steps = std::numeric_limits<double>::infinity();
  Trend trend;
  if (static_cast<int>(series.size()) >= policy.min_trend_windows) {
    trend = TheilSen(series);
    steps = StepsToCross(trend, lin(retrain));
    // Only a change the window's own test finds significant is projected:
    // a slope fitted to noise crosses any threshold eventually.
    const bool significant = s.p_value >= 0 && s.p_value < policy.alpha;
    if (significant && steps <= policy.horizon_windows && trend.slope > 0 &&
        RisingShare(series) >= 0.8) {
      level = Level::kWarn;
    }
  }
  if (level == Level::kOk && !active_predicted) return Status::Ok();
  AlertObservation obs;
  obs.model_name = report.model_name;
  obs.model_version = report.model_version;
  obs.signal = s.signal;
  obs.kind = kAlertPredicted;
  obs.statistic = s.statistic;
  obs.level = level;
  obs.value = s.value;
  obs.threshold = retrain;
  obs.window_start_ms = report.start_ms;
  obs.window_end_ms = report.end_ms;
  obs.window_n = report.n;
  obs.example_ids = s.examples;
  obs.message = report.model_name + "@" + std::to_string(report.model_version) + ": " + s.signal +
                " " + s.statistic + " " + Fixed(s.value, 3) + " rising over " +
                std::to_string(series.size()) + " windows: crosses retrain " + Fixed(retrain, 3) +
                " in about " + Fixed(steps, 1) + " windows";
  ASSIGN_OR_RETURN(auto change, ObserveAlert(ws_, obs, policy.resolve_after_ok_windows));
  if (change) {
    RETURN_IF_ERROR(Notify(*change));
    result.alerts.push_back(change->alert);
  }
  return Status::Ok();
}

Status Monitor::MaybeRollback(Registry& registry, const WindowReport& report,
                              const std::vector<WindowReport>& previous,
                              const std::vector<std::pair<Alert, const SignalValue*>>& raised,
                              TickResult& result) {
  const MonitorPolicy& policy = options_.policy;
  ASSIGN_OR_RETURN(auto serving, registry.AliasVersion(options_.model, options_.alias));
  if (!serving || *serving != report.model_version) return Status::Ok();
  for (const auto& [alert, signal] : raised) {
    std::string why;
    if ((signal->signal == "service.latency_p95_ms" || signal->signal == "service.error_rate") &&
        signal->level == Level::kEscalate) {
      // K consecutive windows of this version, this one included.
      int run = 1;
      for (const WindowReport& w : previous) {
        const SignalValue* p = w.Find(signal->signal);
        if (!p || p->level != Level::kEscalate) break;
        ++run;
      }
      if (run < policy.rollback_slo_windows) continue;
      why = signal->signal + " broke its SLO (" + Fixed(signal->value, 3) + " against " +
            Fixed(signal->threshold, 3) + ") in " + std::to_string(run) + " consecutive windows";
    } else if (signal->signal == "accuracy.map50" &&
               signal->value >= policy.rollback_accuracy_drop) {
      ASSIGN_OR_RETURN(auto history, registry.History(options_.model));
      int64_t promoted_ms = 0;
      for (const AuditEntry& e : history) {
        if (e.alias == options_.alias && e.to_version == report.model_version) {
          promoted_ms = MsFromIso(e.at);
        }
      }
      const double hours = (report.end_ms - promoted_ms) / 3.6e6;
      if (promoted_ms == 0 || hours > policy.rollback_after_promotion_hours) continue;
      why = "feedback mAP50 " + Fixed(signal->live, 3) + " on " + std::to_string(signal->n) +
            " labels is " + Fixed(signal->value, 3) + " below the registered " +
            Fixed(signal->reference, 3) + ", " + Fixed(hours, 1) + " h after its promotion";
    } else {
      continue;
    }
    const std::string reason = "monitor alert #" + std::to_string(alert.id) + ": " + why;
    auto entry = registry.Rollback(options_.model, options_.alias, options_.actor, reason);
    if (!entry.ok()) {
      const std::string note = "automatic rollback failed: " + entry.status().message();
      RETURN_IF_ERROR(SetAlertAction(ws_, alert.id, note));
      result.actions.push_back(note);
      return Status::Ok();
    }
    const std::string action = "rolled back " + options_.model + " " + options_.alias + " from " +
                               std::to_string(entry->from_version.value_or(0)) + " to " +
                               std::to_string(entry->to_version.value_or(0)) + " (audit #" +
                               std::to_string(entry->seq) + "): " + why;
    RETURN_IF_ERROR(SetAlertAction(ws_, alert.id, action));
    result.actions.push_back(action);
    ASSIGN_OR_RETURN(Alert updated, GetAlert(ws_, alert.id));
    RETURN_IF_ERROR(Notify(AlertChange{updated, false, true, false}));
    return Status::Ok();  // one rollback per window
  }
  return Status::Ok();
}

Status Monitor::Notify(const AlertChange& change) {
  if (!options_.notify || !(change.should_notify() || change.resolved)) return Status::Ok();
  const NotifyOptions n = NotifyOptionsFrom(options_.policy);
  if (n.webhook.empty() && n.command.empty()) return Status::Ok();
  const Status sent = NotifyAlert(change.alert, n);
  return MarkAlertNotified(ws_, change.alert.id, change.alert.level,
                           sent.ok() ? "" : sent.message());
}

Result<std::vector<WindowReport>> ListWindowReports(Workspace& ws, const std::string& model_name,
                                                    int64_t since_ms, int limit) {
  std::string sql =
      "SELECT id, report_json FROM monitor_windows WHERE model_name = ? AND end_ms >= ? "
      "ORDER BY end_ms DESC, id DESC";
  std::vector<SqlValue> params = {model_name, since_ms};
  if (limit > 0) {
    sql += " LIMIT ?";
    params.emplace_back(int64_t{limit});
  }
  ASSIGN_OR_RETURN(auto windows, QueryWindows(ws, sql, params));
  std::reverse(windows.begin(), windows.end());
  return windows;
}

Result<std::vector<MonitorStatus>> GetMonitorStatus(Workspace& ws, const std::string& model_name) {
  std::vector<std::string> names;
  if (!model_name.empty()) {
    names.push_back(model_name);
  } else {
    ASSIGN_OR_RETURN(auto rows, ws.db().Query("SELECT DISTINCT model_name FROM monitor_windows "
                                              "UNION SELECT DISTINCT name FROM model_versions "
                                              "ORDER BY 1"));
    for (const SqlRow& r : rows) names.push_back(r.Text(0));
  }
  ASSIGN_OR_RETURN(auto registry, Registry::Open(ws));
  std::vector<MonitorStatus> out;
  for (const std::string& name : names) {
    MonitorStatus s;
    s.model_name = name;
    ASSIGN_OR_RETURN(s.production, registry->AliasVersion(name, kProduction));
    ASSIGN_OR_RETURN(auto last, ListWindowReports(ws, name, 0, 1));
    if (!last.empty()) {
      s.last = last.back();
      s.level = s.last->level;
    }
    ASSIGN_OR_RETURN(s.active, ListAlerts(ws, {name, "active", "", 0}));
    for (const Alert& a : s.active) {
      if (a.kind == kAlertThreshold) s.level = std::max(s.level, a.level);
    }
    ASSIGN_OR_RETURN(s.freeze, PromotionFreeze(ws, name));
    out.push_back(std::move(s));
  }
  return out;
}

Json MonitorStatusToJson(const MonitorStatus& s) {
  Json alerts = Json::array();
  for (const Alert& a : s.active) alerts.push_back(AlertToJson(a));
  Json j = {{"model", s.model_name},
            {"level", LevelName(s.level)},
            {"production", s.production ? Json(*s.production) : Json(nullptr)},
            {"active_alerts", alerts},
            {"promotion_frozen_by", s.freeze ? Json(s.freeze->id) : Json(nullptr)}};
  j["last_window"] = s.last ? WindowReportToJson(*s.last) : Json(nullptr);
  return j;
}

}  // namespace detops
