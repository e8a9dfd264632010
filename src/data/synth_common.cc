// Shared pieces of the scene generator: names, random streams, noise, label
// extraction, and RenderScene itself.

#include <algorithm>
#include <cassert>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <string>

#include "data/synth.h"
#include "data/synth_internal.h"

namespace detops {

Result<SceneKind> ParseSceneKind(std::string_view s) {
  if (s == "car") return SceneKind::kCar;
  if (s == "road") return SceneKind::kRoad;
  return Status::InvalidInput("scene kind '" + std::string(s) + "': expected car or road");
}

Result<Lighting> ParseLighting(std::string_view s) {
  if (s == "normal") return Lighting::kNormal;
  if (s == "dark") return Lighting::kDark;
  if (s == "overexposed") return Lighting::kOverexposed;
  if (s == "low-contrast") return Lighting::kLowContrast;
  if (s == "dusk") return Lighting::kDusk;
  return Status::InvalidInput("lighting '" + std::string(s) +
                              "': expected normal, dusk, dark, overexposed or low-contrast");
}

const char* SceneKindName(SceneKind kind) { return kind == SceneKind::kCar ? "car" : "road"; }

const char* LightingName(Lighting lighting) {
  switch (lighting) {
    case Lighting::kNormal:
      return "normal";
    case Lighting::kDark:
      return "dark";
    case Lighting::kOverexposed:
      return "overexposed";
    case Lighting::kLowContrast:
      return "low-contrast";
    case Lighting::kDusk:
      return "dusk";
  }
  return "normal";
}

std::vector<std::string> SceneClasses(SceneKind kind) {
  if (kind == SceneKind::kCar) return {"scratch", "dent"};
  return {"pothole"};
}

SynthScene RenderScene(SceneKind kind, uint64_t seed, int index, Lighting lighting, int width,
                       int height) {
  return synth::RenderSceneWithFlags(kind, seed, index, lighting, width, height, {});
}

namespace synth {

uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t StreamSeed(uint64_t seed, int index, SceneKind kind, Stream stream) {
  uint64_t h = Mix64(seed);
  h = Mix64(h ^ static_cast<uint64_t>(index));
  h = Mix64(h ^ (kind == SceneKind::kCar ? 0x636172ULL : 0x726f6164ULL));
  return Mix64(h ^ static_cast<uint64_t>(stream));
}

double Rng::LogUniform(double a, double b) { return std::exp(Uniform(std::log(a), std::log(b))); }

double Rng::Normal(double mean, double sd) {
  // Box-Muller; one value per call keeps the stream simple to reason about.
  double u1 = std::max(Uniform(), 1e-300);
  double u2 = Uniform();
  return mean + sd * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

int Rng::Pick(const std::vector<double>& weights) {
  double total = 0;
  for (double w : weights) total += w;
  double r = Uniform() * total;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (r < weights[i]) return static_cast<int>(i);
    r -= weights[i];
  }
  return static_cast<int>(weights.size()) - 1;
}

cv::Mat SmoothNoise(Rng& rng, cv::Size size, double cell) {
  cell = std::max(cell, 1.0);
  int gw = std::max(2, static_cast<int>(std::ceil(size.width / cell)) + 1);
  int gh = std::max(2, static_cast<int>(std::ceil(size.height / cell)) + 1);
  cv::Mat grid(gh, gw, CV_32F);
  rng.cv().fill(grid, cv::RNG::NORMAL, 0.0, 1.0);
  if (gw >= size.width && gh >= size.height) return grid(cv::Rect(0, 0, size.width, size.height));
  cv::Mat out;
  cv::resize(grid, out, size, 0, 0, cv::INTER_CUBIC);
  // Interpolation lowers the variance; bring it back to about one.
  return out * 1.6;
}

cv::Mat FractalNoise(Rng& rng, cv::Size size, double cell, int octaves, double gain) {
  cv::Mat sum = cv::Mat::zeros(size, CV_32F);
  double amp = 1, total = 0;
  for (int o = 0; o < octaves; ++o) {
    cv::scaleAdd(SmoothNoise(rng, size, cell), amp, sum, sum);
    total += amp * amp;
    amp *= gain;
    cell *= 0.5;
  }
  return sum * (1.0 / std::sqrt(total));
}

NoiseTile::NoiseTile(Rng& rng) : v_(kSize * kSize) {
  for (float& v : v_) v = static_cast<float>(rng.Normal() * 1.7);
}

float NoiseTile::Sample(double x, double y) const {
  double fx = std::floor(x), fy = std::floor(y);
  float tx = static_cast<float>(x - fx), ty = static_cast<float>(y - fy);
  int x0 = static_cast<int>(static_cast<int64_t>(fx) & (kSize - 1));
  int y0 = static_cast<int>(static_cast<int64_t>(fy) & (kSize - 1));
  int x1 = (x0 + 1) & (kSize - 1), y1 = (y0 + 1) & (kSize - 1);
  tx = tx * tx * (3 - 2 * tx);
  ty = ty * ty * (3 - 2 * ty);
  float a = v_[y0 * kSize + x0] + (v_[y0 * kSize + x1] - v_[y0 * kSize + x0]) * tx;
  float b = v_[y1 * kSize + x0] + (v_[y1 * kSize + x1] - v_[y1 * kSize + x0]) * tx;
  return a + (b - a) * ty;
}

cv::Rect NonZeroBounds(const cv::Mat& mask, cv::Point offset) {
  cv::Mat nz;
  if (mask.depth() == CV_8U) {
    nz = mask;
  } else {
    nz = mask > 0;
  }
  cv::Rect r = cv::boundingRect(nz);
  if (r.area() == 0) return {};
  return r + offset;
}

cv::Rect BlendInto(cv::Mat& img, cv::Rect roi, const cv::Mat& color, cv::Mat& alpha, float cutoff) {
  assert(color.size() == roi.size() && alpha.size() == roi.size());
  assert((roi & cv::Rect(0, 0, img.cols, img.rows)) == roi);
  cv::threshold(alpha, alpha, cutoff, 0, cv::THRESH_TOZERO);
  cv::min(alpha, 1.0, alpha);
  for (int y = 0; y < roi.height; ++y) {
    auto* dst = img.ptr<cv::Vec3f>(roi.y + y) + roi.x;
    const auto* src = color.ptr<cv::Vec3f>(y);
    const float* a = alpha.ptr<float>(y);
    for (int x = 0; x < roi.width; ++x) {
      if (a[x] > 0) dst[x] += (src[x] - dst[x]) * a[x];
    }
  }
  return NonZeroBounds(alpha, roi.tl());
}

int DamageCount(Rng& rng, int max_count) {
  if (rng.Chance(0.12)) return 0;
  // Roughly geometric: 1 is the most common, max_count is rare.
  int n = 1;
  while (n < max_count && rng.Chance(0.55)) ++n;
  return n;
}

cv::Rect AnnotatorBox(Rng& rng, cv::Rect tight, int width, int height) {
  // People drag a rectangle around what they see, with a margin of a few
  // pixels, and nobody draws a box 2 px high around a scratch: public
  // damage sets have no box thinner than ~2% of the short side. The margin
  // is drawn per side, so the label is not centred exactly either.
  const double unit = std::min(width, height) / 240.0;  // 2 px at 640x480
  const int min_side = static_cast<int>(std::lround(0.02 * std::min(width, height)));
  auto margin = [&] { return static_cast<int>(std::lround(unit * rng.Uniform(0.5, 3.0))); };
  auto widen = [min_side](int& lo, int& hi) {  // to min_side, about the centre
    int grow = std::max(0, min_side - (hi - lo));
    lo -= grow / 2;
    hi += grow - grow / 2;
  };
  int x1 = tight.x - margin(), y1 = tight.y - margin();
  int x2 = tight.x + tight.width + margin(), y2 = tight.y + tight.height + margin();
  widen(x1, x2);
  widen(y1, y2);
  return {x1, y1, x2 - x1, y2 - y1};
}

SynthScene RenderSceneWithFlags(SceneKind kind, uint64_t seed, int index, Lighting lighting,
                                int width, int height, const RenderFlags& flags) {
  assert(width >= 32 && height >= 32 && index >= 0);
  cv::Mat img(height, width, CV_32FC3, cv::Scalar::all(0));
  std::vector<Damage> damages;
  if (kind == SceneKind::kCar) {
    RenderCar(seed, index, flags, img, damages);
  } else {
    RenderRoad(seed, index, flags, img, damages);
  }
  Rng camera(StreamSeed(seed, index, kind, Stream::kCamera));
  SynthScene scene;
  scene.image = FinishPhoto(img, lighting, camera, flags.camera_effects);
  const cv::Rect frame(0, 0, width, height);
  Rng annotator(StreamSeed(seed, index, kind, Stream::kAnnotator));
  for (const Damage& d : damages) {
    cv::Rect r = d.rect & frame;
    if (r.width < 2 || r.height < 2) continue;
    r = AnnotatorBox(annotator, r, width, height) & frame;
    Box b;
    b.class_id = d.class_id;
    b.x1 = static_cast<double>(r.x) / width;
    b.y1 = static_cast<double>(r.y) / height;
    b.x2 = static_cast<double>(r.x + r.width) / width;
    b.y2 = static_cast<double>(r.y + r.height) / height;
    scene.boxes.push_back(b);
  }
  return scene;
}

}  // namespace synth
}  // namespace detops
