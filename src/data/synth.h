#pragma once
// Synthetic damage scenes for pretraining detectors: car body panels with
// scratches and dents, roads with potholes. Scenes are rendered to look like
// photos (paint reflections, asphalt in perspective, shadows, camera noise,
// blur, vignetting, JPEG artefacts) with distractors that are NOT labelled
// (dust, water spots, cracks, tar seams, manholes, shadows).
//
// Every scene is a pure function of (kind, seed, index, lighting, size): no
// global RNG state is read or written, so scenes can be rendered in any order
// and on any thread. Boxes are computed from the pixels actually drawn for
// each damage, so they are exact for the rendered image.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <opencv2/core.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace detops {

enum class SceneKind { kCar, kRoad };
// kDusk: a moderate darkening (0.82x the normal exposure), the gradual
// lighting change monitoring should flag for retraining; kDark: night.
enum class Lighting { kNormal, kDark, kOverexposed, kLowContrast, kDusk };

// "car" | "road"; anything else is InvalidInput.
Result<SceneKind> ParseSceneKind(std::string_view s);
// "normal" | "dark" | "overexposed" | "low-contrast"; else InvalidInput.
Result<Lighting> ParseLighting(std::string_view s);
const char* SceneKindName(SceneKind kind);    // "car", "road"
const char* LightingName(Lighting lighting);  // as accepted by ParseLighting

// Class names; box class ids index this list.
// car: {"scratch", "dent"}; road: {"pothole"}.
std::vector<std::string> SceneClasses(SceneKind kind);

struct SynthScene {
  cv::Mat image;           // BGR, CV_8UC3, width x height
  std::vector<Box> boxes;  // normalized x1,y1,x2,y2 in [0,1]; class ids index SceneClasses
};

// Renders scene `index` of the set defined by (kind, seed, lighting).
// Deterministic and independent of other indices; thread-safe. The lighting
// only changes the exposure stage: the same (kind, seed, index) under
// different lightings shows the same scene with the same boxes.
// Requires width, height >= 32 and index >= 0 (asserted).
SynthScene RenderScene(SceneKind kind, uint64_t seed, int index, Lighting lighting, int width = 640,
                       int height = 480);

struct SynthOptions {
  SceneKind kind = SceneKind::kCar;
  int n = 100;  // images in total
  uint64_t seed = 0;
  Lighting lighting = Lighting::kNormal;
  int width = 640, height = 480;
  // Fractions of the images in val and test; the rest is train. Assignment
  // is by index (a low-discrepancy sequence), so counts are close to exact
  // and an index keeps its split whatever n is.
  double val_fraction = 0.15, test_fraction = 0.15;
  int jpeg_quality = 90;  // 1..100
  int threads = 2;        // render in parallel; output identical regardless
  // Optional; called after each image with (done, total), from worker threads
  // but never concurrently, with `done` increasing.
  std::function<void(int done, int total)> progress;
};

// The split of image `index` in a dataset written with `options`.
Split SynthSplit(const SynthOptions& options, int index);
// File stem of image `index`: "<kind>_<index, 5 digits>", e.g. "car_00042".
std::string SynthStem(SceneKind kind, int index);

// Writes an Ultralytics-layout dataset into `out`:
//   out/data.yaml  (path: ., train: images/train, val: images/val,
//                   test: images/test, nc: N, names: [...])
//   out/images/{train,val,test}/<stem>.jpg
//   out/labels/{train,val,test}/<stem>.txt  YOLO lines "cls cx cy w h",
//     normalized, 6 decimals; damage-free images get an empty label file.
// `out` must be absent or an empty directory, else InvalidInput; options out
// of range are InvalidInput; write failures are IOError. Output is
// byte-identical for identical options. Every file is written atomically
// (temp + rename; images and labels without fsync, for speed) and data.yaml
// is written last with fsync, so a killed run leaves no partial file under a
// final name and no data.yaml (at worst a stray "*.tmp.*" file).
Status WriteSynthDataset(const SynthOptions& options, const std::filesystem::path& out);

}  // namespace detops
