// The server's periodic samples of its counters and resources, and the
// service figures of a window taken from them (table service_samples).

#include <algorithm>

#include "monitor/evaluator.h"
#include "monitor/monitor_internal.h"

namespace detops {

Json ServiceSampleToJson(const ServiceSample& s) {
  Json by_status = Json::object();
  for (const auto& [status, n] : s.by_status) by_status[status] = n;
  return {{"at_ms", s.at_ms},
          {"instance", s.instance},
          {"model", s.model_name},
          {"version", s.model_version},
          {"requests", s.requests},
          {"by_status", by_status},
          {"log_written", s.log_written},
          {"log_dropped", s.log_dropped},
          {"queue_depth", s.queue_depth},
          {"connections", s.connections},
          {"resources", ResourceSampleToJson(s.resources)}};
}

ServiceSample ServiceSampleFromJson(const Json& j) {
  ServiceSample s;
  if (!j.is_object()) return s;
  auto num = [&](const char* key) -> int64_t {
    auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<int64_t>() : 0;
  };
  s.at_ms = num("at_ms");
  if (auto it = j.find("instance"); it != j.end() && it->is_string()) s.instance = *it;
  if (auto it = j.find("model"); it != j.end() && it->is_string()) s.model_name = *it;
  s.model_version = static_cast<int>(num("version"));
  s.requests = num("requests");
  if (auto it = j.find("by_status"); it != j.end() && it->is_object()) {
    for (const auto& [k, v] : it->items()) {
      if (v.is_number()) s.by_status[k] = v.get<int64_t>();
    }
  }
  s.log_written = num("log_written");
  s.log_dropped = num("log_dropped");
  s.queue_depth = num("queue_depth");
  s.connections = num("connections");
  if (auto it = j.find("resources"); it != j.end()) s.resources = ResourceSampleFromJson(*it);
  return s;
}

Status RecordServiceSample(Workspace& ws, const ServiceSample& s) {
  return ws.db().Exec(
      "INSERT INTO service_samples (at_ms, instance, model_name, model_version, sample_json) "
      "VALUES (?, ?, ?, ?, ?)",
      {s.at_ms, s.instance, s.model_name, int64_t{s.model_version}, ServiceSampleToJson(s).dump()});
}

Result<std::vector<ServiceSample>> ListServiceSamples(Workspace& ws, const std::string& model_name,
                                                      int64_t from_ms, int64_t to_ms) {
  ASSIGN_OR_RETURN(auto rows, ws.db().Query("SELECT sample_json FROM service_samples WHERE "
                                            "model_name = ? AND at_ms >= ? AND at_ms <= ? "
                                            "ORDER BY at_ms, id",
                                            {model_name, from_ms, to_ms}));
  std::vector<ServiceSample> out;
  out.reserve(rows.size());
  for (const SqlRow& r : rows) {
    ASSIGN_OR_RETURN(Json j, ParseJson(r.Text(0), "service sample"));
    out.push_back(ServiceSampleFromJson(j));
  }
  return out;
}

ServiceFigures ServiceFiguresBetween(const std::vector<ServiceSample>& samples, int64_t start_ms,
                                     int64_t end_ms) {
  ServiceFigures f;
  // Per server instance (counters restart with the process): the last
  // sample at or before the window's start (else the first), and the first
  // at or after its end (else the last): a window shorter than the sampling
  // period still lies between two samples (the server samples before each
  // monitor run).
  std::map<std::string, std::pair<const ServiceSample*, const ServiceSample*>> per_instance;
  for (const ServiceSample& s : samples) {
    auto& [from, to] = per_instance[s.instance];
    if (s.at_ms <= start_ms || from == nullptr) from = &s;
    if (to == nullptr || to->at_ms < end_ms) to = &s;
    if (s.at_ms <= end_ms && s.at_ms >= start_ms) {
      f.queue_depth_max = std::max(f.queue_depth_max, s.queue_depth);
    }
  }
  int64_t span_ms = 0;
  for (const auto& [instance, pair] : per_instance) {
    const auto [from, to] = pair;
    if (from == nullptr || to == nullptr || to == from || to->at_ms <= from->at_ms) continue;
    f.known = true;
    f.requests += std::max<int64_t>(0, to->requests - from->requests);
    f.log_dropped += std::max<int64_t>(0, to->log_dropped - from->log_dropped);
    f.log_written += std::max<int64_t>(0, to->log_written - from->log_written);
    for (const auto& [status, n] : to->by_status) {
      auto it = from->by_status.find(status);
      const int64_t d = std::max<int64_t>(0, n - (it == from->by_status.end() ? 0 : it->second));
      if (d == 0) continue;
      f.by_status[status] += d;
      if (!status.empty() && status[0] == '5') f.errors_5xx += d;
      if (!status.empty() && status[0] == '4') f.errors_4xx += d;
    }
    span_ms = std::max(span_ms, to->at_ms - from->at_ms);
    f.resources = to->resources;
  }
  if (span_ms > 0) f.throughput_rps = static_cast<double>(f.requests) * 1000.0 / span_ms;
  return f;
}

}  // namespace detops
