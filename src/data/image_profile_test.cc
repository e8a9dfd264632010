#include "data/image_profile.h"

#include <gtest/gtest.h>

#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "testing/testutil.h"

namespace detops {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// A blurred scene of gradients and random shapes: enough structure for a
// stable difference hash, deterministic per seed.
cv::Mat Scene(int width, int height, uint64_t seed) {
  cv::RNG rng(seed);
  cv::Mat img(height, width, CV_8UC3);
  for (int r = 0; r < height; ++r) {
    for (int c = 0; c < width; ++c) {
      img.at<cv::Vec3b>(r, c) = cv::Vec3b(static_cast<uint8_t>(255 * c / width),
                                          static_cast<uint8_t>(255 * r / height), 128);
    }
  }
  for (int i = 0; i < 12; ++i) {
    cv::Point center(rng.uniform(0, width), rng.uniform(0, height));
    cv::Scalar color(rng.uniform(0, 256), rng.uniform(0, 256), rng.uniform(0, 256));
    int radius = rng.uniform(std::min(width, height) / 10, std::min(width, height) / 3);
    if (i % 2) {
      cv::circle(img, center, radius, color, cv::FILLED);
    } else {
      cv::rectangle(img, center, center + cv::Point(radius, radius / 2), color, cv::FILLED);
    }
  }
  cv::GaussianBlur(img, img, cv::Size(5, 5), 1.5);
  return img;
}

std::vector<uint8_t> ReadBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void WriteBytes(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

TEST(ImageProfileTest, DecodesJpeg) {
  TempDir dir;
  ASSERT_TRUE(cv::imwrite((dir / "a.jpg").string(), Scene(640, 480, 1)));
  ImageProfile p = ProfileImageFile(dir / "a.jpg");
  ASSERT_TRUE(p.decodes) << p.error;
  EXPECT_EQ(p.format, "jpeg");
  EXPECT_EQ(p.width, 640);
  EXPECT_EQ(p.height, 480);
  EXPECT_EQ(p.channels, 3);
  EXPECT_EQ(p.bit_depth, 8);
  EXPECT_GT(p.brightness, 20);
  EXPECT_GT(p.contrast, 5);
  EXPECT_GT(p.sharpness, 0);
  EXPECT_TRUE(p.error.empty());
}

TEST(ImageProfileTest, DecodesPngAndMeasuresColour) {
  TempDir dir;
  cv::Mat red(100, 200, CV_8UC3, cv::Scalar(0, 0, 255));
  ASSERT_TRUE(cv::imwrite((dir / "red.png").string(), red));
  ImageProfile p = ProfileImageFile(dir / "red.png");
  ASSERT_TRUE(p.decodes) << p.error;
  EXPECT_EQ(p.format, "png");
  EXPECT_EQ(p.width, 200);
  EXPECT_EQ(p.height, 100);
  EXPECT_NEAR(p.mean_r, 255, 1);
  EXPECT_NEAR(p.mean_g, 0, 1);
  EXPECT_NEAR(p.mean_b, 0, 1);
  EXPECT_NEAR(p.contrast, 0, 1e-9);
}

TEST(ImageProfileTest, TruncatedJpegIsReported) {
  TempDir dir;
  ASSERT_TRUE(cv::imwrite((dir / "a.jpg").string(), Scene(320, 240, 2)));
  std::vector<uint8_t> bytes = ReadBytes(dir / "a.jpg");
  bytes.resize(bytes.size() / 2);
  WriteBytes(dir / "cut.jpg", bytes);
  ImageProfile p = ProfileImageFile(dir / "cut.jpg");
  EXPECT_FALSE(p.decodes);
  EXPECT_NE(p.error.find("truncated"), std::string::npos) << p.error;
  EXPECT_EQ(p.format, "jpeg");
}

TEST(ImageProfileTest, JpegWithTrailingDataStillDecodes) {
  TempDir dir;
  ASSERT_TRUE(cv::imwrite((dir / "a.jpg").string(), Scene(320, 240, 2)));
  std::vector<uint8_t> bytes = ReadBytes(dir / "a.jpg");
  bytes.insert(bytes.end(), {'t', 'r', 'a', 'i', 'l', 'e', 'r', 0, 0});
  WriteBytes(dir / "tail.jpg", bytes);
  ImageProfile p = ProfileImageFile(dir / "tail.jpg");
  EXPECT_TRUE(p.decodes) << p.error;
}

TEST(ImageProfileTest, ProgressiveJpegDecodesAndTruncationIsSeen) {
  std::vector<uint8_t> jpeg;
  ASSERT_TRUE(cv::imencode(".jpg", Scene(400, 300, 8), jpeg, {cv::IMWRITE_JPEG_PROGRESSIVE, 1}));
  ImageProfile p = ProfileImageBytes(jpeg);
  ASSERT_TRUE(p.decodes) << p.error;
  EXPECT_EQ(p.width, 400);
  jpeg.resize(jpeg.size() * 3 / 4);  // cut inside a later scan
  p = ProfileImageBytes(jpeg);
  EXPECT_FALSE(p.decodes);
  EXPECT_NE(p.error.find("truncated"), std::string::npos) << p.error;
}

TEST(ImageProfileTest, TruncatedPngIsReported) {
  TempDir dir;
  ASSERT_TRUE(cv::imwrite((dir / "a.png").string(), Scene(120, 90, 3)));
  std::vector<uint8_t> bytes = ReadBytes(dir / "a.png");
  bytes.resize(bytes.size() - 20);
  WriteBytes(dir / "cut.png", bytes);
  ImageProfile p = ProfileImageFile(dir / "cut.png");
  EXPECT_FALSE(p.decodes);
  EXPECT_NE(p.error.find("truncated PNG"), std::string::npos) << p.error;
}

TEST(ImageProfileTest, RandomBytesEmptyAndMissingFiles) {
  TempDir dir;
  cv::RNG rng(7);
  std::vector<uint8_t> noise(4096);
  for (auto& b : noise) b = static_cast<uint8_t>(rng.uniform(0, 256));
  noise[0] = 0;  // not a JPEG/PNG signature by chance
  WriteBytes(dir / "noise.jpg", noise);
  testing::WriteText(dir / "empty.png", "");

  ImageProfile p = ProfileImageFile(dir / "noise.jpg");
  EXPECT_FALSE(p.decodes);
  EXPECT_NE(p.error.find("not an image"), std::string::npos) << p.error;
  p = ProfileImageFile(dir / "empty.png");
  EXPECT_FALSE(p.decodes);
  EXPECT_EQ(p.error, "empty file");
  p = ProfileImageFile(dir / "missing.png");
  EXPECT_FALSE(p.decodes);
  EXPECT_NE(p.error.find("cannot open"), std::string::npos) << p.error;

  // A JPEG signature followed by garbage: OpenCV's failure is reported.
  std::vector<uint8_t> fake = {0xFF, 0xD8, 0xFF, 0xD9};
  p = ProfileImageBytes(fake);
  EXPECT_FALSE(p.decodes);
  EXPECT_FALSE(p.error.empty());
}

TEST(ImageProfileTest, GreySixteenBitAndAlphaPngs) {
  TempDir dir;
  cv::Mat grey(64, 80, CV_8UC1, cv::Scalar(100));
  cv::Mat deep(64, 80, CV_16UC3, cv::Scalar(100 * 257, 100 * 257, 100 * 257));
  cv::Mat alpha(64, 80, CV_8UC4, cv::Scalar(100, 100, 100, 50));
  ASSERT_TRUE(cv::imwrite((dir / "grey.png").string(), grey));
  ASSERT_TRUE(cv::imwrite((dir / "deep.png").string(), deep));
  ASSERT_TRUE(cv::imwrite((dir / "alpha.png").string(), alpha));

  ImageProfile g = ProfileImageFile(dir / "grey.png");
  ASSERT_TRUE(g.decodes) << g.error;
  EXPECT_EQ(g.channels, 1);
  EXPECT_NEAR(g.brightness, 100, 1);

  ImageProfile d = ProfileImageFile(dir / "deep.png");
  ASSERT_TRUE(d.decodes) << d.error;
  EXPECT_EQ(d.bit_depth, 16);
  EXPECT_EQ(d.channels, 3);
  EXPECT_NEAR(d.brightness, 100, 1);

  ImageProfile a = ProfileImageFile(dir / "alpha.png");
  ASSERT_TRUE(a.decodes) << a.error;
  EXPECT_EQ(a.channels, 4);
  EXPECT_EQ(a.width, 80);
  EXPECT_EQ(a.height, 64);
  EXPECT_NEAR(a.brightness, 100, 1);
}

TEST(ImageProfileTest, OtherFormats) {
  TempDir dir;
  cv::Mat img = Scene(200, 150, 4);
  for (const char* ext : {"bmp", "tiff", "webp"}) {
    fs::path p = dir / (std::string("a.") + ext);
    ASSERT_TRUE(cv::imwrite(p.string(), img)) << ext;
    ImageProfile prof = ProfileImageFile(p);
    ASSERT_TRUE(prof.decodes) << ext << ": " << prof.error;
    EXPECT_EQ(prof.format, ext == std::string("tiff") ? "tiff" : ext);
    EXPECT_EQ(prof.width, 200);
    EXPECT_EQ(prof.height, 150);
  }
}

TEST(ImageProfileTest, DarkImageHasLowBrightness) {
  TempDir dir;
  cv::Mat dark = Scene(320, 240, 5) * 0.1;
  ASSERT_TRUE(cv::imwrite((dir / "dark.jpg").string(), dark));
  ASSERT_TRUE(cv::imwrite((dir / "normal.jpg").string(), Scene(320, 240, 5)));
  ImageProfile d = ProfileImageFile(dir / "dark.jpg");
  ImageProfile n = ProfileImageFile(dir / "normal.jpg");
  ASSERT_TRUE(d.decodes && n.decodes);
  EXPECT_LT(d.brightness, 30);
  EXPECT_GT(n.brightness, 60);
}

TEST(ImageProfileTest, DifferenceHashFindsNearDuplicates) {
  TempDir dir;
  cv::Mat img = Scene(640, 480, 6);
  cv::Mat noise(img.size(), CV_16SC3);
  cv::randn(noise, 0, 6);
  cv::Mat noisy;
  img.convertTo(noisy, CV_16SC3);
  noisy += noise;
  noisy.convertTo(noisy, CV_8UC3);
  ASSERT_TRUE(cv::imwrite((dir / "a.jpg").string(), img));
  ASSERT_TRUE(cv::imwrite((dir / "b.jpg").string(), noisy, {cv::IMWRITE_JPEG_QUALITY, 70}));
  ASSERT_TRUE(cv::imwrite((dir / "c.jpg").string(), Scene(640, 480, 99)));
  ImageProfile a = ProfileImageFile(dir / "a.jpg");
  ImageProfile b = ProfileImageFile(dir / "b.jpg");
  ImageProfile c = ProfileImageFile(dir / "c.jpg");
  EXPECT_LE(HammingDistance(a.dhash, b.dhash), 4);
  EXPECT_GT(HammingDistance(a.dhash, c.dhash), 12);
  EXPECT_EQ(HammingDistance(0, ~uint64_t{0}), 64);
}

// Inserts an APP1 Exif segment holding only IFD0 orientation = `value`.
std::vector<uint8_t> WithOrientation(std::vector<uint8_t> jpeg, uint16_t value) {
  std::vector<uint8_t> tiff = {'I',
                               'I',
                               42,
                               0,
                               8,
                               0,
                               0,
                               0,  // header
                               1,
                               0,  // 1 entry
                               0x12,
                               0x01,
                               3,
                               0,
                               1,
                               0,
                               0,
                               0,  // SHORT x1
                               static_cast<uint8_t>(value),
                               0,
                               0,
                               0,
                               0,
                               0,
                               0,
                               0};  // next IFD 0
  std::vector<uint8_t> seg = {0xFF, 0xE1, 0, 0, 'E', 'x', 'i', 'f', 0, 0};
  seg.insert(seg.end(), tiff.begin(), tiff.end());
  size_t len = seg.size() - 2;
  seg[2] = static_cast<uint8_t>(len >> 8);
  seg[3] = static_cast<uint8_t>(len & 0xFF);
  jpeg.insert(jpeg.begin() + 2, seg.begin(), seg.end());
  return jpeg;
}

TEST(ImageProfileTest, ExifOrientationAppliesAtReducedScale) {
  cv::Mat img(480, 640, CV_8UC3, cv::Scalar(255, 0, 0));       // blue
  img(cv::Rect(0, 0, 320, 480)).setTo(cv::Scalar(0, 0, 255));  // left half red
  std::vector<uint8_t> jpeg;
  ASSERT_TRUE(cv::imencode(".jpg", img, jpeg));
  std::vector<uint8_t> rotated = WithOrientation(jpeg, 6);  // display rotated 90 degrees CW

  ImageProfile p = ProfileImageBytes(rotated);
  ASSERT_TRUE(p.decodes) << p.error;
  EXPECT_EQ(p.width, 480);
  EXPECT_EQ(p.height, 640);

  // OpenCV rotates for the reduced flag too: the stored left half is on top.
  cv::Mat reduced = cv::imdecode(rotated, cv::IMREAD_REDUCED_COLOR_2);
  ASSERT_EQ(reduced.cols, 240);
  ASSERT_EQ(reduced.rows, 320);
  cv::Vec3b top = reduced.at<cv::Vec3b>(10, 120), bottom = reduced.at<cv::Vec3b>(310, 120);
  EXPECT_GT(top[2], 200);
  EXPECT_GT(bottom[0], 200);
}

TEST(ImageProfileTest, ManyFilesOnTwoThreadsKeepOrder) {
  TempDir dir;
  std::vector<fs::path> paths;
  for (int i = 0; i < 24; ++i) {
    fs::path p = dir / ("img" + std::to_string(i) + ".png");
    // Width encodes the index so that order can be checked.
    ASSERT_TRUE(cv::imwrite(p.string(), cv::Mat(20, 30 + i, CV_8UC3, cv::Scalar(i, i, i))));
    paths.push_back(p);
  }
  paths.push_back(dir / "missing.png");
  size_t last_done = 0, calls = 0;
  auto profiles = ProfileImageFiles(paths, 2, [&](size_t done, size_t total) {
    EXPECT_EQ(total, paths.size());
    EXPECT_EQ(done, last_done + 1);
    last_done = done;
    ++calls;
  });
  ASSERT_EQ(profiles.size(), paths.size());
  for (int i = 0; i < 24; ++i) {
    ASSERT_TRUE(profiles[i].decodes) << profiles[i].error;
    EXPECT_EQ(profiles[i].width, 30 + i);
  }
  EXPECT_FALSE(profiles.back().decodes);
  EXPECT_EQ(calls, paths.size());
  EXPECT_TRUE(ProfileImageFiles({}, 2).empty());
}

}  // namespace
}  // namespace detops
