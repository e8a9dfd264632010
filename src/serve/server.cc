// Server life cycle: model host, batcher, prediction log, metrics, the HTTP
// listener, graceful stop.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <filesystem>

#include "core/memory.h"
#include "serve/server_internal.h"

namespace detops {
namespace serve {
namespace {
// A request runs on one connection thread from pre- to post-routing.
thread_local Clock::time_point t_request_start;
thread_local bool t_request_timed = false;
}  // namespace

void SendError(httplib::Response& res, int status, const std::string& code,
               const std::string& message) {
  res.status = status;
  Json j = {{"error", {{"code", code}, {"message", message}}}};
  res.set_content(j.dump(), "application/json");
}

int HttpStatusFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidInput:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
      return 409;
    case StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

const char* ErrorCodeFor(int status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 401:
      return "unauthenticated";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 409:
      return "conflict";
    case 413:
      return "payload_too_large";
    case 415:
      return "unsupported_media_type";
    case 503:
      return "unavailable";
    default:
      return status >= 500 ? "internal" : "error";
  }
}

// Debian's cpp-httplib is a compiled library built with a listen backlog of
// 5: at 64 connections opening at once, the kernel drops SYNs and clients
// see read errors. listen() again on the bound socket raises the backlog.
static void RaiseListenBacklog(int port) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    int fd = 0;
    try {
      fd = std::stoi(e.path().filename().string());
    } catch (const std::exception&) {
      continue;
    }
    int accepting = 0;
    socklen_t len = sizeof accepting;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || !accepting) continue;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
    int bound = addr.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port)
                : addr.ss_family == AF_INET6
                    ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                    : -1;
    if (bound == port) ::listen(fd, 1024);
  }
}

ServerImpl::~ServerImpl() {
  Stop();
  if (log_file_) std::fclose(log_file_);
}

void ServerImpl::Log(const std::string& line) {
  std::lock_guard lock(log_mu_);
  FILE* f = log_file_ ? log_file_ : stderr;
  std::fprintf(f, "%s %s\n", NowIso8601().c_str(), line.c_str());
  std::fflush(f);
}

Status ServerImpl::InitMetrics() {
  MetricsRegistry& r = m_.registry;
  ASSIGN_OR_RETURN(m_.requests,
                   r.AddCounter("detops_http_requests_total",
                                "HTTP requests by route and status code", {"route", "status"}));
  ASSIGN_OR_RETURN(m_.request_seconds,
                   r.AddHistogram("detops_http_request_duration_seconds",
                                  "Time from the request's arrival to its response, by route",
                                  {"route"}, LatencyBuckets()));
  ASSIGN_OR_RETURN(auto queue, r.AddHistogram("detops_queue_wait_seconds",
                                              "Time an image waited in the batching queue", {},
                                              LatencyBuckets()));
  m_.queue_seconds = &queue->With({});
  ASSIGN_OR_RETURN(auto infer, r.AddHistogram("detops_inference_seconds",
                                              "Time to run one batch: forward pass and NMS, and "
                                              "the decoding when the batch worker decodes",
                                              {}, LatencyBuckets()));
  m_.inference_seconds = &infer->With({});
  ASSIGN_OR_RETURN(
      auto decode,
      r.AddHistogram("detops_decode_seconds",
                     "Image decode time (on the connection thread or the batch worker)", {},
                     LatencyBuckets()));
  m_.decode_seconds = &decode->With({});
  ASSIGN_OR_RETURN(auto batch, r.AddHistogram("detops_batch_size", "Images per model batch", {},
                                              BatchSizeBuckets(o_.batch_max_size)));
  m_.batch_size = &batch->With({});
  ASSIGN_OR_RETURN(auto depth,
                   r.AddGauge("detops_queue_depth", "Images waiting for the model now"));
  depth->SetCallback(
      {}, [this] { return batcher_ ? static_cast<double>(batcher_->queue_depth()) : 0.0; });
  ASSIGN_OR_RETURN(
      m_.model_info,
      r.AddGauge("detops_model_info", "The model version being served (value 1) and its precision",
                 {"model", "version", "precision"}));
  ASSIGN_OR_RETURN(m_.detections, r.AddCounter("detops_detections_total",
                                               "Detections returned, by class", {"class"}));
  ASSIGN_OR_RETURN(auto low, r.AddCounter("detops_low_confidence_predictions_total",
                                          "Predictions with a detection scored below the "
                                          "low-confidence threshold"));
  m_.low_confidence = &low->With({});
  ASSIGN_OR_RETURN(auto preds, r.AddCounter("detops_predictions_total", "Images predicted"));
  m_.predictions = &preds->With({});
  ASSIGN_OR_RETURN(auto swaps,
                   r.AddCounter("detops_model_swaps_total", "Hot swaps to a new model version"));
  m_.swaps = &swaps->With({});
  ASSIGN_OR_RETURN(auto full, r.AddCounter("detops_queue_rejected_total",
                                           "Images refused with 503 because the queue was full"));
  m_.rejected_full = &full->With({});
  ASSIGN_OR_RETURN(auto written, r.AddGauge("detops_prediction_log_written_total",
                                            "Prediction log rows written"));
  written->SetCallback({}, [this] { return log_ ? static_cast<double>(log_->written()) : 0.0; });
  ASSIGN_OR_RETURN(auto dropped,
                   r.AddGauge("detops_prediction_log_dropped_total",
                              "Prediction log rows dropped because the store fell behind"));
  dropped->SetCallback({}, [this] { return log_ ? static_cast<double>(log_->dropped()) : 0.0; });
  ASSIGN_OR_RETURN(auto load_failed,
                   r.AddGauge("detops_model_load_failures",
                              "New versions that failed to load (the old one kept serving)"));
  load_failed->SetCallback(
      {}, [this] { return host_ ? static_cast<double>(host_->load_failures()) : 0.0; });
  ASSIGN_OR_RETURN(auto ready, r.AddGauge("detops_ready", "1 when the server takes predictions"));
  ready->SetCallback({}, [this] { return ready_ ? 1.0 : 0.0; });
  // Prometheus' conventional process gauge, split by kind: anonymous memory
  // is what the server allocated; file pages are mapped library code.
  ASSIGN_OR_RETURN(auto resident,
                   r.AddGauge("detops_process_resident_memory_bytes",
                              "Resident memory of this process by kind (anon: heap, stacks; "
                              "file: mapped code)",
                              {"kind"}));
  resident->SetCallback({"anon"}, [] {
    auto u = ReadMemoryUsage();
    return u.ok() ? static_cast<double>(u->anon_bytes) : 0.0;
  });
  resident->SetCallback({"file"}, [] {
    auto u = ReadMemoryUsage();
    return u.ok() ? static_cast<double>(u->file_bytes) : 0.0;
  });
  return Status::Ok();
}

Result<ServingPlan> PlanServing(const ServerOptions& o, int cores) {
  ServingPlan plan;
  plan.workers = std::max(1, o.workers);
  plan.threads = ResolveServeThreads(o, cores);
  if (o.decode_on == "worker" || o.decode_on == "connection") {
    plan.decode_in_worker = o.decode_on == "worker";
  } else if (o.decode_on == "auto") {
    plan.decode_in_worker = plan.workers * plan.threads >= std::max(1, cores);
  } else {
    return Status::InvalidInput("decode_on '" + o.decode_on +
                                "': expected auto, worker or connection");
  }
  // Resolved once: every version this server loads runs in it.
  ASSIGN_OR_RETURN(plan.precision, ResolvePrecision(o.precision, o.device));
  return plan;
}

Status ServerImpl::Init() {
  RETURN_IF_ERROR(OpenEventLog());
  RETURN_IF_ERROR(InitMetrics());
  RETURN_IF_ERROR(InitMonitorMetrics());
  RETURN_IF_ERROR(InitRolloutMetrics());
  ASSIGN_OR_RETURN(registry_, Registry::Open(ws_));
  tokens_ = std::make_unique<TokenCache>(ws_);
  ASSIGN_OR_RETURN(log_, PredictionLog::Open(ws_, o_.log));
  ASSIGN_OR_RETURN(plan_, PlanServing(o_, static_cast<int>(std::thread::hardware_concurrency())));
  RETURN_IF_ERROR(StartModelHost());
  RETURN_IF_ERROR(StartRollouts());
  StartBatcher();
  jobs_ = std::make_unique<JobRunner>(JobRunnerOptions{}, [this](const JobSnapshot& job) {
    Log("job " + job.id + " " + job.kind + " " + job.subject + ": " + JobStateName(job.state) +
        (job.error.ok() ? "" : " (" + job.error.message() + ")"));
  });
  RETURN_IF_ERROR(CreateHttpServer());
  AddRoutes();
  RETURN_IF_ERROR(StartMonitor());
  RETURN_IF_ERROR(Listen());
  ready_ = true;
  Log(std::string("listening on ") + (o_.tls_cert.empty() ? "http" : "https") + "://" + o_.host +
      ":" + std::to_string(port_) + " model " + host_->Current()->version.Ref() + " batch " +
      std::to_string(o_.batch_max_size) + " delay " + std::to_string(o_.batch_max_delay_us) +
      " us queue " + std::to_string(o_.queue_max) + " workers " + std::to_string(plan_.workers) +
      " x " + std::to_string(plan_.threads) + " threads, " + plan_.precision + ", images decoded " +
      (plan_.decode_in_worker ? "by the batch workers" : "on the connection threads"));
  return Status::Ok();
}

Status ServerImpl::OpenEventLog() {
  if (o_.log_file.empty()) return Status::Ok();
  log_file_ = std::fopen(o_.log_file.c_str(), "a");
  if (!log_file_) return Status::IOError("cannot open log file " + o_.log_file);
  return Status::Ok();
}

Status ServerImpl::StartModelHost() {
  ModelHostOptions ho;
  ho.name = o_.model;
  ho.alias = o_.alias;
  ho.version = o_.version;
  ho.detector.device = o_.device;
  ho.detector.precision = plan_.precision;
  ho.replicas = plan_.workers;
  ho.poll_ms = o_.poll_ms;
  const std::string precision = plan_.precision;
  ASSIGN_OR_RETURN(
      host_, ModelHost::Start(
                 ws_, ho, [this, precision](const ModelVersion* from, const ModelVersion& to) {
                   if (from) {
                     m_.model_info->SetCallback(
                         {from->name, std::to_string(from->version), precision}, nullptr);
                     m_.swaps->Inc();
                     ++swaps_;
                     Log("model " + from->Ref() + " -> " + to.Ref() + " (hot swap)");
                     ReleaseStartupPages();
                   } else {
                     Log("model " + to.Ref() + " loaded");
                   }
                   m_.model_info->SetCallback({to.name, std::to_string(to.version), precision},
                                              [] { return 1.0; });
                 }));
  return Status::Ok();
}

void ServerImpl::StartBatcher() {
  BatcherOptions bo;
  bo.batch_max_size = o_.batch_max_size;
  bo.batch_max_delay_us = o_.batch_max_delay_us;
  bo.queue_max = o_.queue_max;
  bo.workers = plan_.workers;  // each with its own model replica
  bo.lent_workers = o_.lend_caller_thread ? 1 : 0;
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  if (!plan_.decode_in_worker && cores > 1) decode_pool_ = std::make_unique<ThreadPool>(cores - 1);
  batcher_ = std::make_unique<Batcher<PredictJob, PredictOutcome>>(
      bo, [this](std::vector<PredictJob>& jobs) { return RunBatch(jobs); },
      [this](const BatchInfo& info) {
        m_.batch_size->Observe(static_cast<double>(info.size));
        m_.inference_seconds->Observe(info.run_time.count() / 1e6);
        for (auto w : info.queue_waits) m_.queue_seconds->Observe(w.count() / 1e6);
      });
}

Status ServerImpl::CreateHttpServer() {
  if (!o_.tls_cert.empty() || !o_.tls_key.empty()) {
    if (o_.tls_cert.empty() || o_.tls_key.empty()) {
      return Status::InvalidInput("TLS needs both --tls-cert and --tls-key");
    }
    auto tls = std::make_unique<httplib::SSLServer>(o_.tls_cert.c_str(), o_.tls_key.c_str());
    if (!tls->is_valid()) {
      return Status::InvalidInput("cannot use the TLS certificate " + o_.tls_cert + " and key " +
                                  o_.tls_key);
    }
    http_ = std::move(tls);
  } else {
    http_ = std::make_unique<httplib::Server>();
  }
  const int pool = std::max(2, o_.http_threads);
  http_->new_task_queue = [pool] { return new httplib::ThreadPool(static_cast<size_t>(pool)); };
  http_->set_payload_max_length(o_.max_body_bytes);
  // Headers and body leave in two writes; without TCP_NODELAY, Nagle's
  // algorithm and the client's delayed ACK hold the body back ~40 ms on a
  // kept-alive connection.
  http_->set_tcp_nodelay(true);
  http_->set_keep_alive_max_count(100000);
  http_->set_keep_alive_timeout(30);
  http_->set_read_timeout(30, 0);
  http_->set_write_timeout(30, 0);
  return Status::Ok();
}

Status ServerImpl::Listen() {
  if (o_.port == 0) {
    port_ = http_->bind_to_any_port(o_.host);
  } else {
    port_ = http_->bind_to_port(o_.host, o_.port) ? o_.port : -1;
  }
  if (port_ <= 0) {
    return Status::Unavailable("cannot listen on " + o_.host + ":" + std::to_string(o_.port) +
                               " (in use, or not an address of this machine)");
  }
  RaiseListenBacklog(port_);
  ReleaseStartupPages();
  listener_ = std::thread([this] { http_->listen_after_bind(); });
  return Status::Ok();
}

void ServerImpl::ReleaseStartupPages() {
  if (!o_.release_cold_pages) return;
  auto before = ReadMemoryUsage();
  auto released = ReleaseColdMappedPages();
  auto after = ReadMemoryUsage();
  if (!released.ok() || !before.ok() || !after.ok()) return;  // not Linux: nothing to do
  Log("released " + std::to_string(released->bytes >> 20) + " MiB of start-up code pages in " +
      std::to_string(released->mappings) + " mappings: resident " +
      std::to_string(before->resident_bytes >> 20) + " -> " +
      std::to_string(after->resident_bytes >> 20) + " MiB (anonymous " +
      std::to_string(after->anon_bytes >> 20) + " MiB)");
}

std::span<const ServerRoute> ServerImpl::Routes() {
  static const ServerRoute kRoutes[] = {
      {"GET", "/healthz", &ServerImpl::Healthz},
      {"GET", "/readyz", &ServerImpl::Readyz},
      {"GET", "/metrics", &ServerImpl::MetricsPage},
      {"POST", "/v1/predict", &ServerImpl::Predict},
      {"POST", "/v1/predict/batch", &ServerImpl::PredictBatch},
      {"POST", "/v1/feedback", &ServerImpl::Feedback},
      {"GET", "/v1/models", &ServerImpl::Models},
      {"POST", "/v1/models/{name}/versions/{version}/promote", &ServerImpl::Promote},
      {"POST", "/v1/models/{name}/rollback", &ServerImpl::Rollback},
      {"GET", "/v1/jobs/{id}", &ServerImpl::GetJob},
      {"GET", "/v1/monitor/status", &ServerImpl::MonitorStatusPage},
      {"GET", "/v1/alerts", &ServerImpl::AlertsPage},
  };
  return kRoutes;
}

void ServerImpl::AddRoutes() {
  httplib::Server& s = *http_;
  // Every response is counted and timed by its route's template; unmatched
  // paths share one label so that scanners cannot blow up the metric's
  // cardinality.
  s.set_pre_routing_handler([this](const httplib::Request&, httplib::Response&) {
    t_request_start = Clock::now();
    t_request_timed = true;
    ++requests_;
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.set_post_routing_handler([this](const httplib::Request&, httplib::Response& res) {
    const std::string route(TakeRouteLabel());
    m_.requests->With({route, std::to_string(res.status)}).Inc();
    if (route == "/v1/predict" || route == "/v1/predict/batch") CountPredictStatus(res.status);
    if (t_request_timed) {
      t_request_timed = false;
      m_.request_seconds->With({route}).Observe(
          std::chrono::duration<double>(Clock::now() - t_request_start).count());
    }
    if (res.status >= 500) ++errors_;
  });
  // Errors httplib produces itself (404, 413, 400 on a bad request line)
  // get the same JSON body as ours.
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = res.status == 413   ? "the body exceeds the server's size limit"
                          : res.status == 404 ? "no such route"
                                              : "the request could not be handled";
    SendError(res, res.status, ErrorCodeFor(res.status), message);
  });
  s.set_exception_handler(
      [this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        Log("internal error on " + req.path + ": " + what);
        SendError(res, 500, "internal", "internal error: " + what);
      });
  for (const ServerRoute& r : Routes()) {
    AddRoute(s, r.method, r.path,
             [this, h = r.handle](const httplib::Request& q, httplib::Response& a) {
               (this->*h)(q, a);
             });
  }
}

void ServerImpl::Healthz(const httplib::Request&, httplib::Response& res) {
  res.set_content(R"({"status":"ok"})", "application/json");
}

void ServerImpl::Readyz(const httplib::Request&, httplib::Response& res) {
  auto m = host_ ? host_->Current() : nullptr;
  if (!ready_ || !m) {
    SendError(res, 503, "unavailable", "not ready: no model loaded or shutting down");
    return;
  }
  Json j = {{"ready", true}, {"model", m->version.Ref()}};
  res.set_content(j.dump(), "application/json");
}

void ServerImpl::MetricsPage(const httplib::Request&, httplib::Response& res) {
  res.set_content(m_.registry.Render(), kPrometheusContentType);
}

void ServerImpl::Stop() {
  {
    std::unique_lock lock(stop_mu_);
    if (stopping_) {
      stopped_cv_.wait(lock, [this] { return stopped_; });
      return;
    }
    stopping_ = true;
  }
  ready_ = false;
  // No new connections; the handlers running finish (their images are in
  // the batcher, which still runs), then the listener returns.
  if (http_) http_->stop();
  if (listener_.joinable()) listener_.join();
  StopMonitor();
  StopRollouts();
  // A running job (a re-evaluation) finishes; queued ones fail. Before the
  // model host goes: a promotion that applied asks it to swap.
  if (jobs_) jobs_->Shutdown();
  if (batcher_) batcher_->Shutdown();
  if (log_) {
    Status s = log_->Flush();
    if (!s.ok()) Log("prediction log: " + s.message());
  }
  host_.reset();
  Log("stopped after " + std::to_string(requests_.load()) + " requests, " +
      std::to_string(predictions_.load()) + " predictions");
  {
    std::lock_guard lock(stop_mu_);
    stopped_ = true;
  }
  stopped_cv_.notify_all();
}

void ServerImpl::Wait() {
  if (o_.lend_caller_thread && batcher_) batcher_->Work();  // until Stop drains it
  std::unique_lock lock(stop_mu_);
  stopped_cv_.wait(lock, [this] { return stopped_; });
}

ServerStats ServerImpl::stats() const {
  ServerStats s;
  s.requests = requests_;
  s.predictions = predictions_;
  s.errors = errors_;
  s.swaps = swaps_;
  if (log_) {
    s.log_written = log_->written();
    s.log_dropped = log_->dropped();
  }
  return s;
}

}  // namespace serve

int ResolveServeThreads(const ServerOptions& o, int cores) {
  if (o.threads > 0) return o.threads;
  return std::max(1, cores / std::max(1, o.workers));
}

Result<std::unique_ptr<Server>> Server::Start(Workspace& ws, const ServerOptions& options) {
  if (options.model.empty()) return Status::InvalidInput("serve needs a model name (--model)");
  auto s = std::make_unique<serve::ServerImpl>(ws, options);
  Status st = s->Init();
  if (!st.ok()) {
    s->Stop();
    return st;
  }
  return std::unique_ptr<Server>(std::move(s));
}

}  // namespace detops
