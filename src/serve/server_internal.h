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
#include "monitor/rollout.h"
#include "serve/batcher.h"
#include "serve/decode.h"
#include "serve/jobs.h"
#include "serve/metrics.h"
#include "serve/model_host.h"
#include "serve/routes.h"
#include "serve/serve.h"

namespace detops::serve {

using Clock = std::chrono::steady_clock;

// The rollout a server follows (server_rollout.cc): the stored row as last
// polled, and its candidate, loaded once per rollout. Immutable once
// published; requests hold the one they started with.
struct RolloutServing {
  Rollout rollout;
  std::shared_ptr<LoadedModel> candidate;  // null: loading failed (load_error)
  std::string load_error;
  bool canary() const { return rollout.mode == kRolloutCanary; }
};

// One image through the batcher: decoded by the connection thread, or its
// bytes for the worker to decode (ServerOptions::decode_on).
struct PredictJob {
  std::string id;          // the prediction id, decided before routing
  std::string_view bytes;  // the request body; it outlives the job (its caller waits)
  // Routing: the rollout when one is followed, and the candidate when this
  // request is the canary's (null: production). A candidate the batch
  // fails on is dropped here and the request runs on production.
  std::shared_ptr<const RolloutServing> rollout;
  std::shared_ptr<LoadedModel> model;
  std::string candidate_error;  // why the candidate did not answer a request routed to it
  DecodedImage image;           // pixels in image.bgr once decoded, with `profile`
  ImageProfile profile;
  double decode_ms = 0;
  PredictOptions options;
  bool decoded() const { return !image.bgr.empty(); }
  Clock::time_point queued;
};

struct PredictOutcome {
  std::string id;
  std::shared_ptr<LoadedModel> model;  // the version that answered
  std::shared_ptr<const RolloutServing> rollout;
  bool by_candidate = false;    // a canary answer
  std::string candidate_error;  // routed to the candidate, answered by production
  cv::Mat pixels;               // shadow: the decoded image for the candidate
  PredictOptions options;
  std::vector<Detection> detections;  // in `image.bgr` pixels
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
  Status StartRollouts();  // the first poll, then the follower thread (server_rollout.cc)
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
  // Runs `group` of `jobs` on `model` as one forward pass and fills their
  // outcomes; the pass's failure otherwise (nothing filled).
  Status RunGroup(const std::shared_ptr<LoadedModel>& model, const std::vector<size_t>& group,
                  const PredictOptions& po, std::vector<PredictJob>& jobs, Clock::time_point taken,
                  std::vector<Result<PredictOutcome>>& out);

  // Rollouts (server_rollout.cc): a follower thread polls the model's
  // active rollout (every poll_ms) and loads its candidate; requests are
  // routed when they are prepared; the candidate's shadow scoring and the
  // records of its failures run on one rollout worker, after the answer.
  Status InitRolloutMetrics();
  void StopRollouts();
  void RolloutLoop();
  void FollowRollout();
  std::shared_ptr<const RolloutServing> CurrentRollout() const;
  // Sets job.id, job.rollout and job.model.
  void Route(PredictJob& job);
  // Counts the answer's arm; queues the shadow scoring or the failure
  // record. `answer` is production's (original pixels).
  void AfterAnswer(const PredictOutcome& r, const PredictionRecord& answer);
  // Runs `task` on the rollout worker unless kRolloutPendingMax tasks wait.
  bool SubmitRolloutTask(std::function<void()> task);
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
  // Rollout state (server_rollout.cc).
  bool follow_rollouts_ = false;   // following the production alias
  mutable std::mutex rollout_mu_;  // guards rollout_, rollout_stop_
  std::condition_variable rollout_cv_;
  std::shared_ptr<const RolloutServing> rollout_;
  bool rollout_stop_ = false;
  std::thread rollout_thread_;
  std::unique_ptr<ThreadPool> rollout_worker_;  // one thread: shadow scoring, failure records
  std::atomic<int> rollout_pending_{0};
  std::atomic<bool> rollout_draining_{false};  // Stop: queued shadow scorings are skipped
  GaugeFamily* rollout_share_ = nullptr;       // model, candidate, mode
  CounterFamily* rollout_requests_ = nullptr;  // arm
  Counter* rollout_failures_ = nullptr;
  Counter* rollout_dropped_ = nullptr;
};

// A detection in the original image's pixels (the decode may have been
// reduced), as the prediction log keeps it.
LoggedDetection ToOriginalPixels(const Detection& d, const DecodedImage& image);

// An error status as our JSON error body.
void SendStatus(httplib::Response& res, const Status& s);

// {"error": {"code": "...", "message": "..."}} with `status`.
void SendError(httplib::Response& res, int status, const std::string& code,
               const std::string& message);
// The HTTP status for a Status code.
int HttpStatusFor(const Status& s);
const char* ErrorCodeFor(int http_status);

}  // namespace detops::serve
