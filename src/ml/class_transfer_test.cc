// Init weights from a model with other classes: matching class outputs are
// kept bit for bit, the others start as a fresh network's, the rest of the
// network loads whole, and a class map with an unknown name is refused.

#include <gtest/gtest.h>

#include <cmath>

#include <opencv2/imgcodecs.hpp>

#include "ml/class_transfer.h"
#include "ml/weights.h"
#include "testing/testutil.h"

namespace detops::ml {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// Saves an n network for `classes` whose every weight is random (so that
// nothing in it equals a fresh network's) and returns it.
NetConfig Net(const std::vector<std::string>& classes) {
  NetConfig c;
  c.num_classes = static_cast<int>(classes.size());
  return c;
}

DetectorNet SaveRandomModel(const fs::path& path, const std::vector<std::string>& classes) {
  torch::manual_seed(1);
  DetectorNet net(Net(classes));
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters()) p.normal_();
  for (auto& b : net->buffers()) {
    if (b.is_floating_point()) b.uniform_(0.5, 1.5);
  }
  ModelConfig config;
  config.imgsz = 64;
  config.classes = classes;
  EXPECT_TRUE(SaveWeights(path, config, net).ok());
  return net;
}

struct Fresh {
  DetectorNet net{nullptr};
  std::vector<torch::Tensor> cls_out;  // a fresh network's class outputs, by parameter
};

// A fresh network for `classes` and a copy of its class outputs.
Fresh FreshModel(const std::vector<std::string>& classes) {
  torch::manual_seed(2);
  Fresh f{DetectorNet(Net(classes)), {}};
  for (const auto& p : f.net->cls_out->parameters()) f.cls_out.push_back(p.clone());
  return f;
}

// Every tensor outside the class outputs is the source's.
void ExpectRestLoaded(DetectorNet& net, DetectorNet& source) {
  auto src = source->named_parameters();
  int compared = 0;
  for (const auto& p : net->named_parameters()) {
    if (p.key().rfind("cls_out.", 0) == 0) continue;
    EXPECT_TRUE(torch::equal(p.value(), src[p.key()])) << p.key();
    ++compared;
  }
  auto src_b = source->named_buffers();
  for (const auto& b : net->named_buffers()) {
    EXPECT_TRUE(torch::equal(b.value(), src_b[b.key()])) << b.key();
  }
  EXPECT_GT(compared, 50);
}

TEST(ClassTransfer, SameNamesKeepTheirRowsBitForBitOthersStartFresh) {
  TempDir dir;
  DetectorNet source = SaveRandomModel(dir / "abc.pt", {"a", "b", "c"});
  // Three classes again: the plain load copies the whole output (wrong rows),
  // which the transfer must undo.
  Fresh fresh = FreshModel({"c", "x", "a"});
  auto plan = PlanClassTransfer(dir / "abc.pt", {"c", "x", "a"}, {});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->source, (std::vector<int>{2, -1, 0}));
  EXPECT_FALSE(plan->Identity());
  EXPECT_EQ(DescribeClassTransfer(*plan, "run-1"),
            "2 of 3 classes kept from run-1 (c<-c, a<-a); 1 fresh");
  auto counts = LoadWeightsForClasses(dir / "abc.pt", fresh.net, *plan);
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  EXPECT_EQ(counts->second, 0);

  auto now = fresh.net->cls_out->parameters();
  auto src = source->cls_out->parameters();
  ASSERT_EQ(now.size(), 6u);  // weight and bias at three levels
  for (size_t t = 0; t < now.size(); ++t) {
    EXPECT_TRUE(torch::equal(now[t][0], src[t][2])) << t;            // c
    EXPECT_TRUE(torch::equal(now[t][2], src[t][0])) << t;            // a
    EXPECT_TRUE(torch::equal(now[t][1], fresh.cls_out[t][1])) << t;  // x: as initialised
    EXPECT_FALSE(torch::equal(now[t][1], src[t][1])) << t;
  }
  // x's bias is the fresh network's prior (rare positives), not b's.
  const float prior = static_cast<float>(-std::log(0.99 / 0.01));
  EXPECT_NEAR(fresh.net->cls_out->parameters()[1][1].item<float>(), prior, 1e-5);
  ExpectRestLoaded(fresh.net, source);
}

TEST(ClassTransfer, ExplicitMapTakesRowsFromOtherNames) {
  TempDir dir;
  DetectorNet source = SaveRandomModel(dir / "tr.pt", {"cizik", "gocuk", "kirik"});
  Fresh fresh = FreshModel({"dent", "scratch"});
  auto plan = PlanClassTransfer(dir / "tr.pt", {"dent", "scratch"},
                                {{"scratch", "cizik"}, {"dent", "gocuk"}});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->source, (std::vector<int>{1, 0}));
  EXPECT_EQ(DescribeClassTransfer(*plan, "tr.pt"),
            "2 of 2 classes kept from tr.pt (dent<-gocuk, scratch<-cizik); 0 fresh");
  auto counts = LoadWeightsForClasses(dir / "tr.pt", fresh.net, *plan);
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  EXPECT_EQ(counts->second, 0);  // the class outputs count as loaded
  auto now = fresh.net->cls_out->parameters();
  auto src = source->cls_out->parameters();
  for (size_t t = 0; t < now.size(); ++t) {
    ASSERT_EQ(now[t].size(0), 2);
    EXPECT_TRUE(torch::equal(now[t][0], src[t][1])) << t;
    EXPECT_TRUE(torch::equal(now[t][1], src[t][0])) << t;
  }
  ExpectRestLoaded(fresh.net, source);

  // A map to the same name and the same classes in order: a plain load.
  plan = PlanClassTransfer(dir / "tr.pt", {"cizik", "gocuk", "kirik"}, {{"gocuk", "gocuk"}});
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->Identity());
}

TEST(ClassTransfer, UnknownNamesAreRefusedNamingThemAndBothClassSets) {
  TempDir dir;
  SaveRandomModel(dir / "abc.pt", {"a", "b", "c"});
  auto bad_new = PlanClassTransfer(dir / "abc.pt", {"c", "x"}, {{"zzz", "a"}});
  ASSERT_EQ(bad_new.status().code(), StatusCode::kInvalidInput);
  const std::string m1 = bad_new.status().message();
  EXPECT_NE(m1.find("'zzz'"), std::string::npos) << m1;
  EXPECT_NE(m1.find("{c, x}"), std::string::npos) << m1;
  EXPECT_NE(m1.find("{a, b, c}"), std::string::npos) << m1;
  auto bad_init = PlanClassTransfer(dir / "abc.pt", {"c", "x"}, {{"x", "nope"}});
  ASSERT_EQ(bad_init.status().code(), StatusCode::kInvalidInput);
  const std::string m2 = bad_init.status().message();
  EXPECT_NE(m2.find("'nope'"), std::string::npos) << m2;
  EXPECT_NE(m2.find("{a, b, c}"), std::string::npos) << m2;

  // Training refuses it too, before a step, and a map without init weights.
  TrainData data;
  data.classes = {"c", "x"};
  cv::Mat img(64, 64, CV_8UC3, cv::Scalar(90, 90, 90));
  ASSERT_TRUE(cv::imwrite((dir / "i.png").string(), img));
  data.train.push_back({dir / "i.png", {{0, 0.2, 0.2, 0.6, 0.6}}});
  TrainOptions o;
  o.imgsz = 64;
  o.batch = 1;
  o.epochs = 1;
  o.loader_threads = 1;
  o.init_weights = dir / "abc.pt";
  o.init_class_map = {{"x", "nope"}};
  auto trained = TrainDetector(data, o, dir / "run");
  ASSERT_EQ(trained.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(trained.status().message().find("'nope'"), std::string::npos);
  o.init_weights.clear();
  EXPECT_EQ(TrainDetector(data, o, dir / "run2").status().code(), StatusCode::kInvalidInput);
}

}  // namespace
}  // namespace detops::ml
