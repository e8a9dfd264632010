// detops alerts ls | show | ack | resolve end to end. No command opens
// alerts yet, so the test observes them through the library (as the monitor
// will) and drives the binary over the same workspace: the table and JSON,
// the filters, newest first, ack and resolve with actor and note, and the
// exit codes of an unknown id (3) and a transition not allowed (2).

#include <gtest/gtest.h>

#include "core/core.h"
#include "monitor/alerts.h"
#include "testing/testutil.h"

namespace detops {
namespace {

using testing::CommandResult;
using testing::RunCommand;
using testing::TempDir;

AlertObservation Obs(const std::string& model, const std::string& signal, Level level,
                     double value) {
  AlertObservation o;
  o.model_name = model;
  o.model_version = 2;
  o.signal = signal;
  o.statistic = FindSignal(signal)->statistic;
  o.level = level;
  o.value = value;
  o.threshold = 0.25;
  o.window_start_ms = 1'767'225'600'000;  // 2026-01-01T00:00:00Z
  o.window_end_ms = o.window_start_ms + 3'600'000;
  o.window_n = 200;
  o.example_ids = {"0123456789abcdef"};
  o.message = model + "@2: " + signal + " " + o.statistic + " " + std::to_string(value);
  return o;
}

class AlertsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ws = Workspace::Open({dir_ / "ws"});
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    // #1: two windows (warn, then retrain); #2: an SLO broken; #3: another model.
    for (const AlertObservation& o : {Obs("cars", "input.brightness", Level::kWarn, 0.12),
                                      Obs("cars", "input.brightness", Level::kRetrain, 0.31),
                                      Obs("cars", "service.error_rate", Level::kEscalate, 0.04),
                                      Obs("bikes", "prediction.score", Level::kWarn, 0.14)}) {
      auto c = ObserveAlert(**ws, o, 3);
      ASSERT_TRUE(c.ok() && c->has_value()) << c.status().ToString();
    }
  }
  CommandResult Run(const std::string& args, const std::string& env = "") {
    return RunCommand(env + testing::DetopsBin() + " --workspace " + (dir_ / "ws").string() + " " +
                      args);
  }
  Json RunJson(const std::string& args) {
    CommandResult r = RunCommand(
        testing::DetopsBin() + " --workspace " + (dir_ / "ws").string() + " " + args, false);
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.out;
    auto j = ParseJson(r.out, args);
    EXPECT_TRUE(j.ok()) << r.out;
    return j.ok() ? *j : Json();
  }
  std::vector<int> Ids(const std::string& args) {
    std::vector<int> ids;
    for (const Json& a : RunJson(args)) ids.push_back(a["id"].get<int>());
    return ids;
  }
  TempDir dir_;
};

TEST_F(AlertsCli, ListsActiveAlertsNewestFirst) {
  CommandResult ls = Run("alerts ls", "COLUMNS=160 ");
  ASSERT_EQ(ls.exit_code, 0) << ls.out;
  for (const char* want :
       {"ID", "MODEL", "SIGNAL", "LEVEL", "STATE", "cars@2", "input.brightness", "retrain",
        "service.error_rate", "escalate", "bikes@2", "psi 0.31", "2026-"}) {
    EXPECT_NE(ls.out.find(want), std::string::npos) << want << "\n" << ls.out;
  }
  // Rows newest first: #3 on the line after the header.
  const size_t second_line = ls.out.find('\n') + 1;
  EXPECT_EQ(ls.out.substr(second_line, 3), "3  ") << ls.out;

  EXPECT_EQ(Ids("alerts ls --json"), (std::vector<int>{3, 2, 1}));
  Json all = RunJson("alerts ls --json");
  EXPECT_EQ(all[2]["windows"], 2);
  EXPECT_EQ(all[2]["level"], "retrain");
  EXPECT_EQ(all[2]["examples"], Json({"0123456789abcdef"}));
  EXPECT_EQ(Ids("alerts ls --model cars --json"), (std::vector<int>{2, 1}));
  EXPECT_EQ(Ids("alerts ls --signal service.error_rate --json"), (std::vector<int>{2}));
  EXPECT_EQ(Ids("alerts ls --limit 1 --json"), (std::vector<int>{3}));
  EXPECT_EQ(Ids("alerts ls --state resolved --json"), std::vector<int>{});

  CommandResult none = Run("alerts ls --model trucks");
  EXPECT_EQ(none.exit_code, 0);
  EXPECT_NE(none.out.find("no active alerts for trucks"), std::string::npos) << none.out;
  EXPECT_EQ(Run("alerts ls --state closed").exit_code, 2);
  EXPECT_EQ(Run("alerts ls --limit -1").exit_code, 2);
}

TEST_F(AlertsCli, ShowsOneAlert) {
  CommandResult show = Run("alerts show 1");
  ASSERT_EQ(show.exit_code, 0) << show.out;
  for (const char* want :
       {"alert #1  retrain  open", "cars@2", "input.brightness (threshold, psi)",
        "200 predictions, 2026-01-01T00:00:00Z .. 2026-01-01T01:00:00Z", "2 reached a level",
        "0123456789abcdef", "notified      never", "next: detops alerts ack 1"}) {
    EXPECT_NE(show.out.find(want), std::string::npos) << want << "\n" << show.out;
  }
  Json j = RunJson("alerts show 1 --json");
  EXPECT_EQ(j["id"], 1);
  EXPECT_EQ(j["state"], "open");
  EXPECT_EQ(j["signal"], "input.brightness");
  EXPECT_EQ(j["windows"], 2);
  EXPECT_DOUBLE_EQ(j["value"].get<double>(), 0.31);

  CommandResult missing = Run("alerts show 99");
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.out.find("error: no alert with id 99"), std::string::npos) << missing.out;
  EXPECT_EQ(Run("alerts show abc").exit_code, 2);
  EXPECT_EQ(Run("alerts show").exit_code, 2);
}

TEST_F(AlertsCli, AcknowledgeThenResolve) {
  CommandResult ack = Run("alerts ack 2 --note 'on it' --actor ana");
  ASSERT_EQ(ack.exit_code, 0) << ack.out;
  EXPECT_NE(ack.out.find("acknowledged alert #2 (cars@2 service.error_rate, escalate) as ana"),
            std::string::npos)
      << ack.out;
  Json j = RunJson("alerts show 2 --json");
  EXPECT_EQ(j["state"], "acknowledged");
  EXPECT_EQ(j["acknowledged_by"], "ana");
  EXPECT_EQ(j["note"], "on it");
  EXPECT_NE(Run("alerts show 2").out.find("next: detops alerts resolve 2"), std::string::npos);

  CommandResult twice = Run("alerts ack 2");
  EXPECT_EQ(twice.exit_code, 2);
  EXPECT_NE(twice.out.find("error: alert #2 is already acknowledged (by ana"), std::string::npos)
      << twice.out;

  // The actor defaults to $USER.
  CommandResult resolve = Run("alerts resolve 2 --note 'pool restarted'", "USER=bo ");
  ASSERT_EQ(resolve.exit_code, 0) << resolve.out;
  EXPECT_NE(resolve.out.find("resolved alert #2"), std::string::npos) << resolve.out;
  j = RunJson("alerts show 2 --json");
  EXPECT_EQ(j["state"], "resolved");
  EXPECT_EQ(j["resolved_by"], "bo");
  EXPECT_EQ(j["note"], "on it; pool restarted");
  CommandResult show = Run("alerts show 2");
  EXPECT_NE(show.out.find("resolved      "), std::string::npos) << show.out;
  EXPECT_EQ(show.out.find("next:"), std::string::npos) << show.out;

  CommandResult again = Run("alerts resolve 2");
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.out.find("error: alert #2 is already resolved (by bo"), std::string::npos)
      << again.out;
  CommandResult unknown = Run("alerts ack 99");
  EXPECT_EQ(unknown.exit_code, 3);
  EXPECT_NE(unknown.out.find("no alert with id 99"), std::string::npos) << unknown.out;
  EXPECT_EQ(Run("alerts resolve 99").exit_code, 3);

  // Resolved alerts leave the default (active) list.
  EXPECT_EQ(Ids("alerts ls --json"), (std::vector<int>{3, 1}));
  EXPECT_EQ(Ids("alerts ls --state resolved --json"), (std::vector<int>{2}));
  EXPECT_EQ(Ids("alerts ls --state all --json"), (std::vector<int>{3, 2, 1}));
  EXPECT_EQ(Ids("alerts ls --state open --json"), (std::vector<int>{3, 1}));
}

TEST_F(AlertsCli, HelpTexts) {
  for (const std::string cmd :
       {"alerts", "alerts ls", "alerts show", "alerts ack", "alerts resolve"}) {
    CommandResult r = Run(cmd + " --help");
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd;
  }
  EXPECT_EQ(Run("alerts").exit_code, 2);
}

}  // namespace
}  // namespace detops
