// Promotions over HTTP that need a re-evaluation run as background jobs:
// through the real binary over loopback, the promote request answers 202 at
// once with a status URL, predictions keep being served while production is
// re-evaluated, the job ends succeeded (the alias moved, the server swapped)
// or failed (a gate refused it) with the gate table, the job queue is
// bounded, tokens are checked, and stopping the server settles its jobs.

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "core/core.h"
#include "testing/testutil.h"

namespace detops {
namespace {

namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;
using testing::ChildProcess;
using testing::CommandResult;
using testing::TempDir;

// cars@1 (production) was trained and tested on the first version of the
// `cars` dataset; cars@2 on a second version with a large test split. So a
// promotion of cars@2 must evaluate cars@1 again on that split first.
class ServeJobsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string first = (dir_->path() / "first").string();
    const std::string second = (dir_->path() / "second").string();
    for (const std::string& args :
         {"synth " + first + " --kind car --n 30 --seed 3 --width 320 --height 240",
          "data import cars " + first,
          std::string("train cars --name a --epochs 1 --imgsz 64 --batch 8 --threads 2 --quiet"),
          std::string("models register a --name cars"),
          std::string("models promote cars@1 --to production --force --reason setup"),
          // Mostly test images: re-evaluating production on them takes a while.
          "synth " + second + " --kind car --n 400 --seed 4 --test 0.9 --val 0.02",
          "data import cars " + second,
          std::string("train cars --name b --epochs 1 --imgsz 64 --batch 8 --threads 2 --quiet"),
          std::string("models register b --name cars"),
          std::string("tokens create --role admin --name admin"),
          std::string("tokens create --role writer --name writer")}) {
      CommandResult r = Detops(args);
      ASSERT_EQ(r.exit_code, 0) << args << "\n" << r.out;
      std::smatch m;
      if (std::regex_search(r.out, m, std::regex("dtk_[A-Za-z0-9_-]+"))) {
        (args.find("admin") != std::string::npos ? admin_ : writer_) = m.str();
      }
    }
    ASSERT_FALSE(admin_.empty());
    ASSERT_FALSE(writer_.empty());
    for (const auto& e : fs::recursive_directory_iterator(first)) {
      if (e.path().extension() != ".jpg") continue;
      std::ifstream in(e.path(), std::ios::binary);
      std::stringstream s;
      s << in.rdbuf();
      photo_ = s.str();
      break;
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static CommandResult Detops(const std::string& args) {
    return testing::RunCommand(testing::DetopsBin() + " --workspace " +
                               (dir_->path() / "ws").string() + " " + args);
  }

  void SetUp() override {
    log_ = dir_->path() / ("serve-" + std::to_string(++servers_) + ".log");
    server_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{testing::DetopsBin(), "--workspace",
                                 (dir_->path() / "ws").string(), "serve", "--model", "cars",
                                 "--port", "0", "--poll-ms", "100"},
        log_);
    ASSERT_TRUE(server_->WaitForOutput("ready on", 60)) << server_->Output();
    std::smatch m;
    const std::string out = server_->Output();
    ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(ready on http://127\.0\.0\.1:(\d+))")));
    port_ = std::stoi(m[1].str());
  }
  void TearDown() override {
    if (server_->Running()) {
      server_->Signal(SIGTERM);
      EXPECT_EQ(server_->Wait(120), 0) << server_->Output();
    }
  }

  httplib::Result Send(const std::string& method, const std::string& path, const std::string& token,
                       const std::string& body = "", httplib::Headers headers = {}) {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(120, 0);
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    if (method == "GET") return c.Get(path.c_str(), headers);
    return c.Post(path.c_str(), headers, body, "application/json");
  }
  httplib::Result Promote(int version, const std::string& body, httplib::Headers headers = {}) {
    return Send("POST", "/v1/models/cars/versions/" + std::to_string(version) + "/promote", admin_,
                body, std::move(headers));
  }
  static Json JsonOf(const httplib::Result& r) {
    auto j = ParseJson(r ? r->body : "", "response");
    return j.ok() ? *j : Json();
  }
  Json Job(const std::string& url) { return JsonOf(Send("GET", url, admin_)); }
  // Polls the job until it finishes (or 120 s pass).
  Json Settled(const std::string& url) {
    const auto until = Steady::now() + std::chrono::seconds(120);
    Json j = Job(url);
    while (j["state"] == "queued" || j["state"] == "running") {
      if (Steady::now() > until) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      j = Job(url);
    }
    return j;
  }
  // 202 with the job's URL in Location and its state at that moment.
  static std::string Accepted(const httplib::Result& r) {
    EXPECT_TRUE(r);
    if (!r) return "";
    EXPECT_EQ(r->status, 202) << r->body;
    const std::string url = r->get_header_value("Location");
    EXPECT_TRUE(std::regex_match(url, std::regex("/v1/jobs/[0-9a-f]{16}"))) << url;
    EXPECT_EQ(JsonOf(r)["url"], url);
    return url;
  }

  static TempDir* dir_;
  static std::string admin_, writer_, photo_;
  static int servers_;
  fs::path log_;
  std::unique_ptr<ChildProcess> server_;
  int port_ = 0;
};

TempDir* ServeJobsTest::dir_ = nullptr;
std::string ServeJobsTest::admin_, ServeJobsTest::writer_, ServeJobsTest::photo_;
int ServeJobsTest::servers_ = 0;

TEST_F(ServeJobsTest, AReEvaluationRunsInTheBackgroundWhilePredictionsAreServed) {
  const auto sent = Steady::now();
  auto r = Promote(2, R"({"to": "production"})");
  const auto answered = Steady::now();
  const std::string url = Accepted(r);
  ASSERT_FALSE(url.empty());
  // Answered before the work: the job was running its re-evaluation.
  const Json accepted = JsonOf(r);
  EXPECT_EQ(accepted["state"], "running") << accepted.dump();
  EXPECT_NE(accepted["progress"].get<std::string>().find("evaluating cars@1"), std::string::npos)
      << accepted.dump();
  EXPECT_EQ(accepted["kind"], "promote");
  EXPECT_EQ(accepted["subject"], "cars@2 -> production");

  // Predictions answered while the job was seen running before and after.
  int served_meanwhile = 0;
  Json job = Job(url);
  while (job["state"] == "running") {
    httplib::Client c("127.0.0.1", port_);
    auto p = c.Post("/v1/predict", photo_, "image/jpeg");
    ASSERT_TRUE(p);
    ASSERT_EQ(p->status, 200) << p->body;
    job = Job(url);
    if (job["state"] == "running") ++served_meanwhile;
  }
  EXPECT_GE(served_meanwhile, 3) << "the re-evaluation ended too soon to tell";
  job = Settled(url);
  const auto finished = Steady::now();
  EXPECT_LT(answered - sent, (finished - sent) / 2);

  // The tiny model fails the default floors: failed, with the gate table.
  EXPECT_EQ(job["state"], "failed") << job.dump();
  EXPECT_EQ(job["error"]["code"], "conflict") << job.dump();
  EXPECT_EQ(job["result"]["applied"], false);
  EXPECT_FALSE(job["result"]["gates"]["checks"].empty()) << job.dump();
  EXPECT_NE(job["result"]["notes"].dump().find("re-evaluated"), std::string::npos) << job.dump();
  EXPECT_NE(job["actor"].get<std::string>().find("admin"), std::string::npos);
  EXPECT_FALSE(job["finished"].is_null());
  // Nothing moved.
  EXPECT_EQ(JsonOf(Send("GET", "/readyz", ""))["model"], "cars@1");
}

TEST_F(ServeJobsTest, AForcedPromotionSucceedsAndTheServerSwaps) {
  const std::string url =
      Accepted(Promote(2, R"({"to": "production", "force": true, "reason": "jobs test"})"));
  ASSERT_FALSE(url.empty());
  Json job = Settled(url);
  EXPECT_EQ(job["state"], "succeeded") << job.dump();
  EXPECT_TRUE(job["error"].is_null()) << job.dump();
  EXPECT_EQ(job["result"]["applied"], true) << job.dump();
  EXPECT_EQ(job["result"]["audit"]["forced"], true) << job.dump();
  EXPECT_FALSE(job["result"]["gates"]["checks"].empty());
  ASSERT_TRUE(server_->WaitForOutput("cars@1 -> cars@2", 60)) << server_->Output();
  // Back to cars@1 for the other tests.
  CommandResult back = Detops("models rollback cars --reason restore");
  ASSERT_EQ(back.exit_code, 0) << back.out;
  ASSERT_TRUE(server_->WaitForOutput("cars@2 -> cars@1", 60)) << server_->Output();
}

TEST_F(ServeJobsTest, JobsNeedAnAdminTokenAndUnknownIdsAre404) {
  auto w = Send("POST", "/v1/models/cars/versions/2/promote", writer_, R"({"to": "production"})");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->status, 403);
  auto none = Send("POST", "/v1/models/cars/versions/2/promote", "", R"({"to": "production"})");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  const std::string url = Accepted(Promote(2, R"({"to": "staging"})"));
  ASSERT_FALSE(url.empty());
  for (const std::string& token : {std::string(), writer_}) {
    auto g = Send("GET", url, token);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->status, token.empty() ? 401 : 403) << g->body;
    EXPECT_EQ(g->body.find("cars@2"), std::string::npos) << "leaked: " << g->body;
  }
  EXPECT_EQ(Settled(url)["state"], "failed");
  auto unknown = Send("GET", "/v1/jobs/0123456789abcdef", admin_);
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_NE(JsonOf(unknown)["error"]["message"].get<std::string>().find("in memory"),
            std::string::npos);
}

// Promotions the stored metrics decide stay a plain request (200 / 409),
// unless the client asks for the job handle.
TEST_F(ServeJobsTest, QuickPromotionsAnswerAtOnceUnlessAsyncIsPreferred) {
  auto quick = Promote(1, R"({"to": "staging", "force": true, "reason": "quick"})");
  ASSERT_TRUE(quick);
  EXPECT_EQ(quick->status, 200) << quick->body;
  EXPECT_TRUE(JsonOf(quick)["applied"] == true || JsonOf(quick)["unchanged"] == true);
  const std::string url = Accepted(
      Promote(1, R"({"to": "staging", "reason": "again"})", {{"Prefer", "respond-async"}}));
  ASSERT_FALSE(url.empty());
  Json job = Settled(url);
  EXPECT_EQ(job["state"], "succeeded") << job.dump();
  EXPECT_EQ(job["result"]["unchanged"], true) << job.dump();
}

// One job runs, four wait, more are refused; stopping the server fails the
// waiting ones and lets the running one finish: no job is left dangling.
TEST_F(ServeJobsTest, TheQueueIsBoundedAndStoppingSettlesEveryJob) {
  std::vector<std::string> urls;
  for (int i = 0; i < 5; ++i) {
    urls.push_back(Accepted(Promote(2, R"({"to": "production"})", {{"Prefer", "respond-async"}})));
  }
  auto refused = Promote(2, R"({"to": "production"})");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_FALSE(refused->get_header_value("Retry-After").empty());
  EXPECT_NE(JsonOf(refused)["error"]["message"].get<std::string>().find("queued"),
            std::string::npos)
      << refused->body;
  EXPECT_EQ(Job(urls[4])["state"], "queued");

  server_->Signal(SIGTERM);
  EXPECT_EQ(server_->Wait(120), 0) << server_->Output();
  const std::string out = server_->Output();
  for (size_t i = 0; i < urls.size(); ++i) {
    const std::string id = urls[i].substr(urls[i].rfind('/') + 1);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(
        out, m, std::regex("job " + id + " promote cars@2 -> production: (succeeded|failed)(.*)")))
        << id << "\n"
        << out;
    if (i >= 2) {  // the first, and perhaps the second, ran
      EXPECT_NE(m[2].str().find("stopped before the job started"), std::string::npos) << m.str();
    }
  }
}

}  // namespace
}  // namespace detops
