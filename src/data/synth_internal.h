#pragma once
// Internals of the synthetic scene generator (synth.h), shared by the
// synth_*.cc files and their test. Not part of the data module's API.
//
// A scene is rendered in stages, each with its own random stream derived from
// (seed, index, kind, stage) so that a stage can be skipped without changing
// the others: the background (kBackground), the damage (kDamage), overlays
// drawn on top such as dust or shadows (kOverlay), and the camera (kCamera).
// Colours are BGR floats in [0,1] (CV_32FC3) until the camera stage.

#include <cstdint>
#include <opencv2/core.hpp>
#include <random>
#include <vector>

#include "data/synth.h"

namespace detops::synth {

enum class Stream : uint64_t {
  kBackground = 1,
  kDamage = 2,
  kOverlay = 3,
  kCamera = 4,
  kAnnotator = 5
};

// splitmix64 finalizer: a good 64-bit mixer.
uint64_t Mix64(uint64_t x);
// Seed of one stream of one scene.
uint64_t StreamSeed(uint64_t seed, int index, SceneKind kind, Stream stream);

// Deterministic random numbers with portable distributions (no std::
// distributions, whose output differs between standard libraries).
// Thread-compatible.
class Rng {
 public:
  explicit Rng(uint64_t seed) : eng_(seed), cv_(Mix64(seed ^ 0x5bd1e995ULL) | 1) {}
  double Uniform() { return static_cast<double>(eng_() >> 11) * 0x1.0p-53; }  // [0,1)
  double Uniform(double a, double b) { return a + (b - a) * Uniform(); }
  // Log-uniform in [a,b], a > 0: for sizes, where small and large are equally likely.
  double LogUniform(double a, double b);
  int Int(int lo, int hi) { return lo + static_cast<int>(Uniform() * (hi - lo + 1)); }  // [lo,hi]
  double Normal(double mean = 0, double sd = 1);
  bool Chance(double p) { return Uniform() < p; }
  // Picks an index with probability proportional to weights[i].
  int Pick(const std::vector<double>& weights);
  // For bulk fills (cv::RNG::fill is deterministic and portable).
  cv::RNG& cv() { return cv_; }

 private:
  std::mt19937_64 eng_;
  cv::RNG cv_;
};

// Smooth value noise of `size` (CV_32F, about zero mean, unit variance) whose
// features are about `cell` pixels wide.
cv::Mat SmoothNoise(Rng& rng, cv::Size size, double cell);
// Sum of `octaves` SmoothNoise layers, starting at `cell` and halving, each
// with `gain` times the amplitude of the previous; renormalized to unit variance.
cv::Mat FractalNoise(Rng& rng, cv::Size size, double cell, int octaves, double gain);

// A wrapping lattice of random values sampled with smooth interpolation at any
// real coordinate: world-space texture for the road. Thread-compatible.
class NoiseTile {
 public:
  static constexpr int kSize = 64;
  explicit NoiseTile(Rng& rng);
  // Value at (x, y) in lattice units, about zero mean and unit variance.
  float Sample(double x, double y) const;

 private:
  std::vector<float> v_;
};

// One drawn damage: its class and the pixel rectangle (exclusive right and
// bottom) of every pixel it changed.
struct Damage {
  int class_id = 0;
  cv::Rect rect;
};

// Bounds of the non-zero pixels of `mask` (CV_8U or CV_32F), shifted by
// `offset`; empty when none.
cv::Rect NonZeroBounds(const cv::Mat& mask, cv::Point offset);

// Blends `color` (CV_32FC3) into `img` at `roi` with per-pixel `alpha` (CV_32F
// in [0,1], the size of roi). Alpha below `cutoff` is zeroed first so that the
// changed pixels are exactly those with alpha > 0. Returns the changed bounds
// in image coordinates.
cv::Rect BlendInto(cv::Mat& img, cv::Rect roi, const cv::Mat& color, cv::Mat& alpha,
                   float cutoff = 0.04f);

// What to render; the test turns parts off to check labels against pixels.
struct RenderFlags {
  bool draw_damage = true;
  bool camera_effects = true;  // blur, noise, vignette, white balance, JPEG
};

// The scene renderers: fill `img` (CV_32FC3, already allocated) and append the
// damages they draw (when flags.draw_damage) to `damages`.
void RenderCar(uint64_t seed, int index, const RenderFlags& flags, cv::Mat& img,
               std::vector<Damage>& damages);
void RenderRoad(uint64_t seed, int index, const RenderFlags& flags, cv::Mat& img,
                std::vector<Damage>& damages);

// The paint of a car scene, for damage and overlays that depend on it.
struct Paint {
  cv::Vec3f base;  // BGR
  bool metallic = false;
  double luminance = 0;  // of base, 0..1
};

// Car damage, drawn into `img` only where `panel` (CV_8U, 255 = painted
// body) allows. Each returns false, drawing nothing, when no placement was
// found; else fills `out` with the changed pixels' bounds.
bool DrawScratchGroup(Rng& rng, const Paint& paint, const cv::Mat& panel, cv::Mat& img,
                      Damage* out);
bool DrawDent(Rng& rng, const cv::Mat& panel, cv::Mat& img, Damage* out);
// Unlabelled distractors on paint: dust specks, water spots, a dirt film.
// Pointwise operations only.
void DrawCarOverlays(Rng& rng, const Paint& paint, const cv::Mat& panel, cv::Mat& img);

// A pinhole camera above a flat ground plane: x to the right, z forward (in
// metres), camera `height` above the ground, pitched down by `pitch` and
// rolled by `roll` (radians). Pixel (cx, cy) is the principal point.
struct GroundCamera {
  double f = 500, cx = 320, cy = 240, height = 1.5, pitch = 0.2, roll = 0;
  // Pixel of the ground point (x, z) lowered by `depth` metres; false when it
  // is behind or too close to the camera.
  bool Project(double x, double z, double depth, cv::Point2d* px) const;
  // Ground point seen at pixel (u, v); false at or above the horizon.
  bool Unproject(double u, double v, double* x, double* z) const;
  // Row of the horizon at column u (may be outside the image).
  double HorizonRow(double u) const;
  // Distance along the optical axis of ground point (x, z): for thickness.
  double AxisDistance(double z, double depth = 0) const;
};

// What a pothole needs to know about the road it is cut into.
struct RoadLook {
  cv::Vec3f asphalt;  // mean colour of the surface
  cv::Vec3f sky;      // what water reflects
  cv::Point2d light;  // unit direction the light travels, in image axes
};

// Draws a pothole of radius `radius` metres centred on ground point (x, z).
// Returns false (drawing nothing) when it would be tiny or mostly outside the
// frame or overlap `avoid`; else fills `out`.
bool DrawPothole(Rng& rng, const GroundCamera& cam, const RoadLook& look, double x, double z,
                 double radius, const std::vector<cv::Rect>& avoid, cv::Mat& img, Damage* out);

// How many damages a scene gets: 0 in about 12% of scenes, else 1..max_count,
// fewer more likely.
int DamageCount(Rng& rng, int max_count);

// The label a person would draw for damage whose visible pixels span
// `tight`: a few pixels of margin per side and no side under 2% of the
// image's short side. May reach outside the frame; the caller clips.
cv::Rect AnnotatorBox(Rng& rng, cv::Rect tight, int width, int height);

// Exposure for `lighting`, then (when camera_effects) white balance,
// vignetting, blur, sensor noise, 8-bit quantization and a JPEG round trip.
// Consumes the same random numbers whatever the lighting.
cv::Mat FinishPhoto(const cv::Mat& img, Lighting lighting, Rng& rng, bool camera_effects);

// RenderScene with flags.
SynthScene RenderSceneWithFlags(SceneKind kind, uint64_t seed, int index, Lighting lighting,
                                int width, int height, const RenderFlags& flags);

}  // namespace detops::synth
