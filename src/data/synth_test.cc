#include "data/synth.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/fs.h"
#include "data/synth_internal.h"
#include "testing/testutil.h"

namespace detops {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::map<std::string, std::string> ReadTree(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    files[fs::relative(e.path(), root).string()] = ReadFile(e.path()).value();
  }
  return files;
}

cv::Rect PixelRect(const Box& b, int w, int h) {
  int x1 = static_cast<int>(std::lround(b.x1 * w)), y1 = static_cast<int>(std::lround(b.y1 * h));
  int x2 = static_cast<int>(std::lround(b.x2 * w)), y2 = static_cast<int>(std::lround(b.y2 * h));
  return {x1, y1, x2 - x1, y2 - y1};
}

TEST(SynthTest, ParsesNamesAndClasses) {
  EXPECT_EQ(*ParseSceneKind("car"), SceneKind::kCar);
  EXPECT_EQ(*ParseSceneKind("road"), SceneKind::kRoad);
  EXPECT_EQ(ParseSceneKind("boat").status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(*ParseLighting("low-contrast"), Lighting::kLowContrast);
  EXPECT_EQ(*ParseLighting("dark"), Lighting::kDark);
  EXPECT_EQ(*ParseLighting("dusk"), Lighting::kDusk);
  EXPECT_EQ(ParseLighting("dim").status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(SceneClasses(SceneKind::kCar), (std::vector<std::string>{"scratch", "dent"}));
  EXPECT_EQ(SceneClasses(SceneKind::kRoad), (std::vector<std::string>{"pothole"}));
  EXPECT_EQ(SynthStem(SceneKind::kRoad, 42), "road_00042");
}

TEST(SynthTest, RenderIsDeterministicAndSeeded) {
  for (SceneKind kind : {SceneKind::kCar, SceneKind::kRoad}) {
    SynthScene a = RenderScene(kind, 5, 3, Lighting::kNormal, 320, 240);
    SynthScene b = RenderScene(kind, 5, 3, Lighting::kNormal, 320, 240);
    SynthScene c = RenderScene(kind, 6, 3, Lighting::kNormal, 320, 240);
    ASSERT_EQ(a.image.type(), CV_8UC3);
    ASSERT_EQ(a.image.size(), cv::Size(320, 240));
    EXPECT_EQ(cv::norm(a.image, b.image, cv::NORM_INF), 0);
    EXPECT_EQ(a.boxes, b.boxes);
    EXPECT_GT(cv::norm(a.image, c.image, cv::NORM_L1), 0);
  }
}

TEST(SynthTest, BoxesAreValidAndCountsVary) {
  for (SceneKind kind : {SceneKind::kCar, SceneKind::kRoad}) {
    int empty = 0, several = 0;
    const int classes = static_cast<int>(SceneClasses(kind).size());
    for (int i = 0; i < 40; ++i) {
      SynthScene s = RenderScene(kind, 1, i, Lighting::kNormal, 256, 192);
      empty += s.boxes.empty();
      several += s.boxes.size() >= 2;
      for (const Box& b : s.boxes) {
        EXPECT_GE(b.class_id, 0);
        EXPECT_LT(b.class_id, classes);
        EXPECT_GE(b.x1, 0);
        EXPECT_GE(b.y1, 0);
        EXPECT_LE(b.x2, 1);
        EXPECT_LE(b.y2, 1);
        EXPECT_GE(b.Width() * 256, 2 - 1e-9);
        EXPECT_GE(b.Height() * 192, 2 - 1e-9);
      }
    }
    EXPECT_GE(empty, 1) << SceneKindName(kind);
    EXPECT_LE(empty, 15) << SceneKindName(kind);
    EXPECT_GE(several, 5) << SceneKindName(kind);
  }
}

// Renders each scene with and without its damage (camera effects off, so
// the two differ only where damage was drawn): every changed pixel must lie
// in a box, and each box is the changed pixels' bounds plus an annotator's
// margin (at most 3 units of min(w, h) / 240 a side) or the 2% minimum.
TEST(SynthTest, BoxesCoverExactlyTheDrawnDamage) {
  const int w = 320, h = 240;
  int boxes_seen = 0;
  for (SceneKind kind : {SceneKind::kCar, SceneKind::kRoad}) {
    for (int i = 0; i < 12; ++i) {
      synth::RenderFlags with, without;
      with.camera_effects = without.camera_effects = false;
      without.draw_damage = false;
      SynthScene a = synth::RenderSceneWithFlags(kind, 9, i, Lighting::kNormal, w, h, with);
      SynthScene b = synth::RenderSceneWithFlags(kind, 9, i, Lighting::kNormal, w, h, without);
      EXPECT_TRUE(b.boxes.empty());
      cv::Mat diff;
      cv::absdiff(a.image, b.image, diff);
      cv::Mat changed;
      cv::transform(diff, changed, cv::Matx13f(1, 1, 1));
      changed = changed > 0;
      cv::Mat covered = cv::Mat::zeros(h, w, CV_8U);
      for (const Box& box : a.boxes) {
        cv::Rect r = PixelRect(box, w, h);
        covered(r).setTo(255);
        cv::Rect inside = cv::boundingRect(changed(r));
        const int slack = std::max(2 * 3 + 2, static_cast<int>(std::lround(0.02 * h)) + 1);
        EXPECT_LE(r.width - inside.width, slack) << SceneKindName(kind) << " " << i;
        EXPECT_LE(r.height - inside.height, slack) << SceneKindName(kind) << " " << i;
        EXPECT_GT(inside.area(), 0) << SceneKindName(kind) << " " << i;
        ++boxes_seen;
      }
      int outside = cv::countNonZero(changed & ~covered);
      EXPECT_EQ(outside, 0) << SceneKindName(kind) << " scene " << i;
    }
  }
  EXPECT_GE(boxes_seen, 10);
}

// The generator labels what an annotator would: every labelled scratch or
// dent on a 640x480 car scene still changes the picture at the 320 px a
// detector trains at: a short stroke of pixels changed by 12+ grey levels
// (0-255) after an area downscale. The generator before this rule failed it.
TEST(SynthTest, LabelledCarDamageIsVisibleAtTrainingResolution) {
  const int w = 640, h = 480;
  int boxes_seen = 0;
  for (int i = 0; i < 40; ++i) {
    synth::RenderFlags with, without;
    with.camera_effects = without.camera_effects = false;
    without.draw_damage = false;
    SynthScene a =
        synth::RenderSceneWithFlags(SceneKind::kCar, 5, i, Lighting::kNormal, w, h, with);
    SynthScene b =
        synth::RenderSceneWithFlags(SceneKind::kCar, 5, i, Lighting::kNormal, w, h, without);
    cv::Mat ga, gb, small_a, small_b, diff;
    cv::cvtColor(a.image, ga, cv::COLOR_BGR2GRAY);
    cv::cvtColor(b.image, gb, cv::COLOR_BGR2GRAY);
    cv::resize(ga, small_a, {w / 2, h / 2}, 0, 0, cv::INTER_AREA);
    cv::resize(gb, small_b, {w / 2, h / 2}, 0, 0, cv::INTER_AREA);
    cv::absdiff(small_a, small_b, diff);
    for (const Box& box : a.boxes) {
      cv::Rect r = PixelRect(box, w / 2, h / 2) & cv::Rect(0, 0, w / 2, h / 2);
      // A visible mark: at least 8 pixels (a short stroke) changed by 12+.
      int marked = cv::countNonZero(diff(r) >= 12);
      EXPECT_GE(marked, 8) << "scene " << i << " class " << box.class_id << " box " << r;
      ++boxes_seen;
    }
  }
  EXPECT_GE(boxes_seen, 40);
}

TEST(SynthTest, LightingMovesBrightnessTheRightWay) {
  for (SceneKind kind : {SceneKind::kCar, SceneKind::kRoad}) {
    for (int i = 0; i < 3; ++i) {
      auto stats = [&](Lighting l) {
        cv::Mat gray;
        SynthScene s = RenderScene(kind, 2, i, l, 256, 192);
        s.image.reshape(1).convertTo(gray, CV_32F);
        cv::Scalar mean, sd;
        cv::meanStdDev(gray, mean, sd);
        return std::pair<double, double>(mean[0], sd[0]);
      };
      auto normal = stats(Lighting::kNormal);
      EXPECT_LT(stats(Lighting::kDark).first, normal.first * 0.7);
      // Dusk is darker, but less so than night.
      EXPECT_LT(stats(Lighting::kDusk).first, normal.first * 0.9);
      EXPECT_GT(stats(Lighting::kDusk).first, stats(Lighting::kDark).first);
      EXPECT_GT(stats(Lighting::kOverexposed).first, normal.first * 1.2);
      EXPECT_LT(stats(Lighting::kLowContrast).second, normal.second * 0.75);
    }
  }
}

TEST(SynthTest, WritesUltralyticsLayout) {
  TempDir tmp;
  SynthOptions o;
  o.kind = SceneKind::kRoad;
  o.n = 40;
  o.width = 128;
  o.height = 96;
  o.seed = 3;
  int calls = 0, last = 0;
  o.progress = [&](int done, int total) {
    ++calls;
    EXPECT_EQ(total, 40);
    EXPECT_GT(done, last);
    last = done;
  };
  const fs::path out = tmp / "ds";
  ASSERT_TRUE(WriteSynthDataset(o, out).ok());
  EXPECT_EQ(calls, 40);

  YAML::Node yaml = YAML::LoadFile((out / "data.yaml").string());
  EXPECT_EQ(yaml["path"].as<std::string>(), ".");
  EXPECT_EQ(yaml["train"].as<std::string>(), "images/train");
  EXPECT_EQ(yaml["val"].as<std::string>(), "images/val");
  EXPECT_EQ(yaml["test"].as<std::string>(), "images/test");
  EXPECT_EQ(yaml["nc"].as<int>(), 1);
  EXPECT_EQ(yaml["names"].as<std::vector<std::string>>(), std::vector<std::string>{"pothole"});

  int empty_labels = 0, per_split[3] = {0, 0, 0};
  for (int i = 0; i < o.n; ++i) {
    const char* split = SplitName(SynthSplit(o, i));
    ++per_split[static_cast<int>(SynthSplit(o, i))];
    const std::string stem = SynthStem(o.kind, i);
    ASSERT_TRUE(fs::exists(out / "images" / split / (stem + ".jpg"))) << stem;
    auto label = ReadFile(out / "labels" / split / (stem + ".txt"));
    ASSERT_TRUE(label.ok()) << stem;
    SynthScene scene = RenderScene(o.kind, o.seed, i, o.lighting, o.width, o.height);
    EXPECT_EQ(label->empty(), scene.boxes.empty()) << stem;
    empty_labels += label->empty();
    std::istringstream lines(*label);
    std::string line;
    size_t count = 0;
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::vector<std::string> f;
      for (std::string x; fields >> x;) f.push_back(x);
      ASSERT_EQ(f.size(), 5u) << stem << ": " << line;
      EXPECT_EQ(f[0], "0");
      for (int k = 1; k < 5; ++k) {
        EXPECT_EQ(f[k].size(), 8u) << "6 decimals: " << f[k];
        double v = std::stod(f[k]);
        EXPECT_GE(v, 0);
        EXPECT_LE(v, 1);
      }
      ++count;
    }
    EXPECT_EQ(count, scene.boxes.size()) << stem;
  }
  EXPECT_GE(empty_labels, 1);
  EXPECT_GE(per_split[1], 4);
  EXPECT_LE(per_split[1], 8);
  EXPECT_GE(per_split[2], 4);
  EXPECT_LE(per_split[2], 8);
  // Nothing but the images, the labels and data.yaml (no temp files).
  EXPECT_EQ(ReadTree(out).size(), static_cast<size_t>(2 * o.n + 1));
}

TEST(SynthTest, OutputIsByteIdenticalAcrossThreadsAndSeedsDiffer) {
  TempDir tmp;
  SynthOptions o;
  o.n = 10;
  o.width = 96;
  o.height = 72;
  o.threads = 1;
  ASSERT_TRUE(WriteSynthDataset(o, tmp / "one").ok());
  o.threads = 2;
  ASSERT_TRUE(WriteSynthDataset(o, tmp / "two").ok());
  o.seed = 1;
  ASSERT_TRUE(WriteSynthDataset(o, tmp / "other").ok());
  auto one = ReadTree(tmp / "one"), two = ReadTree(tmp / "two"), other = ReadTree(tmp / "other");
  EXPECT_EQ(one, two);
  ASSERT_EQ(one.size(), other.size());
  int same_images = 0;
  for (const auto& [name, bytes] : one) {
    if (name.ends_with(".jpg")) same_images += other.count(name) && other[name] == bytes;
  }
  EXPECT_EQ(same_images, 0);
}

TEST(SynthTest, RefusesNonEmptyOutputAndBadOptions) {
  TempDir tmp;
  SynthOptions o;
  o.n = 2;
  o.width = 64;
  o.height = 48;
  testing::WriteText(tmp / "full" / "keep.txt", "x");
  EXPECT_EQ(WriteSynthDataset(o, tmp / "full").code(), StatusCode::kInvalidInput);
  EXPECT_EQ(ReadFile(tmp / "full" / "keep.txt").value(), "x");
  testing::WriteText(tmp / "file", "x");
  EXPECT_EQ(WriteSynthDataset(o, tmp / "file").code(), StatusCode::kInvalidInput);

  fs::create_directories(tmp / "empty");
  EXPECT_TRUE(WriteSynthDataset(o, tmp / "empty").ok());

  SynthOptions bad = o;
  bad.val_fraction = 0.7;
  bad.test_fraction = 0.5;
  EXPECT_EQ(WriteSynthDataset(bad, tmp / "bad1").code(), StatusCode::kInvalidInput);
  bad = o;
  bad.jpeg_quality = 0;
  EXPECT_EQ(WriteSynthDataset(bad, tmp / "bad2").code(), StatusCode::kInvalidInput);
  bad = o;
  bad.threads = 0;
  EXPECT_EQ(WriteSynthDataset(bad, tmp / "bad3").code(), StatusCode::kInvalidInput);
  EXPECT_FALSE(fs::exists(tmp / "bad1"));
}

}  // namespace
}  // namespace detops
