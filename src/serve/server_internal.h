#pragma once
// The server's parts, shared by server.cc (life cycle, metrics) and the
// route files. Internal to serve.

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <span>
#include <thread>

#include "data/image_profile.h"
#include "monitor/evaluator.h"
#include "serve/batcher.h"
#include "serve/decode.h"
#include "serve/jobs.h"
#include "serve/metrics.h"
#include "serve/model_host.h"
#include "serve/routes.h"
#include "serve/serve.h"

namespace detops::serve {

using Clock = std::chrono::steady_clock;

// One image through the batcher: decoded by the connection thread, or its
// bytes for the worker to decode (ServerOptions::decode_on).
struct PredictJob {
  std::string_view bytes;  // the request body; it outlives the job (its caller waits)
  DecodedImage image;      // pixels in image.bgr once decoded, with `profile`
  ImageProfile profile;
  double decode_ms = 0;
  PredictOptions options;
  bool decoded() const { return !image.bgr.empty(); }
  Clock::time_point queued;
};

struct PredictOutcome {
  std::shared_ptr<LoadedModel> model;  // the version that answered
  std::vector<Detection> detections;   // in `image.bgr` pixels
  std::vector<float> embedding;
  DecodedImage image;  // its size, format and scale (pixels dropped)
  ImageProfile profile;
  double decode_ms = 0, queue_ms = 0, inference_ms = 0;
  int batch_size = 0;
};

// Metrics the routes update (children looked up once).
struct ServerMetrics {
  MetricsRegistry registry;
  CounterFamily* requests = nullptr;           // route, status
  HistogramFamily* request_seconds = nullptr;  // route
  Histogram* queue_seconds = nullptr;
  Histogram* inference_seconds = nullptr;
  Histogram* decode_seconds = nullptr;
  Histogram* batch_size = nullptr;
  CounterFamily* detections = nullptr;  // class
  Counter* low_confidence = nullptr;
  Counter* predictions = nullptr;
  Counter* swaps = nullptr;
  Counter* rejected_full = nullptr;
  GaugeFamily* model_info = nullptr;  // model, version, precision
};

// How the server runs its models, resolved once from ServerOptions.
struct ServingPlan {
  int workers = 1;                // batch workers, one model replica each
  int threads = 1;                // intra-op threads per worker
  bool decode_in_worker = false;  // ServerOptions::decode_on, resolved
  std::string precision;          // "fp32" | "bf16"
};
// InvalidInput for a bad decode_on or precision; `cores` is the machine's.
Result<ServingPlan> PlanServing(const ServerOptions& o, int cores);

class ServerImpl;
// One row per route: registration and the metrics label both come from it.
struct ServerRoute {
  const char* method;  // "GET" | "POST"
  const char* path;    // template (serve/routes.h), also the metrics label
  void (ServerImpl::*handle)(const httplib::Request&, httplib::Response&);
};

class ServerImpl final : public Server {
 public:
  // Every route the server answers.
  static std::span<const ServerRoute> Routes();

  ServerImpl(Workspace& ws, ServerOptions options) : ws_(ws), o_(std::move(options)) {}
  ~ServerImpl() override;
  Status Init();
  int port() const override { return port_; }
  void Stop() override;
  void Wait() override;
  ServerStats stats() const override;

 private:
  // Init's steps, in order.
  Status OpenEventLog();
  Status InitMetrics();
  Status StartModelHost();
  void StartBatcher();
  Status CreateHttpServer();  // plain or TLS, with the connection limits
  void AddRoutes();
  Status Listen();  // binds and starts the listener thread
  void Log(const std::string& line);
  // Gives back the code pages only start-up or a model load touched.
  void ReleaseStartupPages();

  // Routes (routes_predict.cc, routes_admin.cc).
  void Predict(const httplib::Request& req, httplib::Response& res);
  void PredictBatch(const httplib::Request& req, httplib::Response& res);
  void Feedback(const httplib::Request& req, httplib::Response& res);
  void Models(const httplib::Request& req, httplib::Response& res);
  void Promote(const httplib::Request& req, httplib::Response& res);
  void Rollback(const httplib::Request& req, httplib::Response& res);
  void GetJob(const httplib::Request& req, httplib::Response& res);
  void Healthz(const httplib::Request& req, httplib::Response& res);
  void Readyz(const httplib::Request& req, httplib::Response& res);
  void MetricsPage(const httplib::Request& req, httplib::Response& res);
  void MonitorStatusPage(const httplib::Request& req, httplib::Response& res);
  void AlertsPage(const httplib::Request& req, httplib::Response& res);

  // Monitoring (server_monitor.cc): one background thread samples the
  // counters and resources and runs the monitor's ticks, off the request
  // path; Stop ends it before the prediction log's last flush.
  Status InitMonitorMetrics();
  Status StartMonitor();
  void StopMonitor();
  void MonitorLoop();
  void SampleService();
  void RunMonitorTick();
  // Counts a predict route's answer by status, for the service samples.
  void CountPredictStatus(int status);
  // Wakes the monitor every monitor_every_requests predictions.
  void NotePrediction();

  // Shared route helpers.
  // Checks the bearer token for `need`; on failure fills `res` (401/403).
  bool Authorize(const httplib::Request& req, httplib::Response& res, TokenRole need,
                 std::string* actor);
  // Checks one image (and decodes it when the connection decodes) for the
  // batcher; InvalidInput when it is not an acceptable image.
  Result<PredictJob> PrepareJob(std::string_view bytes, const PredictOptions& options);
  // Prepares, queues and waits for one image; the JSON of one result, or a
  // Status (InvalidInput: 400, Unavailable: 503).
  Result<Json> PredictOne(std::string_view bytes, const PredictOptions& options,
                          Clock::time_point start);
  // One image's JSON answer from its outcome; logs the prediction.
  Json Answer(PredictOutcome r, std::string_view bytes, Clock::time_point start);
  std::vector<Result<PredictOutcome>> RunBatch(std::vector<PredictJob>& jobs);
  // Decodes and profiles the jobs the connection threads left undecoded,
  // over the worker's intra-op threads; the failures' statuses (ok: decoded).
  std::vector<Status> DecodeJobs(std::vector<PredictJob>& jobs, int imgsz);

  Workspace& ws_;
  const ServerOptions o_;
  std::unique_ptr<httplib::Server> http_;
  std::unique_ptr<ModelHost> host_;
  std::unique_ptr<Batcher<PredictJob, PredictOutcome>> batcher_;
  std::unique_ptr<PredictionLog> log_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<TokenCache> tokens_;
  // Decodes a batch request's images side by side when the connection
  // threads decode (plan_.decode_in_worker false); null otherwise.
  std::unique_ptr<ThreadPool> decode_pool_;
  std::unique_ptr<JobRunner> jobs_;  // promotions that re-evaluate (routes_admin.cc)
  ServerMetrics m_;
  ServingPlan plan_;
  int port_ = 0;
  std::thread listener_;
  std::atomic<bool> ready_{false};
  std::atomic<int64_t> requests_{0}, predictions_{0}, errors_{0}, swaps_{0};
  std::mutex stop_mu_;  // guards stopped_, stopping_
  std::condition_variable stopped_cv_;
  bool stopping_ = false, stopped_ = false;
  std::mutex log_mu_;  // serializes event lines
  FILE* log_file_ = nullptr;
  // Monitoring state (server_monitor.cc).
  std::unique_ptr<Monitor> monitor_;
  std::thread monitor_thread_;
  std::mutex monitor_mu_;  // guards monitor_stop_, monitor_wake_
  std::condition_variable monitor_cv_;
  bool monitor_stop_ = false, monitor_wake_ = false;
  std::atomic<int64_t> since_tick_{0};
  std::mutex status_mu_;  // guards predict_status_
  std::map<std::string, int64_t> predict_status_;
  std::atomic<int64_t> predict_requests_{0};
  std::atomic<double> monitor_cpu_seconds_{0};  // written by the monitor thread only
  ResourceSample resources_;                    // the monitor thread's latest sample
  GaugeFamily* drift_score_ = nullptr;          // signal
  Gauge* monitor_level_ = nullptr;
  Gauge* automation_rate_ = nullptr;
  Gauge* active_alerts_ = nullptr;
  GaugeFamily* resource_gauges_ = nullptr;  // name
};

// An error status as our JSON error body.
void SendStatus(httplib::Response& res, const Status& s);

// {"error": {"code": "...", "message": "..."}} with `status`.
void SendError(httplib::Response& res, int status, const std::string& code,
               const std::string& message);
// The HTTP status for a Status code.
int HttpStatusFor(const Status& s);
const char* ErrorCodeFor(int http_status);

}  // namespace detops::serve
