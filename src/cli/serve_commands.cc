// detops serve; detops client predict | feedback

#include <pthread.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <opencv2/imgcodecs.hpp>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "cli/output.h"
#include "detops_git_commit.h"
#include "orchestrate/controller.h"
#include "pipeline/pipeline.h"
#include "serve/serve.h"

namespace detops::cli {
namespace {

struct ServeArgs {
  ServerOptions o;
  double batch_max_delay_ms = 0;
  std::string monitor_policy;
  bool controller = false;
  std::string controller_config;
};

// `serve --controller`: the model's triggers and the pipelines they start,
// in the server's process; the server's own monitor scores the windows.
Result<std::unique_ptr<Controller>> StartController(Workspace& ws, const ServeArgs& a) {
  ControllerConfig c;
  if (!a.controller_config.empty()) {
    ASSIGN_OR_RETURN(c, LoadControllerConfig(a.controller_config, a.o.model));
  }
  c.model = a.o.model;
  if (a.o.monitor) c.monitor = false;
  ControllerOptions o;
  o.build = {DETOPS_GIT_COMMIT, DETOPS_VERSION};
  o.threads = 2;
  auto precision = ResolvePrecision(a.o.precision, a.o.device);
  o.serving_precision = precision.ok() ? *precision : "";
  o.on_log = [](const std::string& line) {
    std::fprintf(stderr, "detops controller: %s\n", line.c_str());
  };
  return Controller::Open(ws, c, o);
}

int Serve(Globals& g, ServeArgs& a) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  a.o.batch_max_delay_us = static_cast<int64_t>(a.batch_max_delay_ms * 1000);
  if (!a.monitor_policy.empty()) {
    auto policy = LoadMonitorPolicy(a.monitor_policy);
    if (!policy.ok()) return Fail(policy.status());
    a.o.monitor_policy = *policy;
  }
  // SIGINT and SIGTERM are taken by this thread (sigwait), not delivered
  // asynchronously: the server's threads inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  a.o.lend_caller_thread = true;  // this thread runs a batch worker (serve.h)
  // LibTorch's intra-op threads are one process setting: each batch worker's
  // forward pass uses this many, set once before the first model loads.
  SetProcessThreads(
      ResolveServeThreads(a.o, static_cast<int>(std::thread::hardware_concurrency())));
  auto server = Server::Start(**opened, a.o);
  if (!server.ok()) return Fail(server.status());
  std::unique_ptr<Controller> controller;
  std::atomic<bool> stop_controller{false};
  std::thread controller_thread;
  if (a.controller || !a.controller_config.empty()) {
    auto c = StartController(**opened, a);
    if (!c.ok()) {
      (*server)->Stop();
      (*server)->Wait();
      return Fail(c.status());
    }
    controller = std::move(*c);
    controller_thread = std::thread([&] { controller->Run(stop_controller); });
  }
  std::fprintf(stderr, "detops serve: ready on %s://%s:%d (Ctrl-C or SIGTERM drains and stops)\n",
               a.o.tls_cert.empty() ? "http" : "https", a.o.host.c_str(), (*server)->port());
  std::thread signals_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "detops serve: %s, draining\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    (*server)->Stop();
  });
  (*server)->Wait();
  signals_thread.join();
  if (controller) {  // a pipeline it runs stops where it can resume
    stop_controller = true;
    controller_thread.join();
    controller.reset();
  }
  ServerStats s = (*server)->stats();
  std::fprintf(stderr,
               "detops serve: stopped; %lld requests, %lld predictions, %lld swaps, prediction "
               "log %lld written, %lld dropped\n",
               static_cast<long long>(s.requests), static_cast<long long>(s.predictions),
               static_cast<long long>(s.swaps), static_cast<long long>(s.log_written),
               static_cast<long long>(s.log_dropped));
  return kExitOk;
}

std::string TokenFrom(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("DETOPS_TOKEN");
  return env ? env : "";
}

struct ClientArgs {
  std::string url, draw, token, query, prediction_id, ca_cert;
  std::vector<std::string> images, boxes;
  bool json = false, insecure = false;
  bool feedback_labels = false;  // predict: send each image's YOLO label as feedback
};

// The boxes of an image's YOLO label (labels/ beside images/, as a dataset
// export lays them out), in the pixels of a `w` x `h` image; NotFound when
// it has no label file.
Result<std::vector<FeedbackBox>> LabelBoxes(const std::filesystem::path& image,
                                            const std::vector<std::string>& classes, int w, int h) {
  std::string p = image.string();
  const auto at = p.rfind("/images/");
  if (at == std::string::npos) {
    return Status::NotFound(p + ": not under an images/ folder; no labels/ beside it");
  }
  std::filesystem::path label = p.substr(0, at) + "/labels/" + p.substr(at + 8);
  label.replace_extension(".txt");
  std::ifstream in(label);
  if (!in) return Status::NotFound(label.string() + ": no label file");
  std::vector<FeedbackBox> boxes;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::istringstream fields(line);
    int cls = -1;
    double cx, cy, bw, bh;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (!(fields >> cls >> cx >> cy >> bw >> bh) || cls < 0 ||
        cls >= static_cast<int>(classes.size())) {
      return Status::InvalidInput(label.string() + ":" + std::to_string(n) +
                                  ": expected 'class cx cy w h' with a class of the model");
    }
    boxes.push_back(
        {classes[cls], (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h});
  }
  return boxes;
}

ClientOptions Options(const ClientArgs& a) {
  ClientOptions o;
  o.token = TokenFrom(a.token);
  o.query = a.query;
  o.ca_cert = a.ca_cert;
  o.verify_tls = !a.insecure;
  return o;
}

int ClientPredictCmd(const ClientArgs& a) {
  int code = kExitOk;
  Json all = Json::array();
  std::vector<std::string> classes;
  if (a.feedback_labels) {
    auto c = ClientModelClasses(a.url, Options(a));
    if (!c.ok()) return Fail(c.status());
    classes = *c;
  }
  int labelled = 0;
  for (const std::string& file : a.images) {
    auto p = ClientPredict(a.url, file, Options(a));
    if (!p.ok()) {
      code = Fail(Status(p.status().code(), file + ": " + p.status().message()));
      continue;
    }
    if (a.json) {
      auto j = ParseJson(p->json, "answer");
      if (j.ok()) all.push_back({{"file", file}, {"response", *j}});
    } else {
      std::cout << file << "  " << p->model << "  id " << p->id << "  " << p->detections.size()
                << " detections  server " << p->server_ms << " ms  round trip "
                << static_cast<int>(p->roundtrip_ms + 0.5) << " ms\n";
      for (const Detection& d : p->detections) {
        char line[160];
        std::snprintf(line, sizeof line, "  %-10s %.3f  [%.0f, %.0f, %.0f, %.0f]\n",
                      d.class_name.c_str(), d.score, d.x1, d.y1, d.x2, d.y2);
        std::cout << line;
      }
    }
    if (a.feedback_labels) {
      auto answer = ParseJson(p->json, "answer");
      if (!answer.ok()) return Fail(answer.status());
      const int w = (*answer)["image"].value("width", 0), h = (*answer)["image"].value("height", 0);
      auto boxes = LabelBoxes(file, classes, w, h);
      auto sent = boxes.ok() ? ClientFeedback(a.url, p->id, *boxes, Options(a))
                             : Result<std::string>(boxes.status());
      if (!sent.ok()) {
        code = Fail(Status(sent.status().code(), file + ": feedback: " + sent.status().message()));
      } else {
        ++labelled;
      }
    }
    if (!a.draw.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(a.draw, ec);
      cv::Mat img = cv::imread(file, cv::IMREAD_COLOR);
      if (img.empty()) continue;
      DrawDetections(img, p->detections);
      auto out = std::filesystem::path(a.draw) / std::filesystem::path(file).filename();
      out.replace_extension(".jpg");
      if (!cv::imwrite(out.string(), img)) {
        code = Fail(Status::IOError("cannot write " + out.string()));
      }
    }
  }
  if (a.json) PrintJson(all);
  if (a.feedback_labels && !a.json) {
    std::cout << "feedback: the labelled boxes of " << labelled << " of " << a.images.size()
              << " images sent\n";
  }
  return code;
}

// "CLASS,X1,Y1,X2,Y2"
Result<FeedbackBox> ParseBox(const std::string& text) {
  FeedbackBox b;
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    parts.push_back(text.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (parts.size() != 5) {
    return Status::InvalidInput("--box '" + text + "': expected CLASS,X1,Y1,X2,Y2");
  }
  b.class_name = parts[0];
  double* xy[] = {&b.x1, &b.y1, &b.x2, &b.y2};
  for (int i = 0; i < 4; ++i) {
    try {
      size_t used = 0;
      *xy[i] = std::stod(parts[i + 1], &used);
      if (used != parts[i + 1].size()) throw std::exception();
    } catch (const std::exception&) {
      return Status::InvalidInput("--box '" + text + "': '" + parts[i + 1] + "' is not a number");
    }
  }
  return b;
}

int ClientFeedbackCmd(const ClientArgs& a) {
  std::vector<FeedbackBox> boxes;
  for (const std::string& t : a.boxes) {
    auto b = ParseBox(t);
    if (!b.ok()) return Fail(b.status());
    boxes.push_back(*b);
  }
  auto r = ClientFeedback(a.url, a.prediction_id, boxes, Options(a));
  if (!r.ok()) return Fail(r.status());
  std::cout << *r << "\n";
  return kExitOk;
}

}  // namespace

void AddServeCommands(CLI::App& app, Globals& g) {
  auto* serve = app.add_subcommand(
      "serve",
      "Serve a registered model over HTTP (predict, batch, feedback, /metrics); follows its "
      "production alias and hot-swaps new versions");
  auto sa = std::make_shared<ServeArgs>();
  ServerOptions& o = sa->o;
  serve->add_option("--model", o.model, "registry model name")->required();
  serve->add_option("--alias", o.alias, "alias to follow")
      ->check(CLI::IsMember({"staging", "production"}))
      ->capture_default_str();
  serve->add_option("--version", o.version, "serve this fixed version instead (no hot swap)");
  serve->add_option("--host", o.host, "address to bind (loopback unless told otherwise)")
      ->capture_default_str();
  serve->add_option("--port", o.port, "port (0: any free one)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  serve->add_option("--threads", o.threads, "model intra-op threads (0: cores / workers)")
      ->capture_default_str();
  serve
      ->add_option("--workers", o.workers,
                   "batch workers, each with its own model copy (2 x --threads 1 suits 2 cores "
                   "under load)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  serve->add_option("--device", o.device, "cpu | cuda")->capture_default_str();
  AddPrecisionOption(serve, o.precision,
                     "the network in bfloat16 on the CPU: ~1.5x the images/s, detections within "
                     "rounding of fp32");
  serve
      ->add_option("--decode-on", o.decode_on,
                   "where images are decoded: worker (next to the forward pass, on its "
                   "threads), connection, or auto (worker when workers x threads cover the "
                   "cores)")
      ->check(CLI::IsMember({"auto", "worker", "connection"}))
      ->capture_default_str();
  serve->add_option("--batch-max-size", o.batch_max_size, "most images in one model batch")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  serve
      ->add_option("--batch-max-delay-ms", sa->batch_max_delay_ms,
                   "how long the first queued image waits for others")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();
  serve->add_option("--queue-max", o.queue_max, "queued images beyond this get 503")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  serve->add_option("--http-threads", o.http_threads, "connection threads")
      ->check(CLI::Range(2, 4096))
      ->capture_default_str();
  serve->add_flag("!--keep-startup-pages", o.release_cold_pages,
                  "keep the library code pages that only start-up used mapped (by default "
                  "they are given back once the model is warm)");
  serve->add_option("--max-body-bytes", o.max_body_bytes, "largest request body")
      ->capture_default_str();
  serve->add_option("--max-pixels", o.max_pixels, "largest image (width x height)")
      ->capture_default_str();
  serve
      ->add_option("--keep-images", o.keep_image_rate,
                   "fraction of request images kept for labelling (0..1)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  serve->add_option("--poll-ms", o.poll_ms, "how often the alias is checked")
      ->check(CLI::Range(10, 3600000))
      ->capture_default_str();
  serve->add_flag("--tokens-for-reads", o.tokens_for_reads,
                  "predict and models need a reader token too");
  serve->add_option("--tls-cert", o.tls_cert, "PEM certificate (with --tls-key: HTTPS)")
      ->check(CLI::ExistingFile);
  serve->add_option("--tls-key", o.tls_key, "PEM private key")->check(CLI::ExistingFile);
  serve->add_option("--log-file", o.log_file, "event log (default: stderr)");
  serve->add_flag("--controller", sa->controller,
                  "also run the model's triggers (inbox, drift, accuracy decay, schedule) and the "
                  "pipelines they start, in this process (docs/pipelines.md)");
  serve->add_option("--controller-config", sa->controller_config,
                    "controller YAML (pipeline, params, triggers, cooldown); implies --controller");
  serve->add_flag("!--no-monitor", o.monitor,
                  "do not run the monitor (drift, service health, alerts, rollback) in the "
                  "server");
  serve
      ->add_option("--monitor-policy", sa->monitor_policy,
                   "monitoring policy YAML (docs/monitoring.md; default: the built-in one)")
      ->check(CLI::ExistingFile);
  serve->add_option("--monitor-every", o.monitor_every_s, "seconds between monitor runs")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  serve
      ->add_option("--monitor-every-requests", o.monitor_every_requests,
                   "also run the monitor after this many predictions (0: by time only)")
      ->check(CLI::Range(0, 100000000))
      ->capture_default_str();
  serve
      ->add_option("--sample-every", o.sample_every_s,
                   "seconds between samples of counters and resources (CPU, memory, threads)")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve->callback([&g, sa] { g.exit_code = Serve(g, *sa); });

  auto* client = app.add_subcommand("client", "Talk to a running detops server");
  client->require_subcommand(1);
  auto* pred = client->add_subcommand("predict", "Send images; print detections");
  auto pa = std::make_shared<ClientArgs>();
  pred->add_option("url", pa->url, "server, e.g. http://127.0.0.1:8080")->required();
  pred->add_option("images", pa->images, "image files")->required()->check(CLI::ExistingFile);
  pred->add_option("--draw", pa->draw, "write annotated copies into this folder");
  pred->add_option("--query", pa->query, "extra query, e.g. 'conf=0.4&max_det=50'");
  pred->add_option("--token", pa->token, "bearer token (default $DETOPS_TOKEN)");
  pred->add_option("--ca-cert", pa->ca_cert, "HTTPS: CA certificate to trust");
  pred->add_flag("--insecure", pa->insecure, "HTTPS: do not verify the certificate");
  pred->add_flag("--json", pa->json, "print the server's JSON");
  pred->add_flag("--feedback-labels", pa->feedback_labels,
                 "also send each image's YOLO label (labels/ beside images/) as its feedback, as "
                 "an inspector who labelled the photos would (needs a writer token)");
  pred->callback([pa, &g] { g.exit_code = ClientPredictCmd(*pa); });

  auto* fb = client->add_subcommand("feedback", "Send corrected boxes for a prediction");
  auto fa = std::make_shared<ClientArgs>();
  fb->add_option("url", fa->url, "server, e.g. http://127.0.0.1:8080")->required();
  fb->add_option("prediction", fa->prediction_id, "prediction id (from client predict)")
      ->required();
  fb->add_option("--box", fa->boxes, "CLASS,X1,Y1,X2,Y2 in image pixels; repeat; none = no damage");
  fb->add_option("--token", fa->token, "writer token (default $DETOPS_TOKEN)");
  fb->add_option("--ca-cert", fa->ca_cert, "HTTPS: CA certificate to trust");
  fb->add_flag("--insecure", fa->insecure, "HTTPS: do not verify the certificate");
  fb->callback([fa, &g] { g.exit_code = ClientFeedbackCmd(*fa); });
}

}  // namespace detops::cli
