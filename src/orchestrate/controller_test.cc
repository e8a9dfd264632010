// The controller's triggers against a real workspace: a burst of drift
// alerts starts one pipeline run, escalate starts none, the cooldown holds,
// a slowly copied inbox folder is taken once and whole, a cron schedule
// fires once per due minute. The pipeline is a shell step, so that what is
// tested is the deciding, not training.

#include "orchestrate/controller.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "monitor/alerts.h"
#include "testing/testutil.h"

namespace detops {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ws = Workspace::Open({dir_.path() / "ws"});
    ASSERT_TRUE(ws.ok()) << ws.status().message();
    ws_ = std::move(*ws);
    // Records each run's params, then takes `hold` seconds.
    pipeline_ = dir_.path() / "p.yaml";
    testing::WriteText(pipeline_, R"(name: note
params:
  model: null
  shift: ""
  source: ""
  dataset: ""
  hold: "0"
steps:
  - id: note
    uses: shell
    with:
      run: "echo '${params.shift}|${params.source}|${params.dataset}' >> )" +
                                      (dir_.path() / "runs.txt").string() +
                                      R"(; sleep ${params.hold}"
)");
  }

  ControllerConfig Config() {
    ControllerConfig c;
    c.model = "cars";
    c.pipeline = pipeline_.string();
    c.monitor = false;
    c.inbox = false;
    c.cooldown_seconds = 3600;
    return c;
  }

  std::unique_ptr<Controller> Open(const ControllerConfig& c) {
    auto ctl = Controller::Open(*ws_, c, {});
    EXPECT_TRUE(ctl.ok()) << ctl.status().message();
    return ctl.ok() ? std::move(*ctl) : nullptr;
  }

  void Observe(const std::string& signal, Level level, int windows = 1) {
    for (int i = 0; i < windows; ++i) {
      AlertObservation o;
      o.model_name = "cars";
      o.model_version = 1;
      o.signal = signal;
      o.statistic = "psi";
      o.level = level;
      o.value = level == Level::kEscalate ? 3 : 0.5;
      o.threshold = 0.25;
      o.message = signal + " drifted";
      ASSERT_TRUE(ObserveAlert(*ws_, o, 3).ok());
    }
  }

  static void WaitIdle(Controller& c) {
    for (int i = 0; i < 300 && c.Busy(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  std::vector<TriggerEvent> Events(const std::string& decision) {
    auto all = ListTriggerEvents(*ws_, "cars", 0);
    EXPECT_TRUE(all.ok());
    std::vector<TriggerEvent> out;
    for (const TriggerEvent& e : *all) {
      if (e.decision == decision) out.push_back(e);
    }
    return out;
  }

  std::string Runs() {
    auto text = testing::RunCommand("cat " + (dir_.path() / "runs.txt").string() + " 2>/dev/null");
    return text.out;
  }

  TempDir dir_;
  std::unique_ptr<Workspace> ws_;
  fs::path pipeline_;
};

TEST_F(ControllerTest, ABurstOfDriftAlertsStartsOneRetraining) {
  auto c = Open(Config());
  ASSERT_TRUE(c);
  // One drift episode: several signals over many windows, seen over many
  // ticks of the controller.
  for (int tick = 0; tick < 10; ++tick) {
    Observe("input.brightness", Level::kRetrain);
    Observe("input.contrast", Level::kRetrain);
    Observe("embedding.mmd", Level::kRetrain);
    auto r = c->Tick(Now());
    ASSERT_TRUE(r.ok()) << r.status().message();
  }
  WaitIdle(*c);
  std::vector<TriggerEvent> started = Events("started");
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0].trigger, "drift");
  // Each alert was decided once: the other two are skipped, with the reason.
  std::vector<TriggerEvent> skipped = Events("skipped");
  ASSERT_EQ(skipped.size(), 2u);
  for (const TriggerEvent& e : skipped) {
    EXPECT_TRUE(e.reason.find("running") != std::string::npos ||
                e.reason.find("cooldown") != std::string::npos)
        << e.reason;
  }
  // The run augments for the drifted input signals.
  const std::string runs = Runs();
  EXPECT_NE(runs.find("input.brightness"), std::string::npos) << runs;
  EXPECT_NE(runs.find("input.contrast"), std::string::npos) << runs;
  auto list = ListPipelineRuns(*ws_, {});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].state, kRunSucceeded) << (*list)[0].reason;
  EXPECT_EQ((*list)[0].trigger, "drift");
}

TEST_F(ControllerTest, ANewEpisodeWithinTheCooldownStartsNothing) {
  auto c = Open(Config());
  ASSERT_TRUE(c);
  Observe("input.brightness", Level::kRetrain);
  ASSERT_TRUE(c->Tick(Now()).ok());
  WaitIdle(*c);
  // The episode ends; a new one opens soon after.
  auto alerts = ListAlerts(*ws_, {"cars", "active", "", 0});
  ASSERT_TRUE(alerts.ok());
  for (const Alert& a : *alerts) ASSERT_TRUE(ResolveAlert(*ws_, a.id, "test", "").ok());
  Observe("input.brightness", Level::kRetrain);
  ASSERT_TRUE(c->Tick(Now()).ok());
  WaitIdle(*c);
  EXPECT_EQ(Events("started").size(), 1u);
  ASSERT_EQ(Events("skipped").size(), 1u);
  EXPECT_NE(Events("skipped")[0].reason.find("cooldown"), std::string::npos);
  // Past the cooldown, the next episode retrains.
  ControllerConfig cfg = Config();
  cfg.cooldown_seconds = 0;
  auto c2 = Open(cfg);
  alerts = ListAlerts(*ws_, {"cars", "active", "", 0});
  for (const Alert& a : *alerts) ASSERT_TRUE(ResolveAlert(*ws_, a.id, "test", "").ok());
  Observe("input.sharpness", Level::kRetrain);
  ASSERT_TRUE(c2->Tick(Now()).ok());
  WaitIdle(*c2);
  EXPECT_EQ(Events("started").size(), 2u);
}

TEST_F(ControllerTest, EscalateStartsNoRetrainingAndSaysWhy) {
  auto c = Open(Config());
  ASSERT_TRUE(c);
  Observe("input.brightness", Level::kEscalate);
  Observe("embedding.mmd", Level::kRetrain);            // retrain-level, but another escalated
  Observe("service.latency_p95_ms", Level::kEscalate);  // not a data problem: ignored
  ASSERT_TRUE(c->Tick(Now()).ok());
  WaitIdle(*c);
  EXPECT_TRUE(Events("started").empty());
  std::vector<TriggerEvent> skipped = Events("skipped");
  ASSERT_EQ(skipped.size(), 2u);
  for (const TriggerEvent& e : skipped) {
    EXPECT_NE(e.reason.find("a person decides"), std::string::npos) << e.reason;
  }
  auto freeze = PromotionFreeze(*ws_, "cars");
  ASSERT_TRUE(freeze.ok());
  EXPECT_TRUE(freeze->has_value());
  auto runs = ListPipelineRuns(*ws_, {});
  ASSERT_TRUE(runs.ok());
  EXPECT_TRUE(runs->empty());
}

TEST_F(ControllerTest, ASlowlyCopiedInboxFolderIsTakenOnceAndWhole) {
  ControllerConfig cfg = Config();
  cfg.inbox = true;
  cfg.inbox_quiet_seconds = 1.0;
  auto c = Open(cfg);
  ASSERT_TRUE(c);
  const fs::path batch = ws_->root() / "inbox" / "cars";
  // Twelve files, one every 300 ms: never quiet for a second until done.
  int64_t t0 = Now();
  for (int i = 0; i < 12; ++i) {
    testing::WriteText(batch / "labels" / ("img" + std::to_string(i) + ".txt"),
                       "0 0.5 0.5 0.1 0.1\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto r = c->Tick(Now());
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_TRUE(r->empty()) << "taken while still copying, after " << (Now() - t0) << " ms";
  }
  std::vector<TriggerEvent> events;
  for (int i = 0; i < 30 && events.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto r = c->Tick(Now());
    ASSERT_TRUE(r.ok());
    events = *r;
  }
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].trigger, "inbox");
  EXPECT_EQ(events[0].detail["files"].get<int64_t>(), 12);
  WaitIdle(*c);
  // The run got the claimed folder and the dataset; the batch is settled.
  const std::string runs = Runs();
  EXPECT_NE(runs.find(".processing"), std::string::npos) << runs;
  EXPECT_NE(runs.find("|cars"), std::string::npos) << runs;
  EXPECT_FALSE(fs::exists(batch));
  int done = 0;
  for (const auto& e : fs::directory_iterator(ws_->root() / "inbox" / ".done")) {
    ++done;
    EXPECT_TRUE(fs::exists(e.path() / "detops-result.json"));
    int files = 0;
    for (const auto& f : fs::recursive_directory_iterator(e.path() / "labels")) {
      files += f.is_regular_file();
    }
    EXPECT_EQ(files, 12);
  }
  EXPECT_EQ(done, 1);
  // Later ticks take nothing more.
  auto again = c->Tick(Now() + 5000);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
}

TEST_F(ControllerTest, AScheduleFiresOncePerDueTime) {
  ControllerConfig cfg = Config();
  cfg.schedule = "* * * * *";  // every minute
  auto c = Open(cfg);
  ASSERT_TRUE(c);
  // Half a second past the next minute boundary: exactly one due time.
  const int64_t later = (Now() / 60000 + 1) * 60000 + 500;
  auto first = c->Tick(later);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].trigger, "schedule");
  EXPECT_EQ((*first)[0].decision, "started");
  WaitIdle(*c);
  auto second = c->Tick(later);  // the same due minute: nothing
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->empty());
}

TEST_F(ControllerTest, ARunWhoseRunnerDiedIsResumed) {
  // A run created and claimed by a process that no longer exists.
  PipelineRunOptions o;
  o.pipeline = pipeline_.string();
  o.params = {{"model", "cars"}};
  auto run = CreatePipelineRun(*ws_, o);
  ASSERT_TRUE(run.ok()) << run.status().message();
  ASSERT_TRUE(ws_->db()
                  .Exec("UPDATE pipeline_runs SET owner = 'nohost-that-exists:1', heartbeat_ms = 1 "
                        "WHERE id = ?",
                        {run->id})
                  .ok());
  auto c = Open(Config());
  ASSERT_TRUE(c);
  auto r = c->Tick(Now());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].decision, "resumed");
  WaitIdle(*c);
  auto after = GetPipelineRun(*ws_, run->id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->state, kRunSucceeded) << after->reason;
}

TEST_F(ControllerTest, AControllerFileIsCheckedWithLines) {
  auto bad = ParseControllerConfig("model: cars\ncooldown: 5\n", "c.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("c.yaml:2"), std::string::npos);
  EXPECT_NE(bad.status().message().find("cooldown"), std::string::npos);
  auto cron = ParseControllerConfig("model: cars\nschedule: '61 * * * *'\n", "c.yaml");
  ASSERT_FALSE(cron.ok());
  EXPECT_NE(cron.status().message().find("minute"), std::string::npos) << cron.status().message();
  auto good = ParseControllerConfig(
      "model: cars\nparams: {minutes: 2}\ncooldown_seconds: 60\nschedule: '@daily'\n", "c.yaml");
  ASSERT_TRUE(good.ok()) << good.status().message();
  EXPECT_EQ(good->params.at("minutes"), "2");
  EXPECT_EQ(good->cooldown_seconds, 60);
}

}  // namespace
}  // namespace detops
