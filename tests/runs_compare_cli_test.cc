// `detops runs compare` (and the other run tables) within the terminal's
// width: fine-tuned runs carry a 1,100-character options_json and a long
// init_weights path, which once made the table over 1,000 columns wide.

#include <gtest/gtest.h>

#include <sstream>

#include "core/core.h"
#include "testing/testutil.h"
#include "track/track.h"

namespace detops {
namespace {

using testing::CommandResult;
using testing::RunCommand;
using testing::TempDir;

// Columns a terminal shows for `s` (UTF-8 code points).
size_t Width(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The first table row of `key` ("*  params.lr  0.001  0.002"), or "".
std::string Row(const std::string& text, const std::string& key) {
  for (const std::string& line : Lines(text)) {
    if (line.size() > 3 && line.compare(3, key.size() + 1, key + " ") == 0) return line;
  }
  return "";
}

class RunsCompareCli : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ws = Workspace::Open({dir_ / "ws"});
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    auto tracker = Tracker::Open(**ws);
    ASSERT_TRUE(tracker.ok());
    for (int i = 0; i < 5; ++i) ids_.push_back(Make(**tracker, i));
    ASSERT_GE(options_json_[0].size(), 1100u);
  }

  // A fine-tuned train run as `detops train --init` records it: every option
  // as a param, all of them again as options_json, and the init weights' path.
  std::string Make(Tracker& t, int i) {
    Json options = {{"variant", "s"},
                    {"epochs", 50},
                    {"imgsz", 640},
                    {"batch", 16},
                    {"lr", i == 1 ? 0.002 : 0.001},
                    {"device", "cpu"},
                    {"init_weights", init_weights_[i % 2]}};
    for (int k = 0; k < 60; ++k) options["augment"]["jitter_knob_" + std::to_string(k)] = 0.125 * k;
    NewRun spec;
    spec.kind = "train";
    spec.name = "finetune-" + std::to_string(i);
    const Json flat = options.flatten();
    for (const auto& [pointer, leaf] : flat.items()) {
      std::string key = pointer.substr(1);
      for (char& c : key) c = c == '/' ? '.' : c;
      spec.params[key] = leaf.is_string() ? leaf.get<std::string>() : leaf.dump();
    }
    spec.params["options_json"] = options.dump();
    options_json_.push_back(options.dump());
    spec.params["note"] = "café " + std::string(200, 'x');  // multi-byte text gets cut too
    spec.dataset_version = "cars@1";
    spec.env = CaptureEnvironment("abc123def456", "0.1.0", "cpu", "", 2);
    auto r = t.CreateRun(spec);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(t.LogMetrics(r->id, {{"map50", 1, 0.4 + 0.01 * i, 0}}).ok());
    EXPECT_TRUE(t.SetStatus(r->id, RunStatus::kFinished).ok());
    return r->id;
  }

  CommandResult Run(const std::string& env, const std::string& args) {
    return RunCommand(
        env + " " + testing::DetopsBin() + " --workspace " + (dir_ / "ws").string() + " " + args,
        false);
  }

  static void ExpectWithin(const std::string& out, size_t width, const std::string& what) {
    for (const std::string& line : Lines(out)) {
      EXPECT_LE(Width(line), width) << what << ": a line of " << Width(line) << " columns:\n"
                                    << line;
    }
  }

  TempDir dir_;
  std::vector<std::string> ids_, options_json_;
  const std::string init_weights_[2] = {
      "/srv/inspection/workspaces/body-shop-north/runs/0123456789ab/weights/best-ema-epoch-0047.pt",
      "/srv/inspection/workspaces/body-shop-north/runs/ba9876543210/weights/"
      "best-ema-epoch-0047.pt"};
};

TEST_F(RunsCompareCli, AFineTunedRunFitsTheTerminalAndKeepsItsDifferencesMarked) {
  CommandResult r = Run("COLUMNS=80", "runs compare " + ids_[0] + " " + ids_[1]);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ExpectWithin(r.out, 80, "COLUMNS=80");
  // options_json only repeats the params: out of the table, said in a footer.
  EXPECT_EQ(Row(r.out, "params.options_json"), "") << r.out;
  EXPECT_NE(r.out.find("left out: params.options_json"), std::string::npos) << r.out;
  // Differences still marked, long values cut with an ellipsis.
  std::string lr = Row(r.out, "params.lr");
  ASSERT_NE(lr, "") << r.out;
  EXPECT_EQ(lr[0], '*') << lr;
  EXPECT_NE(lr.find("0.002"), std::string::npos) << lr;
  std::string init = Row(r.out, "params.init_weights");
  ASSERT_NE(init, "") << r.out;
  EXPECT_EQ(init[0], '*') << init;
  EXPECT_NE(init.find("\u2026"), std::string::npos) << init;
  EXPECT_NE(init.find(".pt"), std::string::npos) << "a cut path keeps its file name: " << init;
  std::string epochs = Row(r.out, "params.epochs");
  ASSERT_NE(epochs, "") << r.out;
  EXPECT_EQ(epochs[0], ' ') << "equal values are not marked: " << epochs;
  EXPECT_NE(Row(r.out, "metrics.map50"), "") << r.out;
  EXPECT_NE(r.out.find(ids_[0]), std::string::npos) << "full ids in the header: " << r.out;
  EXPECT_NE(r.out.find("cut to fit 80 columns"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--json prints every value in full"), std::string::npos) << r.out;

  // --json has the full values, options_json included.
  CommandResult j = Run("COLUMNS=80", "runs compare --json " + ids_[0] + " " + ids_[1]);
  ASSERT_EQ(j.exit_code, 0) << j.out;
  auto parsed = ParseJson(j.out, "compare --json");
  ASSERT_TRUE(parsed.ok()) << j.out;
  std::map<std::string, Json> params;
  for (const Json& row : (*parsed)["params"]) params[row["key"]] = row;
  ASSERT_TRUE(params.count("options_json"));
  EXPECT_EQ(params["options_json"]["values"][0], options_json_[0]);
  EXPECT_EQ(params["options_json"]["repeats_others"], true);
  EXPECT_EQ(params["init_weights"]["values"][1], init_weights_[1]);
  EXPECT_EQ(params["init_weights"]["differs"], true);
}

TEST_F(RunsCompareCli, TheWidthComesFromColumnsElseDefaultsTo100AndNeverBelow60) {
  const std::string args = "runs compare " + ids_[0] + " " + ids_[1];
  CommandResult unset = Run("env -u COLUMNS", args);  // stdout is a pipe: no terminal width
  ASSERT_EQ(unset.exit_code, 0) << unset.out;
  ExpectWithin(unset.out, 100, "no COLUMNS");
  EXPECT_NE(unset.out.find("cut to fit 100 columns"), std::string::npos) << unset.out;
  CommandResult narrow = Run("COLUMNS=20", args);
  ASSERT_EQ(narrow.exit_code, 0) << narrow.out;
  ExpectWithin(narrow.out, 60, "COLUMNS=20");
  EXPECT_NE(narrow.out.find("cut to fit 60 columns"), std::string::npos) << narrow.out;
  CommandResult wide = Run("COLUMNS=4000", args);
  ASSERT_EQ(wide.exit_code, 0) << wide.out;
  EXPECT_NE(Row(wide.out, "params.init_weights").find(init_weights_[1]), std::string::npos)
      << "room enough: nothing is cut";
  EXPECT_EQ(wide.out.find("cut to fit"), std::string::npos) << wide.out;
}

TEST_F(RunsCompareCli, ManyRunsSplitIntoBlocksThatRepeatTheKeys) {
  std::string args = "runs compare";
  for (const std::string& id : ids_) args += " " + id;
  CommandResult r = Run("COLUMNS=60", args);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ExpectWithin(r.out, 60, "five runs at 60 columns");
  for (const std::string& id : ids_) {
    EXPECT_NE(r.out.find(id), std::string::npos) << "each run's full id is shown: " << r.out;
  }
  // Every block has the marked lr row (runs 0 and 1 differ).
  size_t marked = 0;
  for (const std::string& line : Lines(r.out)) marked += line.rfind("*  params.lr", 0) == 0;
  EXPECT_GE(marked, 2u) << r.out;
}

TEST_F(RunsCompareCli, ShowAndListStayWithinTheWidthToo) {
  CommandResult show = Run("COLUMNS=70", "runs show " + ids_[0]);
  ASSERT_EQ(show.exit_code, 0) << show.out;
  ExpectWithin(show.out, 70, "runs show");
  EXPECT_NE(show.out.find("options_json"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("--json (if offered) has them all"), std::string::npos) << show.out;
  CommandResult ls = Run("COLUMNS=60", "runs ls --metrics map50");
  ASSERT_EQ(ls.exit_code, 0) << ls.out;
  ExpectWithin(ls.out, 60, "runs ls");
  for (const std::string& id : ids_) EXPECT_NE(ls.out.find(id), std::string::npos) << ls.out;
}

}  // namespace
}  // namespace detops
