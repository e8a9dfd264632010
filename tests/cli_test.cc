// The detops binary end to end: synth -> import -> show -> validate ->
// export -> re-import -> diff, help texts, exit codes, and a kill -9 in the
// middle of an import.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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

// The first file (by name) in a folder.
fs::path FirstFile(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files.empty() ? fs::path() : files.front();
}

class Cli : public ::testing::Test {
 protected:
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
};

TEST_F(Cli, SynthImportShowValidateExportRoundTrip) {
  std::string synth = (dir_ / "cars").string();
  CommandResult s = Run("synth " + synth + " --kind car --n 24 --seed 7");
  ASSERT_EQ(s.exit_code, 0) << s.out;
  Json imp = RunJson("data import cars " + synth + " --json");
  EXPECT_TRUE(imp["created"].get<bool>());
  EXPECT_EQ(imp["version"]["ref"], "cars@1");
  std::string id = imp["version"]["id"];

  Json show = RunJson("data show cars@1 --json");
  EXPECT_EQ(show["stats"]["total"]["images"], 24);
  EXPECT_EQ(show["stats"]["classes"], Json({"scratch", "dent"}));
  EXPECT_GT(show["stats"]["total"]["boxes"].get<int>(), 0);

  CommandResult human = Run("data show cars");
  EXPECT_NE(human.out.find("train"), std::string::npos);
  EXPECT_NE(human.out.find("scratch"), std::string::npos);

  CommandResult v = Run("data validate cars@1");
  EXPECT_EQ(v.exit_code, 0) << v.out;
  EXPECT_NE(v.out.find("images_decode"), std::string::npos);
  Json report = RunJson("data report cars@1 --json");
  EXPECT_TRUE(report["trainable"].get<bool>());
  // Trainable; a small set may carry warnings (few boxes per class).
  EXPECT_NE(RunJson("data show cars --json")["validation"], "failed");

  // Unchanged content: no new version.
  Json again = RunJson("data import cars " + synth + " --json");
  EXPECT_FALSE(again["created"].get<bool>());

  for (const std::string fmt : {"yolo", "coco"}) {
    std::string out = (dir_ / ("export-" + fmt)).string();
    CommandResult e = Run("data export cars@1 " + out + " --format " + fmt);
    ASSERT_EQ(e.exit_code, 0) << e.out;
    Json back = RunJson("data import back-" + fmt + " " + out + " --json");
    EXPECT_EQ(back["version"]["id"], id) << fmt;
  }

  // A second version with fewer images: diff names them.
  fs::path gone = FirstFile(dir_ / "cars/images/train");
  fs::remove(gone);
  Json v2 = RunJson("data import cars " + synth + " --json");
  EXPECT_EQ(v2["version"]["ref"], "cars@2");
  EXPECT_EQ(v2["version"]["parent"], "cars@1");
  Json diff = RunJson("data diff cars@1 cars@2 --json");
  ASSERT_EQ(diff["removed"].size(), 1u);
  EXPECT_EQ(diff["removed"][0]["image"], "train/" + gone.filename().string());
  Json ls = RunJson("data ls --json");
  EXPECT_EQ(ls.size(), 4u);  // cars@2, cars@1, back-yolo@1, back-coco@1
}

TEST_F(Cli, EveryCommandHasHelp) {
  for (const std::string cmd :
       {"", "data", "data import", "data ls", "data show", "data diff", "data validate",
        "data report", "data export", "synth", "gc", "init"}) {
    CommandResult r = Run(cmd + " --help");
    EXPECT_EQ(r.exit_code, 0) << cmd << ": " << r.out;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd;
  }
}

TEST_F(Cli, BadInputGetsAClearMessageAndExitCode) {
  CommandResult unknown = Run("data show nothing-here");
  EXPECT_EQ(unknown.exit_code, 3);
  EXPECT_NE(unknown.out.find("no dataset named 'nothing-here'"), std::string::npos) << unknown.out;

  CommandResult missing = Run("data import x " + (dir_ / "does-not-exist").string());
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.out.find("does-not-exist"), std::string::npos);

  CommandResult badref = Run("data show cars@zero");
  EXPECT_EQ(badref.exit_code, 2);

  CommandResult badsplit = Run("data import x " + dir_.path().string() + " --split 1,2");
  EXPECT_EQ(badsplit.exit_code, 2);
  EXPECT_NE(badsplit.out.find("--split"), std::string::npos);

  testing::WriteText(dir_ / "afile", "x");
  CommandResult ws =
      RunCommand(testing::DetopsBin() + " --workspace " + (dir_ / "afile").string() + " data ls");
  EXPECT_EQ(ws.exit_code, 2);
  EXPECT_NE(ws.out.find("not a folder"), std::string::npos) << ws.out;

  CommandResult usage = Run("data import onlyname");
  EXPECT_EQ(usage.exit_code, 2);

  // A suite file that does not parse names its line.
  testing::WriteText(dir_ / "suite.yaml", "expectations:\n  resolution_within: {min_width: [\n");
  ASSERT_EQ(Run("synth " + (dir_ / "s").string() + " --n 3").exit_code, 0);
  ASSERT_EQ(Run("data import s " + (dir_ / "s").string()).exit_code, 0);
  CommandResult suite = Run("data validate s --suite " + (dir_ / "suite.yaml").string());
  EXPECT_EQ(suite.exit_code, 2);
  EXPECT_NE(suite.out.find("suite.yaml"), std::string::npos) << suite.out;
}

TEST_F(Cli, ValidationErrorsGiveExitCodeFourAndNameTheFile) {
  fs::path src = dir_ / "broken";
  ASSERT_EQ(Run("synth " + src.string() + " --n 6 --seed 3").exit_code, 0);
  // Truncate one image and break one label line.
  fs::path img = FirstFile(src / "images/train");
  fs::path label = FirstFile(src / "labels/train");
  std::string bytes = ReadFile(img).value();
  testing::WriteText(img, bytes.substr(0, bytes.size() / 3));
  testing::WriteText(label, "0 0.5 0.5\n");
  ASSERT_EQ(Run("data import broken " + src.string()).exit_code, 0);
  CommandResult v = Run("data validate broken");
  EXPECT_EQ(v.exit_code, 4) << v.out;
  EXPECT_NE(v.out.find(img.filename().string()), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("labels/train/" + label.filename().string() + ":1"), std::string::npos)
      << v.out;
  EXPECT_NE(v.out.find("NOT trainable"), std::string::npos);
  Json j = RunJson("data show broken --json");
  EXPECT_EQ(j["validation"], "failed");
}

// Writes `n` large noisy JPEGs (slow to hash and copy) in a YOLO layout.
void WriteHeavySet(const fs::path& root, int n) {
  testing::WriteText(root / "data.yaml", "train: images/train\nnames: [dent]\n");
  fs::create_directories(root / "images/train");
  cv::Mat m(960, 1280, CV_8UC3);
  cv::RNG rng(1);
  for (int i = 0; i < n; ++i) {
    rng.fill(m, cv::RNG::UNIFORM, 0, 255);
    cv::imwrite((root / "images/train" / ("n" + std::to_string(i) + ".jpg")).string(), m,
                {cv::IMWRITE_JPEG_QUALITY, 95});
    testing::WriteText(root / "labels/train" / ("n" + std::to_string(i) + ".txt"),
                       "0 0.5 0.5 0.1 0.1\n");
  }
}

size_t CountBlobs(const fs::path& blobs) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(blobs, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) ++n;
  }
  return n;
}

TEST_F(Cli, KillDuringImportLeavesTheWorkspaceAsItWas) {
  ASSERT_EQ(Run("synth " + (dir_ / "small").string() + " --n 4").exit_code, 0);
  ASSERT_EQ(Run("data import small " + (dir_ / "small").string()).exit_code, 0);
  Json before = RunJson("data ls --json");
  size_t blobs_before = CountBlobs(dir_ / "ws/blobs");

  WriteHeavySet(dir_ / "heavy", 150);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string ws = (dir_ / "ws").string(), src = (dir_ / "heavy").string();
    ::execl(testing::DetopsBin().c_str(), "detops", "--workspace", ws.c_str(), "data", "import",
            "heavy", src.c_str(), "--threads", "1", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Kill it once it has written some blobs but long before it can finish.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (CountBlobs(dir_ / "ws/blobs") < blobs_before + 10 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the import finished before it could be killed";

  // Metadata exactly as before; the stray blobs go with gc.
  EXPECT_EQ(RunJson("data ls --json"), before);
  CommandResult gc = Run("gc");
  EXPECT_EQ(gc.exit_code, 0) << gc.out;
  EXPECT_EQ(CountBlobs(dir_ / "ws/blobs"), blobs_before);
  CommandResult v = Run("data validate small");
  EXPECT_EQ(v.exit_code, 0) << v.out;
  // And the interrupted import can simply run again.
  Json done = RunJson("data import heavy " + (dir_ / "heavy").string() + " --json");
  EXPECT_EQ(done["version"]["stats"]["total"]["images"], 150);
}

}  // namespace
}  // namespace detops
