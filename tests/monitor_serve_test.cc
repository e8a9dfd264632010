// Monitoring end to end, through the real binary and the real server over
// loopback: darker photos raise a drift alert that a webhook receives (and
// is retried), /metrics and the CLI show it; a version that is slow under
// real requests is rolled back by the monitor with no failed request; and
// accuracy from feedback matches `detops eval` on the same images and boxes.

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <opencv2/imgcodecs.hpp>
#include <thread>

#include "core/core.h"
#include "testing/serve_testutil.h"

namespace detops {
namespace {

namespace fs = std::filesystem;
using testing::ChildProcess;
using testing::CommandResult;
using testing::Dimmed;
using testing::Jpegs;
using testing::RunCommand;
using testing::TempDir;
using testing::TrueBoxes;
using testing::WaitFor;
using namespace std::chrono_literals;

// A loopback webhook receiver: answers 500 to the first `fail_first`
// calls, then 200, and keeps every body.
class Receiver {
 public:
  explicit Receiver(int fail_first) : fail_first_(fail_first) {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      bodies_.push_back(req.body);
      res.status = static_cast<int>(bodies_.size()) <= fail_first_ ? 500 : 200;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }

 private:
  httplib::Server server_;
  int fail_first_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> bodies_;
};

// One workspace: cars@1 (a tiny model at 64 px, fast) in production and
// cars@2 (the same recipe at 640 px: ~100x the pixels, slow).
class MonitorServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ASSERT_EQ(Run("synth " + (Dir() / "cars").string() +
                  " --kind car --n 40 --seed 7 --width 640 --height 480")
                  .exit_code,
              0);
    ASSERT_EQ(Run("synth " + (Dir() / "live").string() +
                  " --kind car --n 60 --seed 8 --width 640 --height 480")
                  .exit_code,
              0);
    ASSERT_EQ(Run("data import cars " + (Dir() / "cars").string()).exit_code, 0);
    for (const char* imgsz : {"64", "640"}) {
      CommandResult t = Run(std::string("train cars --name tiny") + imgsz + " --epochs 1 --imgsz " +
                            imgsz + " --batch 8 --threads 2 --quiet --model n");
      ASSERT_EQ(t.exit_code, 0) << t.out;
      CommandResult r = Run(std::string("models register tiny") + imgsz + " --name cars");
      ASSERT_EQ(r.exit_code, 0) << r.out;
    }
    CommandResult p = Run("models promote cars@1 --to production --force --reason setup");
    ASSERT_EQ(p.exit_code, 0) << p.out;
    CommandResult tok = Run("tokens create --role writer --name writer");
    writer_ = testing::TokenIn(tok.out);
    ASSERT_FALSE(writer_.empty()) << tok.out;
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

  void StartServer(const std::string& policy_yaml, const std::vector<std::string>& flags = {}) {
    const fs::path policy = Dir() / ("policy-" + std::to_string(++n_) + ".yaml");
    testing::WriteText(policy, policy_yaml);
    server_ =
        std::make_unique<ChildProcess>(testing::MonitoredServeArgv(Ws(), "cars", policy, flags),
                                       Dir() / ("serve-" + std::to_string(n_) + ".log"));
    port_ = testing::WaitForServePort(*server_);
    ASSERT_NE(port_, 0) << server_->Output();
  }
  httplib::Result Post(const std::string& body, const std::string& query = "") {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c.Post(("/v1/predict" + query).c_str(), body, "image/jpeg");
  }
  Json Get(const std::string& path) {
    httplib::Client c("127.0.0.1", port_);
    auto r = c.Get(path.c_str());
    auto j = ParseJson(r ? r->body : "", path);
    return j.ok() ? *j : Json();
  }
  void TearDown() override {
    if (server_ && server_->Running()) {
      server_->Signal(SIGTERM);
      EXPECT_EQ(server_->Wait(30), 0) << server_->Output();
    }
  }

  static TempDir* dir_;
  static std::string writer_;
  static int n_;
  std::unique_ptr<ChildProcess> server_;
  int port_ = 0;
};

TempDir* MonitorServeTest::dir_ = nullptr;
std::string MonitorServeTest::writer_;
int MonitorServeTest::n_ = 0;

TEST_F(MonitorServeTest, DarkerPhotosRaiseADriftAlertThatTheWebhookReceives) {
  Receiver hook(/*fail_first=*/1);
  StartServer(
      "window: {size: 40, min_samples: 30}\n"
      "notify: {webhook: \"" +
      hook.url() + "\", retries: 3, backoff_ms: 100}\n");
  const std::vector<fs::path> photos = Jpegs(Dir() / "live");
  ASSERT_GE(photos.size(), 40u);
  for (size_t i = 0; i < 40; ++i) {
    auto r = Post(ReadFile(photos[i]).value());
    ASSERT_TRUE(r && r->status == 200);
  }
  for (size_t i = 0; i < 40; ++i) {
    auto r = Post(Dimmed(ReadFile(photos[i % photos.size()]).value(), 0.4));
    ASSERT_TRUE(r && r->status == 200);
  }
  Json alert;
  ASSERT_TRUE(WaitFor(
      [&] {
        Json j = Get("/v1/alerts?signal=input.brightness");
        if (!j.contains("alerts") || j["alerts"].empty()) return false;
        alert = j["alerts"][0];
        return true;
      },
      60, 200ms))
      << server_->Output();
  EXPECT_TRUE(alert["level"] == "retrain" || alert["level"] == "escalate") << alert.dump();
  EXPECT_EQ(alert["kind"], "threshold");
  EXPECT_EQ(alert["model"], "cars");
  EXPECT_FALSE(alert["examples"].empty());
  // The first POST failed (500) and was retried.
  ASSERT_TRUE(WaitFor([&] { return hook.bodies().size() >= 2; }, 30, 200ms));
  bool brightness_seen = false;
  for (const std::string& b : hook.bodies()) {
    auto j = ParseJson(b, "webhook body");
    ASSERT_TRUE(j.ok()) << b;
    brightness_seen |= (*j)["signal"] == "input.brightness";
  }
  EXPECT_TRUE(brightness_seen);

  // The first window (normal photos) stayed ok on brightness; the second did not.
  Json status = Get("/v1/monitor/status");
  ASSERT_EQ(status["models"].size(), 1u) << status.dump();
  EXPECT_NE(status["models"][0]["level"], "ok");
  httplib::Client c("127.0.0.1", port_);
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("detops_drift_score{signal=\"input.brightness\"}"),
            std::string::npos);
  EXPECT_NE(metrics->body.find("detops_monitor_level "), std::string::npos);
  EXPECT_NE(metrics->body.find("detops_automation_rate "), std::string::npos);
  EXPECT_NE(metrics->body.find("detops_resource{name=\"process_cpu_percent\"}"), std::string::npos);
  EXPECT_NE(metrics->body.find("detops_resource{name=\"host_memory_available_bytes\"}"),
            std::string::npos);

  CommandResult report = Run("monitor report --model cars --json");
  ASSERT_EQ(report.exit_code, 0) << report.out;
  auto rj = ParseJson(report.out, "report");
  ASSERT_TRUE(rj.ok()) << report.out;
  ASSERT_GE((*rj)["windows"].size(), 2u);
  for (const Json& s : (*rj)["windows"][0]["signals"]) {
    if (s["signal"] == "input.brightness") {
      EXPECT_EQ(s["level"], "ok") << s.dump();
    }
  }
  CommandResult text = Run("monitor report --model cars --plots " + (Dir() / "plots").string());
  ASSERT_EQ(text.exit_code, 0) << text.out;
  EXPECT_NE(text.out.find("input.brightness"), std::string::npos) << text.out;
  EXPECT_TRUE(fs::exists(Dir() / "plots" / "drift.png"));
  CommandResult st = Run("monitor status");
  EXPECT_EQ(st.exit_code, 0);
  EXPECT_NE(st.out.find("cars"), std::string::npos) << st.out;

  const std::string id = std::to_string(alert["id"].get<int64_t>());
  EXPECT_EQ(Run("alerts ack " + id + " --note looking").exit_code, 0);
  EXPECT_EQ(Run("alerts resolve " + id + " --note relit").exit_code, 0);
  CommandResult shown = Run("alerts show " + id + " --json");
  auto sj = ParseJson(shown.out, "alert");
  ASSERT_TRUE(sj.ok()) << shown.out;
  EXPECT_EQ((*sj)["state"], "resolved");
}

TEST_F(MonitorServeTest, ASlowVersionIsRolledBackByTheMonitorAndNoRequestFails) {
  StartServer(
      "window: {size: 15, min_samples: 10}\n"
      "slo: {latency_p95_ms: 40}\n"
      "actions: {rollback_slo_windows: 2}\n",
      {"--monitor-every-requests", "15"});
  const std::vector<fs::path> photos = Jpegs(Dir() / "live");
  std::atomic<bool> stop{false};
  std::atomic<int> sent{0}, failed{0};
  std::string first_failure;
  std::thread client([&] {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    for (size_t i = 0; !stop; ++i) {
      auto r = c.Post("/v1/predict", ReadFile(photos[i % photos.size()]).value(), "image/jpeg");
      ++sent;
      if (!r || r->status != 200) {
        if (failed++ == 0) first_failure = r ? r->body : "no answer";
      }
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(2));
  CommandResult p = Run("models promote cars@2 --to production --force --reason slow-test");
  ASSERT_EQ(p.exit_code, 0) << p.out;
  bool rolled_back = WaitFor(
      [&] {
        CommandResult h = Run("models history cars --json");
        return h.out.find("\"actor\":\"monitor\"") != std::string::npos ||
               h.out.find("\"actor\": \"monitor\"") != std::string::npos;
      },
      120, 200ms);
  // The server follows the alias back to version 1.
  bool serving_one =
      WaitFor([&] { return Get("/v1/models")["serving"]["version"] == 1; }, 30, 200ms);
  stop = true;
  client.join();
  ASSERT_TRUE(rolled_back) << server_->Output();
  EXPECT_TRUE(serving_one);
  EXPECT_EQ(failed.load(), 0) << first_failure;
  EXPECT_GT(sent.load(), 30);
  CommandResult h = Run("models history cars --json");
  EXPECT_NE(h.out.find("service.latency_p95_ms"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("alert #"), std::string::npos) << h.out;
  Json alerts = Get("/v1/alerts?state=all&signal=service.latency_p95_ms");
  ASSERT_FALSE(alerts["alerts"].empty()) << alerts.dump();
  EXPECT_NE(alerts["alerts"][0]["action"].get<std::string>().find("rolled back"), std::string::npos)
      << alerts.dump();
  EXPECT_TRUE(server_->WaitForOutput("hot swap", 5)) << server_->Output();
}

TEST_F(MonitorServeTest, AccuracyFromFeedbackMatchesDetopsEval) {
  // The test split as `detops eval` scores it: fp32, conf 0.001, NMS IoU
  // 0.6, 100 detections, one image per batch as the server runs them here,
  // so that both score the same arithmetic's detections.
  CommandResult ev = Run("eval tiny64 cars --split test --batch 1 --precision fp32 --json");
  ASSERT_EQ(ev.exit_code, 0) << ev.out;
  auto ej = ParseJson(ev.out, "eval");
  ASSERT_TRUE(ej.ok()) << ev.out;
  const double want = (*ej)["map50"].get<double>();
  // The same images through the server, with their true boxes as feedback.
  std::vector<fs::path> test = Jpegs(Dir() / "cars" / "images" / "test");
  ASSERT_GE(test.size(), 3u);
  StartServer("window: {size: " + std::to_string(test.size()) +
                  ", min_samples: 1}\naccuracy: {min_labels: 1}\n",
              {"--precision", "fp32", "--no-monitor"});
  const Json classes = Get("/v1/models")["serving"]["classes"];
  ASSERT_TRUE(classes.is_array() && !classes.empty());
  for (const fs::path& img : test) {
    // As PNG: the server decodes a JPEG at reduced scale for a small model,
    // eval decodes it whole; the PNG carries eval's pixels exactly.
    std::vector<uint8_t> png;
    cv::imencode(".png", cv::imread(img.string(), cv::IMREAD_COLOR), png);
    httplib::Client pc("127.0.0.1", port_);
    auto r = pc.Post("/v1/predict?conf=0.001&iou=0.6&max_det=100",
                     std::string(png.begin(), png.end()), "image/png");
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "");
    auto j = ParseJson(r->body, "answer");
    ASSERT_TRUE(j.ok());
    const int w = (*j)["image"]["width"], h = (*j)["image"]["height"];
    const Json boxes = TrueBoxes(img, classes, w, h);
    httplib::Client c("127.0.0.1", port_);
    auto fb =
        c.Post("/v1/feedback", {{"Authorization", "Bearer " + writer_}},
               Json{{"prediction_id", (*j)["id"]}, {"boxes", boxes}}.dump(), "application/json");
    ASSERT_TRUE(fb && fb->status / 100 == 2) << (fb ? fb->body : "");
  }
  server_->Signal(SIGTERM);
  ASSERT_EQ(server_->Wait(30), 0);
  const fs::path policy = Dir() / "accuracy.yaml";
  testing::WriteText(policy, "window: {size: " + std::to_string(test.size()) +
                                 ", min_samples: 1}\naccuracy: {min_labels: 1}\n");
  // The monitor leaves predictions younger than a second for its next run
  // (another server's log writer may still be committing older ones).
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  CommandResult watch =
      Run("monitor watch --model cars --once --no-act --json --policy " + policy.string());
  ASSERT_EQ(watch.exit_code, 0) << watch.out;
  auto wj = ParseJson(watch.out, "watch");
  ASSERT_TRUE(wj.ok()) << watch.out;
  ASSERT_FALSE(wj->empty()) << watch.out;
  const Json& last = wj->back();
  double live = -2;
  int64_t labels = 0;
  for (const Json& s : last["signals"]) {
    if (s["signal"] == "accuracy.map50") {
      live = s["live"].get<double>();
      labels = s["n"].get<int64_t>();
    }
  }
  EXPECT_EQ(labels, static_cast<int64_t>(test.size())) << last.dump();
  // The same arithmetic on the same detections: equal but for rounding.
  EXPECT_GT(want, 0);
  EXPECT_NEAR(live, want, 1e-6) << last.dump();
}

}  // namespace
}  // namespace detops
