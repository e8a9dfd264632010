// Releases under live traffic, end to end: the real server over loopback
// follows rollouts the library starts and advances (as the pipeline's
// promote step would). Shadow: production answers every request, the
// candidate's answers appear with their agreement. Canary with a slower
// candidate: a share of requests is answered by it, AdvanceRollout aborts
// it on latency, traffic returns to production, and no request fails.
// Canary with a candidate that cannot run: its requests are answered by
// production, counted as its failures, and the rollout is aborted.

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

#include "core/core.h"
#include "monitor/rollout.h"
#include "registry/registry.h"
#include "testing/serve_testutil.h"

namespace detops {
namespace {

namespace fs = std::filesystem;
using testing::ChildProcess;
using testing::CommandResult;
using testing::Jpegs;
using testing::RunCommand;
using testing::TempDir;
using testing::TrueBoxes;
using testing::WaitFor;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One workspace: cars@1 (a tiny model at 64 px) in production, cars@2 the
// same weights again, cars@3 the same recipe at 480 px (56x the pixels:
// about 4x slower on every request here).
class RolloutServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    for (const std::string& cmd :
         {"synth " + (Dir() / "cars").string() +
              " --kind car --n 30 --seed 7 --width 320 --height 240",
          "synth " + (Dir() / "live").string() +
              " --kind car --n 40 --seed 8 --width 320 --height 240",
          std::string("data import cars ") + (Dir() / "cars").string(),
          std::string("train cars --name fast --epochs 1 --imgsz 64 --batch 8 --threads 2 --quiet"),
          std::string("models register fast --name cars"),
          std::string("models register fast --name cars"),
          std::string("train cars --name slow --epochs 1 --imgsz 480 --batch 8 --threads 2 "
                      "--quiet"),
          std::string("models register slow --name cars"),
          std::string("models promote cars@1 --to production --force --reason setup")}) {
      CommandResult r = Run(cmd);
      ASSERT_EQ(r.exit_code, 0) << cmd << "\n" << r.out;
    }
    CommandResult tok = Run("tokens create --role writer --name writer");
    writer_ = testing::TokenIn(tok.out);
    ASSERT_FALSE(writer_.empty()) << tok.out;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    auto ws = Workspace::Open({Ws(), false});
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ws_ = std::move(*ws);
    photos_ = Jpegs(Dir() / "live" / "images");
    ASSERT_GE(photos_.size(), 20u);
  }
  void TearDown() override {
    StopTraffic();
    // A failed test leaves no rollout behind for the next one.
    auto active = ActiveRollout(*ws_, "cars");
    if (active.ok() && *active) (void)AbortRollout(*ws_, (*active)->id, "test", "teardown");
    if (server_ && server_->Running()) {
      server_->Signal(SIGTERM);
      EXPECT_EQ(server_->Wait(30), 0) << server_->Output();
    }
  }

  static fs::path Dir() { return dir_->path(); }
  static std::string Ws() { return (Dir() / "ws").string(); }
  static CommandResult Run(const std::string& args) {
    return RunCommand(testing::DetopsBin() + " --workspace " + Ws() + " " + args);
  }

  void StartServer() {
    const fs::path policy = Dir() / "monitor.yaml";
    testing::WriteText(policy, "window: {size: 10, min_samples: 5}\n");
    server_ =
        std::make_unique<ChildProcess>(testing::MonitoredServeArgv(Ws(), "cars", policy),
                                       Dir() / ("serve-" + std::to_string(++servers_) + ".log"));
    port_ = testing::WaitForServePort(*server_);
    ASSERT_NE(port_, 0) << server_->Output();
  }

  Json Get(const std::string& path) {
    httplib::Client c("127.0.0.1", port_);
    auto r = c.Get(path.c_str());
    auto j = ParseJson(r ? r->body : "", path);
    return j.ok() ? *j : Json();
  }
  std::string Metrics() {
    httplib::Client c("127.0.0.1", port_);
    auto r = c.Get("/metrics");
    return r ? r->body : "";
  }
  // One photo; the answer's JSON (null when it failed).
  Json Predict(size_t i, const std::string& query = "") {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    auto r = c.Post(("/v1/predict" + query).c_str(), ReadFile(photos_[i % photos_.size()]).value(),
                    "image/jpeg");
    if (!r || r->status != 200) return Json();
    auto j = ParseJson(r->body, "answer");
    return j.ok() ? *j : Json();
  }
  // The rollout the server routes by (/v1/models), null when none.
  Json ServedRollout() { return Get("/v1/models")["rollout"]; }

  // A client sending photos one after the other until StopTraffic, with
  // their true boxes as feedback when `label`; counts every answer that is
  // not a 200 and which version answered.
  void StartTraffic(bool label) {
    const Json classes = Get("/v1/models")["serving"]["classes"];
    traffic_ = std::thread([this, label, classes] {
      httplib::Client c("127.0.0.1", port_);
      c.set_read_timeout(60, 0);
      for (size_t i = 0; !stop_; ++i) {
        const fs::path& photo = photos_[i % photos_.size()];
        auto r = c.Post("/v1/predict", ReadFile(photo).value(), "image/jpeg");
        ++sent_;
        auto j = r && r->status == 200 ? ParseJson(r->body, "answer")
                                       : Result<Json>(Status::Unavailable("failed"));
        if (!j.ok()) {
          std::lock_guard lock(mu_);
          if (failed_++ == 0) first_failure_ = r ? r->body : "no answer";
          continue;
        }
        ++by_version_[std::clamp((*j)["model"]["version"].get<int>(), 0, 7)];
        if (!label) continue;
        Json truth = TrueBoxes(photo, classes, (*j)["image"]["width"], (*j)["image"]["height"]);
        auto fb = c.Post("/v1/feedback", {{"Authorization", "Bearer " + writer_}},
                         Json{{"prediction_id", (*j)["id"]}, {"boxes", truth}}.dump(),
                         "application/json");
        if (!fb || fb->status / 100 != 2) ++feedback_failed_;
      }
    });
  }
  void StopTraffic() {
    stop_ = true;
    if (traffic_.joinable()) traffic_.join();
  }
  int Answered(int version) { return by_version_[version].load(); }

  // AdvanceRollout every 300 ms until it settles; the rollout as it ended.
  Rollout AdvanceUntilSettled(int64_t id, int seconds) {
    Rollout r;
    WaitFor(
        [&] {
          auto a = AdvanceRollout(*ws_, id, NowMs());
          EXPECT_TRUE(a.ok()) << a.status().ToString();
          if (a.ok()) r = *a;
          return !a.ok() || r.state != kRolloutActive;
        },
        seconds);
    return r;
  }

  static TempDir* dir_;
  static std::string writer_;
  static int servers_;
  std::unique_ptr<Workspace> ws_;
  std::vector<fs::path> photos_;
  std::unique_ptr<ChildProcess> server_;
  int port_ = 0;
  std::thread traffic_;
  std::atomic<bool> stop_{false};
  std::atomic<int> sent_{0}, failed_{0}, feedback_failed_{0};
  std::atomic<int> by_version_[8];  // answers by model version
  std::mutex mu_;
  std::string first_failure_;
};

TempDir* RolloutServeTest::dir_ = nullptr;
std::string RolloutServeTest::writer_;
int RolloutServeTest::servers_ = 0;

TEST_F(RolloutServeTest, ShadowAnswersAreLoggedWithTheirAgreementNeverReturned) {
  RolloutPolicy policy;
  policy.min_requests = 12;
  policy.min_agreement = 0.9;
  // Started before the server: it loads the candidate before it is ready.
  auto started = StartRollout(*ws_, "cars", 2, kRolloutShadow, policy, "test");
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  StartServer();
  const Json served = ServedRollout();
  ASSERT_TRUE(served.is_object()) << Get("/v1/models").dump();
  EXPECT_EQ(served["mode"], "shadow");
  EXPECT_EQ(served["loaded"], true) << served.dump();
  std::set<std::string> ids;
  for (size_t i = 0; i < 12; ++i) {
    // A low confidence bar: a model trained for one epoch is unsure of
    // everything, and two empty answers agree trivially.
    const Json a = Predict(i, "?conf=0.01");
    ASSERT_TRUE(a.is_object());
    EXPECT_EQ(a["model"]["version"], 1);  // production answers
    EXPECT_EQ(a["rollout"]["mode"], "shadow");
    EXPECT_EQ(a["rollout"]["arm"], "production");
    ids.insert(a["id"].get<std::string>());
  }
  std::vector<ShadowAnswer> shadow;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = ListShadowAnswers(*ws_, started->id, 0);
        if (s.ok()) shadow = *s;
        return shadow.size() >= 12;
      },
      30))
      << server_->Output();
  double agreement = 0;
  size_t boxes = 0;
  for (const ShadowAnswer& s : shadow) {
    EXPECT_TRUE(ids.count(s.prediction_id)) << s.prediction_id;
    EXPECT_EQ(s.model_version, 2);
    EXPECT_EQ(s.error, "");
    EXPECT_GT(s.inference_ms, 0);
    agreement += s.agreement;
    boxes += s.detections.size();
  }
  EXPECT_GT(boxes, 0u);
  // The same weights on the same pixels: the same boxes.
  EXPECT_GE(agreement / shadow.size(), 0.9);
  EXPECT_NE(Metrics().find("detops_rollout_requests_total{arm=\"shadow\"} 12"), std::string::npos)
      << Metrics();
  const Rollout r = AdvanceUntilSettled(started->id, 30);
  EXPECT_EQ(r.state, kRolloutPassed) << r.reason;
  EXPECT_GE(r.report.candidate.agreement, 0.9);
  EXPECT_EQ(r.report.candidate.requests, 12);
  // Settled: the server lets the candidate go.
  EXPECT_TRUE(WaitFor([&] { return ServedRollout().is_null(); }, 10)) << server_->Output();
  const Json after = Predict(0);
  EXPECT_FALSE(after.contains("rollout")) << after.dump();
  EXPECT_TRUE(server_->WaitForOutput("candidate unloaded", 5)) << server_->Output();
}

TEST_F(RolloutServeTest, ASlowerCanaryIsAbortedAndNoRequestFails) {
  StartServer();
  StartTraffic(/*label=*/true);
  ASSERT_TRUE(WaitFor([&] { return sent_ >= 5; }, 30));
  RolloutPolicy policy;
  policy.stages = {0.5};
  policy.min_requests = 10;
  policy.min_labels = 5;
  auto started = StartRollout(*ws_, "cars", 3, kRolloutCanary, policy, "test");
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  ASSERT_TRUE(WaitFor([&] { return Answered(3) >= 3; }, 60)) << server_->Output();
  EXPECT_NE(Metrics().find("detops_rollout_share{model=\"cars\",candidate=\"3\",mode=\"canary\"} "
                           "0.5"),
            std::string::npos)
      << Metrics();
  const Rollout r = AdvanceUntilSettled(started->id, 60);
  ASSERT_EQ(r.state, kRolloutAborted) << r.reason;
  std::cout << "rollout #" << r.id << " " << r.state << ": " << r.reason << "\n";
  bool latency_failed = false;
  for (const std::string& f : r.report.failed) latency_failed |= f.rfind("latency p95", 0) == 0;
  EXPECT_TRUE(latency_failed) << r.reason;
  EXPECT_GT(r.report.candidate.p95_ms, 1.5 * r.report.production.p95_ms);
  EXPECT_GE(r.report.candidate.requests, 10);
  EXPECT_GT(r.report.candidate.labelled, 0);
  EXPECT_GT(r.report.production.labelled, 0);
  // Traffic returns to production.
  ASSERT_TRUE(WaitFor([&] { return ServedRollout().is_null(); }, 10)) << server_->Output();
  const int candidate_answers = Answered(3);
  const int before = sent_;
  ASSERT_TRUE(WaitFor([&] { return sent_ >= before + 10; }, 30));
  StopTraffic();
  EXPECT_EQ(failed_.load(), 0) << first_failure_;
  EXPECT_EQ(feedback_failed_.load(), 0);
  EXPECT_LE(Answered(3), candidate_answers + 1);  // one may have been in flight
  EXPECT_GT(Answered(1), 10);
  // The audit log has the decision and its numbers.
  auto registry = Registry::Open(*ws_);
  ASSERT_TRUE(registry.ok());
  auto history = (*registry)->History("cars");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->back().action, kAuditRolloutAborted);
  EXPECT_NE(history->back().reason.find("latency p95"), std::string::npos);
  // The monitor's windows hold production's answers only: the slow
  // candidate raised nothing against the model.
  CommandResult report = Run("monitor report --model cars --json");
  ASSERT_EQ(report.exit_code, 0) << report.out;
  auto rj = ParseJson(report.out, "report");
  ASSERT_TRUE(rj.ok()) << report.out;
  ASSERT_FALSE((*rj)["windows"].empty()) << server_->Output();
  for (const Json& w : (*rj)["windows"]) EXPECT_EQ(w["version"], 1) << w["id"];
  for (const Json& a : (*rj)["alerts"]) EXPECT_NE(a["version"], 3) << a.dump();
}

TEST_F(RolloutServeTest, ACandidateThatCannotRunFailsOverToProductionAndIsAborted) {
  // Weights that do not load: every request routed to it is production's.
  auto registry = Registry::Open(*ws_);
  ASSERT_TRUE(registry.ok());
  auto v1 = (*registry)->Get("cars@1");
  ASSERT_TRUE(v1.ok());
  testing::WriteText(Dir() / "broken.pt", "not a model");
  NewModelVersion nv;
  nv.name = "cars";
  nv.run_id = v1->run_id;
  nv.weights = Dir() / "broken.pt";
  nv.profile_json = (*registry)->Profile(*v1).value();
  nv.spec = v1->spec;
  nv.metrics = v1->metrics;
  nv.dataset_version = v1->dataset_version;
  nv.dataset_validation = v1->dataset_validation;
  nv.created_by = "test";
  auto broken = (*registry)->Register(nv);
  ASSERT_TRUE(broken.ok()) << broken.status().ToString();
  StartServer();
  StartTraffic(/*label=*/false);
  RolloutPolicy policy;
  policy.stages = {0.5};
  policy.min_requests = 8;
  auto started = StartRollout(*ws_, "cars", broken->version, kRolloutCanary, policy, "test");
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  ASSERT_TRUE(WaitFor([&] { return ServedRollout().is_object(); }, 10));
  EXPECT_EQ(ServedRollout()["loaded"], false);
  EXPECT_NE(ServedRollout()["load_error"].get<std::string>().find("cannot load"),
            std::string::npos);
  const Rollout r = AdvanceUntilSettled(started->id, 60);
  ASSERT_EQ(r.state, kRolloutAborted) << r.reason;
  EXPECT_NE(r.reason.find("error rate 1.000"), std::string::npos) << r.reason;
  EXPECT_GE(r.report.candidate.failures, 8);
  ASSERT_TRUE(WaitFor([&] { return ServedRollout().is_null(); }, 10));
  StopTraffic();
  EXPECT_EQ(failed_.load(), 0) << first_failure_;
  EXPECT_EQ(Answered(broken->version), 0);
  auto failures = ListShadowAnswers(*ws_, started->id, 0);
  ASSERT_TRUE(failures.ok());
  ASSERT_FALSE(failures->empty());
  EXPECT_NE(failures->front().error.find("cannot load"), std::string::npos);
  EXPECT_NE(Metrics().find("detops_rollout_candidate_failures_total "), std::string::npos);
}

}  // namespace
}  // namespace detops
