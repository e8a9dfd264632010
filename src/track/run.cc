// Run value types: status names, the environment, JSON forms.

#include <sys/utsname.h>

#include <cmath>
#include <thread>

#include "track/track.h"

namespace detops {
namespace {

// NaN and infinities have no JSON number: null.
Json Number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

}  // namespace

const char* RunStatusName(RunStatus s) {
  switch (s) {
    case RunStatus::kRunning:
      return "running";
    case RunStatus::kFinished:
      return "finished";
    case RunStatus::kFailed:
      return "failed";
    case RunStatus::kKilled:
      return "killed";
  }
  return "running";
}

std::optional<RunStatus> ParseRunStatus(std::string_view s) {
  for (RunStatus r :
       {RunStatus::kRunning, RunStatus::kFinished, RunStatus::kFailed, RunStatus::kKilled}) {
    if (s == RunStatusName(r)) return r;
  }
  return std::nullopt;
}

RunEnvironment CaptureEnvironment(std::string git_commit, std::string detops_version,
                                  std::string device, std::string torch_version, int threads) {
  RunEnvironment e;
  e.git_commit = std::move(git_commit);
  e.detops_version = std::move(detops_version);
  e.device = std::move(device);
  e.torch_version = std::move(torch_version);
  e.threads = threads;
  e.cpus = static_cast<int>(std::thread::hardware_concurrency());
  struct utsname u {};
  if (::uname(&u) == 0) {
    e.host = u.nodename;
    e.os = std::string(u.sysname) + " " + u.release + " " + u.machine;
  }
  return e;
}

Json EnvironmentToJson(const RunEnvironment& e) {
  return {{"git_commit", e.git_commit},
          {"host", e.host},
          {"os", e.os},
          {"device", e.device},
          {"torch_version", e.torch_version},
          {"detops_version", e.detops_version},
          {"threads", e.threads},
          {"cpus", e.cpus}};
}

RunEnvironment EnvironmentFromJson(const Json& j) {
  RunEnvironment e;
  if (!j.is_object()) return e;
  auto str = [&](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto num = [&](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_number_integer() ? it->get<int>() : 0;
  };
  e.git_commit = str("git_commit");
  e.host = str("host");
  e.os = str("os");
  e.device = str("device");
  e.torch_version = str("torch_version");
  e.detops_version = str("detops_version");
  e.threads = num("threads");
  e.cpus = num("cpus");
  return e;
}

Json RunToJson(const RunInfo& r) {
  Json metrics = Json::object();
  for (const auto& [k, v] : r.final_metrics) metrics[k] = Number(v);
  Json artifacts = Json::array();
  for (const Artifact& a : r.artifacts) {
    artifacts.push_back(
        {{"name", a.name}, {"blob", a.blob}, {"size", a.size}, {"created_at", a.created_at}});
  }
  auto or_null = [](const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); };
  return {{"id", r.id},
          {"name", r.name},
          {"kind", r.kind},
          {"status", RunStatusName(r.status)},
          {"created_at", r.created_at},
          {"ended_at", or_null(r.ended_at)},
          {"dataset", or_null(r.dataset_version)},
          {"parent", or_null(r.parent_run)},
          {"params", r.params},
          {"tags", r.tags},
          {"metrics", metrics},
          {"env", EnvironmentToJson(r.env)},
          {"artifacts", artifacts}};
}

Json MetricSummaryToJson(const MetricSummary& s) {
  return {{"key", s.key},           {"points", s.count},    {"last_step", s.last_step},
          {"last", Number(s.last)}, {"min", Number(s.min)}, {"max", Number(s.max)}};
}

}  // namespace detops
