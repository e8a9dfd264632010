#pragma once
// Public header of the serve module: `detops serve`, the HTTP face of the
// registry's production model.
//
// Layers: HTTP (cpp-httplib, a thread per connection) -> routes (JSON <->
// types; images decoded on the connection's thread or by the batch worker,
// ServerOptions::decode_on) -> a bounded queue ->
// the dynamic batcher (groups requests up to batch_max_size or
// batch_max_delay_us) -> the model host (one model, hot-swapped when its
// registry alias moves). Every prediction goes to the prediction log
// (asynchronous; drops counted in /metrics). Writes (feedback, promotion,
// rollback) need a bearer token (serve/tokens.h).
//
// Rollouts (monitor/rollout.h): a server that follows the production alias
// also follows the model's active rollout (polled every poll_ms, and once
// before it is ready) and loads its candidate beside production. Canary: a
// request whose prediction id RoutesToCandidate is answered by the
// candidate (the answer's "model" names it, "rollout" says the arm); a
// request the candidate fails is answered by production and the failure
// recorded. Shadow: production answers; after the answer, one rollout
// worker scores the same decoded image with the candidate and records its
// answer and agreement. A settled rollout's candidate is released and
// production answers everything.
//
// Routes:
//   POST /v1/predict          raw JPEG/PNG/WebP body or multipart (field "file");
//                             query conf, iou, max_det
//   POST /v1/predict/batch    multipart, several files
//   POST /v1/feedback         {"prediction_id", "boxes": [{"class", "box": [x1,y1,x2,y2]}]}
//   GET  /v1/models           the served version, the rollout followed, the registry's versions
//   POST /v1/models/{name}/versions/{v}/promote   {"to", "reason", "force"}  (admin)
//        200/409 when stored metrics decide; 202 + Location: /v1/jobs/{id}
//        when production is re-evaluated (on the server's one job worker)
//   GET  /v1/jobs/{id}                            a promotion job's state (admin)
//   POST /v1/models/{name}/rollback               {"alias", "reason"}        (admin)
//   GET  /v1/monitor/status                      levels, the last window, active alerts
//   GET  /v1/alerts                              ?model=&state=active|open|...|all&signal=&limit=
//   GET  /healthz, /readyz, /metrics
// (the table itself: ServerImpl::Routes in server.cc). Errors are JSON
// {"error": {"code", "message"}} with 400, 401, 403, 404, 409, 413, 415 or
// 503 (with Retry-After).

#include <cstdint>
#include <memory>
#include <string>

#include <filesystem>
#include <vector>

#include "core/core.h"
#include "ml/ml.h"
#include "monitor/monitor.h"
#include "monitor/policy.h"
#include "serve/tokens.h"
#include "store/store.h"

namespace detops {

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8080;                 // 0: any free port (see Server::port)
  std::string model;               // registry model name
  std::string alias = "production";
  int version = 0;  // serve this fixed version instead of following the alias
  std::string device = "cpu";
  // Batch workers, each with its own copy of the model, and the model's
  // intra-op threads (0: the cores / workers). On 2 cores, 2 workers x 1
  // thread serve 1.4x the images/s of 1 worker x 2 threads over HTTP, at
  // about the same latency for one client (docs/BENCHMARKS.md).
  int workers = 2;
  int threads = 0;
  // The network's number format (DetectorOptions::precision): "auto" serves
  // bf16 on CPUs with AVX512-BF16 (1.5x the images/s on one core; test mAP50
  // within 0.005 of fp32 on our sets, docs/BENCHMARKS.md), fp32 elsewhere.
  // "fp32" runs the arithmetic `detops eval` scored.
  std::string precision = "auto";
  // One of the workers runs on the thread that calls Server::Wait (the
  // process's first thread, where LibTorch's multi-threaded kernels are
  // fastest); Wait then returns once Stop has drained the queue.
  bool lend_caller_thread = false;
  // Where request images are decoded (and profiled for the prediction log):
  // "connection" (on the connection's thread, before queueing), "worker"
  // (by the batch worker, spread over its intra-op threads, just before the
  // forward pass), or "auto": "worker" when the workers' threads cover
  // every core, else "connection". Decoding next to a multi-threaded
  // forward pass on the same cores preempts one of its threads, and the
  // others wait at the next barrier: on 2 cores that cost the 2-thread
  // settings ~1.4x per batch (docs/BENCHMARKS.md).
  std::string decode_on = "auto";
  size_t batch_max_size = 8;
  // How long the first queued image waits for others. 0: a batch is what
  // queued while the workers were busy (no added latency at low load).
  int64_t batch_max_delay_us = 0;
  size_t queue_max = 64;  // queued images beyond this get 503
  int http_threads = 64;  // connection threads
  // After start-up and after each hot swap, unmap the library code pages
  // that only ran while starting (core/memory.h): about 117 MiB of the ~290
  // libraries Debian's LibTorch loads. Pages the hot path uses fault back in.
  bool release_cold_pages = true;
  size_t max_body_bytes = 32u << 20;
  int64_t max_pixels = 40'000'000;  // decompression-bomb guard, from the header
  int max_side = 16384;
  int max_batch_images = 32;      // files in one /v1/predict/batch
  int poll_ms = 1000;             // how often the alias and the active rollout are checked
  double keep_image_rate = 0;     // fraction of request images kept for labelling
  double low_confidence = 0.5;    // detections below this score count as low-confidence
  bool tokens_for_reads = false;  // predict and models need a reader token too
  std::string tls_cert, tls_key;  // both set: HTTPS
  PredictionLogOptions log;
  std::string log_file;  // access and event log ("" = stderr)
  // ---- monitoring (src/monitor), on one background thread ----
  bool monitor = true;
  MonitorPolicy monitor_policy = DefaultMonitorPolicy();
  // The monitor scores the windows the log has completed every this many
  // seconds, or sooner once this many predictions arrived since it last did.
  int monitor_every_s = 30;
  int monitor_every_requests = 500;
  // Counters and resources (CPU, memory, threads, connections) are sampled
  // this often, for /metrics and the store's service samples.
  int sample_every_s = 5;
};

// The intra-op threads each batch worker runs with: options.threads, or
// the machine's `cores` shared out among the workers (at least 1). LibTorch
// keeps one such count per process: `detops serve` sets it to this before
// the first model loads.
int ResolveServeThreads(const ServerOptions& options, int cores);

struct ServerStats {
  int64_t requests = 0, predictions = 0, errors = 0, swaps = 0;
  int64_t log_written = 0, log_dropped = 0;
};

class Server {
 public:
  // Loads the model, binds, and starts serving on background threads.
  // NotFound when the model or its alias is missing; Unavailable when the
  // address cannot be bound.
  static Result<std::unique_ptr<Server>> Start(Workspace& ws, const ServerOptions& options);
  virtual ~Server() = default;
  virtual int port() const = 0;
  // Graceful stop: /readyz turns 503, no new connections, requests already
  // queued finish, the prediction log is flushed. Idempotent.
  virtual void Stop() = 0;
  // Blocks until Stop has finished; with lend_caller_thread, runs a batch
  // worker meanwhile (call it from the thread that should run it).
  virtual void Wait() = 0;
  virtual ServerStats stats() const = 0;
};

}  // namespace detops

namespace detops {

// ---- client: what `detops client` sends ----

struct ClientOptions {
  std::string token;  // bearer token ("" = none)
  int timeout_s = 60;
  std::string query;       // extra query string for predict ("conf=0.4&iou=0.5")
  bool verify_tls = true;  // HTTPS: check the server's certificate
  std::string ca_cert;     // HTTPS: a CA file to trust (a self-signed server's cert)
};

struct RemotePrediction {
  std::string id;     // the prediction id (for feedback)
  std::string model;  // "cars@3"
  int width = 0, height = 0;
  std::vector<Detection> detections;  // original pixels
  double server_ms = 0;               // the server's total
  double roundtrip_ms = 0;
  std::string json;  // the server's response as sent
};

// POSTs an image file to URL/v1/predict. InvalidInput for an unreadable
// file or a 4xx answer, Unavailable when the server cannot be reached or
// answers 5xx; the message carries the server's error message.
Result<RemotePrediction> ClientPredict(const std::string& url, const std::filesystem::path& image,
                                       const ClientOptions& options);

// The classes of the model a server serves (GET /v1/models), in id order.
Result<std::vector<std::string>> ClientModelClasses(const std::string& url,
                                                    const ClientOptions& options);

// POSTs corrected boxes for a prediction; returns the server's JSON answer.
Result<std::string> ClientFeedback(const std::string& url, const std::string& prediction_id,
                                   const std::vector<FeedbackBox>& boxes,
                                   const ClientOptions& options);

}  // namespace detops
