// `data validate` names the derive command that fixes leaked near-duplicates;
// running it makes a version that validates, with its lineage shown.

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "testing/testutil.h"

namespace detops {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::RunCommand;
using testing::TempDir;
using testing::WriteText;

cv::Mat Photo(int seed) {
  cv::Mat noise(12, 12, CV_8UC3);
  cv::RNG rng(static_cast<uint64_t>(seed) * 7919 + 1);
  rng.fill(noise, cv::RNG::UNIFORM, 30, 225);
  cv::Mat m;
  cv::resize(noise, m, {96, 96}, 0, 0, cv::INTER_CUBIC);
  return m;
}

class DeriveCli : public ::testing::Test {
 protected:
  CommandResult Run(const std::string& args) {
    return RunCommand(testing::DetopsBin() + " --workspace " + (dir_ / "ws").string() + " " + args);
  }
  TempDir dir_;
};

TEST_F(DeriveCli, ValidateNamesTheFixAndDeriveMakesAVersionThatPasses) {
  fs::path src = dir_ / "cars";
  WriteText(src / "data.yaml", "train: images/train\nval: images/val\nnames: [scratch, dent]\n");
  auto add = [&](const std::string& split, const std::string& name, const cv::Mat& m) {
    fs::create_directories(src / "images" / split);
    cv::imwrite((src / "images" / split / (name + ".jpg")).string(), m);
    WriteText(src / "labels" / split / (name + ".txt"), "0 0.5 0.5 0.3 0.3\n1 0.2 0.2 0.1 0.1\n");
  };
  for (int i = 0; i < 8; ++i) add("train", "p" + std::to_string(i), Photo(i));
  for (int i = 0; i < 3; ++i) add("val", "v" + std::to_string(i), Photo(50 + i));
  add("val", "copy", Photo(3) + cv::Scalar(3, 3, 3));  // a near-copy of train/p3

  CommandResult imp = Run("data import cars " + src.string());
  ASSERT_EQ(imp.exit_code, 0) << imp.out;
  CommandResult bad = Run("data validate cars@1");
  EXPECT_EQ(bad.exit_code, 4) << bad.out;
  EXPECT_NE(bad.out.find("fix: detops data derive cars@1 --fix-leakage\n"), std::string::npos)
      << bad.out;

  CommandResult derive = Run("data derive cars@1 --fix-leakage");
  ASSERT_EQ(derive.exit_code, 0) << derive.out;
  EXPECT_NE(derive.out.find("derived cars@2"), std::string::npos) << derive.out;
  EXPECT_NE(derive.out.find("from cars@1"), std::string::npos) << derive.out;

  CommandResult good = Run("data validate cars@2");
  EXPECT_EQ(good.exit_code, 0) << good.out;
  EXPECT_EQ(good.out.find("fix:"), std::string::npos) << good.out;

  CommandResult show = Run("data show cars@2");
  ASSERT_EQ(show.exit_code, 0) << show.out;
  EXPECT_NE(show.out.find("parent      cars@1"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("fix-leakage {\"policy\":\"move\"} (groups 1, moved 1)"),
            std::string::npos)
      << show.out;

  CommandResult unknown = Run("data derive cars@1 --map-classes cizik=scratch");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.out.find("'cizik' is not a class of cars@1 (its classes: scratch, dent)"),
            std::string::npos)
      << unknown.out;
}

}  // namespace
}  // namespace detops
