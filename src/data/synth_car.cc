// Car scenes: a painted body panel seen close up, with reflections of the
// environment, creases, panel gaps and sometimes a wheel arch, a window, a
// door handle or the background beyond the body's edge.

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "data/synth_internal.h"

namespace detops::synth {
namespace {

struct PaletteColor {
  cv::Vec3f bgr;
  double weight;
  double metallic_p;
};

// Rough shares of car colours on the road.
const PaletteColor kPalette[] = {
    {{0.90f, 0.91f, 0.91f}, 22, 0.2},   // white
    {{0.80f, 0.85f, 0.87f}, 4, 0.8},    // pearl white
    {{0.05f, 0.05f, 0.055f}, 18, 0.5},  // black
    {{0.42f, 0.42f, 0.41f}, 14, 0.9},   // grey
    {{0.24f, 0.24f, 0.25f}, 5, 0.9},    // dark grey
    {{0.70f, 0.70f, 0.68f}, 12, 1.0},   // silver
    {{0.55f, 0.28f, 0.10f}, 5, 0.6},    // blue
    {{0.28f, 0.11f, 0.04f}, 4, 0.7},    // dark blue
    {{0.07f, 0.07f, 0.62f}, 6, 0.4},    // red
    {{0.07f, 0.05f, 0.32f}, 3, 0.7},    // dark red
    {{0.12f, 0.24f, 0.09f}, 2, 0.7},    // dark green
    {{0.50f, 0.62f, 0.70f}, 2, 0.6},    // beige
    {{0.05f, 0.35f, 0.85f}, 1, 0.3},    // orange
    {{0.08f, 0.70f, 0.85f}, 1, 0.2},    // yellow
};

inline float Smoothstep(float e0, float e1, float x) {
  float t = std::clamp((x - e0) / (e1 - e0), 0.0f, 1.0f);
  return t * t * (3 - 2 * t);
}

inline float Dot(cv::Point2f a, cv::Point2f b) { return a.x * b.x + a.y * b.y; }

cv::Point2f Direction(double angle) {
  return {static_cast<float>(std::cos(angle)), static_cast<float>(std::sin(angle))};
}

// A soft band of light reflected from a window or a lamp.
struct Streak {
  cv::Point2f center, along, across;
  float width, length, intensity;
};

// A boundary of the frame's regions: the signed distance (normalized units)
// to a gently curved line; positive on one side.
struct Edge {
  cv::Point2f point, normal;
  float curvature = 0;
  float Distance(cv::Point2f p) const {
    cv::Point2f d = p - point;
    float t = d.x * normal.y - d.y * normal.x;  // along the line
    return Dot(d, normal) - curvature * t * t;
  }
};

Edge RandomEdge(Rng& rng, double angle, cv::Point2f point) {
  Edge e;
  e.point = point;
  e.normal = Direction(angle);
  e.curvature = static_cast<float>(rng.Uniform(-0.4, 0.4));
  return e;
}

cv::Vec3f Background(Rng& rng, const cv::Mat& noise, int kind, float y, int ix, int iy) {
  (void)rng;
  float n = noise.at<float>(iy, ix);
  switch (kind) {
    case 0: {  // garage: pale wall above, concrete floor below
      cv::Vec3f wall(0.62f, 0.66f, 0.68f), floor(0.36f, 0.38f, 0.40f);
      float t = Smoothstep(-0.05f, 0.05f, y + 0.1f * n);
      return (wall * (1 - t) + floor * t) * (1 + 0.12f * n);
    }
    case 1: {  // outdoors, out of focus: sky, foliage and buildings
      cv::Vec3f sky(0.92f, 0.84f, 0.74f), green(0.18f, 0.36f, 0.26f), grey(0.45f, 0.46f, 0.48f);
      float t = Smoothstep(-0.4f, 0.2f, y + 0.35f * n);
      cv::Vec3f ground = n > 0 ? green : grey;
      return sky * (1 - t) + ground * t * (1 + 0.2f * n);
    }
    default: {  // parking lot asphalt
      return cv::Vec3f(0.30f, 0.31f, 0.32f) * (1 + 0.15f * n);
    }
  }
}

}  // namespace

void RenderCar(uint64_t seed, int index, const RenderFlags& flags, cv::Mat& img,
               std::vector<Damage>& damages) {
  Rng rng(StreamSeed(seed, index, SceneKind::kCar, Stream::kBackground));
  const int w = img.cols, h = img.rows;
  const float scale = 2.0f / std::max(w, h);

  // Paint.
  std::vector<double> weights;
  for (const auto& c : kPalette) weights.push_back(c.weight);
  const PaletteColor& pc = kPalette[rng.Pick(weights)];
  Paint paint;
  float jitter = static_cast<float>(rng.Uniform(0.9, 1.1));
  paint.base = pc.bgr * jitter;
  for (int k = 0; k < 3; ++k) {
    paint.base[k] =
        std::clamp(paint.base[k] * static_cast<float>(rng.Uniform(0.95, 1.05)), 0.02f, 0.95f);
  }
  paint.metallic = rng.Chance(pc.metallic_p);
  paint.luminance = 0.114 * paint.base[0] + 0.587 * paint.base[1] + 0.299 * paint.base[2];

  // Diffuse shading from the panel's curvature.
  const float d0 = static_cast<float>(rng.Uniform(0.7, 0.95));
  const cv::Point2f grad = Direction(rng.Uniform(0, 2 * M_PI)) * rng.Uniform(0, 0.3);
  const cv::Point2f curv_dir = Direction(rng.Uniform(0, M_PI));
  const float curv = static_cast<float>(rng.Uniform(-0.35, 0.1));

  // Environment reflected in the clear coat: sky above a wavy horizon.
  const cv::Point2f hz_dir = Direction(rng.Uniform(-0.5, 0.5) + (rng.Chance(0.15) ? M_PI / 2 : 0));
  const float hz_pos = static_cast<float>(rng.Uniform(-0.7, 0.7));
  const float hz_curv = static_cast<float>(rng.Uniform(-0.5, 0.5));
  const float hz_width = static_cast<float>(rng.LogUniform(0.004, 0.08));
  const float hz_wiggle = static_cast<float>(rng.Uniform(0, 0.05));
  const float sky_b = static_cast<float>(rng.Uniform(0.75, 1.05));
  const cv::Vec3f sky(0.98f * sky_b, 0.92f * sky_b, 0.84f * sky_b);
  const float gnd = static_cast<float>(rng.Uniform(0.06, 0.3));
  const cv::Vec3f ground(gnd * 0.95f, gnd, gnd * static_cast<float>(rng.Uniform(0.95, 1.15)));
  const float refl =
      static_cast<float>(rng.Uniform(0.18, 0.42) * (paint.luminance < 0.15 ? 1.3 : 1));
  cv::Vec3f tint(1, 1, 1);
  if (paint.metallic) {
    float m = std::max({paint.base[0], paint.base[1], paint.base[2]});
    tint = cv::Vec3f(0.5f, 0.5f, 0.5f) + paint.base * (0.5f / m);
  }
  NoiseTile wiggle_tile(rng);

  std::vector<Streak> streaks(rng.Int(0, 3));
  for (Streak& s : streaks) {
    double a = rng.Chance(0.6) ? std::atan2(hz_dir.y, hz_dir.x) + rng.Normal(0, 0.2)
                               : rng.Uniform(0, M_PI);
    s.along = Direction(a);
    s.across = cv::Point2f(-s.along.y, s.along.x);
    s.center = {static_cast<float>(rng.Uniform(-1, 1)), static_cast<float>(rng.Uniform(-0.8, 0.8))};
    s.width = static_cast<float>(rng.LogUniform(0.01, 0.12));
    s.length = static_cast<float>(rng.Uniform(0.3, 1.6));
    s.intensity = static_cast<float>(rng.Uniform(0.1, 0.6));
  }

  // A body crease: shading and reflections jump across it.
  const bool has_crease = rng.Chance(0.45);
  Edge crease = RandomEdge(
      rng, rng.Uniform(-0.4, 0.4) + M_PI / 2,
      {static_cast<float>(rng.Uniform(-0.5, 0.5)), static_cast<float>(rng.Uniform(-0.5, 0.5))});
  const float crease_soft = static_cast<float>(rng.LogUniform(0.004, 0.03));
  const float crease_shade = static_cast<float>(rng.Uniform(-0.25, 0.25));
  const float crease_shift = static_cast<float>(rng.Uniform(-0.3, 0.3));

  // The body's edge with background beyond it.
  const bool has_edge = rng.Chance(0.35);
  const int bg_kind = rng.Int(0, 2);
  Edge body = RandomEdge(
      rng, rng.Uniform(-0.6, 0.6) + M_PI / 2 + (rng.Chance(0.3) ? M_PI / 2 : 0),
      {static_cast<float>(rng.Uniform(-0.6, 0.6)), static_cast<float>(rng.Uniform(-0.55, 0.55))});
  if (rng.Chance(0.5)) body.normal = -body.normal;
  cv::Mat bg_noise = FractalNoise(rng, img.size(), 90, 3, 0.5);

  // A window above a line (glass and its rubber seal).
  const bool has_window = !has_edge && rng.Chance(0.15);
  Edge window = RandomEdge(rng, -M_PI / 2 + rng.Uniform(-0.25, 0.25),
                           {0, static_cast<float>(rng.Uniform(-0.75, -0.35))});
  window.curvature *= 0.3f;

  // Wheel arch: a circle cut out of the panel, tyre and rim inside.
  const bool has_wheel = rng.Chance(0.18);
  const cv::Point2f wheel_c(static_cast<float>(rng.Uniform(-1, 1)),
                            static_cast<float>(rng.Uniform(0.4, 1.2) * h * scale * 0.5));
  const float wheel_r = static_cast<float>(rng.Uniform(0.35, 0.7));
  const int spokes = rng.Int(5, 10);

  cv::Mat flake(img.size(), CV_32F), peel = SmoothNoise(rng, img.size(), 6);
  rng.cv().fill(flake, cv::RNG::NORMAL, 0.0, paint.metallic ? 0.03 : 0.008);
  cv::Mat panel(img.size(), CV_8U);

  for (int iy = 0; iy < h; ++iy) {
    auto* row = img.ptr<cv::Vec3f>(iy);
    uchar* prow = panel.ptr<uchar>(iy);
    const float* fl = flake.ptr<float>(iy);
    const float* pe = peel.ptr<float>(iy);
    for (int ix = 0; ix < w; ++ix) {
      cv::Point2f p((ix + 0.5f - w * 0.5f) * scale, (iy + 0.5f - h * 0.5f) * scale);
      float diffuse = d0 + Dot(grad, p) + curv * Dot(curv_dir, p) * Dot(curv_dir, p);
      float shift = 0, crease_hl = 0;
      if (has_crease) {
        float s = crease.Distance(p);
        float step = Smoothstep(-crease_soft, crease_soft, s);
        diffuse *= 1 - crease_shade * step;
        shift = crease_shift * step;
        crease_hl = 0.25f * std::exp(-(s * s) / (crease_soft * crease_soft * 0.5f));
      }
      float along = p.x * hz_dir.x + p.y * hz_dir.y;
      float across = -p.x * hz_dir.y + p.y * hz_dir.x;
      float t = across - hz_pos - hz_curv * along * along - shift -
                hz_wiggle * (wiggle_tile.Sample(along * 3 + 10, 3.5) +
                             0.3f * wiggle_tile.Sample(along * 20 + 1, 7.5));
      float g = Smoothstep(-hz_width, hz_width, t);
      cv::Vec3f env = sky * (1 - g) * (1 - 0.25f * std::min(-t, 1.0f)) + ground * g;
      env *= 1 + 0.03f * pe[ix];
      float spec = crease_hl;
      for (const Streak& s : streaks) {
        cv::Point2f d = p - s.center;
        float u = Dot(d, s.along) / s.length, v = Dot(d, s.across) / s.width;
        spec += s.intensity * std::exp(-(u * u + v * v));
      }
      cv::Vec3f c = paint.base * (diffuse * (1 - refl) * (1 + fl[ix]));
      c += env.mul(tint) * refl + cv::Vec3f::all(spec);
      bool paintable = true;
      if (has_window && window.Distance(p) > 0) {
        float s = window.Distance(p);
        if (s < 0.03f) {
          c = cv::Vec3f::all(0.03f);  // rubber seal
        } else {
          c = cv::Vec3f(0.07f, 0.07f, 0.065f) + env * 0.25f + cv::Vec3f::all(spec * 0.6f);
        }
        paintable = false;
      }
      if (has_wheel) {
        float r = static_cast<float>(cv::norm(p - wheel_c));
        if (r < wheel_r) {
          float a = std::atan2(p.y - wheel_c.y, p.x - wheel_c.x);
          if (r > wheel_r * 0.93f) {
            c = cv::Vec3f::all(0.025f);  // wheel well
          } else if (r > wheel_r * 0.6f) {
            c = cv::Vec3f::all(0.05f + 0.02f * pe[ix]);  // tyre
          } else {
            // Alloy rim: narrow spokes over a dark brake disc, lit from above.
            float spoke = 0.5f + 0.5f * std::cos(spokes * a);
            float lit = 0.45f + 0.25f * (wheel_c.y - p.y) / wheel_r;
            c = r < wheel_r * 0.15f || spoke > 0.8f || r > wheel_r * 0.55f
                    ? cv::Vec3f::all(lit + 0.15f * spoke)
                    : cv::Vec3f::all(0.12f + 0.03f * pe[ix]);
          }
          paintable = false;
        } else if (r < wheel_r * 1.04f) {
          c *= 1.25f;  // the arch's lip catches light
        }
      }
      if (has_edge) {
        float s = body.Distance(p);
        float px = s / scale;  // signed distance in pixels
        if (px < 0) {
          c = Background(rng, bg_noise, bg_kind, p.y, ix, iy);
          if (px > -6) c *= 0.6f + 0.4f * (-px / 6);  // contact shadow
          paintable = false;
        } else if (px < 3) {
          c += cv::Vec3f::all(0.25f);  // the edge's highlight
          paintable = false;
        }
      }
      row[ix] = c;
      prow[ix] = paintable ? 255 : 0;
    }
  }

  // Panel gap: a dark groove with a lit lip.
  if (rng.Chance(0.4)) {
    cv::Point2f a(rng.Uniform(0, w), 0), b(rng.Uniform(0, w), h);
    if (rng.Chance(0.5))
      a = {0, static_cast<float>(rng.Uniform(0, h))}, b = {float(w), float(rng.Uniform(0, h))};
    cv::Point2f n(-(b - a).y, (b - a).x);
    n *= 1.0f / static_cast<float>(cv::norm(n));
    int th = rng.Int(2, 4);
    cv::line(img, a + n * (th * 0.5f + 1), b + n * (th * 0.5f + 1), cv::Scalar::all(0.85), 1,
             cv::LINE_8);
    cv::line(img, a, b, cv::Scalar::all(0.02), th, cv::LINE_8);
    cv::line(panel, a, b, cv::Scalar(0), th + 3, cv::LINE_8);
  }

  // Door handle: a recessed cup with the handle over it.
  if (rng.Chance(0.2)) {
    cv::Point c(rng.Int(w / 5, w * 4 / 5), rng.Int(h / 5, h * 4 / 5));
    cv::Size axes(rng.Int(w / 14, w / 7), 0);
    axes.height = std::max(4, axes.width / rng.Int(3, 5));
    cv::Mat cup = cv::Mat::zeros(img.size(), CV_32F);
    cv::ellipse(cup, c, axes, 0, 0, 360, cv::Scalar(1), -1, cv::LINE_8);
    cv::GaussianBlur(cup, cup, cv::Size(0, 0), 3);
    cv::Mat shade;
    cv::merge(std::vector<cv::Mat>(3, 1 - 0.55 * cup), shade);
    cv::multiply(img, shade, img);
    cv::Rect handle(c.x - axes.width * 9 / 10, c.y - axes.height / 2, axes.width * 9 / 5,
                    std::max(3, axes.height * 3 / 5));
    cv::rectangle(img, handle, cv::Scalar(paint.base[0], paint.base[1], paint.base[2]) * 0.9, -1);
    cv::line(img, handle.tl(), cv::Point(handle.br().x, handle.y), cv::Scalar::all(0.9), 1);
    cv::ellipse(panel, c, axes + cv::Size(8, 8), 0, 0, 360, cv::Scalar(0), -1);
  }

  if (flags.draw_damage) {
    Rng drng(StreamSeed(seed, index, SceneKind::kCar, Stream::kDamage));
    int n = DamageCount(drng, 6);
    for (int i = 0; i < n; ++i) {
      Damage d;
      bool ok = drng.Chance(0.62) ? DrawScratchGroup(drng, paint, panel, img, &d)
                                  : DrawDent(drng, panel, img, &d);
      if (ok) damages.push_back(d);
    }
  }
  Rng orng(StreamSeed(seed, index, SceneKind::kCar, Stream::kOverlay));
  DrawCarOverlays(orng, paint, panel, img);
}

}  // namespace detops::synth
