// Monitoring inside the server: one background thread samples the
// server's counters and resources (for /metrics and the store's service
// samples) and runs the monitor over the prediction log every few seconds
// or requests; the drift scores, levels and KPIs it finds become gauges.
// Nothing here runs on a request's thread but two counter updates.

#include <time.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "serve/server_internal.h"

namespace detops::serve {
namespace {

int64_t NowMsSystem() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Established TCP connections whose local port is `port` (/proc/net/tcp and
// tcp6: hex local address:port, state 01 = ESTABLISHED).
int64_t CountEstablished(int port) {
  int64_t n = 0;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      if (!(fields >> slot >> local >> remote >> state)) continue;
      const auto colon = local.rfind(':');
      if (colon == std::string::npos || state != "01") continue;
      if (std::stoi(local.substr(colon + 1), nullptr, 16) == port) ++n;
    }
  }
  return n;
}

// CPU time of the calling thread, in seconds.
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

std::string Instance() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid());
}

}  // namespace

Status ServerImpl::InitMonitorMetrics() {
  MetricsRegistry& r = m_.registry;
  ASSIGN_OR_RETURN(drift_score_,
                   r.AddGauge("detops_drift_score",
                              "The monitor's latest value of each signal for the served model "
                              "(PSI, MMD^2, rates; see docs/monitoring.md)",
                              {"signal"}));
  ASSIGN_OR_RETURN(auto level, r.AddGauge("detops_monitor_level",
                                          "The served model's monitoring level: 0 ok, 1 warn, 2 "
                                          "retrain, 3 escalate"));
  monitor_level_ = &level->With({});
  ASSIGN_OR_RETURN(auto automation,
                   r.AddGauge("detops_automation_rate",
                              "Share of the last window's inspections settled without a person"));
  automation_rate_ = &automation->With({});
  ASSIGN_OR_RETURN(auto alerts,
                   r.AddGauge("detops_alerts_active", "Open or acknowledged monitoring alerts"));
  active_alerts_ = &alerts->With({});
  // What monitoring costs: the monitor thread's CPU time (sampling, the
  // service samples, scoring windows, alerts). Divided by
  // detops_predictions_total it is the cost per request
  // (bench/monitor_overhead.sh).
  ASSIGN_OR_RETURN(auto cpu, r.AddGauge("detops_monitor_cpu_seconds_total",
                                        "CPU time the monitor thread has used"));
  cpu->SetCallback({}, [this] { return monitor_cpu_seconds_.load(); });
  ASSIGN_OR_RETURN(resource_gauges_,
                   r.AddGauge("detops_resource",
                              "Resource utilisation sampled by the server: process_cpu_percent "
                              "(100 = one core), process_cpu_seconds, process_threads, "
                              "process_open_fds, open_connections, host_load1, host_load5, "
                              "host_memory_available_bytes, host_memory_total_bytes, host_cores",
                              {"name"}));
  return Status::Ok();
}

Status ServerImpl::StartMonitor() {
  if (!o_.monitor) return Status::Ok();
  MonitorOptions mo;
  mo.policy = o_.monitor_policy;
  mo.model = o_.model;
  mo.alias = o_.alias;
  // A server pinned to one version has no alias to move back.
  mo.act = o_.version == 0;
  mo.serving_precision = plan_.precision;
  ASSIGN_OR_RETURN(monitor_, Monitor::Open(ws_, std::move(mo)));
  monitor_thread_ = std::thread([this] { MonitorLoop(); });
  return Status::Ok();
}

void ServerImpl::StopMonitor() {
  {
    std::lock_guard lock(monitor_mu_);
    monitor_stop_ = true;
  }
  monitor_cv_.notify_all();
  if (monitor_thread_.joinable()) monitor_thread_.join();
}

void ServerImpl::CountPredictStatus(int status) {
  ++predict_requests_;
  std::lock_guard lock(status_mu_);
  ++predict_status_[std::to_string(status)];
}

void ServerImpl::NotePrediction() {
  if (!monitor_ || o_.monitor_every_requests <= 0) return;
  if (++since_tick_ % o_.monitor_every_requests == 0) {
    {
      std::lock_guard lock(monitor_mu_);
      monitor_wake_ = true;
    }
    monitor_cv_.notify_one();
  }
}

void ServerImpl::MonitorLoop() {
  using std::chrono::seconds;
  auto next_sample = Clock::now();
  auto next_tick = Clock::now() + seconds(std::max(1, o_.monitor_every_s));
  for (;;) {
    bool woken = false;
    {
      std::unique_lock lock(monitor_mu_);
      monitor_cv_.wait_until(lock, std::min(next_sample, next_tick),
                             [this] { return monitor_stop_ || monitor_wake_; });
      if (monitor_stop_) return;
      woken = monitor_wake_;
      monitor_wake_ = false;
    }
    const auto now = Clock::now();
    const double cpu0 = ThreadCpuSeconds();
    if (now >= next_sample || woken) {
      SampleService();
      next_sample = now + seconds(std::max(1, o_.sample_every_s));
    }
    if (now >= next_tick || woken) {
      RunMonitorTick();
      next_tick = Clock::now() + seconds(std::max(1, o_.monitor_every_s));
    }
    monitor_cpu_seconds_.store(monitor_cpu_seconds_.load() + ThreadCpuSeconds() - cpu0);
  }
}

void ServerImpl::SampleService() {
  resources_ = SampleResources(resources_.at_ms ? &resources_ : nullptr);
  ServiceSample s;
  s.at_ms = NowMsSystem();
  s.instance = Instance();
  auto current = host_ ? host_->Current() : nullptr;
  s.model_name = o_.model;
  s.model_version = current ? current->version.version : 0;
  s.requests = predict_requests_;
  {
    std::lock_guard lock(status_mu_);
    s.by_status = predict_status_;
  }
  s.log_written = log_ ? log_->written() : 0;
  s.log_dropped = log_ ? log_->dropped() : 0;
  s.queue_depth = batcher_ ? static_cast<int64_t>(batcher_->queue_depth()) : 0;
  s.connections = CountEstablished(port_);
  s.resources = resources_;
  const ResourceSample& r = resources_;
  auto set = [this](const char* name, double v) { resource_gauges_->With({name}).Set(v); };
  set("process_cpu_percent", r.cpu_percent);
  set("process_cpu_seconds", r.cpu_seconds);
  set("process_threads", r.threads);
  set("process_open_fds", r.open_fds);
  set("open_connections", static_cast<double>(s.connections));
  set("host_load1", r.load1);
  set("host_load5", r.load5);
  set("host_memory_available_bytes", static_cast<double>(r.mem_available_bytes));
  set("host_memory_total_bytes", static_cast<double>(r.mem_total_bytes));
  set("host_cores", r.cores);
  if (!monitor_) return;
  Status st = RecordServiceSample(ws_, s);
  if (!st.ok()) Log("monitor: service sample: " + st.message());
}

void ServerImpl::RunMonitorTick() {
  if (!monitor_) return;
  // The windows must see every prediction answered so far.
  if (log_) {
    Status f = log_->Flush();
    if (!f.ok()) Log("monitor: prediction log: " + f.message());
  }
  auto tick = monitor_->Tick(NowMsSystem());
  if (!tick.ok()) {
    Log("monitor: " + tick.status().message());
    return;
  }
  for (const WindowReport& w : tick->windows) {
    Log("monitor: window of " + std::to_string(w.n) + " predictions of " + w.model_name + "@" +
        std::to_string(w.model_version) + ": " + LevelName(w.level) +
        (w.note.empty() ? "" : " (" + w.note + ")"));
    if (!w.scored) continue;
    for (const SignalValue& s : w.signals) {
      if (s.scored) drift_score_->With({s.signal}).Set(s.value);
    }
    monitor_level_->Set(static_cast<double>(w.level));
    automation_rate_->Set(w.kpis.automation_rate);
  }
  for (const Alert& a : tick->alerts) {
    Log("monitor: alert #" + std::to_string(a.id) + " " + a.kind + " " + a.signal + " " +
        LevelName(a.level) + " " + a.state + ": " + a.message);
  }
  for (const std::string& action : tick->actions) Log("monitor: " + action);
  auto active = ListAlerts(ws_, {o_.model, "active", "", 0});
  if (active.ok()) active_alerts_->Set(static_cast<double>(active->size()));
}

void ServerImpl::MonitorStatusPage(const httplib::Request& req, httplib::Response& res) {
  if (o_.tokens_for_reads && !Authorize(req, res, TokenRole::kReader, nullptr)) return;
  auto status = GetMonitorStatus(ws_, o_.model);
  if (!status.ok()) return SendStatus(res, status.status());
  Json models = Json::array();
  for (const MonitorStatus& s : *status) models.push_back(MonitorStatusToJson(s));
  Json j = {{"monitor", o_.monitor},
            {"policy", MonitorPolicyToJson(o_.monitor_policy)},
            {"models", models}};
  res.set_content(j.dump(), "application/json");
}

void ServerImpl::AlertsPage(const httplib::Request& req, httplib::Response& res) {
  if (o_.tokens_for_reads && !Authorize(req, res, TokenRole::kReader, nullptr)) return;
  AlertFilter f;
  f.model_name = req.has_param("model") ? req.get_param_value("model") : o_.model;
  f.state = req.has_param("state") ? req.get_param_value("state") : "active";
  if (f.state == "all") f.state.clear();
  if (!f.state.empty() && f.state != "active" && f.state != kAlertOpen &&
      f.state != kAlertAcknowledged && f.state != kAlertResolved) {
    return SendError(
        res, 400, "bad_request",
        "state '" + f.state + "': expected open, acknowledged, resolved, active or all");
  }
  f.signal = req.has_param("signal") ? req.get_param_value("signal") : "";
  f.limit = 100;
  if (req.has_param("limit")) {
    try {
      f.limit = std::stoi(req.get_param_value("limit"));
    } catch (const std::exception&) {
      return SendError(res, 400, "bad_request", "limit must be a whole number");
    }
  }
  auto alerts = ListAlerts(ws_, f);
  if (!alerts.ok()) return SendStatus(res, alerts.status());
  Json list = Json::array();
  for (const Alert& a : *alerts) list.push_back(AlertToJson(a));
  res.set_content(Json{{"alerts", list}}.dump(), "application/json");
}

}  // namespace detops::serve
