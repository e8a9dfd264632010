#pragma once
// Synthetic prediction-log traffic with known distributions, for the
// monitor's tests and benchmarks (as data/synth.h renders scenes with exact
// labels): a camera's image statistics (brightness N(120, 25), the colour
// means following it, contrast, log-normal sharpness), 0-3 detections of
// "dent" or "scratch", a Gaussian embedding and a latency. Deterministic for
// a seeded generator.

#include <cstdint>
#include <random>
#include <string>

#include "monitor/monitor.h"

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

}  // namespace detops
