// The JSON form of a scored window: what monitor_windows stores, what
// `detops monitor report --json` and GET /v1/monitor/status print.

#include <cmath>

#include "monitor/evaluator.h"

namespace detops {
namespace {

// JSON has no infinity or NaN: both become null (and read back as -1).
Json Num(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

double NumOr(const Json& j, const char* key, double fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

std::string TextOr(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

Json SignalToJson(const SignalValue& s) {
  Json j = {{"signal", s.signal},
            {"statistic", s.statistic},
            {"value", Num(s.value)},
            {"level", LevelName(s.level)},
            {"threshold", Num(s.threshold)},
            {"reference", Num(s.reference)},
            {"live", Num(s.live)},
            {"n", s.n},
            {"scored", s.scored}};
  if (s.test_statistic >= 0) j["test_statistic"] = Num(s.test_statistic);
  if (s.p_value >= 0) j["p_value"] = Num(s.p_value);
  if (s.low >= 0) j["interval"] = {Num(s.low), Num(s.high)};
  if (!s.note.empty()) j["note"] = s.note;
  if (!s.examples.empty()) j["examples"] = s.examples;
  return j;
}

SignalValue SignalFromJson(const Json& j) {
  SignalValue s;
  s.signal = TextOr(j, "signal");
  s.statistic = TextOr(j, "statistic");
  s.value = NumOr(j, "value", 0);
  s.level = ParseLevel(TextOr(j, "level")).value_or(Level::kOk);
  s.threshold = NumOr(j, "threshold", 0);
  s.reference = NumOr(j, "reference", 0);
  s.live = NumOr(j, "live", 0);
  s.n = static_cast<int64_t>(NumOr(j, "n", 0));
  s.scored = j.value("scored", true);
  s.test_statistic = NumOr(j, "test_statistic", -1);
  s.p_value = NumOr(j, "p_value", -1);
  if (auto it = j.find("interval"); it != j.end() && it->is_array() && it->size() == 2) {
    s.low = (*it)[0].is_number() ? (*it)[0].get<double>() : -1;
    s.high = (*it)[1].is_number() ? (*it)[1].get<double>() : -1;
  }
  s.note = TextOr(j, "note");
  if (auto it = j.find("examples"); it != j.end() && it->is_array()) {
    for (const Json& e : *it) {
      if (e.is_string()) s.examples.push_back(e);
    }
  }
  return s;
}

}  // namespace

Json WindowReportToJson(const WindowReport& r) {
  Json signals = Json::array();
  for (const SignalValue& s : r.signals) signals.push_back(SignalToJson(s));
  Json by_status = Json::object();
  for (const auto& [k, v] : r.service.by_status) by_status[k] = v;
  Json j = {{"model", r.model_name},
            {"version", r.model_version},
            {"start_ms", r.start_ms},
            {"end_ms", r.end_ms},
            {"n", r.n},
            {"last_id", r.last_id},
            {"scored", r.scored},
            {"level", LevelName(r.level)},
            {"latency_ms",
             {{"p50", Num(r.latency_p50_ms)},
              {"p95", Num(r.latency_p95_ms)},
              {"p99", Num(r.latency_p99_ms)}}},
            {"kpis",
             {{"inspections", r.kpis.inspections},
              {"automated", r.kpis.automated},
              {"labelled", r.kpis.labelled},
              {"automation_rate", Num(r.kpis.automation_rate)},
              {"manual_review_rate", Num(r.kpis.manual_review_rate)},
              {"inspections_per_hour", Num(r.kpis.inspections_per_hour)},
              {"labelled_share", Num(r.kpis.labelled_share)}}},
            {"service",
             {{"known", r.service.known},
              {"requests", r.service.requests},
              {"errors_5xx", r.service.errors_5xx},
              {"errors_4xx", r.service.errors_4xx},
              {"by_status", by_status},
              {"log_written", r.service.log_written},
              {"log_dropped", r.service.log_dropped},
              {"throughput_rps", Num(r.service.throughput_rps)},
              {"queue_depth_max", r.service.queue_depth_max},
              {"resources", ResourceSampleToJson(r.service.resources)}}},
            {"signals", signals}};
  if (r.id) j["id"] = r.id;
  if (!r.note.empty()) j["note"] = r.note;
  return j;
}

Result<WindowReport> WindowReportFromJson(const Json& j) {
  if (!j.is_object()) return Status::Corruption("monitor window: not a JSON object");
  WindowReport r;
  r.id = static_cast<int64_t>(NumOr(j, "id", 0));
  r.model_name = TextOr(j, "model");
  r.model_version = static_cast<int>(NumOr(j, "version", 0));
  r.start_ms = static_cast<int64_t>(NumOr(j, "start_ms", 0));
  r.end_ms = static_cast<int64_t>(NumOr(j, "end_ms", 0));
  r.n = static_cast<int64_t>(NumOr(j, "n", 0));
  r.last_id = TextOr(j, "last_id");
  r.scored = j.value("scored", false);
  r.level = ParseLevel(TextOr(j, "level")).value_or(Level::kOk);
  r.note = TextOr(j, "note");
  if (auto it = j.find("latency_ms"); it != j.end() && it->is_object()) {
    r.latency_p50_ms = NumOr(*it, "p50", 0);
    r.latency_p95_ms = NumOr(*it, "p95", 0);
    r.latency_p99_ms = NumOr(*it, "p99", 0);
  }
  if (auto it = j.find("kpis"); it != j.end() && it->is_object()) {
    r.kpis.inspections = static_cast<int64_t>(NumOr(*it, "inspections", 0));
    r.kpis.automated = static_cast<int64_t>(NumOr(*it, "automated", 0));
    r.kpis.labelled = static_cast<int64_t>(NumOr(*it, "labelled", 0));
    r.kpis.automation_rate = NumOr(*it, "automation_rate", 0);
    r.kpis.manual_review_rate = NumOr(*it, "manual_review_rate", 0);
    r.kpis.inspections_per_hour = NumOr(*it, "inspections_per_hour", 0);
    r.kpis.labelled_share = NumOr(*it, "labelled_share", 0);
  }
  if (auto it = j.find("service"); it != j.end() && it->is_object()) {
    const Json& s = *it;
    r.service.known = s.value("known", false);
    r.service.requests = static_cast<int64_t>(NumOr(s, "requests", 0));
    r.service.errors_5xx = static_cast<int64_t>(NumOr(s, "errors_5xx", 0));
    r.service.errors_4xx = static_cast<int64_t>(NumOr(s, "errors_4xx", 0));
    if (auto b = s.find("by_status"); b != s.end() && b->is_object()) {
      for (const auto& [k, v] : b->items()) {
        if (v.is_number()) r.service.by_status[k] = v.get<int64_t>();
      }
    }
    r.service.log_written = static_cast<int64_t>(NumOr(s, "log_written", 0));
    r.service.log_dropped = static_cast<int64_t>(NumOr(s, "log_dropped", 0));
    r.service.throughput_rps = NumOr(s, "throughput_rps", 0);
    r.service.queue_depth_max = static_cast<int64_t>(NumOr(s, "queue_depth_max", 0));
    if (auto res = s.find("resources"); res != s.end()) {
      r.service.resources = ResourceSampleFromJson(*res);
    }
  }
  if (auto it = j.find("signals"); it != j.end() && it->is_array()) {
    for (const Json& s : *it) {
      if (s.is_object()) r.signals.push_back(SignalFromJson(s));
    }
  }
  return r;
}

}  // namespace detops
