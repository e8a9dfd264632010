// The registry and the server end to end, through the real binary over
// loopback: register -> gated promotion -> serve -> predict (raw,
// multipart, batch) -> feedback -> export; every bad input; tokens;
// back-pressure; hot swap under load; SIGTERM drain; /metrics; parallel
// promotions from several processes.

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "core/core.h"
#include "testing/testutil.h"

namespace detops {
namespace {

namespace fs = std::filesystem;
using testing::ChildProcess;
using testing::CommandResult;
using testing::RunCommand;
using testing::TempDir;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Whether `detops serve --precision auto` picks bf16 here.
bool CpuHasAvx512Bf16() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) return line.find(" avx512_bf16") != std::string::npos;
  }
  return false;
}

// One workspace for the suite: a tiny trained model registered twice
// (cars@1 in production, cars@2 waiting) and three tokens.
class ServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ASSERT_EQ(Run("synth " + (Dir() / "cars").string() +
                  " --kind car --n 30 --seed 7 --width 640 --height 480")
                  .exit_code,
              0);
    ASSERT_EQ(Run("data import cars " + (Dir() / "cars").string()).exit_code, 0);
    CommandResult t =
        Run("train cars --name tiny --epochs 1 --imgsz 64 --batch 8 --threads 2 --quiet --model n");
    ASSERT_EQ(t.exit_code, 0) << t.out;
    for (int i = 0; i < 2; ++i) {
      CommandResult r = Run("models register tiny --name cars");
      ASSERT_EQ(r.exit_code, 0) << r.out;
    }
    CommandResult p = Run("models promote cars@1 --to production --force --reason setup");
    ASSERT_EQ(p.exit_code, 0) << p.out;
    for (const char* role : {"reader", "writer", "admin"}) {
      CommandResult r = Run(std::string("tokens create --role ") + role + " --name " + role);
      ASSERT_EQ(r.exit_code, 0) << r.out;
      std::smatch m;
      ASSERT_TRUE(std::regex_search(r.out, m, std::regex("dtk_[A-Za-z0-9_-]+"))) << r.out;
      tokens_[role] = m.str();
    }
    for (const auto& e : fs::recursive_directory_iterator(Dir() / "cars")) {
      if (e.path().extension() == ".jpg" && jpeg_.empty()) jpeg_ = ReadFile(e.path());
    }
    ASSERT_FALSE(jpeg_.empty());
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static fs::path Dir() { return dir_->path(); }
  static std::string Ws() { return (Dir() / "ws").string(); }
  static CommandResult Run(const std::string& args) {
    return RunCommand(testing::DetopsBin() + " --workspace " + Ws() + " " + args);
  }

  // Starts `detops serve` on a free port with extra flags; waits for ready.
  void StartServer(const std::vector<std::string>& flags = {}) {
    std::vector<std::string> argv = {
        testing::DetopsBin(), "--workspace", Ws(), "serve", "--model", "cars", "--port", "0",
        "--poll-ms",          "100"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    server_ =
        std::make_unique<ChildProcess>(argv, Dir() / ("serve-" + std::to_string(++n_) + ".log"));
    ASSERT_TRUE(server_->WaitForOutput("ready on", 60)) << server_->Output();
    std::smatch m;
    std::string out = server_->Output();
    ASSERT_TRUE(std::regex_search(out, m, std::regex("ready on http://127\\.0\\.0\\.1:(\\d+)")));
    port_ = std::stoi(m[1].str());
  }
  std::unique_ptr<httplib::Client> Client() {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_read_timeout(60, 0);
    return c;
  }
  httplib::Result PostImage(const std::string& body, const std::string& type = "image/jpeg",
                            const std::string& query = "") {
    return Client()->Post(("/v1/predict" + query).c_str(), body, type.c_str());
  }
  static Json Body(const httplib::Result& r) {
    auto j = ParseJson(r ? r->body : "", "response");
    return j.ok() ? *j : Json();
  }
  void TearDown() override {
    if (server_ && server_->Running()) {
      server_->Signal(SIGTERM);
      EXPECT_EQ(server_->Wait(30), 0) << server_->Output();
    }
  }

  static TempDir* dir_;
  static std::map<std::string, std::string> tokens_;
  static std::string jpeg_;
  static int n_;
  std::unique_ptr<ChildProcess> server_;
  int port_ = 0;
};

TempDir* ServeTest::dir_ = nullptr;
std::map<std::string, std::string> ServeTest::tokens_;
std::string ServeTest::jpeg_;
int ServeTest::n_ = 0;

TEST_F(ServeTest, PredictsRawMultipartAndBatchInOriginalPixels) {
  StartServer();
  auto ready = Client()->Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(Body(ready)["model"], "cars@1");

  auto r = PostImage(jpeg_, "image/jpeg", "?conf=0.001&max_det=5");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  Json j = Body(r);
  EXPECT_EQ(j["model"]["name"], "cars");
  EXPECT_EQ(j["model"]["version"], 1);
  EXPECT_EQ(j["image"]["width"], 640);
  EXPECT_EQ(j["image"]["height"], 480);
  EXPECT_EQ(j["id"].get<std::string>().size(), 16u);
  EXPECT_LE(j["detections"].size(), 5u);
  for (const Json& d : j["detections"]) {
    EXPECT_TRUE(d["class"] == "scratch" || d["class"] == "dent") << d;
    EXPECT_GE(d["score"].get<double>(), 0.001);
    const Json& b = d["box"];
    EXPECT_GE(b[0].get<double>(), 0);
    EXPECT_LE(b[2].get<double>(), 640);
    EXPECT_LE(b[3].get<double>(), 480);
  }
  EXPECT_TRUE(j["timings_ms"].contains("queue"));

  httplib::MultipartFormDataItems form = {{"file", jpeg_, "a.jpg", "image/jpeg"}};
  auto m = Client()->Post("/v1/predict", form);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200) << m->body;

  httplib::MultipartFormDataItems batch = {{"file", jpeg_, "a.jpg", "image/jpeg"},
                                           {"file2", jpeg_, "b.jpg", "image/jpeg"},
                                           {"file3", "not an image", "c.jpg", "image/jpeg"}};
  auto b = Client()->Post("/v1/predict/batch", batch);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->status, 200) << b->body;
  Json bj = Body(b);
  ASSERT_EQ(bj["results"].size(), 3u);
  EXPECT_EQ(bj["failed"], 1);
  int errors = 0;
  for (const Json& x : bj["results"]) errors += x.contains("error");
  EXPECT_EQ(errors, 1);

  auto models = Client()->Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(Body(models)["serving"]["ref"], "cars@1");
  EXPECT_EQ(Body(models)["serving"]["precision"], CpuHasAvx512Bf16() ? "bf16" : "fp32");
  EXPECT_EQ(Body(models)["versions"].size(), 2u);
}

TEST_F(ServeTest, BadInputsGetClearErrorsAndTheServerGoesOn) {
  StartServer({"--max-body-bytes", "2000000", "--max-pixels", "20000000"});
  struct Case {
    std::string name, body, type, query;
    int status;
    std::string says;
  };
  // A PNG header claiming 60000 x 60000 pixels: refused before decoding.
  std::string bomb = std::string("\x89PNG\r\n\x1A\n", 8) + std::string("\0\0\0\x0DIHDR", 8) +
                     std::string("\0\0\xEA\x60\0\0\xEA\x60\x08\x02\0\0\0", 13) +
                     std::string("\0\0\0\0", 4) + std::string(64, '\0') + "IEND";
  std::vector<Case> cases = {
      {"empty body", "", "image/jpeg", "", 400, "empty body"},
      {"text body", "hello", "text/plain", "", 415, "Content-Type"},
      {"garbage jpeg", std::string(5000, 'x'), "image/jpeg", "", 400, "not a JPEG"},
      {"truncated jpeg", jpeg_.substr(0, jpeg_.size() / 2), "image/jpeg", "", 400, "truncated"},
      {"bomb", bomb, "image/png", "", 400, "limit"},
      {"bad conf", jpeg_, "image/jpeg", "?conf=2", 400, "conf"},
      {"bad max_det", jpeg_, "image/jpeg", "?max_det=abc", 400, "max_det"},
      {"too large", std::string(3000000, 'x'), "image/jpeg", "", 413, "size limit"},
  };
  for (const Case& c : cases) {
    auto r = PostImage(c.body, c.type, c.query);
    ASSERT_TRUE(r) << c.name;
    EXPECT_EQ(r->status, c.status) << c.name << ": " << r->body;
    Json j = Body(r);
    ASSERT_TRUE(j.contains("error")) << c.name << ": " << r->body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(c.says), std::string::npos)
        << c.name << ": " << r->body;
  }
  auto nf = Client()->Get("/v1/nothing");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 404);
  EXPECT_TRUE(Body(nf).contains("error"));

  // Feedback: auth first, then the body.
  auto fb = [&](const std::string& body, const std::string& token) {
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    return Client()->Post("/v1/feedback", h, body, "application/json");
  };
  EXPECT_EQ(fb("{}", "")->status, 401);
  EXPECT_EQ(fb("{}", "dtk_nope_nope")->status, 401);
  EXPECT_EQ(fb("{}", tokens_["reader"])->status, 403);
  EXPECT_EQ(fb("{not json", tokens_["writer"])->status, 400);
  EXPECT_EQ(fb(R"({"prediction_id": "0000000000000000", "boxes": []})", tokens_["writer"])->status,
            404);
  EXPECT_EQ(fb(R"({"prediction_id": 3, "boxes": []})", tokens_["writer"])->status, 400);
  EXPECT_EQ(
      fb(R"({"prediction_id": "x", "boxes": [{"class": "dent"}]})", tokens_["writer"])->status,
      400);

  // Many bad requests later the server still answers, without growing.
  auto rss_kb = [&] {
    std::ifstream in("/proc/" + std::to_string(server_->pid()) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return 0L;
  };
  for (int i = 0; i < 50; ++i) PostImage(jpeg_.substr(0, jpeg_.size() / 2));
  long before = rss_kb();
  for (int i = 0; i < 300; ++i) {
    PostImage(jpeg_.substr(0, jpeg_.size() / 3));
    PostImage(bomb, "image/png");
    PostImage(std::string(1000, 'y'));
  }
  long after = rss_kb();
  EXPECT_LT(after - before, 20 * 1024) << "RSS grew from " << before << " kB to " << after;
  auto ok = PostImage(jpeg_);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  auto health = Client()->Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

// --precision: fp32 on request; bf16 where the CPU computes it natively
// (the default there), with about the same answers; refused elsewhere.
TEST_F(ServeTest, ServesInTheRequestedPrecision) {
  auto serve = [&](const std::string& precision) {
    StartServer({"--precision", precision, "--workers", "1", "--threads", "2"});
    auto models = Client()->Get("/v1/models");
    EXPECT_TRUE(models);
    EXPECT_EQ(Body(models)["serving"]["precision"], precision);
    EXPECT_NE(server_->Output().find("threads, " + precision + ","), std::string::npos)
        << server_->Output();
    auto r = PostImage(jpeg_, "image/jpeg", "?conf=0.001&max_det=300");
    EXPECT_TRUE(r && r->status == 200);
    Json j = Body(r);
    server_->Signal(SIGTERM);
    EXPECT_EQ(server_->Wait(30), 0) << server_->Output();
    return j;
  };
  auto top_score = [](const Json& j) {
    double top = 0;
    for (const Json& d : j["detections"]) top = std::max(top, d["score"].get<double>());
    return top;
  };
  Json fp32 = serve("fp32");
  ASSERT_FALSE(fp32["detections"].empty()) << fp32;
  EXPECT_EQ(Run("serve --model cars --port 0 --precision fp16").exit_code, 2);
  if (!CpuHasAvx512Bf16()) {
    CommandResult r = Run("serve --model cars --port 0 --precision bf16");
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.out.find("AVX512-BF16"), std::string::npos) << r.out;
    return;
  }
  Json bf16 = serve("bf16");
  ASSERT_FALSE(bf16["detections"].empty()) << bf16;
  EXPECT_NEAR(top_score(bf16), top_score(fp32), 0.02);
  EXPECT_NE(bf16["detections"], fp32["detections"]) << "bf16 served, fp32 computed?";
}

// Decoding on the connection thread or in the batch worker is a placement
// choice only: the same detections, the same errors, the same log.
TEST_F(ServeTest, DecodingOnConnectionOrWorkerGivesTheSameAnswers) {
  struct Answer {
    int status = 0;
    Json body;
  };
  // A well-formed PNG (signature, header, end) whose data fails its CRC:
  // only decoding the pixels finds that, in the worker in "worker" mode.
  std::vector<uchar> png;
  ASSERT_TRUE(cv::imencode(
      ".png", cv::imdecode(std::vector<uchar>(jpeg_.begin(), jpeg_.end()), cv::IMREAD_COLOR), png));
  std::string corrupt_png(png.begin(), png.end());
  corrupt_png[corrupt_png.size() / 2] ^= 0x5A;
  auto ask = [&](const std::string& mode, std::vector<Answer>& out) {
    StartServer({"--decode-on", mode, "--workers", "1", "--threads", "2"});
    EXPECT_NE(server_->Output().find(mode == "worker" ? "decoded by the batch workers"
                                                      : "decoded on the connection threads"),
              std::string::npos)
        << server_->Output();
    for (const std::string& body : {jpeg_, jpeg_.substr(0, jpeg_.size() / 2), std::string(300, 'x'),
                                    std::string(), corrupt_png}) {
      auto r = PostImage(body, "image/png", "?conf=0.01");
      ASSERT_TRUE(r) << mode;
      out.push_back({r->status, Body(r)});
    }
    server_->Signal(SIGTERM);
    EXPECT_EQ(server_->Wait(30), 0) << server_->Output();
  };
  std::vector<Answer> connection, worker;
  ask("connection", connection);
  ask("worker", worker);
  ASSERT_EQ(connection.size(), 5u);
  ASSERT_EQ(worker.size(), 5u);
  EXPECT_EQ(connection[0].status, 200);
  EXPECT_EQ(worker[0].status, 200);
  EXPECT_EQ(connection[0].body["detections"], worker[0].body["detections"]);
  EXPECT_EQ(connection[0].body["image"], worker[0].body["image"]);
  EXPECT_GT(worker[0].body["timings_ms"]["decode"].get<double>(), 0);
  EXPECT_NE(connection[4].body["error"]["message"].get<std::string>().find("undecodable png"),
            std::string::npos)
      << connection[4].body;
  for (size_t i = 1; i < 5; ++i) {
    EXPECT_EQ(connection[i].status, 400) << connection[i].body;
    EXPECT_EQ(worker[i].status, connection[i].status) << worker[i].body;
    EXPECT_EQ(worker[i].body["error"], connection[i].body["error"]);
  }
}

TEST_F(ServeTest, FeedbackWithATokenBecomesANewDatasetVersion) {
  StartServer({"--keep-images", "1"});
  auto r = PostImage(jpeg_);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  const std::string id = Body(r)["id"];
  // The client command, as a user would send it.
  CommandResult c = RunCommand(
      testing::DetopsBin() + " client feedback http://127.0.0.1:" + std::to_string(port_) + " " +
      id + " --box dent,100,120,180,200 --box scratch,300,40,420,60 --token " + tokens_["writer"]);
  ASSERT_EQ(c.exit_code, 0) << c.out;
  // A box outside the image is refused, naming it.
  httplib::Headers h = {{"Authorization", "Bearer " + tokens_["writer"]}};
  auto bad = Client()->Post(
      "/v1/feedback", h,
      R"({"prediction_id": ")" + id + R"(", "boxes": [{"class": "dent", "box": [0, 0, 900, 50]}]})",
      "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400) << bad->body;
  server_->Signal(SIGTERM);
  ASSERT_EQ(server_->Wait(30), 0);

  CommandResult e = Run("feedback export cars");
  ASSERT_EQ(e.exit_code, 0) << e.out;
  CommandResult ls = Run("data ls --json");
  ASSERT_EQ(ls.exit_code, 0);
  EXPECT_NE(ls.out.find("cars@2"), std::string::npos) << ls.out;
  // Nothing new: no new version.
  CommandResult again = Run("feedback export cars");
  EXPECT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(Run("data ls --json").out.find("cars@3"), std::string::npos);
}

TEST_F(ServeTest, AFullQueueAnswers503WithRetryAfter) {
  StartServer({"--queue-max", "1", "--batch-max-size", "1", "--http-threads", "32"});
  std::atomic<int> ok{0}, busy{0}, other{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < 16; ++t) {
    pool.emplace_back([&] {
      for (int i = 0; i < 6; ++i) {
        auto r = PostImage(jpeg_);
        if (r && r->status == 200) {
          ++ok;
        } else if (r && r->status == 503 && r->get_header_value("Retry-After") == "1") {
          ++busy;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(busy.load(), 0);
  EXPECT_EQ(other.load(), 0);
}

TEST_F(ServeTest, HotSwapUnderLoadFailsNoRequest) {
  StartServer();
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0}, on_v1{0}, on_v2{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t) {
    pool.emplace_back([&] {
      while (!stop) {
        auto r = PostImage(jpeg_);
        if (!r || r->status != 200) {
          ++failed;
          continue;
        }
        (Body(r)["model"]["version"] == 2 ? on_v2 : on_v1)++;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CommandResult p = Run("models promote cars@2 --to production --force --reason swap-test");
  ASSERT_EQ(p.exit_code, 0) << p.out;
  ASSERT_TRUE(server_->WaitForOutput("cars@1 -> cars@2", 30)) << server_->Output();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  for (auto& t : pool) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(on_v1.load(), 0);
  EXPECT_GT(on_v2.load(), 0);
  auto after = PostImage(jpeg_);
  ASSERT_TRUE(after);
  EXPECT_EQ(Body(after)["model"]["version"], 2);
  // Put production back for the other tests.
  ASSERT_EQ(Run("models rollback cars --reason restore").exit_code, 0);
}

TEST_F(ServeTest, SigtermDrainsRequestsInFlightAndLogsEveryPrediction) {
  StartServer({"--batch-max-delay-ms", "50"});
  const std::string before = Run("models ls --json").out;  // any command: the db is readable
  std::atomic<int> ok{0}, refused{0}, failed{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < 6; ++t) {
    pool.emplace_back([&] {
      for (int i = 0; i < 4; ++i) {
        auto r = PostImage(jpeg_);
        if (r && r->status == 200) {
          ++ok;
        } else if (!r || r->status == 503) {
          ++refused;  // arrived after the drain began: refused, never half-answered
        } else {
          ++failed;
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  server_->Signal(SIGTERM);
  for (auto& t : pool) t.join();
  ASSERT_EQ(server_->Wait(30), 0) << server_->Output();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(ok.load(), 0);
  std::string out = server_->Output();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m,
                                std::regex("(\\d+) predictions, \\d+ swaps, prediction "
                                           "log (\\d+) written, (\\d+) dropped")))
      << out;
  EXPECT_EQ(m[2].str(), m[1].str());  // every prediction written
  EXPECT_EQ(m[3].str(), "0");
}

TEST_F(ServeTest, MetricsUseThePrometheusTextFormat) {
  StartServer();
  ASSERT_EQ(PostImage(jpeg_)->status, 200);
  PostImage("", "image/jpeg");
  auto r = Client()->Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->get_header_value("Content-Type").find("text/plain; version=0.0.4"),
            std::string::npos);
  const std::string& t = r->body;
  for (const std::string& want : std::vector<std::string>{
           "# TYPE detops_http_requests_total counter",
           "detops_http_requests_total{route=\"/v1/predict\",status=\"200\"} 1",
           "detops_http_requests_total{route=\"/v1/predict\",status=\"400\"} 1",
           "# TYPE detops_queue_wait_seconds histogram",
           "detops_queue_wait_seconds_bucket{le=\"+Inf\"} 1", "detops_inference_seconds_count",
           "detops_batch_size_bucket",
           "detops_model_info{model=\"cars\",version=\"1\",precision=\"" +
               std::string(CpuHasAvx512Bf16() ? "bf16" : "fp32") + "\"} 1",
           "detops_queue_depth 0", "detops_prediction_log_dropped_total 0",
           "detops_low_confidence_predictions_total",
           "# TYPE detops_process_resident_memory_bytes gauge"}) {
    EXPECT_NE(t.find(want), std::string::npos) << want << "\n" << t;
  }
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      t, m, std::regex("detops_process_resident_memory_bytes\\{kind=\"anon\"\\} (\\S+)")));
  EXPECT_GT(std::stod(m[1].str()), 1e6);
}

// Start-up code pages are given back once the model is warm, and the
// server still answers (every test here runs with it); the flag keeps them.
TEST_F(ServeTest, GivesBackStartupCodePagesUnlessTold) {
  StartServer();
  std::smatch m;
  std::string out = server_->Output();
  ASSERT_TRUE(std::regex_search(out, m, std::regex("released (\\d+) MiB of start-up code pages")))
      << out;
  EXPECT_GT(std::stoi(m[1].str()), 10);  // LibTorch's tree alone is ~100 MiB of mapped code
  ASSERT_EQ(PostImage(jpeg_)->status, 200);
  server_->Signal(SIGTERM);
  EXPECT_EQ(server_->Wait(30), 0);
  StartServer({"--keep-startup-pages"});
  EXPECT_EQ(server_->Output().find("start-up code pages"), std::string::npos);
  ASSERT_EQ(PostImage(jpeg_)->status, 200);
}

TEST_F(ServeTest, PromotionAndRollbackOverHttpNeedAnAdminToken) {
  StartServer();
  auto post = [&](const std::string& path, const std::string& body, const std::string& token) {
    httplib::Headers h = {{"Authorization", "Bearer " + token}};
    return Client()->Post(path.c_str(), h, body, "application/json");
  };
  auto w = post("/v1/models/cars/versions/2/promote", R"({"to": "production"})", tokens_["writer"]);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->status, 403);
  // The tiny model fails the default gates: refused, with the table.
  auto refused =
      post("/v1/models/cars/versions/2/promote", R"({"to": "production"})", tokens_["admin"]);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 409) << refused->body;
  EXPECT_EQ(Body(refused)["applied"], false);
  EXPECT_FALSE(Body(refused)["gates"]["checks"].empty());
  auto forced = post("/v1/models/cars/versions/2/promote",
                     R"({"to": "production", "force": true, "reason": "http"})", tokens_["admin"]);
  ASSERT_TRUE(forced);
  EXPECT_EQ(forced->status, 200) << forced->body;
  EXPECT_NE(Body(forced)["audit"]["actor"].get<std::string>().find("admin"), std::string::npos);
  ASSERT_TRUE(server_->WaitForOutput("cars@1 -> cars@2", 30));
  auto back = post("/v1/models/cars/rollback", R"({"reason": "http rollback"})", tokens_["admin"]);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->status, 200) << back->body;
  EXPECT_EQ(Body(back)["to_version"], 1);
  ASSERT_TRUE(server_->WaitForOutput("cars@2 -> cars@1", 30));
  CommandResult h = Run("models history cars --json");
  EXPECT_NE(h.out.find("http rollback"), std::string::npos);
}

TEST_F(ServeTest, ServesHttpsWithACertificateAndKey) {
  const fs::path cert = Dir() / "cert.pem", key = Dir() / "key.pem";
  CommandResult gen = RunCommand(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "
      "/CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
      key.string() + " -out " + cert.string());
  ASSERT_EQ(gen.exit_code, 0) << gen.out;
  std::vector<std::string> argv = {testing::DetopsBin(),
                                   "--workspace",
                                   Ws(),
                                   "serve",
                                   "--model",
                                   "cars",
                                   "--port",
                                   "0",
                                   "--tls-cert",
                                   cert.string(),
                                   "--tls-key",
                                   key.string()};
  server_ = std::make_unique<ChildProcess>(argv, Dir() / "serve-tls.log");
  ASSERT_TRUE(server_->WaitForOutput("ready on https://", 60)) << server_->Output();
  std::smatch m;
  std::string out = server_->Output();
  ASSERT_TRUE(std::regex_search(out, m, std::regex("ready on https://127\\.0\\.0\\.1:(\\d+)")));
  const std::string url = "https://127.0.0.1:" + m[1].str();
  fs::path photo = Dir() / "photo.jpg";
  { std::ofstream(photo, std::ios::binary) << jpeg_; }
  // Trusting the server's certificate: a prediction.
  CommandResult ok = RunCommand(testing::DetopsBin() + " client predict " + url + " " +
                                photo.string() + " --ca-cert " + cert.string());
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_NE(ok.out.find("cars@1"), std::string::npos) << ok.out;
  // Not trusting it: refused by the client, not sent in clear.
  CommandResult untrusted =
      RunCommand(testing::DetopsBin() + " client predict " + url + " " + photo.string());
  EXPECT_NE(untrusted.exit_code, 0) << untrusted.out;
  // Plain HTTP to the TLS port gets no answer.
  httplib::Client plain("127.0.0.1", std::stoi(m[1].str()));
  plain.set_read_timeout(5, 0);
  auto r = plain.Get("/healthz");
  EXPECT_TRUE(!r || r->status != 200);
}

TEST_F(ServeTest, ParallelPromotionsFromSeveralProcessesKeepAConsistentHistory) {
  // Four processes promote v1 and v2 to staging at once, several times.
  std::string cmd;
  for (int i = 0; i < 4; ++i) {
    cmd += testing::DetopsBin() + " --workspace " + Ws() + " models promote cars@" +
           std::to_string(1 + i % 2) + " --to staging --force --reason race" + std::to_string(i) +
           " >/dev/null 2>&1 & ";
  }
  for (int round = 0; round < 3; ++round) RunCommand(cmd + "wait");
  CommandResult h = Run("models history cars --json");
  ASSERT_EQ(h.exit_code, 0);
  auto j = ParseJson(h.out, "history");
  ASSERT_TRUE(j.ok()) << h.out;
  std::optional<int> at;
  int entries = 0;
  for (const Json& e : *j) {
    if (e["alias"] != "staging") continue;
    ++entries;
    std::optional<int> from;
    if (!e["from_version"].is_null()) from = e["from_version"].get<int>();
    EXPECT_EQ(from, at) << e.dump();
    at = e["to_version"].get<int>();
  }
  EXPECT_GT(entries, 0);
  Json show = *ParseJson(Run("models show cars@staging --json").out, "show");
  EXPECT_EQ(show["version"], *at);
}

}  // namespace
}  // namespace detops
