// The case studies' unattended loop, end to end through the real binary and
// the real server over loopback, with tiny models and a few seconds of
// training:
//  - poor lighting: dark traffic -> drift alert at retrain -> the server's
//    controller retrains on the labelled dark images (warm start, dark
//    augmentation) -> gated on the test split and on the held-out dark
//    slice -> canary under live traffic -> production, no failed request;
//  - past the larger threshold: escalate, no retraining, automatic
//    promotion frozen;
//  - new labelled data in the inbox -> validate -> new dataset version ->
//    retrain -> gates -> production (`detops controller`);
//  - bad data in the inbox -> refused, alert, nothing trained, production
//    untouched.

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <fstream>
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

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Promotion gates that tiny models can pass: what is tested is that the
// gates run on both test sets, not the models' quality.
constexpr const char* kGates =
    "floors: {}\nmax_regression: {map50: 1.0}\nmax_latency_p95_ms: 100000\n"
    "production: {floors: {}}\n";

// A base workspace made once (cars@1 in production: a tiny model trained
// for one epoch), copied for each test.
class RetrainScenariosTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    base_ = new TempDir();
    const fs::path b = base_->path();
    const std::string ws = " --workspace " + (b / "ws").string() + " ";
    auto run = [&](const std::string& args) {
      return RunCommand(testing::DetopsBin() + ws + args);
    };
    ASSERT_EQ(RunCommand(testing::DetopsBin() + " synth " + (b / "cars").string() +
                         " --kind car --n 60 --seed 11 --width 320 --height 240")
                  .exit_code,
              0);
    // Live traffic: other photos of the same kind (darkened copies of the
    // training photos would be near-duplicates across splits, which
    // validation refuses, rightly).
    ASSERT_EQ(RunCommand(testing::DetopsBin() + " synth " + (b / "live").string() +
                         " --kind car --n 80 --seed 13 --width 320 --height 240")
                  .exit_code,
              0);
    ASSERT_EQ(run("data import cars " + (b / "cars").string()).exit_code, 0);
    CommandResult t =
        run("train cars --name tiny --epochs 1 --imgsz 64 --batch 8 --threads 2 --quiet");
    ASSERT_EQ(t.exit_code, 0) << t.out;
    ASSERT_EQ(run("models register tiny --name cars").exit_code, 0);
    CommandResult p = run("models promote cars@1 --to production --force --reason setup");
    ASSERT_EQ(p.exit_code, 0) << p.out;
    CommandResult tok = run("tokens create --role writer --name writer");
    writer_ = testing::TokenIn(tok.out);
    ASSERT_FALSE(writer_.empty()) << tok.out;
    testing::WriteText(b / "gates.yaml", kGates);
  }
  static void TearDownTestSuite() {
    delete base_;
    base_ = nullptr;
  }

  void SetUp() override {
    ASSERT_EQ(RunCommand("cp -a " + (base_->path() / "ws").string() + " " + Ws()).exit_code, 0);
  }
  void TearDown() override {
    for (auto* p : {&server_, &controller_}) {
      if (*p && (*p)->Running()) {
        (*p)->Signal(SIGTERM);
        EXPECT_EQ((*p)->Wait(60), 0) << (*p)->Output();
      }
    }
  }

  std::string Ws() const { return (dir_.path() / "ws").string(); }
  CommandResult Run(const std::string& args) const {
    return RunCommand(testing::DetopsBin() + " --workspace " + Ws() + " " + args);
  }
  Json RunJson(const std::string& args) const {
    CommandResult r = Run(args);
    auto j = ParseJson(r.out, args);
    EXPECT_TRUE(j.ok()) << args << ": " << r.out;
    return j.ok() ? *j : Json();
  }
  int Production() const {
    for (const Json& v : RunJson("models ls cars --json")) {
      for (const Json& a : v["aliases"]) {
        if (a == "production") return v["version"].get<int>();
      }
    }
    return 0;
  }
  Json PipelineRuns() const { return RunJson("pipelines ls --json"); }
  Json Triggers() const { return RunJson("triggers ls --json"); }
  static Json Step(const Json& run, const std::string& id) {
    for (const Json& s : run["steps"]) {
      if (s["step"] == id) return s;
    }
    return Json();
  }

  void StartServer(const std::string& monitor_yaml, const std::string& controller_yaml) {
    testing::WriteText(dir_.path() / "monitor.yaml", monitor_yaml);
    testing::WriteText(dir_.path() / "controller.yaml", controller_yaml);
    server_ = std::make_unique<ChildProcess>(
        testing::MonitoredServeArgv(
            Ws(), "cars", dir_.path() / "monitor.yaml",
            {"--keep-images", "1", "--precision", "fp32", "--controller-config",
             (dir_.path() / "controller.yaml").string()}),
        dir_.path() / "serve.log");
    port_ = testing::WaitForServePort(*server_);
    ASSERT_NE(port_, 0) << server_->Output();
    httplib::Client c("127.0.0.1", port_);
    auto models = c.Get("/v1/models");
    ASSERT_TRUE(models && models->status == 200);
    auto j = ParseJson(models->body, "models");
    ASSERT_TRUE(j.ok());
    classes_ = (*j)["serving"]["classes"];
  }

  // Sends a photo; with `label`, its true boxes as feedback. Returns the
  // version that answered (0 when the request failed).
  int Send(const fs::path& photo, double factor, bool label) {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    auto r = c.Post("/v1/predict", Dimmed(ReadFile(photo).value(), factor), "image/jpeg");
    if (!r || r->status != 200) return 0;
    auto j = ParseJson(r->body, "answer");
    if (!j.ok()) return 0;
    if (label) {
      const int w = (*j)["image"]["width"], h = (*j)["image"]["height"];
      auto fb = c.Post(
          "/v1/feedback", {{"Authorization", "Bearer " + writer_}},
          Json{{"prediction_id", (*j)["id"]}, {"boxes", TrueBoxes(photo, classes_, w, h)}}.dump(),
          "application/json");
      if (!fb || fb->status / 100 != 2) return 0;
    }
    return (*j)["model"]["version"].get<int>();
  }

  static TempDir* base_;
  static std::string writer_;
  TempDir dir_;
  std::unique_ptr<ChildProcess> server_, controller_;
  int port_ = 0;
  Json classes_;
};

TempDir* RetrainScenariosTest::base_ = nullptr;
std::string RetrainScenariosTest::writer_;

TEST_F(RetrainScenariosTest, PoorLightingRetrainsOnTheDarkImagesAndReleasesThroughACanary) {
  // Levels reach retrain, never escalate; no rollback of what the canary
  // released.
  StartServer(
      "window: {size: 20, min_samples: 15}\n"
      "thresholds: {input: {escalate: 1000}, embedding: {escalate: 1000}, prediction: "
      "{escalate: 1000}, accuracy: {escalate: 1000}}\n"
      "actions: {rollback: false}\n",
      "model: cars\ninbox: false\ntick_seconds: 0.5\n"
      "params:\n  epochs: 1\n  minutes: 0\n  holdout: 0.3\n  rollout: canary\n  stages: '0.5'\n"
      "  min_requests: 8\n  policy: " +
          (base_->path() / "gates.yaml").string() +
          "\n  rollout_policy: '{\"max_p95_ratio\": 100, \"max_accuracy_drop\": 1, "
          "\"max_low_confidence_increase\": 1, \"max_error_rate_increase\": 0.5}'\n");
  const std::vector<fs::path> photos = Jpegs(base_->path() / "live" / "images");
  ASSERT_GE(photos.size(), 80u);
  int failed = 0;
  for (int i = 0; i < 20; ++i) failed += Send(photos[i], 1.0, false) == 0;
  // Dusk falls: dark photos, each labelled by an inspector.
  for (int i = 20; i < 80; ++i) failed += Send(photos[i], 0.45, true) == 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const Json& e : Triggers()) {
          if (e["decision"] == "started") return true;
        }
        return false;
      },
      60, 250ms))
      << Triggers().dump(1) << server_->Output();
  // Traffic goes on while the candidate is trained, gated and canaried.
  std::set<int> answered_by;
  int i = 0;
  const bool released = WaitFor(
      [&] {
        for (int k = 0; k < 4; ++k, ++i) {
          int v = Send(photos[i % photos.size()], 0.45, true);
          failed += v == 0;
          answered_by.insert(v);
        }
        return Production() == 2;
      },
      240, 250ms);
  ASSERT_TRUE(released) << PipelineRuns().dump(1) << server_->Output();
  EXPECT_EQ(failed, 0) << "requests failed while the model was retrained and released";
  EXPECT_TRUE(answered_by.count(2)) << "the canary answered no request";
  // One drift episode, one retraining; what it did is on record.
  int started = 0;
  for (const Json& e : Triggers()) started += e["decision"] == "started";
  EXPECT_EQ(started, 1) << Triggers().dump(1);
  const Json runs = PipelineRuns();
  ASSERT_EQ(runs.size(), 1u);
  const Json& run = runs[0];
  EXPECT_EQ(run["trigger"], "drift");
  EXPECT_EQ(run["state"], "succeeded") << run.dump(1);
  const Json feedback = Step(run, "feedback");
  EXPECT_GT(std::stoi(feedback["outputs"]["images_added"].get<std::string>()), 0);
  EXPECT_GT(std::stoi(feedback["outputs"]["holdout_images"].get<std::string>()), 0);
  const Json train = Step(run, "train");
  EXPECT_NE(train["outputs"]["init"].get<std::string>().find("cars@1"), std::string::npos);
  const std::string train_log = ReadAll(train["log"].get<std::string>());
  EXPECT_NE(train_log.find("augment.dark"), std::string::npos) << train_log;
  const Json promote = Step(run, "promote");
  const std::string gates = promote["outputs"]["gates"];
  EXPECT_NE(gates.find("on cars-holdout@"), std::string::npos) << gates;
  EXPECT_FALSE(promote["outputs"]["rollout"].get<std::string>().empty());
  // New requests are answered by the new version.
  EXPECT_EQ(Send(photos[0], 0.45, false), 2);
}

TEST_F(RetrainScenariosTest, PastTheLargerThresholdEscalatesWithoutRetrainingAndFreezes) {
  ASSERT_EQ(Run("models register tiny --name cars").exit_code, 0);  // cars@2, a candidate
  StartServer("window: {size: 20, min_samples: 15}\nactions: {rollback: false}\n",
              "model: cars\ninbox: false\ntick_seconds: 0.5\n");
  const std::vector<fs::path> photos = Jpegs(base_->path() / "live" / "images");
  for (int i = 0; i < 20; ++i) ASSERT_NE(Send(photos[i], 1.0, false), 0);
  for (int i = 0; i < 40; ++i) ASSERT_NE(Send(photos[i], 0.12, false), 0);  // near night
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const Json& e : Triggers()) {
          if (e["decision"] == "skipped" &&
              e["reason"].get<std::string>().find("a person decides") != std::string::npos)
            return true;
        }
        return false;
      },
      60, 250ms))
      << Triggers().dump(1) << RunJson("alerts ls --json").dump(1);
  std::this_thread::sleep_for(std::chrono::seconds(2));  // more ticks: still nothing
  for (const Json& e : Triggers()) EXPECT_NE(e["decision"], "started") << e.dump();
  EXPECT_TRUE(PipelineRuns().empty());
  // An automatic promotion is refused while the escalation is open.
  testing::WriteText(dir_.path() / "promote.yaml",
                     "name: release\nsteps:\n  - id: promote\n    uses: promote\n    with: "
                     "{model: cars@2, policy: " +
                         (base_->path() / "gates.yaml").string() + "}\n");
  CommandResult r = Run("pipelines run " + (dir_.path() / "promote.yaml").string() + " -q");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("frozen"), std::string::npos) << r.out;
  EXPECT_EQ(Production(), 1);
}

TEST_F(RetrainScenariosTest, NewLabelledDataInTheInboxIsValidatedVersionedTrainedAndReleased) {
  // The batch is written elsewhere, moved in, then marked complete.
  ASSERT_EQ(RunCommand(testing::DetopsBin() + " synth " + (dir_.path() / "new").string() +
                       " --kind car --n 20 --seed 12 --width 320 --height 240")
                .exit_code,
            0);
  fs::create_directories(fs::path(Ws()) / "inbox");
  fs::rename(dir_.path() / "new", fs::path(Ws()) / "inbox" / "cars");
  testing::WriteText(fs::path(Ws()) / "inbox" / "cars" / "_READY", "");
  controller_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{testing::DetopsBin(), "--workspace", Ws(), "controller", "--model",
                               "cars", "--no-monitor", "--tick", "0.5", "-p", "epochs=1", "-p",
                               "minutes=0", "-p", "rollout=none", "-p",
                               "policy=" + (base_->path() / "gates.yaml").string()},
      dir_.path() / "controller.log");
  ASSERT_TRUE(WaitFor([&] { return Production() == 2; }, 120, 250ms))
      << controller_->Output() << PipelineRuns().dump(1);
  const Json runs = PipelineRuns();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["trigger"], "inbox");
  EXPECT_EQ(runs[0]["state"], "succeeded") << runs[0].dump(1);
  // A new version: the old images plus the batch.
  const Json imported = Step(runs[0], "import");
  EXPECT_EQ(imported["outputs"]["images"], "80");
  EXPECT_EQ(Step(runs[0], "validate")["outputs"]["status"], "passed");
  // The batch is settled, with why.
  const fs::path done = fs::path(Ws()) / "inbox" / ".done";
  ASSERT_TRUE(fs::exists(done));
  ASSERT_EQ(std::distance(fs::directory_iterator(done), fs::directory_iterator()), 1);
  EXPECT_FALSE(fs::exists(fs::path(Ws()) / "inbox" / "cars"));
}

TEST_F(RetrainScenariosTest, BadDataInTheInboxIsRefusedWithAnAlertAndNothingIsTrained) {
  const fs::path batch = fs::path(Ws()) / "inbox" / "cars";
  const std::vector<fs::path> photos = Jpegs(base_->path() / "cars" / "images");
  fs::create_directories(batch / "images");
  fs::copy_file(photos[0], batch / "images" / "a.jpg");
  testing::WriteText(batch / "labels" / "a.txt", "0 0.5 0.5 0.2 0.2\nnot a label line\n");
  testing::WriteText(batch / "images" / "b.jpg", "this is not a jpeg");
  testing::WriteText(batch / "labels" / "b.txt", "0 1.7 0.5 0.2 0.2\n");
  testing::WriteText(batch / "_READY", "");
  const int trains_before = static_cast<int>(RunJson("runs ls --json").size());
  controller_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{testing::DetopsBin(), "--workspace", Ws(), "controller", "--model",
                               "cars", "--no-monitor", "--tick", "0.5", "-p", "epochs=1", "-p",
                               "minutes=0"},
      dir_.path() / "controller.log");
  ASSERT_TRUE(WaitFor(
      [&] {
        Json runs = PipelineRuns();
        return !runs.empty() && runs[0]["state"] != "running";
      },
      60, 250ms))
      << controller_->Output();
  const Json run = PipelineRuns()[0];
  EXPECT_EQ(run["state"], "failed");
  EXPECT_EQ(Step(run, "check-import")["state"], "failed") << run.dump(1);
  EXPECT_EQ(Step(run, "train")["state"], "not_run");
  // Nothing trained, production untouched, the batch set aside, an alert.
  EXPECT_EQ(static_cast<int>(RunJson("runs ls --json").size()), trains_before);
  EXPECT_EQ(Production(), 1);
  ASSERT_TRUE(fs::exists(fs::path(Ws()) / "inbox" / ".failed"));
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const Json& a : RunJson("alerts ls --json")) {
          if (a["signal"] == "data.validation") return true;
        }
        return false;
      },
      10, 250ms));
  for (const Json& a : RunJson("alerts ls --json")) {
    if (a["signal"] != "data.validation") continue;
    const std::string message = a["message"];
    EXPECT_NE(message.find("failed validation"), std::string::npos) << message;
    EXPECT_TRUE(message.find("labels_parse") != std::string::npos ||
                message.find("import_issues") != std::string::npos ||
                message.find("boxes_inside_image") != std::string::npos)
        << message;
  }
}

}  // namespace
}  // namespace detops
