#include "ml/augment.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <random>

namespace detops {
namespace {

using Rng = std::mt19937_64;

double Uniform(Rng& rng, double a, double b) {
  return std::uniform_real_distribution<double>(a, b)(rng);
}
bool Chance(Rng& rng, double p) { return Uniform(rng, 0, 1) < p; }

// Places `img` (scaled so its longest side is `size`) into `canvas` at
// (x0, y0), clipped; appends its boxes in canvas pixels.
void Place(const cv::Mat& img, const std::vector<Box>& boxes, int size, cv::Mat& canvas, int x0,
           int y0, std::vector<Box>& out) {
  if (img.empty()) return;
  double s = static_cast<double>(size) / std::max(img.cols, img.rows);
  cv::Mat r;
  cv::resize(
      img, r,
      {std::max(1, int(std::lround(img.cols * s))), std::max(1, int(std::lround(img.rows * s)))}, 0,
      0, s < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  cv::Rect dst(x0, y0, r.cols, r.rows);
  cv::Rect clip = dst & cv::Rect(0, 0, canvas.cols, canvas.rows);
  if (clip.area() > 0) {
    r(cv::Rect(clip.x - x0, clip.y - y0, clip.width, clip.height)).copyTo(canvas(clip));
  }
  // Boxes are cut to the part of the image that made it onto the canvas;
  // beyond it the canvas is padding.
  for (Box b : boxes) {
    Box c = b;
    c.x1 = std::max<double>(x0 + b.x1 * r.cols, clip.x);
    c.x2 = std::min<double>(x0 + b.x2 * r.cols, clip.x + clip.width);
    c.y1 = std::max<double>(y0 + b.y1 * r.rows, clip.y);
    c.y2 = std::min<double>(y0 + b.y2 * r.rows, clip.y + clip.height);
    double full = b.Width() * r.cols * b.Height() * r.rows;
    if (c.x2 - c.x1 < 2 || c.y2 - c.y1 < 2 || (c.x2 - c.x1) * (c.y2 - c.y1) < 0.25 * full) continue;
    out.push_back(c);
  }
}

void Photometric(cv::Mat& img, const AugmentOptions& o, Rng& rng) {
  // HSV gains through lookup tables.
  double gh = Uniform(rng, -1, 1) * o.hsv_h + 1, gs = Uniform(rng, -1, 1) * o.hsv_s + 1,
         gv = Uniform(rng, -1, 1) * o.hsv_v + 1;
  cv::Mat hsv;
  cv::cvtColor(img, hsv, cv::COLOR_BGR2HSV);
  cv::Mat lut(1, 256, CV_8UC3);
  for (int i = 0; i < 256; ++i) {
    lut.at<cv::Vec3b>(i) = {static_cast<uchar>(static_cast<int>(i * gh) % 180),
                            cv::saturate_cast<uchar>(i * gs), cv::saturate_cast<uchar>(i * gv)};
  }
  cv::LUT(hsv, lut, hsv);
  cv::cvtColor(hsv, img, cv::COLOR_HSV2BGR);
  if (Chance(rng, 0.5)) {
    double g = Uniform(rng, 1 - o.gamma, 1 + o.gamma);
    cv::Mat t(1, 256, CV_8U);
    for (int i = 0; i < 256; ++i)
      t.at<uchar>(i) = cv::saturate_cast<uchar>(255 * std::pow(i / 255.0, g));
    cv::LUT(img, t, img);
  }
  // At most one heavy degradation per image, as albumentations' OneOf: drawn
  // independently they stacked (dark, then hazy, then noisy, then blurred) on
  // about half the images and erased thin scratches while their labels
  // stayed; the car set then learnt nothing (docs/detector.md).
  double u = Uniform(rng, 0, 1);
  if ((u -= o.dark) < 0) {  // dusk, shade, a cheap camera
    img.convertTo(img, -1, Uniform(rng, 0.25, 0.6), Uniform(rng, -10, 5));
  } else if ((u -= o.haze) < 0) {  // low contrast: haze, glare, a dirty lens
    double a = Uniform(rng, 0.5, 0.85);
    img.convertTo(img, -1, a, (1 - a) * Uniform(rng, 60, 200));
  } else if ((u -= o.noise) < 0) {  // sensor noise
    cv::Mat n(img.size(), CV_16SC3);
    cv::RNG local(rng());
    local.fill(n, cv::RNG::NORMAL, 0, Uniform(rng, 2, 8));
    cv::Mat f;
    img.convertTo(f, CV_16SC3);
    f += n;
    f.convertTo(img, CV_8UC3);
  } else if ((u -= o.blur) < 0) {  // slight defocus or motion
    cv::GaussianBlur(img, img, {3, 3}, 0);
  }
}

}  // namespace

cv::Mat LetterboxImage(const cv::Mat& image, int size, Letterbox* geometry) {
  double s = static_cast<double>(size) / std::max(image.cols, image.rows);
  int w = std::max(1, static_cast<int>(std::lround(image.cols * s)));
  int h = std::max(1, static_cast<int>(std::lround(image.rows * s)));
  cv::Mat out(size, size, CV_8UC3, cv::Scalar(114, 114, 114));
  int px = (size - w) / 2, py = (size - h) / 2;
  cv::Mat r;
  cv::resize(image, r, {w, h}, 0, 0, s < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  r.copyTo(out(cv::Rect(px, py, w, h)));
  if (geometry) *geometry = {s, static_cast<double>(px), static_cast<double>(py)};
  return out;
}

Example MakeExample(const std::vector<TrainSample>& samples, size_t index,
                    const ImageSource& source, const AugmentOptions& o, uint64_t seed) {
  const int s = o.imgsz;
  Example ex;
  if (!o.augment) {
    cv::Mat img = source(index);
    if (img.empty()) img = cv::Mat(s, s, CV_8UC3, cv::Scalar(114, 114, 114));
    Letterbox g;
    ex.image = LetterboxImage(img, s, &g);
    for (Box b : samples[index].boxes) {
      b.x1 = b.x1 * img.cols * g.scale + g.pad_x;
      b.x2 = b.x2 * img.cols * g.scale + g.pad_x;
      b.y1 = b.y1 * img.rows * g.scale + g.pad_y;
      b.y2 = b.y2 * img.rows * g.scale + g.pad_y;
      ex.boxes.push_back(b);
    }
    return ex;
  }
  Rng rng(seed);
  cv::Mat canvas;
  std::vector<Box> boxes;
  cv::Point2d center;
  if (samples.size() >= 4 && Chance(rng, o.mosaic)) {
    canvas = cv::Mat(2 * s, 2 * s, CV_8UC3, cv::Scalar(114, 114, 114));
    int xc = static_cast<int>(Uniform(rng, 0.5 * s, 1.5 * s));
    int yc = static_cast<int>(Uniform(rng, 0.5 * s, 1.5 * s));
    std::uniform_int_distribution<size_t> pick(0, samples.size() - 1);
    size_t ids[4] = {index, pick(rng), pick(rng), pick(rng)};
    for (int q = 0; q < 4; ++q) {
      cv::Mat img = source(ids[q]);
      if (img.empty()) continue;
      double k = static_cast<double>(s) / std::max(img.cols, img.rows);
      int w = static_cast<int>(std::lround(img.cols * k)),
          h = static_cast<int>(std::lround(img.rows * k));
      int x0 = (q % 2 == 0) ? xc - w : xc;
      int y0 = (q < 2) ? yc - h : yc;
      Place(img, samples[ids[q]].boxes, s, canvas, x0, y0, boxes);
    }
    center = {static_cast<double>(xc), static_cast<double>(yc)};
  } else {
    cv::Mat img = source(index);
    if (img.empty()) img = cv::Mat(s, s, CV_8UC3, cv::Scalar(114, 114, 114));
    canvas = cv::Mat(s, s, CV_8UC3, cv::Scalar(114, 114, 114));
    double k = static_cast<double>(s) / std::max(img.cols, img.rows);
    int w = static_cast<int>(std::lround(img.cols * k)),
        h = static_cast<int>(std::lround(img.rows * k));
    Place(img, samples[index].boxes, s, canvas, (s - w) / 2, (s - h) / 2, boxes);
    center = {s / 2.0, s / 2.0};
  }
  // Zoom about the centre, shift, flip: one affine warp into s x s.
  double zoom = Uniform(rng, 1 - o.scale, 1 + o.scale);
  double tx = s / 2.0 + Uniform(rng, -o.translate, o.translate) * s;
  double ty = s / 2.0 + Uniform(rng, -o.translate, o.translate) * s;
  bool flip = Chance(rng, o.flip);
  double sx = flip ? -zoom : zoom;
  cv::Mat m = (cv::Mat_<double>(2, 3) << sx, 0, tx - sx * center.x, 0, zoom, ty - zoom * center.y);
  cv::warpAffine(canvas, ex.image, m, {s, s}, cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                 cv::Scalar(114, 114, 114));
  for (Box b : boxes) {
    double xa = sx * b.x1 + m.at<double>(0, 2), xb = sx * b.x2 + m.at<double>(0, 2);
    double ya = zoom * b.y1 + m.at<double>(1, 2), yb = zoom * b.y2 + m.at<double>(1, 2);
    Box t = b;
    t.x1 = std::clamp(std::min(xa, xb), 0.0, double(s));
    t.x2 = std::clamp(std::max(xa, xb), 0.0, double(s));
    t.y1 = std::clamp(std::min(ya, yb), 0.0, double(s));
    t.y2 = std::clamp(std::max(ya, yb), 0.0, double(s));
    double full = std::abs(xb - xa) * std::abs(yb - ya);
    double kept = t.Width() * t.Height();
    if (t.Width() < 2 || t.Height() < 2 || kept < 0.25 * full) continue;
    ex.boxes.push_back(t);
  }
  Photometric(ex.image, o, rng);
  return ex;
}

}  // namespace detops
