// The model stage end to end through the real binary: synth -> import ->
// train (with a YAML recipe) -> predict -> eval -> runs; a stopped or killed
// training run resumes to completion; bad inputs get clear errors.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <thread>

#include "core/core.h"
#include "testing/testutil.h"

namespace detops {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::RunCommand;
using testing::TempDir;

// Small and quick: 128 px input, a couple of epochs.
const char* kTiny = " --model n --imgsz 128 --batch 8 --threads 2 --quiet";

class TrainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(Run("synth " + (dir_ / "cars").string() +
                  " --kind car --n 40 --seed 5 --width 320 --height 240")
                  .exit_code,
              0);
    ASSERT_EQ(Run("data import cars " + (dir_ / "cars").string()).exit_code, 0);
  }
  std::string Ws() const { return (dir_ / "ws").string(); }
  CommandResult Run(const std::string& args) {
    return RunCommand(testing::DetopsBin() + " --workspace " + Ws() + " " + args);
  }
  Json RunJson(const std::string& args) {
    CommandResult r = RunCommand(testing::DetopsBin() + " --workspace " + Ws() + " " + args, false);
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.out;
    auto j = ParseJson(r.out, args);
    EXPECT_TRUE(j.ok()) << r.out;
    return j.ok() ? *j : Json();
  }
  // The one run folder under the workspace (a training run in progress).
  fs::path RunDir() {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_ / "ws/runs", ec)) return e.path();
    return {};
  }
  TempDir dir_;
};

TEST_F(TrainCli, SynthToTrackedEvaluatedModelWithARecipe) {
  testing::WriteText(dir_ / "recipe.yaml",
                     "# a user's recipe\nepochs: 5\nlr: 0.003\nbox_weight: 4\naugment:\n  mosaic: "
                     "0\n  dark: 0.3\n");
  Json t = RunJson(std::string("train cars --name first --epochs 2 --json --config ") +
                   (dir_ / "recipe.yaml").string() + kTiny);
  EXPECT_EQ(t["status"], "finished");
  EXPECT_EQ(t["epochs"], 2);  // the flag beats the recipe
  ASSERT_TRUE(t.contains("test")) << t.dump();
  EXPECT_TRUE(t["test"].contains("map50"));

  Json show = RunJson("runs show first --json");
  EXPECT_EQ(show["params"]["epochs"], "2");
  EXPECT_EQ(show["params"]["augment.mosaic"], "0.0");
  EXPECT_EQ(show["params"]["augment.dark"], "0.3");
  EXPECT_EQ(show["params"]["lr"], "0.003");
  EXPECT_EQ(show["params"]["box_weight"], "4.0");
  // "auto" is recorded as what it meant on this machine.
  std::string precision = show["params"]["precision"];
  EXPECT_TRUE(precision == "bf16" || precision == "fp32") << precision;
  EXPECT_EQ(show["dataset"], "cars@1");
  std::string artifacts = show["artifacts"].dump();
  EXPECT_NE(artifacts.find("weights/best.pt"), std::string::npos) << artifacts;

  // Predict writes JSON and annotated images, in original pixels.
  fs::path img;
  for (const auto& e : fs::directory_iterator(dir_ / "cars/images/test")) img = e.path();
  Json p = RunJson("predict first " + img.string() + " --conf 0.01 --json --out " +
                   (dir_ / "pred").string());
  ASSERT_EQ(p.size(), 1u) << p.dump();
  EXPECT_EQ(p[0]["width"], 320);
  EXPECT_EQ(p[0]["height"], 240);
  EXPECT_TRUE(fs::exists(dir_ / "pred/predictions.json"));
  size_t pictures = 0;
  for (const auto& e : fs::directory_iterator(dir_ / "pred"))
    pictures += e.path() != dir_ / "pred/predictions.json";
  EXPECT_EQ(pictures, 1u);

  // Eval is its own tracked run, with plots.
  Json e = RunJson("eval first cars --split test --json --plots " + (dir_ / "plots").string());
  for (const char* k : {"map", "map50", "map75", "per_class", "miss_rate", "confusion"}) {
    EXPECT_TRUE(e.contains(k)) << k << " missing from " << e.dump().substr(0, 400);
  }
  EXPECT_TRUE(fs::exists(dir_ / "plots/pr_curve.png"));
  EXPECT_TRUE(fs::exists(dir_ / "plots/confusion.png"));
  Json runs = RunJson("runs ls --json");
  EXPECT_EQ(runs.size(), 2u);

  // The NMS IoU evaluated with is a flag (pick it on val), recorded with the run.
  Json at45 = RunJson("eval first cars --split val --iou 0.45 --json");
  Json at45_run = RunJson("runs show " + at45["run"].get<std::string>() + " --json");
  EXPECT_EQ(at45_run["params"]["iou"], "0.450000") << at45_run.dump();
  CommandResult bad_iou = Run("eval first cars --iou 1.5");
  EXPECT_EQ(bad_iou.exit_code, 2) << bad_iou.out;
  EXPECT_NE(bad_iou.out.find("--iou"), std::string::npos) << bad_iou.out;

  // Fine-tuning starts from the first run's weights and names it as parent.
  Json ft = RunJson(std::string("train cars --name tuned --epochs 1 --init first --json") + kTiny);
  EXPECT_EQ(ft["status"], "finished");
  Json tuned = RunJson("runs show tuned --json");
  EXPECT_EQ(tuned["parent"], show["id"]);
}

TEST_F(TrainCli, RecipeErrorsNameTheFileLineAndKey) {
  testing::WriteText(dir_ / "typo.yaml", "epochs: 3\nlearning_rate: 0.1\n");
  CommandResult r = Run("train cars --config " + (dir_ / "typo.yaml").string() + kTiny);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("typo.yaml:2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("learning_rate"), std::string::npos) << r.out;

  testing::WriteText(dir_ / "type.yaml", "augment:\n  mosaic: lots\n");
  r = Run("train cars --config " + (dir_ / "type.yaml").string() + kTiny);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("type.yaml:2: augment.mosaic"), std::string::npos) << r.out;

  testing::WriteText(dir_ / "broken.yaml", "epochs: [3\n");
  r = Run("train cars --config " + (dir_ / "broken.yaml").string() + kTiny);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("broken.yaml"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir_ / "ws/runs")) << "no run should start on a bad recipe";
}

// Starts `detops train` in the background; returns its pid.
pid_t StartTraining(const std::string& ws, const std::vector<std::string>& args) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<const char*> argv = {"detops", "--workspace", ws.c_str(), "train"};
    for (const auto& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execv(testing::DetopsBin().c_str(), const_cast<char* const*>(argv.data()));
    ::_exit(127);
  }
  return pid;
}

TEST_F(TrainCli, InterruptedAndKilledRunsResumeToTheEnd) {
  const std::vector<std::string> args = {"cars", "--name",  "long", "--epochs",  "40", "--imgsz",
                                         "128",  "--batch", "8",    "--threads", "1",  "--quiet"};
  // Ctrl-C (SIGINT) stops cleanly with a checkpoint and exit code 1.
  pid_t pid = StartTraining(Ws(), args);
  ASSERT_GT(pid, 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(RunDir() / "checkpoint.pt") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(fs::exists(RunDir() / "checkpoint.pt"));
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "SIGINT should stop training cleanly, not kill it";
  EXPECT_EQ(WEXITSTATUS(status), 1);
  Json stopped = RunJson("runs show long --json");
  EXPECT_EQ(stopped["status"], "killed");

  // Resume, then SIGKILL it mid-run: the last checkpoint survives intact.
  pid = StartTraining(Ws(), {"--resume", "long", "--threads", "1", "--quiet"});
  auto before = fs::last_write_time(RunDir() / "checkpoint.pt");
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (fs::last_write_time(RunDir() / "checkpoint.pt") == before &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(RunJson("runs show long --json")["status"], "running");  // as the kill left it

  // Finish it, with fewer epochs to go than a fresh run would need.
  CommandResult done = Run("train --resume long --threads 2 --quiet --json");
  ASSERT_EQ(done.exit_code, 0) << done.out;
  Json end = RunJson("runs show long --json");
  EXPECT_EQ(end["status"], "finished");
  EXPECT_EQ(end["tags"]["resumed"], "true");
  CommandResult again = Run("train --resume long");
  EXPECT_EQ(again.exit_code, 2) << again.out;
  EXPECT_NE(again.out.find("already finished"), std::string::npos) << again.out;
}

// --minutes without an epoch count is a budget the schedule fills (recorded
// as epochs 0: as many as fit, the plan logged per epoch); with --epochs, or
// a recipe's epochs, it is a cap.
TEST_F(TrainCli, MinutesWithoutEpochsIsABudgetAndWithEpochsACap) {
  Json capped =
      RunJson(std::string("train cars --name capped --epochs 2 --minutes 5 --json") + kTiny);
  EXPECT_EQ(capped["epochs"], 2);
  EXPECT_EQ(RunJson("runs show capped --json")["params"]["epochs"], "2");
  testing::WriteText(dir_ / "two.yaml", "epochs: 2\n");
  Json recipe = RunJson("train cars --name recipe --minutes 5 --json --config " +
                        (dir_ / "two.yaml").string() + kTiny);
  EXPECT_EQ(recipe["epochs"], 2);

  Json budget = RunJson(std::string("train cars --name budget --minutes 0.1 --json") + kTiny);
  EXPECT_EQ(budget["status"], "finished");
  Json show = RunJson("runs show budget --json");
  EXPECT_EQ(show["params"]["epochs"], "0");
  EXPECT_EQ(show["params"]["max_minutes"], "0.1");
  ASSERT_TRUE(show["metrics"].contains("epoch/planned")) << show.dump();
  EXPECT_EQ(show["metrics"]["epoch/planned"].get<double>(), budget["epochs"].get<double>());
}

TEST_F(TrainCli, BadInputsGetClearErrors) {
  // A dataset that failed validation is refused, naming what failed; --force tags the run.
  fs::path src = dir_ / "broken";
  ASSERT_EQ(Run("synth " + src.string() + " --n 12 --seed 3 --width 320 --height 240").exit_code,
            0);
  fs::path img;
  for (const auto& e : fs::directory_iterator(src / "images/train")) img = e.path();
  std::string bytes = ReadFile(img).value();
  testing::WriteText(img, bytes.substr(0, bytes.size() / 3));
  ASSERT_EQ(Run("data import broken " + src.string()).exit_code, 0);
  CommandResult refused = Run(std::string("train broken --epochs 1") + kTiny);
  EXPECT_EQ(refused.exit_code, 2) << refused.out;
  EXPECT_NE(refused.out.find("failed validation"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("--force"), std::string::npos) << refused.out;
  Json forced =
      RunJson(std::string("train broken --epochs 1 --force --name forced --json") + kTiny);
  EXPECT_EQ(forced["status"], "finished");
  EXPECT_EQ(RunJson("runs show forced --json")["tags"]["forced"], "true");

  // Missing or corrupt weights; an unknown run.
  testing::WriteText(dir_ / "junk.pt", "not a model");
  CommandResult junk = Run("predict " + (dir_ / "junk.pt").string() + " " + img.string());
  EXPECT_NE(junk.exit_code, 0);
  EXPECT_NE(junk.out.find("junk.pt"), std::string::npos) << junk.out;
  CommandResult none = Run("eval no-such-run cars");
  EXPECT_EQ(none.exit_code, 3) << none.out;
  EXPECT_NE(none.out.find("no-such-run"), std::string::npos) << none.out;

  // Grey, 16-bit and 4-channel images are predicted; a corrupt one is named and the rest go on.
  fs::path odd = dir_ / "odd";
  fs::create_directories(odd);
  cv::imwrite((odd / "grey.png").string(), cv::Mat(90, 120, CV_8UC1, cv::Scalar(90)));
  cv::imwrite((odd / "deep.png").string(), cv::Mat(90, 120, CV_16UC3, cv::Scalar(9000, 300, 50)));
  cv::imwrite((odd / "alpha.png").string(), cv::Mat(90, 120, CV_8UC4, cv::Scalar(1, 2, 3, 255)));
  testing::WriteText(odd / "corrupt.jpg", "\xFF\xD8\xFF\xE0 not really");
  CommandResult pr = Run("predict forced " + odd.string() + " --json");
  EXPECT_EQ(pr.exit_code, 2) << pr.out;  // one image could not be read
  EXPECT_NE(pr.out.find("corrupt.jpg"), std::string::npos) << pr.out;
  for (const char* f : {"grey.png", "deep.png", "alpha.png"}) {
    EXPECT_NE(pr.out.find(f), std::string::npos) << f << "\n" << pr.out;
  }
}

}  // namespace
}  // namespace detops
