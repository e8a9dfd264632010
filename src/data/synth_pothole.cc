// The road's camera model and its potholes.

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "data/synth_internal.h"

namespace detops::synth {

bool GroundCamera::Project(double x, double z, double depth, cv::Point2d* px) const {
  double hy = height + depth;
  double yc = hy * std::cos(pitch) - z * std::sin(pitch);
  double zc = hy * std::sin(pitch) + z * std::cos(pitch);
  if (zc < 0.05) return false;
  double up = f * x / zc, vp = f * yc / zc;
  px->x = cx + up * std::cos(roll) - vp * std::sin(roll);
  px->y = cy + up * std::sin(roll) + vp * std::cos(roll);
  return true;
}

bool GroundCamera::Unproject(double u, double v, double* x, double* z) const {
  double du = u - cx, dv = v - cy;
  double up = du * std::cos(roll) + dv * std::sin(roll);
  double vp = -du * std::sin(roll) + dv * std::cos(roll);
  double yw = vp * std::cos(pitch) + f * std::sin(pitch);
  double zw = -vp * std::sin(pitch) + f * std::cos(pitch);
  if (yw <= 1e-6) return false;
  double t = height / yw;
  *x = t * up;
  *z = t * zw;
  return *z > 0;
}

double GroundCamera::HorizonRow(double u) const {
  double vp = -f * std::tan(pitch);
  double up = ((u - cx) + vp * std::sin(roll)) / std::cos(roll);
  return cy + up * std::sin(roll) + vp * std::cos(roll);
}

double GroundCamera::AxisDistance(double z, double depth) const {
  return (height + depth) * std::sin(pitch) + z * std::cos(pitch);
}

namespace {

std::vector<cv::Point> ToInt(const std::vector<cv::Point2d>& pts, cv::Point origin) {
  std::vector<cv::Point> out;
  out.reserve(pts.size());
  // Three fractional bits: fillPoly's `shift` gives sub-pixel outlines.
  for (const auto& p : pts) {
    out.emplace_back(static_cast<int>(std::lround((p.x - origin.x) * 8)),
                     static_cast<int>(std::lround((p.y - origin.y) * 8)));
  }
  return out;
}

cv::Mat Fill(cv::Size size, const std::vector<cv::Point>& poly) {
  cv::Mat m = cv::Mat::zeros(size, CV_8U);
  std::vector<std::vector<cv::Point>> polys{poly};
  cv::fillPoly(m, polys, cv::Scalar(255), cv::LINE_AA, 3);
  return m;
}

}  // namespace

bool DrawPothole(Rng& rng, const GroundCamera& cam, const RoadLook& look, double x, double z,
                 double radius, const std::vector<cv::Rect>& avoid, cv::Mat& img, Damage* out) {
  const cv::Rect frame(0, 0, img.cols, img.rows);
  // A noisy radial outline: a few low harmonics plus smoothed jitter.
  const int n = 44;
  double amp[6], phase[6];
  for (int k = 2; k < 6; ++k) {
    amp[k] = rng.Uniform(0, 0.22 / (k - 1));
    phase[k] = rng.Uniform(0, 2 * M_PI);
  }
  const double stretch = rng.Uniform(0.7, 1.4), turn = rng.Uniform(0, M_PI);
  const double depth = rng.Uniform(0.04, 0.15);
  std::vector<double> jitter(n);
  for (double& j : jitter) j = rng.Normal(0, 0.06);
  std::vector<cv::Point2d> outline(n), floor(n);
  for (int i = 0; i < n; ++i) {
    double t = 2 * M_PI * i / n;
    double r = 1 + 0.5 * (jitter[i] + jitter[(i + 1) % n]);
    for (int k = 2; k < 6; ++k) r += amp[k] * std::cos(k * t + phase[k]);
    double ux = std::cos(t) * r * radius * stretch, uz = std::sin(t) * r * radius / stretch;
    double gx = x + ux * std::cos(turn) - uz * std::sin(turn);
    double gz = z + ux * std::sin(turn) + uz * std::cos(turn);
    if (!cam.Project(gx, gz, 0, &outline[i])) return false;
    // The walls slope in: the floor is a smaller outline lower down.
    if (!cam.Project(x + (gx - x) * 0.8, z + (gz - z) * 0.8, depth, &floor[i])) return false;
  }
  cv::Rect2d bounds = cv::boundingRect(std::vector<cv::Point2f>(outline.begin(), outline.end()));
  if (bounds.width < 5 || bounds.height < 3) return false;
  cv::Rect2d visible = bounds & cv::Rect2d(frame);
  if (visible.area() < 0.6 * bounds.area()) return false;
  const double rim = std::max(1.0, 0.04 * std::min(bounds.width, bounds.height * 2));
  const int margin = static_cast<int>(rim) + 4;
  cv::Rect roi(static_cast<int>(bounds.x) - margin, static_cast<int>(bounds.y) - margin,
               static_cast<int>(bounds.width) + 2 * margin,
               static_cast<int>(bounds.height) + 2 * margin);
  roi &= frame;
  for (const cv::Rect& r : avoid) {
    if ((r & roi).area() > 0) return false;
  }

  const cv::Point origin = roi.tl();
  std::vector<cv::Point> outline_i = ToInt(outline, origin), floor_i = ToInt(floor, origin);
  cv::Mat hole = Fill(roi.size(), outline_i);
  cv::Mat floor_mask;
  cv::min(hole, Fill(roi.size(), floor_i), floor_mask);
  cv::Mat ring = cv::Mat::zeros(roi.size(), CV_8U);
  std::vector<std::vector<cv::Point>> polys{outline_i};
  cv::polylines(ring, polys, true, cv::Scalar(255), static_cast<int>(2 * rim), cv::LINE_AA, 3);
  // The wall casts a shadow onto the floor, away from the light.
  cv::Mat shadow_cover;
  double shadow_px = 0.6 * std::hypot(floor[0].x - outline[0].x, floor[0].y - outline[0].y) + 1;
  cv::Mat shift =
      (cv::Mat_<double>(2, 3) << 1, 0, look.light.x * shadow_px, 0, 1, look.light.y * shadow_px);
  cv::warpAffine(hole, shadow_cover, shift, roi.size());
  const bool water = rng.Chance(0.3);
  const float wall_light = static_cast<float>(rng.Uniform(0.45, 0.9));
  const cv::Vec3f earth(0.17f, 0.22f, 0.27f);
  const float earth_mix = static_cast<float>(rng.Uniform(0.2, 0.7));
  const cv::Vec3f floor_col = look.asphalt * 0.38f * (1 - earth_mix) + earth * (0.8f * earth_mix);
  const float murk = static_cast<float>(rng.Uniform(0.3, 0.8));
  const cv::Vec3f water_col = look.sky * 0.6f * (1 - murk) + cv::Vec3f(0.12f, 0.15f, 0.19f) * murk;
  const float rim_bright = static_cast<float>(rng.Uniform(0.95, 1.35));
  const double stone_px = std::max(1.2, cam.f * 0.02 / std::max(0.3, cam.AxisDistance(z)));
  cv::Mat gravel = FractalNoise(rng, roi.size(), stone_px * 2, 2, 0.6);
  cv::Mat breakup = SmoothNoise(rng, roi.size(), rim * 3 + 2);
  cv::Mat fine(roi.size(), CV_32F);
  rng.cv().fill(fine, cv::RNG::NORMAL, 0.0, 1.0);
  const cv::Point2d center = (bounds.tl() + bounds.br()) * 0.5;

  cv::Mat color(roi.size(), CV_32FC3), alpha(roi.size(), CV_32F);
  for (int yy = 0; yy < roi.height; ++yy) {
    auto* c = color.ptr<cv::Vec3f>(yy);
    float* a = alpha.ptr<float>(yy);
    const uchar* ho = hole.ptr<uchar>(yy);
    const uchar* fl = floor_mask.ptr<uchar>(yy);
    const uchar* ri = ring.ptr<uchar>(yy);
    const uchar* sc = shadow_cover.ptr<uchar>(yy);
    const float* g = gravel.ptr<float>(yy);
    const float* fn = fine.ptr<float>(yy);
    const float* bu = breakup.ptr<float>(yy);
    for (int xx = 0; xx < roi.width; ++xx) {
      cv::Point2d d(roi.x + xx - center.x, roi.y + yy - center.y);
      double dn = std::hypot(d.x, d.y) + 1e-6;
      // Edges facing the light are lit, those facing away are in shade.
      float facing = static_cast<float>(-(d.x * look.light.x + d.y * look.light.y) / dn);
      cv::Vec3f rim_col =
          look.asphalt * (rim_bright + 0.3f * facing + 0.15f * bu[xx]) * (1 + 0.12f * fn[xx]);
      cv::Vec3f wall = look.asphalt * wall_light * (1 - 0.25f * facing) * (1 + 0.12f * g[xx]);
      float stones = std::max(0.0f, g[xx] - 1.3f) * 0.07f + 0.025f * fn[xx];
      cv::Vec3f ground = floor_col * (1 + 0.22f * g[xx]) + cv::Vec3f::all(stones);
      if (water) {
        float ripple = 0.03f * g[xx];
        ground = water_col * (1 + ripple) * (1 - 0.3f * static_cast<float>(d.y / dn * 0.5 + 0.5));
      }
      float in_floor = fl[xx] / 255.0f;
      float lit = 1 - 0.5f * (1 - sc[xx] / 255.0f);
      cv::Vec3f inside = wall * (1 - in_floor) + ground * lit * in_floor;
      float in_hole = ho[xx] / 255.0f;
      c[xx] = rim_col * (1 - in_hole) + inside * in_hole;
      float rim_a = ri[xx] / 255.0f * std::clamp(0.55f + 0.5f * bu[xx], 0.0f, 0.85f);
      a[xx] = std::max(in_hole, rim_a);
    }
  }
  cv::GaussianBlur(alpha, alpha, cv::Size(3, 3), 0.6);
  cv::Rect r = BlendInto(img, roi, color, alpha, 0.05f);
  if (r.area() == 0) return false;
  *out = {0, r};
  return true;
}

}  // namespace detops::synth
