// `detops runs` end to end: runs made through the library in a temp
// workspace, then listed, shown and compared by the binary.

#include <gtest/gtest.h>

#include "core/core.h"
#include "testing/testutil.h"
#include "track/track.h"

namespace detops {
namespace {

using testing::CommandResult;
using testing::RunCommand;
using testing::TempDir;

class RunsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ws = Workspace::Open({dir_ / "ws"});
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    auto tracker = Tracker::Open(**ws);
    ASSERT_TRUE(tracker.ok());
    Tracker& t = **tracker;
    auto make = [&](const std::string& name, const std::string& model, double map50) {
      NewRun spec;
      spec.kind = "train";
      spec.name = name;
      spec.params = {{"model", model}, {"epochs", "10"}};
      spec.dataset_version = "cars@1";
      spec.env = CaptureEnvironment("abc123def456", "0.1.0", "cpu", "", 2);
      auto r = t.CreateRun(spec);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      MetricLogger logger(t, r->id);
      for (int step = 0; step < 5; ++step) {
        logger.Log("map50", map50 * (step + 1) / 5, step);
        logger.Log("loss", 1.0 / (step + 1), step);
      }
      EXPECT_TRUE(logger.Flush().ok());
      EXPECT_TRUE(t.SetStatus(r->id, RunStatus::kFinished).ok());
      return r->id;
    };
    small_ = make("small", "n", 0.42);
    big_ = make("big", "s", 0.61);
    ASSERT_TRUE(t.LogArtifactBytes(big_, "eval.json", "{\"map50\": 0.61}").ok());
  }

  CommandResult Run(const std::string& args) {
    return RunCommand(testing::DetopsBin() + " --workspace " + (dir_ / "ws").string() + " " + args);
  }
  Json RunJson(const std::string& args) {
    CommandResult r = RunCommand(
        testing::DetopsBin() + " --workspace " + (dir_ / "ws").string() + " " + args, false);
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.out;
    auto j = ParseJson(r.out, args);
    EXPECT_TRUE(j.ok()) << r.out;
    return j.ok() ? *j : Json();
  }

  TempDir dir_;
  std::string small_, big_;
};

TEST_F(RunsCli, ListFiltersSortsAndLimits) {
  CommandResult ls = Run("runs ls");
  ASSERT_EQ(ls.exit_code, 0) << ls.out;
  EXPECT_NE(ls.out.find("ID"), std::string::npos);
  EXPECT_NE(ls.out.find("map50"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("0.61"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("cars@1"), std::string::npos);
  EXPECT_LT(ls.out.find("big"), ls.out.find("small")) << "newest first";

  Json j = RunJson("runs ls --json --filter \"metrics.map50 > 0.5\"");
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["name"], "big");
  EXPECT_EQ(j[0]["params"]["model"], "s");

  j = RunJson("runs ls --json --sort \"metrics.map50 asc\" --limit 1");
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["name"], "small");

  CommandResult none = Run("runs ls --filter \"status = 'failed'\"");
  EXPECT_EQ(none.exit_code, 0);
  EXPECT_NE(none.out.find("no runs match"), std::string::npos);
}

TEST_F(RunsCli, ShowByIdPrefixAndName) {
  Json j = RunJson("runs show " + big_.substr(0, 6) + " --json");
  EXPECT_EQ(j["id"], big_);
  EXPECT_EQ(j["status"], "finished");
  EXPECT_EQ(j["env"]["git_commit"], "abc123def456");
  ASSERT_EQ(j["artifacts"].size(), 1u);
  EXPECT_EQ(j["artifacts"][0]["name"], "eval.json");
  ASSERT_EQ(j["metric_series"].size(), 2u);
  EXPECT_EQ(j["metric_series"][1]["key"], "map50");
  EXPECT_EQ(j["metric_series"][1]["points"], 5);
  EXPECT_DOUBLE_EQ(j["metrics"]["map50"].get<double>(), 0.61);

  CommandResult human = Run("runs show small");
  ASSERT_EQ(human.exit_code, 0) << human.out;
  for (const char* want : {"train run small", "PARAM", "model", "METRIC", "POINTS", "loss",
                           "abc123def456", "cars@1"}) {
    EXPECT_NE(human.out.find(want), std::string::npos) << want << "\n" << human.out;
  }
}

TEST_F(RunsCli, CompareMarksDifferingRows) {
  CommandResult c = Run("runs compare small big");
  ASSERT_EQ(c.exit_code, 0) << c.out;
  auto line_of = [&](const std::string& key) {
    size_t p = c.out.find(key);
    if (p == std::string::npos) return std::string();
    size_t b = c.out.rfind('\n', p);
    size_t e = c.out.find('\n', p);
    return c.out.substr(b == std::string::npos ? 0 : b + 1,
                        e - (b == std::string::npos ? 0 : b + 1));
  };
  EXPECT_EQ(line_of("params.model").rfind("*", 0), 0u) << c.out;
  EXPECT_EQ(line_of("metrics.map50").rfind("*", 0), 0u) << c.out;
  EXPECT_NE(line_of("params.epochs").rfind("*", 0), 0u) << c.out;
  Json j = RunJson("runs compare " + small_ + " " + big_ + " --json");
  EXPECT_EQ(j["differing"], Json({"params.model", "metrics.map50"}));
}

TEST_F(RunsCli, ErrorsAndExitCodes) {
  CommandResult missing = Run("runs show nothing-here");
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.out.find("no run with id, name or id prefix 'nothing-here'"), std::string::npos)
      << missing.out;
  CommandResult bad = Run("runs ls --filter \"metrics.map50 >\"");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.out.find("position 16"), std::string::npos) << bad.out;
  EXPECT_EQ(Run("runs compare small").exit_code, 2);
  EXPECT_EQ(Run("runs compare small nope").exit_code, 3);
  EXPECT_EQ(Run("runs ls --sort sideways").exit_code, 2);
  for (const std::string cmd : {"runs", "runs ls", "runs show", "runs compare"}) {
    CommandResult r = Run(cmd + " --help");
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd;
  }
}

}  // namespace
}  // namespace detops
