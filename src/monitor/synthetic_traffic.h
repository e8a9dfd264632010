#pragma once
// Synthetic prediction-log traffic with known distributions, for the
// monitor's tests and benchmarks (as data/synth.h renders scenes with exact
// labels): a camera's image statistics (brightness N(120, 25), the colour
// means following it, contrast, log-normal sharpness), 0-3 detections of
// "dent" or "scratch", a Gaussian embedding and a latency. Deterministic for
// a seeded generator. And a registered model to watch it under.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "monitor/monitor.h"
#include "registry/registry.h"

namespace detops {

struct SyntheticTraffic {
  std::string model = "cars";
  int version = 1;
  // Photos darker (negative) or brighter by this many reference standard
  // deviations of brightness.
  double brightness_shift_sd = 0;
  // Other scenes at the same lighting: a third of the embedding's features
  // respond more (+0.8 sd); the image statistics do not change.
  bool other_scenes = false;
  double latency_ms = 20;
  int embedding_dim = 16;  // the `n` model's is 160
};

PredictionRecord DrawSyntheticPrediction(std::mt19937_64& rng, const SyntheticTraffic& t);

// A reference profile in the form pipeline/model_profile.cc writes, from
// `images` draws of `t` with a generator seeded by `seed`; the first 200
// embeddings are its sample (none when !with_embeddings).
std::string SyntheticReferenceJson(const SyntheticTraffic& t = {}, uint64_t seed = 99,
                                   int images = 1000, bool with_embeddings = true);

// A registered model for tests and benchmarks that need no trained one:
// versions 1..`versions` of `name`.
struct SyntheticModel {
  std::string name = "cars";
  int versions = 1;
  // Each version's reference profile: SyntheticReferenceJson() for traffic
  // to compare with it.
  std::string profile_json = "{}";
  int imgsz = 64;
  std::vector<std::string> classes = {"dent", "scratch"};
  std::map<std::string, double> metrics = {{"map50", 0.6}, {"f1", 0.6}};  // registered test figures
  std::string dataset_version, dataset_validation;                        // none by default
};

// A workspace and its registry.
struct SyntheticWorkspace {
  std::unique_ptr<Workspace> ws;
  std::unique_ptr<Registry> registry;  // of `ws`, so destroyed before it
};

// Opens the workspace DIR/ws (creating it) and registers `m`'s versions,
// runs "run1", "run2", ..., their weights a placeholder written at
// DIR/w.pt that nothing loads; version 1 becomes production. The
// workspace's, the file's or the registry's error when one fails.
Result<SyntheticWorkspace> OpenSyntheticWorkspace(const std::filesystem::path& dir,
                                                  const SyntheticModel& m = {});

// Moves `model`'s production alias to `version` from wherever it points
// now, forced (no gates), as `actor`.
Status ForceProduction(Registry& registry, const std::string& model, int version,
                       const std::string& actor = "test");

}  // namespace detops
