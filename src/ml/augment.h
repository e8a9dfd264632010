#pragma once
// Training-time image pipeline (OpenCV only, no LibTorch): letterbox,
// mosaic, scale/translate, horizontal flip, HSV, brightness/contrast/gamma,
// noise and blur. The photometric jitter is what makes a detector robust to
// the poor lighting and new cameras that monitoring later reports as drift.
// Deterministic for a given seed. Thread-safe: functions only.

#include <opencv2/core.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

#include "core/core.h"

namespace detops {

// A labelled image for training: boxes normalized to the displayed image.
struct TrainSample {
  std::filesystem::path path;
  std::vector<Box> boxes;
};

struct AugmentOptions {
  int imgsz = 320;
  bool augment = true;                             // false: plain letterbox (validation)
  double mosaic = 0.5;                             // probability of a 2x2 mosaic
  double flip = 0.5;                               // horizontal flip probability
  double scale = 0.5;                              // zoom in [1 - scale, 1 + scale]
  double translate = 0.1;                          // shift up to this fraction of imgsz
  double hsv_h = 0.015, hsv_s = 0.6, hsv_v = 0.4;  // HSV gains (fractions)
  double gamma = 0.35;  // gamma in [1 - gamma, 1 + gamma] (half the time)
  // Heavy degradations, at most one per image; each is a probability.
  double dark = 0.1;   // strong underexposure (poor light)
  double haze = 0.1;   // low contrast (haze, glare, dirty lens)
  double noise = 0.1;  // sensor noise
  double blur = 0.05;  // slight blur
};

// An augmented example: an imgsz x imgsz BGR image and its boxes in pixels.
struct Example {
  cv::Mat image;
  std::vector<Box> boxes;
};

// Decodes image `i` of the sample set; may cache. Returns an empty Mat when
// the image cannot be read.
using ImageSource = std::function<cv::Mat(size_t i)>;

Example MakeExample(const std::vector<TrainSample>& samples, size_t index,
                    const ImageSource& source, const AugmentOptions& options, uint64_t seed);

// Letterbox geometry: image pixels -> input pixels is p * scale + pad.
struct Letterbox {
  double scale = 1;
  double pad_x = 0, pad_y = 0;
};
// Resizes keeping the aspect ratio into a size x size canvas (grey 114).
cv::Mat LetterboxImage(const cv::Mat& image, int size, Letterbox* geometry);

}  // namespace detops
