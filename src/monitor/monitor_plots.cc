// The monitor's charts (`detops monitor report --plots`): one line chart per
// concern, each point a window at its end time. A window that was not
// scored, or a signal it could not score, is a gap in the line rather than a
// zero, so "no evidence" never reads as "no drift".

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <system_error>
#include <vector>

#include "eval/eval.h"
#include "monitor/evaluator.h"

namespace detops {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The signal whose thresholds the drift chart draws: every PSI signal shares
// them by default, and one pair of rules keeps the chart readable.
constexpr char kDriftRuleSignal[] = "input.brightness";
constexpr char kEmbeddingSignal[] = "embedding.mmd";

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

bool IsDriftSignal(const std::string& name) {
  return StartsWith(name, "input.") || StartsWith(name, "prediction.");
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// The policy's thresholds of `signal`; a hand-made policy without the entry
// falls back to the signal's defaults.
Thresholds ThresholdsOf(const MonitorPolicy& policy, const std::string& signal) {
  auto it = policy.thresholds.find(signal);
  if (it != policy.thresholds.end()) return it->second;
  const SignalInfo* info = FindSignal(signal);
  return info != nullptr ? info->defaults : Thresholds{};
}

// "retrain (psi) 0.25" and "escalate (psi) 2"; a level switched off (or
// NaN) draws no rule.
std::vector<LineChart::Rule> LevelRules(const Thresholds& t, const std::string& statistic) {
  std::vector<LineChart::Rule> rules;
  for (auto [name, y] : {std::pair<const char*, double>{"retrain", t.retrain},
                         std::pair<const char*, double>{"escalate", t.escalate}}) {
    if (std::isfinite(y))
      rules.push_back({std::string(name) + " (" + statistic + ") " + Num(y), y});
  }
  return rules;
}

// The signal's value in each window where it was scored, else NaN.
LineChart::Series SignalSeries(const std::vector<const WindowReport*>& windows,
                               const std::string& signal) {
  LineChart::Series s{signal, {}, {}};
  for (const WindowReport* w : windows) {
    const SignalValue* v = w->scored ? w->Find(signal) : nullptr;
    s.x.push_back(static_cast<double>(w->end_ms));
    s.y.push_back(v != nullptr && v->scored ? v->value : kNaN);
  }
  return s;
}

// A figure of each scored window, NaN for the others (whose figures are
// left at zero).
template <typename Figure>
LineChart::Series WindowSeries(const std::vector<const WindowReport*>& windows, std::string name,
                               Figure figure) {
  LineChart::Series s{std::move(name), {}, {}};
  for (const WindowReport* w : windows) {
    s.x.push_back(static_cast<double>(w->end_ms));
    s.y.push_back(w->scored ? figure(*w) : kNaN);
  }
  return s;
}

bool HasPoint(const LineChart::Series& s) {
  return std::any_of(s.y.begin(), s.y.end(), [](double y) { return std::isfinite(y); });
}

// The statistic a signal's value is, from the windows (the policy's table as
// a fallback).
std::string StatisticOf(const std::vector<const WindowReport*>& windows,
                        const std::string& signal) {
  for (const WindowReport* w : windows) {
    if (const SignalValue* v = w->Find(signal); v != nullptr && !v->statistic.empty()) {
      return v->statistic;
    }
  }
  const SignalInfo* info = FindSignal(signal);
  return info != nullptr ? info->statistic : "";
}

LineChart DriftChart(const std::vector<const WindowReport*>& windows, const MonitorPolicy& policy) {
  LineChart chart;
  chart.x_label = "window end";
  chart.y_label = "PSI";
  chart.x_is_time_ms = true;
  // Signals in report order (their order in the windows), each once.
  std::vector<std::string> signals;
  for (const WindowReport* w : windows) {
    for (const SignalValue& v : w->signals) {
      if (IsDriftSignal(v.signal) &&
          std::find(signals.begin(), signals.end(), v.signal) == signals.end()) {
        signals.push_back(v.signal);
      }
    }
  }
  // A signal whose value is not a PSI (low_confidence_share: an absolute
  // change of a share) says so in the title, as the rules are PSI's.
  std::string others;
  for (const std::string& name : signals) {
    LineChart::Series s = SignalSeries(windows, name);
    if (!HasPoint(s)) continue;
    const std::string statistic = StatisticOf(windows, name);
    if (statistic != "psi" && !statistic.empty()) {
      others += "; " + name.substr(name.find('.') + 1) + ": " + statistic;
    }
    chart.series.push_back(std::move(s));
  }
  chart.title = "Input and prediction drift per window (PSI" + others + ")";
  chart.rules = LevelRules(ThresholdsOf(policy, kDriftRuleSignal), "psi");
  return chart;
}

LineChart EmbeddingChart(const std::vector<const WindowReport*>& windows,
                         const MonitorPolicy& policy) {
  LineChart chart;
  const std::string statistic = StatisticOf(windows, kEmbeddingSignal);
  chart.title = "Embedding drift per window (MMD^2 against the reference embeddings)";
  chart.x_label = "window end";
  chart.y_label = "MMD^2";
  chart.x_is_time_ms = true;
  chart.series = {SignalSeries(windows, kEmbeddingSignal)};
  chart.rules = LevelRules(ThresholdsOf(policy, kEmbeddingSignal), statistic);
  return chart;
}

LineChart LatencyChart(const std::vector<const WindowReport*>& windows,
                       const MonitorPolicy& policy) {
  LineChart chart;
  chart.title = "Request latency per window";
  chart.x_label = "window end";
  chart.y_label = "latency (ms)";
  chart.x_is_time_ms = true;
  chart.series = {
      WindowSeries(windows, "p50", [](const WindowReport& w) { return w.latency_p50_ms; }),
      WindowSeries(windows, "p95", [](const WindowReport& w) { return w.latency_p95_ms; }),
      WindowSeries(windows, "p99", [](const WindowReport& w) { return w.latency_p99_ms; })};
  chart.rules = {{"SLO p95 " + Num(policy.slo_latency_p95_ms) + " ms", policy.slo_latency_p95_ms}};
  return chart;
}

LineChart KpiChart(const std::vector<const WindowReport*>& windows) {
  LineChart chart;
  chart.title = "Business KPIs and accuracy on feedback per window";
  chart.x_label = "window end";
  chart.y_label = "share";
  chart.x_is_time_ms = true;
  chart.y_min = 0;
  chart.y_max = 1;
  LineChart::Series map50{"mAP50 on feedback", {}, {}};
  for (const WindowReport* w : windows) {
    const SignalValue* v = w->scored ? w->Find("accuracy.map50") : nullptr;
    map50.x.push_back(static_cast<double>(w->end_ms));
    map50.y.push_back(v != nullptr && v->scored ? v->live : kNaN);
  }
  chart.series = {WindowSeries(windows, "automation rate",
                               [](const WindowReport& w) { return w.kpis.automation_rate; }),
                  WindowSeries(windows, "manual review rate",
                               [](const WindowReport& w) { return w.kpis.manual_review_rate; }),
                  WindowSeries(windows, "labelled share",
                               [](const WindowReport& w) { return w.kpis.labelled_share; }),
                  std::move(map50)};
  // The newest scored figure's registered test mAP50: what the live line is
  // measured against.
  for (auto it = windows.rbegin(); it != windows.rend(); ++it) {
    const SignalValue* v = (*it)->scored ? (*it)->Find("accuracy.map50") : nullptr;
    if (v != nullptr && v->scored && v->reference > 0) {
      chart.rules.push_back(
          {"test mAP50 " + Num(v->reference) + " (v" + std::to_string((*it)->model_version) + ")",
           v->reference});
      break;
    }
  }
  return chart;
}

}  // namespace

Status WriteMonitorPlots(const std::vector<WindowReport>& windows, const MonitorPolicy& policy,
                         const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError(dir.string() + ": cannot create the folder: " + ec.message());
  // Oldest first by end time, so that lines do not fold back.
  std::vector<const WindowReport*> sorted;
  for (const WindowReport& w : windows) sorted.push_back(&w);
  std::stable_sort(sorted.begin(), sorted.end(), [](const WindowReport* a, const WindowReport* b) {
    return a->end_ms < b->end_ms;
  });
  const std::pair<const char*, LineChart> charts[] = {
      {"drift.png", DriftChart(sorted, policy)},
      {"embedding.png", EmbeddingChart(sorted, policy)},
      {"latency.png", LatencyChart(sorted, policy)},
      {"kpi.png", KpiChart(sorted)}};
  for (const auto& [file, chart] : charts) {
    if (Status s = WriteLineChart(chart, dir / file); !s.ok()) return s;  // names the file
  }
  return Status::Ok();
}

}  // namespace detops
