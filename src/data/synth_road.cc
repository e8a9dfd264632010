// Road scenes: asphalt in perspective (a dash-cam view down the road or a
// handheld view down at the surface), markings, shoulders, sky and far
// scenery, repair patches, wet patches, cracks, tar seams, manholes, shadows,
// and potholes.

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "data/synth_internal.h"

namespace detops::synth {
namespace {

inline float Smoothstep(float e0, float e1, float x) {
  float t = std::clamp((x - e0) / (e1 - e0), 0.0f, 1.0f);
  return t * t * (3 - 2 * t);
}

struct Patch {
  double x0, x1, z0, z1;
  float tone;
};

struct Layout {
  double left, right;  // road edges (road coordinates, metres)
  double center_line;  // x of the dashed centre line; NaN for none
  bool edge_lines;
  double dash, period;  // centre line dashes
  cv::Vec3f center_paint;
  int side_kind[2];  // per side: 0 gravel+grass, 1 curb+sidewalk, 2 grass
  double curve;      // road bends: x shifts by curve * z^2
  bool wheel_paths;
  double lane_center;
};

// Line-like features on the ground drawn as projected polylines with a
// thickness in metres; accumulated into an 8-bit coverage layer.
// Segments whose ends leave [xmin, xmax] (road coordinates) are skipped.
// The width tapers at both ends of the line.
void DrawGroundLine(const GroundCamera& cam, const std::vector<cv::Point2d>& ground, double width,
                    const Layout& lay, cv::Mat& layer) {
  for (size_t i = 0; i + 1 < ground.size(); ++i) {
    auto on_road = [&](cv::Point2d g) {
      double xr = g.x - lay.curve * g.y * g.y;
      return xr >= lay.left && xr <= lay.right;
    };
    if (!on_road(ground[i]) || !on_road(ground[i + 1])) continue;
    double end = std::min(i + 1, ground.size() - 1 - i) / 4.0;
    double taper = std::min(1.0, 0.3 + end);
    cv::Point2d a, b;
    if (!cam.Project(ground[i].x, ground[i].y, 0, &a) ||
        !cam.Project(ground[i + 1].x, ground[i + 1].y, 0, &b)) {
      continue;
    }
    double px = taper * cam.f * width / cam.AxisDistance(0.5 * (ground[i].y + ground[i + 1].y));
    if (px < 0.3) continue;
    int thick = std::max(1, static_cast<int>(std::lround(px)));
    double v = 255 * std::min(1.0, px);
    cv::line(layer, a, b, cv::Scalar(v), thick, cv::LINE_AA);
  }
}

// A random walk on the ground from (x, z), branching now and then.
void Crack(Rng& rng, double x, double z, double heading, int steps, int depth,
           std::vector<std::vector<cv::Point2d>>& out) {
  std::vector<cv::Point2d> pts{{x, z}};
  double step = rng.Uniform(0.03, 0.12);
  for (int i = 0; i < steps; ++i) {
    heading += rng.Normal(0, 0.35);
    x += std::cos(heading) * step;
    z += std::sin(heading) * step;
    pts.emplace_back(x, z);
    if (depth < 2 && rng.Chance(0.05)) {
      Crack(rng, x, z, heading + (rng.Chance(0.5) ? 1 : -1) * rng.Uniform(0.5, 1.3), steps / 2,
            depth + 1, out);
    }
  }
  out.push_back(std::move(pts));
}

}  // namespace

void RenderRoad(uint64_t seed, int index, const RenderFlags& flags, cv::Mat& img,
                std::vector<Damage>& damages) {
  Rng rng(StreamSeed(seed, index, SceneKind::kRoad, Stream::kBackground));
  const int w = img.cols, h = img.rows;

  GroundCamera cam;
  const bool handheld = rng.Chance(0.45);
  cam.f = w * rng.Uniform(0.75, 1.2);
  cam.cx = w * rng.Uniform(0.45, 0.55);
  cam.cy = h * rng.Uniform(0.45, 0.55);
  cam.height = handheld ? rng.Uniform(1.3, 1.8) : rng.Uniform(1.1, 1.7);
  cam.pitch = handheld ? rng.Uniform(0.45, 1.25) : rng.Uniform(0.06, 0.3);
  cam.roll = rng.Normal(0, 0.03);

  Layout lay;
  const double lane = rng.Uniform(2.8, 3.7);
  lay.lane_center = 0;
  lay.left = -rng.Uniform(0.4, 0.7) * lane - (rng.Chance(0.5) ? lane : 0);
  lay.right = rng.Uniform(0.3, 0.6) * lane + (rng.Chance(0.4) ? lane : 0);
  lay.center_line = lay.right - lay.left > 1.6 * lane && rng.Chance(0.7)
                        ? (lay.left < -lane ? lay.left + lane : lay.right - lane)
                        : std::nan("");
  lay.edge_lines = rng.Chance(0.5);
  lay.dash = rng.Uniform(2, 4);
  lay.period = lay.dash + rng.Uniform(4, 9);
  lay.center_paint =
      rng.Chance(0.3) ? cv::Vec3f(0.12f, 0.62f, 0.8f) : cv::Vec3f(0.82f, 0.83f, 0.82f);
  lay.side_kind[0] = rng.Int(0, 2);
  lay.side_kind[1] = rng.Int(0, 2);
  lay.curve = rng.Chance(0.4) ? rng.Normal(0, 0.004) : 0;
  lay.wheel_paths = rng.Chance(0.5);

  // Surface look.
  const float grey = static_cast<float>(rng.Uniform(0.2, 0.5));
  const cv::Vec3f asphalt(grey * static_cast<float>(rng.Uniform(0.95, 1.08)), grey,
                          grey * static_cast<float>(rng.Uniform(0.95, 1.07)));
  const float rough = static_cast<float>(rng.Uniform(0.6, 1.4));
  const float dry = static_cast<float>(rng.Uniform(0, 1));  // green to straw-coloured grass
  const cv::Vec3f grass =
      cv::Vec3f(0.16f, 0.36f, 0.27f) * (1 - dry) + cv::Vec3f(0.22f, 0.40f, 0.42f) * dry;
  std::vector<NoiseTile> tiles;
  for (int i = 0; i < 6; ++i) tiles.emplace_back(rng);
  const double kWave[] = {6.0, 1.5, 0.4, 0.1, 0.035, 0.012};
  const float kAmp[] = {0.10f, 0.06f, 0.05f, 0.05f, 0.06f, 0.06f};
  const bool wet = rng.Chance(0.25);
  const float wet_level = static_cast<float>(rng.Uniform(0.3, 1.2));
  const double fog = rng.Uniform(60, 300);
  std::vector<Patch> patches(rng.Chance(0.35) ? rng.Int(1, 3) : 0);
  for (Patch& p : patches) {
    double cx = rng.Uniform(lay.left, lay.right), cz = rng.Uniform(2, 25);
    double hw = rng.Uniform(0.3, 1.5), hz = rng.Uniform(0.3, 2.5);
    p = {cx - hw, cx + hw, cz - hz, cz + hz, static_cast<float>(rng.Uniform(0.65, 1.2))};
  }

  // Sky and far scenery.
  const bool overcast = rng.Chance(0.35);
  const float sky_b = static_cast<float>(rng.Uniform(0.8, 1.0));
  const cv::Vec3f horizon_sky =
      overcast ? cv::Vec3f::all(0.85f * sky_b) : cv::Vec3f(0.93f, 0.88f, 0.82f) * sky_b;
  const cv::Vec3f zenith =
      overcast ? cv::Vec3f::all(0.72f * sky_b) : cv::Vec3f(0.85f, 0.6f, 0.38f) * sky_b;
  const cv::Vec3f scenery =
      rng.Chance(0.6) ? cv::Vec3f(0.16f, 0.26f, 0.2f) : cv::Vec3f(0.4f, 0.41f, 0.43f);
  const double scenery_h = rng.Uniform(3, 40) * w / 640.0;
  cv::Mat clouds = FractalNoise(rng, img.size(), 160, 3, 0.5);

  // Per pixel ground coordinates (z < 0: sky).
  // (GroundCamera::Unproject, inlined with the trigonometry hoisted.)
  cv::Mat gx(h, w, CV_32F), gz(h + 1, w, CV_32F);
  const double cr = std::cos(cam.roll), sr = std::sin(cam.roll);
  const double cp = std::cos(cam.pitch), sp = std::sin(cam.pitch);
  for (int y = 0; y <= h; ++y) {
    float* px = gx.ptr<float>(std::min(y, h - 1));
    float* pz = gz.ptr<float>(y);
    const double dv = y + 0.5 - cam.cy;
    for (int x = 0; x < w; ++x) {
      const double du = x + 0.5 - cam.cx;
      const double up = du * cr + dv * sr, vp = -du * sr + dv * cr;
      const double yw = vp * cp + cam.f * sp, zw = -vp * sp + cam.f * cp;
      const double t = yw > 1e-6 ? cam.height / yw : -1;
      const bool ground = t > 0 && zw > 0;
      if (y < h) px[x] = ground ? static_cast<float>(t * up) : 0;
      pz[x] = ground ? static_cast<float>(t * zw) : -1;
    }
  }
  std::vector<double> horizon(w);
  for (int x = 0; x < w; ++x) horizon[x] = cam.HorizonRow(x + 0.5);

  for (int y = 0; y < h; ++y) {
    auto* row = img.ptr<cv::Vec3f>(y);
    const float* px = gx.ptr<float>(y);
    const float* pz = gz.ptr<float>(y);
    const float* pz1 = gz.ptr<float>(y + 1);
    const float* cl = clouds.ptr<float>(y);
    for (int x = 0; x < w; ++x) {
      const float Z = pz[x];
      const double hr = horizon[x];
      if (Z < 0 || Z > 2000) {
        // Sky, with a band of far trees or buildings on the horizon.
        float up = static_cast<float>(std::clamp((hr - y) / (0.7 * h), 0.0, 1.0));
        cv::Vec3f c = horizon_sky * (1 - up) + zenith * up;
        float cloud = tiles[4].Sample(x * 0.006 + 3, y * 0.02 + 1) +
                      0.5f * tiles[5].Sample(x * 0.02 + 1, y * 0.06 + 2);
        c += cv::Vec3f::all(overcast ? 0.03f * cloud : 0.12f * Smoothstep(0.2f, 1.2f, cloud));
        double sil = scenery_h *
                     (0.55 + 0.3 * tiles[0].Sample(x * 0.008, 7.5) +
                      0.12 * tiles[1].Sample(x * 0.05, 2.5) + 0.05 * tiles[2].Sample(x * 0.3, 4.5));
        if (hr - y < sil) {
          float leaf = tiles[3].Sample(x * 0.25, y * 0.25) * 0.12f + 0.1f * cl[x];
          float fade = static_cast<float>(std::clamp((hr - y) / std::max(sil, 1.0), 0.0, 1.0));
          c = scenery * (1 + leaf) * (0.75f - 0.15f * fade) + horizon_sky * (0.25f + 0.15f * fade);
        }
        row[x] = c;
        continue;
      }
      const float X = px[x];
      const double xr = X - lay.curve * Z * Z;
      // Pixel footprint on the ground: textures finer than it fade out.
      float fp =
          std::max(std::abs(pz1[x] > 0 ? pz1[x] - Z : Z), std::abs(Z) / static_cast<float>(cam.f));
      fp = std::max(fp, 1e-4f);
      float tex = 0;
      for (int o = 0; o < 6; ++o) {
        float lod = Smoothstep(1.5f, 3.5f, static_cast<float>(kWave[o]) / fp);
        if (lod <= 0) continue;
        double s = 1.0 / kWave[o];
        tex += lod * kAmp[o] * tiles[o].Sample(xr * s + o * 7.3, Z * s + o * 3.1);
      }
      float fine_lod = Smoothstep(1.5f, 3.5f, 0.017f / fp);
      float stone = 0;
      if (fine_lod > 0) {
        // Two lattices at different angles and scales: irregular grains, no grid.
        double sx = xr * 55, sz = Z * 55;
        float n = 0.7f * (tiles[5].Sample(sx + 11, sz + 5) +
                          tiles[4].Sample(0.8 * sx - 0.6 * sz + 3, 0.6 * sx + 0.8 * sz + 9) * 0.8f);
        stone = fine_lod * (std::max(0.0f, n - 1.3f) * 0.22f - std::max(0.0f, -n - 1.6f) * 0.18f);
      }
      tex *= rough;
      cv::Vec3f c;
      bool on_road = xr >= lay.left && xr <= lay.right;
      if (on_road) {
        float tone = 1;
        for (const Patch& p : patches) {
          if (xr > p.x0 && xr < p.x1 && Z > p.z0 && Z < p.z1) tone = p.tone;
        }
        if (lay.wheel_paths) {
          for (double off : {-0.85, 0.85}) {
            double d = (xr - lay.lane_center - off) / 0.35;
            tone *= 1 - 0.08f * static_cast<float>(std::exp(-d * d));
          }
        }
        c = asphalt * tone * (1 + tex) + cv::Vec3f::all(stone);
        float paint = 0;
        cv::Vec3f paint_col(0.82f, 0.83f, 0.82f);
        if (!std::isnan(lay.center_line) && std::abs(xr - lay.center_line) < 0.06 &&
            std::fmod(Z + 100 * lay.period, lay.period) < lay.dash) {
          paint = 1, paint_col = lay.center_paint;
        }
        if (lay.edge_lines &&
            (std::abs(xr - lay.left - 0.25) < 0.07 || std::abs(xr - lay.right + 0.25) < 0.07)) {
          paint = 1;
        }
        if (paint > 0) {
          float wear = Smoothstep(-1.2f, 0.2f, tiles[2].Sample(xr * 8, Z * 8));
          c += (paint_col * (1 + 0.5f * tex) - c) * (0.9f * wear);
        }
        if (wet) {
          float n = tiles[3].Sample(xr * 0.4 + 3, Z * 0.4 + 9) + wet_level - 1;
          float wt = Smoothstep(0.0f, 0.8f, n);
          float fres = static_cast<float>(1.0 / (1.0 + 4.0 * cam.height / Z));
          c = c * (1 - 0.3f * wt) + horizon_sky * (wt * (0.04f + 0.25f * fres));
        }
      } else {
        const int side = xr < lay.left ? 0 : 1;
        double d = side == 0 ? lay.left - xr : xr - lay.right;
        switch (lay.side_kind[side]) {
          case 0:  // gravel shoulder, then grass
            c = d < 0.8 ? cv::Vec3f(0.34f, 0.4f, 0.45f) * (1 + 1.6f * tex) + cv::Vec3f::all(stone)
                        : grass * (1 + 1.5f * tex);
            break;
          case 1: {  // curb and sidewalk slabs
            float joint = std::fmod(static_cast<float>(Z) + 100.f, 1.5f) < 0.02f ? 0.7f : 1.0f;
            c = d < 0.02 ? cv::Vec3f::all(0.12f)
                         : cv::Vec3f::all(d < 0.18 ? 0.62f : 0.52f * joint) * (1 + 0.8f * tex);
            break;
          }
          default:  // grass up to the edge
            c = grass * (1 + 1.5f * tex) + cv::Vec3f::all(d < 0.15 ? 0.05f : 0.0f);
        }
      }
      float haze = 1 - std::exp(-Z / static_cast<float>(fog));
      row[x] = c * (1 - haze) + horizon_sky * haze;
    }
  }

  // Line features: cracks (fine, branching), tar seams, patch edges.
  cv::Mat cracks = cv::Mat::zeros(img.size(), CV_8U), seams = cv::Mat::zeros(img.size(), CV_8U);
  std::vector<std::vector<cv::Point2d>> lines;
  int systems = rng.Int(0, 5) + (rng.Chance(0.2) ? 6 : 0);
  double unused = 0, zmin = 1;
  cam.Unproject(w * 0.5, h - 1, &unused, &zmin);
  const double zmax = zmin + (handheld ? 4 : 30);
  for (int i = 0; i < systems; ++i) {
    Crack(rng, rng.Uniform(lay.left, lay.right), rng.Uniform(zmin, zmax), rng.Uniform(0, 2 * M_PI),
          rng.Int(10, 80), 0, lines);
  }
  for (const auto& l : lines) DrawGroundLine(cam, l, rng.Uniform(0.002, 0.008), lay, cracks);
  lines.clear();
  if (rng.Chance(0.3)) {
    int n = rng.Int(1, 3);
    for (int i = 0; i < n; ++i) {
      double x = rng.Uniform(lay.left, lay.right), z = rng.Uniform(zmin, zmax);
      double heading = rng.Chance(0.5) ? M_PI / 2 : 0;
      std::vector<cv::Point2d> pts;
      for (int k = 0; k < 120; ++k) {
        heading += rng.Normal(0, 0.08);
        x += std::cos(heading) * 0.1, z += std::sin(heading) * 0.1;
        pts.emplace_back(x, z);
      }
      lines.push_back(std::move(pts));
    }
  }
  for (const Patch& p : patches) {
    lines.push_back({{p.x0, p.z0}, {p.x1, p.z0}, {p.x1, p.z1}, {p.x0, p.z1}, {p.x0, p.z0}});
  }
  for (const auto& l : lines) DrawGroundLine(cam, l, rng.Uniform(0.012, 0.035), lay, seams);

  // Manhole cover: iron disc with rings, in a concrete collar.
  std::vector<cv::Rect> avoid;
  cv::Mat cover = cv::Mat::zeros(img.size(), CV_8U), collar = cv::Mat::zeros(img.size(), CV_8U);
  if (rng.Chance(0.15)) {
    double mx = rng.Uniform(lay.left + 0.5, lay.right - 0.5), mz = rng.Uniform(zmin, zmax);
    double radius = rng.Uniform(0.3, 0.4);
    for (double r : {radius * 1.15, radius}) {
      std::vector<cv::Point> poly;
      for (int i = 0; i < 48; ++i) {
        cv::Point2d p;
        double t = 2 * M_PI * i / 48;
        if (cam.Project(mx + r * std::cos(t), mz + r * std::sin(t), 0, &p)) {
          poly.emplace_back(static_cast<int>(p.x), static_cast<int>(p.y));
        }
      }
      if (poly.size() < 48) break;
      cv::fillPoly(r == radius ? cover : collar, std::vector<std::vector<cv::Point>>{poly},
                   cv::Scalar(255), cv::LINE_AA);
      if (r == radius) avoid.push_back(cv::boundingRect(poly));
    }
    std::vector<std::vector<cv::Point2d>> rings;
    for (int k = 1; k < 5; ++k) {
      std::vector<cv::Point2d> ring;
      for (int i = 0; i <= 48; ++i) {
        double t = 2 * M_PI * i / 48, r = radius * k / 5.0;
        ring.emplace_back(mx + r * std::cos(t), mz + r * std::sin(t));
      }
      DrawGroundLine(cam, ring, 0.012, lay, seams);
    }
  }
  const float iron = static_cast<float>(rng.Uniform(0.16, 0.3));
  const float crack_dark = static_cast<float>(rng.Uniform(0.35, 0.65));
  for (int y = 0; y < h; ++y) {
    auto* row = img.ptr<cv::Vec3f>(y);
    const uchar* cr = cracks.ptr<uchar>(y);
    const uchar* se = seams.ptr<uchar>(y);
    const uchar* co = cover.ptr<uchar>(y);
    const uchar* cl = collar.ptr<uchar>(y);
    for (int x = 0; x < w; ++x) {
      if (cl[x]) row[x] += (row[x] * 1.25f - row[x]) * (cl[x] / 255.0f);
      if (co[x])
        row[x] += (cv::Vec3f::all(iron) * (1 + row[x][1] - grey) - row[x]) * (co[x] / 255.0f);
      if (se[x]) row[x] += (cv::Vec3f::all(0.07f) - row[x]) * (0.7f * se[x] / 255.0f);
      if (cr[x]) row[x] *= 1 - crack_dark * cr[x] / 255.0f;
    }
  }

  // Potholes.
  const double sun = rng.Uniform(0, 2 * M_PI);
  RoadLook look{asphalt, horizon_sky, {std::cos(sun), std::sin(sun)}};
  if (flags.draw_damage) {
    Rng drng(StreamSeed(seed, index, SceneKind::kRoad, Stream::kDamage));
    int n = DamageCount(drng, 6);
    const double top = std::max(0.0, cam.HorizonRow(w * 0.5) + 0.04 * h);
    for (int i = 0; i < n; ++i) {
      for (int tries = 0; tries < 25; ++tries) {
        double X, Z;
        if (!cam.Unproject(drng.Uniform(0, w), drng.Uniform(top, h), &X, &Z)) continue;
        double xr = X - lay.curve * Z * Z;
        double radius = drng.LogUniform(0.1, 0.9);
        if (xr < lay.left || xr > lay.right) continue;
        Damage d;
        if (DrawPothole(drng, cam, look, X, Z, radius, avoid, img, &d)) {
          damages.push_back(d);
          avoid.push_back(d.rect);
          break;
        }
      }
    }
  }

  // Shadows of trees and poles fall across everything on the ground.
  Rng orng(StreamSeed(seed, index, SceneKind::kRoad, Stream::kOverlay));
  const bool trees = orng.Chance(0.35), pole = orng.Chance(0.2);
  NoiseTile shade_tile(orng);
  const double pole_x = orng.Uniform(-3, 3), pole_z = orng.Uniform(3, 15);
  const double pole_a = orng.Uniform(0, M_PI), pole_w = orng.Uniform(0.15, 0.35);
  const float depth = static_cast<float>(orng.Uniform(0.35, 0.6));
  const float level = static_cast<float>(orng.Uniform(-0.3, 0.5));
  const double tree_side = orng.Chance(0.5) ? 1 : -1, tree_edge = orng.Uniform(-3, 1.5);
  if (!trees && !pole) return;
  const double ca = std::cos(pole_a), sa = std::sin(pole_a);
  for (int y = 0; y < h; ++y) {
    auto* row = img.ptr<cv::Vec3f>(y);
    const float* px = gx.ptr<float>(y);
    const float* pz = gz.ptr<float>(y);
    for (int x = 0; x < w; ++x) {
      if (pz[x] < 0 || pz[x] > 2000) continue;
      float s = 0;
      if (trees) {
        // Dappled canopy shadow reaching in from one side of the road.
        float n = shade_tile.Sample(px[x] * 0.35, pz[x] * 0.35) +
                  0.5f * shade_tile.Sample(px[x] * 1.4 + 9, pz[x] * 1.4 + 4) +
                  0.3f * shade_tile.Sample(px[x] * 5 + 3, pz[x] * 5 + 7);
        float reach = static_cast<float>(tree_side * px[x] - tree_edge);
        s = Smoothstep(level - 0.25f, level + 0.25f, n + 0.6f * std::clamp(reach, -3.0f, 1.0f));
      }
      if (pole) {
        double d = std::abs(-(px[x] - pole_x) * sa + (pz[x] - pole_z) * ca);
        s = std::max(s, 1 - Smoothstep(static_cast<float>(pole_w * 0.4),
                                       static_cast<float>(pole_w * 0.6), static_cast<float>(d)));
      }
      if (s > 0)
        row[x] = row[x].mul(cv::Vec3f(1 - depth * s * 0.85f, 1 - depth * s, 1 - depth * s));
    }
  }
}

}  // namespace detops::synth
