// Synthetic prediction-log traffic for the monitor's tests and benchmarks.

#include "monitor/synthetic_traffic.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <vector>

namespace detops {
namespace {

constexpr double kBrightnessMean = 120, kBrightnessSd = 25;

// {"count", "mean", "sample"}: the summary model_profile.cc keeps.
Json Summary(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  Json sample = Json::array();
  const size_t n = std::min<size_t>(500, v.size());
  for (size_t i = 0; i < n; ++i) sample.push_back(v[i * v.size() / n]);
  double mean = 0;
  for (double x : v) mean += x;
  return {{"count", v.size()}, {"mean", v.empty() ? 0.0 : mean / v.size()}, {"sample", sample}};
}

}  // namespace

PredictionRecord DrawSyntheticPrediction(std::mt19937_64& rng, const SyntheticTraffic& t) {
  std::normal_distribution<double> n01(0, 1);
  std::uniform_real_distribution<double> u01(0, 1);
  PredictionRecord r;
  r.id = NewPredictionId();
  r.model_name = t.model;
  r.model_version = t.version;
  r.width = 640;
  r.height = 480;
  const double b =
      std::clamp(kBrightnessMean + kBrightnessSd * (n01(rng) + t.brightness_shift_sd), 0.0, 255.0);
  r.profile.brightness = b;
  r.profile.contrast = 50 + 8 * n01(rng);
  r.profile.sharpness = std::exp(6 + 0.5 * n01(rng));
  r.profile.mean_b = b - 5 + 5 * n01(rng);
  r.profile.mean_g = b + 5 * n01(rng);
  r.profile.mean_r = b + 5 + 5 * n01(rng);
  r.embedding.resize(static_cast<size_t>(std::max(1, t.embedding_dim)));
  for (float& e : r.embedding) e = static_cast<float>(n01(rng));
  if (t.other_scenes) {
    for (size_t d = 0; d < r.embedding.size() / 3; ++d) r.embedding[d] += 0.8f;
  }
  const int dets = static_cast<int>(u01(rng) * 4);
  for (int i = 0; i < dets; ++i) {
    LoggedDetection d;
    d.class_id = u01(rng) < 0.6 ? 0 : 1;
    d.class_name = d.class_id == 0 ? "dent" : "scratch";
    d.score = 0.3 + 0.7 * u01(rng);
    d.x1 = 100;
    d.y1 = 100;
    d.x2 = 200;
    d.y2 = 180;
    r.detections.push_back(d);
  }
  r.total_ms = t.latency_ms + 2 * n01(rng);
  return r;
}

std::string SyntheticReferenceJson(const SyntheticTraffic& t, uint64_t seed, int images,
                                   bool with_embeddings) {
  std::mt19937_64 rng(seed);
  std::map<std::string, std::vector<double>> image;
  std::vector<double> dets, scores, low;
  Json vectors = Json::array();
  std::map<std::string, double> classes;
  double total = 0;
  for (int i = 0; i < images; ++i) {
    const PredictionRecord r = DrawSyntheticPrediction(rng, t);
    image["brightness"].push_back(r.profile.brightness);
    image["contrast"].push_back(r.profile.contrast);
    image["sharpness"].push_back(r.profile.sharpness);
    image["mean_b"].push_back(r.profile.mean_b);
    image["mean_g"].push_back(r.profile.mean_g);
    image["mean_r"].push_back(r.profile.mean_r);
    image["width"].push_back(r.width);
    image["height"].push_back(r.height);
    dets.push_back(static_cast<double>(r.detections.size()));
    int l = 0;
    for (const LoggedDetection& d : r.detections) {
      scores.push_back(d.score);
      l += d.score < 0.5;
      classes[d.class_name] += 1;
      total += 1;
    }
    low.push_back(r.detections.empty() ? 0.0 : static_cast<double>(l) / r.detections.size());
    if (i < 200) vectors.push_back(r.embedding);
  }
  Json img = Json::object();
  for (auto& [k, v] : image) img[k] = Summary(v);
  Json share = Json::object();
  for (auto& [k, v] : classes) share[k] = total > 0 ? v / total : 0.0;
  Json j = {{"images", images},
            {"image", img},
            {"predictions",
             {{"detections_per_image", Summary(dets)},
              {"score", Summary(scores)},
              {"low_confidence_fraction", Summary(low)},
              {"class_share", share}}}};
  if (with_embeddings) j["embedding"] = {{"dim", t.embedding_dim}, {"sample", vectors}};
  return j.dump();
}

Result<SyntheticWorkspace> OpenSyntheticWorkspace(const std::filesystem::path& dir,
                                                  const SyntheticModel& m) {
  SyntheticWorkspace out;
  ASSIGN_OR_RETURN(out.ws, Workspace::Open({dir / "ws"}));
  ASSIGN_OR_RETURN(out.registry, Registry::Open(*out.ws));
  const std::filesystem::path weights = dir / "w.pt";
  if (!(std::ofstream(weights) << "weights")) {
    return Status::IOError("cannot write " + weights.string());
  }
  for (int v = 1; v <= m.versions; ++v) {
    NewModelVersion nv;
    nv.name = m.name;
    nv.run_id = "run" + std::to_string(v);
    nv.weights = weights;
    nv.profile_json = m.profile_json;
    nv.spec.imgsz = m.imgsz;
    nv.spec.classes = m.classes;
    nv.metrics = m.metrics;
    nv.dataset_version = m.dataset_version;
    nv.dataset_validation = m.dataset_validation;
    RETURN_IF_ERROR(out.registry->Register(nv).status());
  }
  RETURN_IF_ERROR(ForceProduction(*out.registry, m.name, 1));
  return out;
}

Status ForceProduction(Registry& registry, const std::string& model, int version,
                       const std::string& actor) {
  AliasChange c;
  c.name = model;
  c.alias = kProduction;
  c.to_version = version;
  ASSIGN_OR_RETURN(c.expected_from, registry.AliasVersion(model, kProduction));
  c.actor = actor;
  c.reason = "setup";
  c.forced = true;
  return registry.SetAlias(c).status();
}

}  // namespace detops
