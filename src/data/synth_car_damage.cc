// Car damage (scratches, dents) and the unlabelled distractors on paint.

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "data/synth_internal.h"

namespace detops::synth {
namespace {

bool OnPanel(const cv::Mat& panel, cv::Point2d p) {
  int x = static_cast<int>(p.x), y = static_cast<int>(p.y);
  return x >= 0 && y >= 0 && x < panel.cols && y < panel.rows && panel.at<uchar>(y, x) != 0;
}

cv::Vec3f Bilinear(const cv::Mat& m, float x, float y) {
  x = std::clamp(x, 0.0f, m.cols - 1.001f);
  y = std::clamp(y, 0.0f, m.rows - 1.001f);
  int x0 = static_cast<int>(x), y0 = static_cast<int>(y);
  float tx = x - x0, ty = y - y0;
  const auto* r0 = m.ptr<cv::Vec3f>(y0);
  const auto* r1 = m.ptr<cv::Vec3f>(y0 + 1);
  cv::Vec3f a = r0[x0] * (1 - tx) + r0[x0 + 1] * tx;
  cv::Vec3f b = r1[x0] * (1 - tx) + r1[x0 + 1] * tx;
  return a * (1 - ty) + b * ty;
}

// Multiplies alpha by the panel mask so that damage never leaves the paint.
void ClipToPanel(cv::Mat& alpha, const cv::Mat& panel, cv::Rect roi) {
  for (int y = 0; y < roi.height; ++y) {
    float* a = alpha.ptr<float>(y);
    const uchar* p = panel.ptr<uchar>(roi.y + y) + roi.x;
    for (int x = 0; x < roi.width; ++x) {
      if (p[x] == 0) a[x] = 0;
    }
  }
}

}  // namespace

bool DrawScratchGroup(Rng& rng, const Paint& paint, const cv::Mat& panel, cv::Mat& img,
                      Damage* out) {
  const int w = img.cols, h = img.rows;
  cv::Point2d p0, p2;
  double len = 0;
  bool placed = false;
  for (int tries = 0; tries < 30 && !placed; ++tries) {
    p0 = {rng.Uniform(0, w), rng.Uniform(0, h)};
    len = rng.LogUniform(0.06 * std::min(w, h), 0.8 * std::min(w, h));  // visible ones
    double a = rng.Uniform(0, 2 * M_PI);
    p2 = p0 + cv::Point2d(std::cos(a), std::sin(a)) * len;
    placed = OnPanel(panel, p0) && OnPanel(panel, p2) && OnPanel(panel, (p0 + p2) * 0.5);
  }
  if (!placed) return false;
  cv::Point2d dir = (p2 - p0) * (1.0 / len), normal(-dir.y, dir.x);
  cv::Point2d p1 =
      (p0 + p2) * 0.5 + normal * (len * rng.Uniform(-0.25, 0.25) * (rng.Chance(0.6) ? 1.0 : 0.2));
  // The stroke's spine: a quadratic Bezier with a random walk across it.
  const bool jagged = rng.Chance(0.4);
  const double jag = jagged ? rng.Uniform(0.3, 1.2) : 0.15;
  const int k = std::clamp(static_cast<int>(len / 3), 6, 150);
  std::vector<cv::Point2d> spine(k);
  double walk = 0;
  for (int i = 0; i < k; ++i) {
    double t = static_cast<double>(i) / (k - 1);
    walk = walk * 0.7 + rng.Normal(0, jag);
    spine[i] = p0 * ((1 - t) * (1 - t)) + p1 * (2 * t * (1 - t)) + p2 * (t * t) + normal * walk;
  }
  // Several parallel strokes make a group; many close ones make a scuff.
  const bool scuff = rng.Chance(0.15);
  // Stroke width in pixels: a scratch an annotator labels is a line one sees
  // in the photo, about 2 px wide at 640x480 whatever the camera resolution.
  const int unit = std::max(1, static_cast<int>(std::lround(std::min(w, h) / 240.0)));
  const int strokes = scuff ? rng.Int(5, 10) : (rng.Chance(0.55) ? 1 : rng.Int(2, 5));
  const double spacing = scuff ? rng.Uniform(0.8, 2.0) : rng.Uniform(1.5, 7);
  const double spread = spacing * strokes + 8;

  cv::Rect roi = cv::boundingRect(std::vector<cv::Point2f>(spine.begin(), spine.end()));
  roi =
      cv::Rect(roi.x - static_cast<int>(spread), roi.y - static_cast<int>(spread),
               roi.width + 2 * static_cast<int>(spread), roi.height + 2 * static_cast<int>(spread));
  roi &= cv::Rect(0, 0, w, h);
  if (roi.area() == 0) return false;

  cv::Mat alpha8 = cv::Mat::zeros(roi.size(), CV_8U), stroke(roi.size(), CV_8U);
  const cv::Point2d origin(roi.x, roi.y);
  for (int s = 0; s < strokes; ++s) {
    stroke.setTo(0);
    double off = (s - (strokes - 1) * 0.5) * spacing + rng.Normal(0, 0.4);
    double t0 = s == 0 ? 0 : rng.Uniform(0, 0.3), t1 = s == 0 ? 1 : 1 - rng.Uniform(0, 0.3);
    int thick = scuff ? std::max(1, unit - 1) : unit + (len > 60 && rng.Chance(0.3) ? 1 : 0);
    double opacity = scuff ? rng.Uniform(0.35, 0.6) : rng.Uniform(0.7, 1.0);
    for (int i = 0; i + 1 < k; ++i) {
      double t = static_cast<double>(i) / (k - 1);
      if (t < t0 || t > t1) continue;
      if (jagged && rng.Chance(0.06)) continue;  // the tool skipped
      double taper = std::min(1.0, std::min(t - t0, t1 - t) / 0.12 + 0.15);
      cv::Point2d a = spine[i] + normal * off - origin, b = spine[i + 1] + normal * off - origin;
      cv::line(stroke, a, b, cv::Scalar(255 * opacity * std::sqrt(taper)), thick, cv::LINE_AA);
    }
    cv::max(alpha8, stroke, alpha8);
  }
  cv::Mat alpha, shadow;
  alpha8.convertTo(alpha, CV_32F, 1.0 / 255);
  // The groove's far wall: a faint dark line one pixel beside the bright one.
  cv::Mat shift = (cv::Mat_<double>(2, 3) << 1, 0, 1, 0, 1, 1);
  cv::warpAffine(alpha, shadow, shift, alpha.size());
  ClipToPanel(alpha, panel, roi);
  ClipToPanel(shadow, panel, roi);

  cv::Vec3f color;
  const bool bright_paint = paint.luminance > 0.6;
  double kind = rng.Uniform();
  const double dark_p = bright_paint ? 0.65 : (paint.luminance < 0.25 ? 0.0 : 0.3);
  if (kind < dark_p) {
    color = paint.base * static_cast<float>(rng.Uniform(0.25, 0.6));  // dirt-filled, dark
  } else if (kind < 0.85) {
    float m = static_cast<float>(rng.Uniform(0.35, 0.75));  // clear coat: whitish
    color = paint.base * (1 - m) + cv::Vec3f(0.93f, 0.93f, 0.92f) * m;
  } else if (kind < 0.93) {
    color = cv::Vec3f(0.78f, 0.79f, 0.8f);  // bare metal
  } else {
    color = cv::Vec3f(0.55f, 0.58f, 0.6f);  // primer
  }
  // A scratch is seen because it differs from the paint; one that matches it
  // (bare metal on silver) is not what annotators label: push it apart.
  auto luma = [](const cv::Vec3f& c) { return 0.114f * c[0] + 0.587f * c[1] + 0.299f * c[2]; };
  const float gap = luma(color) - static_cast<float>(paint.luminance);
  if (std::abs(gap) < 0.25f) {
    color = paint.luminance > 0.5 ? paint.base * 0.35f
                                  : paint.base * 0.3f + cv::Vec3f(0.9f, 0.9f, 0.9f) * 0.7f;
  }
  cv::Mat dark(roi.size(), CV_32FC3, cv::Scalar(paint.base[0], paint.base[1], paint.base[2]) * 0.4);
  shadow *= 0.35;
  cv::Rect r1 = BlendInto(img, roi, dark, shadow, 0.03f);
  cv::Mat col(roi.size(), CV_32FC3, cv::Scalar(color[0], color[1], color[2]));
  cv::Rect r2 = BlendInto(img, roi, col, alpha, 0.06f);
  cv::Rect r = r1 | r2;
  if (r.area() == 0) return false;
  *out = {0, r};
  return true;
}

bool DrawDent(Rng& rng, const cv::Mat& panel, cv::Mat& img, Damage* out) {
  const int w = img.cols, h = img.rows;
  cv::Point2d c;
  double a = 0, b = 0, phi = 0;
  bool placed = false;
  for (int tries = 0; tries < 30 && !placed; ++tries) {
    c = {rng.Uniform(0, w), rng.Uniform(0, h)};
    // Annotators label dents they can see: at least ~3% of the short side
    // across (about 14 px on a 640x480 photo), as in public dent data sets.
    a = rng.LogUniform(0.03 * std::min(w, h), 0.3 * std::min(w, h));
    b = a * rng.Uniform(0.45, 1.0);
    phi = rng.Uniform(0, M_PI);
    cv::Point2d u(std::cos(phi), std::sin(phi)), v(-u.y, u.x);
    int on = OnPanel(panel, c) + OnPanel(panel, c + u * a) + OnPanel(panel, c - u * a) +
             OnPanel(panel, c + v * b) + OnPanel(panel, c - v * b);
    placed = OnPanel(panel, c) && on >= 4;
  }
  if (!placed) return false;
  const double depth = rng.Uniform(0.2, 0.6);      // displacement, in units of b
  const double strength = rng.Uniform(0.3, 0.65);  // shading
  // Outdoors the light comes from the sky: mostly from above, within 50
  // degrees; a quarter of photos have a flash or workshop lamp from anywhere.
  const double light =
      rng.Chance(0.75) ? -M_PI / 2 + rng.Uniform(-0.87, 0.87) : rng.Uniform(0, 2 * M_PI);
  const float lx = static_cast<float>(std::cos(light)), ly = static_cast<float>(std::sin(light));
  const double disp = depth * b;
  const int margin = static_cast<int>(disp) + 3;
  cv::Rect roi(static_cast<int>(c.x - a) - 1, static_cast<int>(c.y - a) - 1,
               static_cast<int>(2 * a) + 3, static_cast<int>(2 * a) + 3);
  roi &= cv::Rect(0, 0, w, h);
  cv::Rect src_rect(roi.x - margin, roi.y - margin, roi.width + 2 * margin,
                    roi.height + 2 * margin);
  src_rect &= cv::Rect(0, 0, w, h);
  const cv::Mat src = img(src_rect).clone();
  cv::Mat color(roi.size(), CV_32FC3), alpha = cv::Mat::zeros(roi.size(), CV_32F);
  const double cs = std::cos(phi), sn = std::sin(phi);
  for (int y = 0; y < roi.height; ++y) {
    auto* crow = color.ptr<cv::Vec3f>(y);
    float* arow = alpha.ptr<float>(y);
    for (int x = 0; x < roi.width; ++x) {
      double dx = roi.x + x + 0.5 - c.x, dy = roi.y + y + 0.5 - c.y;
      double u = (dx * cs + dy * sn) / a, v = (-dx * sn + dy * cs) / b;
      double rho2 = u * u + v * v;
      if (rho2 >= 1) continue;
      // Height (1 - rho^2)^1.5: its slope is steepest near the rim and
      // breaks at it, like a pressed-in panel.
      double q = std::sqrt(1 - rho2);
      double gu = -3 * u * q, gv = -3 * v * q * (a / b);
      double gx = gu * cs - gv * sn, gy = gu * sn + gv * cs;  // in image axes
      float sx = static_cast<float>(roi.x + x - src_rect.x + gx * disp * 0.5);
      float sy = static_cast<float>(roi.y + y - src_rect.y + gy * disp * 0.5);
      cv::Vec3f s = Bilinear(src, sx, sy);
      float shade = static_cast<float>(strength * (gx * lx + gy * ly) / 3.0);
      s *= 1 + shade;
      if (shade > 0) s += cv::Vec3f::all(shade * shade * 2);
      crow[x] = s;
      arow[x] = 1;
    }
  }
  ClipToPanel(alpha, panel, roi);
  cv::Rect r = BlendInto(img, roi, color, alpha, 0.5f);
  if (r.area() == 0) return false;
  *out = {1, r};
  return true;
}

void DrawCarOverlays(Rng& rng, const Paint& paint, const cv::Mat& panel, cv::Mat& img) {
  (void)panel;
  const int w = img.cols, h = img.rows;
  // Dust: single bright or dark specks.
  int specks = rng.Int(0, 500);
  for (int i = 0; i < specks; ++i) {
    int x = rng.Int(0, w - 1), y = rng.Int(0, h - 1);
    float a = static_cast<float>(rng.Uniform(0.15, 0.6));
    cv::Vec3f col = rng.Chance(0.6) ? cv::Vec3f(0.75f, 0.8f, 0.82f) : cv::Vec3f(0.1f, 0.12f, 0.14f);
    cv::Vec3f& px = img.at<cv::Vec3f>(y, x);
    px += (col - px) * a;
  }
  // Water spots: faint rings left by dried drops.
  if (rng.Chance(0.3)) {
    cv::Mat ring = cv::Mat::zeros(img.size(), CV_8U);
    int n = rng.Int(5, 60);
    for (int i = 0; i < n; ++i) {
      cv::Point c(rng.Int(0, w - 1), rng.Int(0, h - 1));
      int r = rng.Int(1, 6);
      cv::circle(ring, c, r, cv::Scalar(rng.Int(15, 50)), 1, cv::LINE_AA);
    }
    cv::Vec3f col =
        paint.luminance > 0.5 ? cv::Vec3f(0.45f, 0.47f, 0.5f) : cv::Vec3f(0.85f, 0.87f, 0.88f);
    for (int y = 0; y < h; ++y) {
      auto* row = img.ptr<cv::Vec3f>(y);
      const uchar* r = ring.ptr<uchar>(y);
      for (int x = 0; x < w; ++x) {
        if (r[x]) row[x] += (col - row[x]) * (r[x] / 255.0f);
      }
    }
  }
  // A film of road dirt, thicker low on the body.
  if (rng.Chance(0.35)) {
    cv::Mat noise = FractalNoise(rng, img.size(), 120, 4, 0.55);
    const float amount = static_cast<float>(rng.Uniform(0.05, 0.25));
    const cv::Vec3f dirt(0.32f, 0.40f, 0.46f);
    for (int y = 0; y < h; ++y) {
      auto* row = img.ptr<cv::Vec3f>(y);
      const float* n = noise.ptr<float>(y);
      float low = static_cast<float>(y) / h;
      for (int x = 0; x < w; ++x) {
        float a = std::clamp(amount * (0.3f + low + 0.5f * n[x]), 0.0f, 0.6f);
        row[x] += (dirt - row[x]) * a;
      }
    }
  }
}

}  // namespace detops::synth
