// The camera stage of the scene generator: exposure (the lighting knob),
// white balance, vignetting, blur, sensor noise and compression.

#include <algorithm>
#include <cmath>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "data/synth_internal.h"

namespace detops::synth {
namespace {

// All random parameters of the stage, drawn up front in a fixed order so that
// every lighting consumes the same stream.
struct CameraParams {
  double gain_normal, gain_dark, gamma_dark, gain_over, contrast_low, haze_low;
  cv::Vec3f haze_color;
  cv::Vec3f white_balance;
  double vignette;       // 0 for none
  double defocus_sigma;  // 0 for none
  int motion_length;     // 0 for none
  double motion_angle;
  double noise_sigma;
  int jpeg_quality;  // 0 for no round trip
};

CameraParams DrawParams(Rng& rng) {
  CameraParams p;
  p.gain_normal = rng.Uniform(0.9, 1.1);
  p.gain_dark = rng.Uniform(0.3, 0.55);
  p.gamma_dark = rng.Uniform(1.3, 1.9);
  p.gain_over = rng.Uniform(1.5, 2.3);
  p.contrast_low = rng.Uniform(0.3, 0.5);
  p.haze_low = rng.Uniform(0.15, 0.35);
  float haze = static_cast<float>(rng.Uniform(0.65, 0.85));
  p.haze_color = cv::Vec3f(haze * 1.03f, haze, haze * 0.97f);
  double warm = rng.Normal(0, 0.04), tint = rng.Normal(0, 0.02);
  p.white_balance = cv::Vec3f(static_cast<float>(1 - warm), static_cast<float>(1 + tint),
                              static_cast<float>(1 + warm));
  p.vignette = rng.Chance(0.7) ? rng.Uniform(0.08, 0.4) : 0;
  double blur_kind = rng.Uniform();
  p.defocus_sigma = blur_kind < 0.25 ? rng.Uniform(0.5, 1.4) : 0;
  p.motion_length = blur_kind > 0.87 ? rng.Int(3, 8) : 0;
  p.motion_angle = rng.Uniform(0, M_PI);
  p.noise_sigma = rng.Uniform(0.004, 0.016);
  p.jpeg_quality = rng.Chance(0.5) ? rng.Int(55, 92) : 0;
  return p;
}

void Expose(cv::Mat& img, Lighting lighting, const CameraParams& p) {
  switch (lighting) {
    case Lighting::kNormal:
      img *= p.gain_normal;
      break;
    case Lighting::kDusk:
      img *= p.gain_normal * 0.82;
      break;
    case Lighting::kDark:
      cv::max(img, 0.0, img);
      cv::pow(img, p.gamma_dark, img);
      img *= p.gain_dark;
      break;
    case Lighting::kOverexposed:
      img *= p.gain_over;
      break;
    case Lighting::kLowContrast: {
      cv::Scalar mean = cv::mean(img);
      double m = (mean[0] + mean[1] + mean[2]) / 3;
      double c = p.contrast_low, h = p.haze_low;
      img.forEach<cv::Vec3f>([&](cv::Vec3f& v, const int*) {
        for (int k = 0; k < 3; ++k) {
          double x = m + (v[k] - m) * c;
          v[k] = static_cast<float>(x * (1 - h) + p.haze_color[k] * h);
        }
      });
      break;
    }
  }
}

void Vignette(cv::Mat& img, double strength) {
  const double cx = img.cols * 0.5, cy = img.rows * 0.5;
  const double inv = 1.0 / (cx * cx + cy * cy);
  for (int y = 0; y < img.rows; ++y) {
    auto* row = img.ptr<cv::Vec3f>(y);
    double dy2 = (y + 0.5 - cy) * (y + 0.5 - cy);
    for (int x = 0; x < img.cols; ++x) {
      double dx = x + 0.5 - cx;
      double r2 = (dx * dx + dy2) * inv;
      row[x] *= static_cast<float>(1 - strength * r2 * (0.6 + 0.4 * r2));
    }
  }
}

void MotionBlur(cv::Mat& img, int length, double angle) {
  int k = length | 1;
  cv::Mat kernel = cv::Mat::zeros(k, k, CV_32F);
  double c = (k - 1) * 0.5, dx = std::cos(angle) * c, dy = std::sin(angle) * c;
  cv::line(kernel, cv::Point2d(c - dx, c - dy), cv::Point2d(c + dx, c + dy), cv::Scalar(1), 1,
           cv::LINE_8);
  kernel /= cv::sum(kernel)[0];
  cv::filter2D(img, img, -1, kernel, cv::Point(-1, -1), 0, cv::BORDER_REFLECT);
}

void AddNoise(cv::Mat& img, double sigma, Rng& rng) {
  cv::Mat luma(img.size(), CV_32F), chroma(img.size(), CV_32FC3);
  rng.cv().fill(luma, cv::RNG::NORMAL, 0.0, 1.0);
  rng.cv().fill(chroma, cv::RNG::NORMAL, 0.0, 0.5);
  const float s = static_cast<float>(sigma);
  for (int y = 0; y < img.rows; ++y) {
    auto* row = img.ptr<cv::Vec3f>(y);
    const float* l = luma.ptr<float>(y);
    const auto* c = chroma.ptr<cv::Vec3f>(y);
    for (int x = 0; x < img.cols; ++x) {
      // Shot noise grows with the signal; read noise sets a floor.
      float lum = (row[x][0] + row[x][1] + row[x][2]) * (1.0f / 3.0f);
      float sd = s * (0.5f + std::sqrt(std::max(lum, 0.0f)));
      for (int k = 0; k < 3; ++k) row[x][k] += sd * (l[x] + c[x][k]);
    }
  }
}

}  // namespace

cv::Mat FinishPhoto(const cv::Mat& input, Lighting lighting, Rng& rng, bool camera_effects) {
  CameraParams p = DrawParams(rng);
  cv::Mat img = input.clone();
  Expose(img, lighting, p);
  if (camera_effects) {
    cv::multiply(img, cv::Scalar(p.white_balance[0], p.white_balance[1], p.white_balance[2]), img);
    if (p.vignette > 0) Vignette(img, p.vignette);
    if (p.defocus_sigma > 0) cv::GaussianBlur(img, img, cv::Size(0, 0), p.defocus_sigma);
    if (p.motion_length > 0) MotionBlur(img, p.motion_length, p.motion_angle);
    double sigma = p.noise_sigma * (lighting == Lighting::kDark ? 2.5 : 1.0);
    AddNoise(img, sigma, rng);
  }
  cv::Mat out;
  img.convertTo(out, CV_8UC3, 255.0);
  if (camera_effects && p.jpeg_quality > 0) {
    std::vector<uchar> buf;
    cv::imencode(".jpg", out, buf, {cv::IMWRITE_JPEG_QUALITY, p.jpeg_quality});
    out = cv::imdecode(buf, cv::IMREAD_COLOR);
  }
  return out;
}

}  // namespace detops::synth
