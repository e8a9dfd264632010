// The reference profile of a model version: what its data looks like (image
// statistics), what the model makes of it (embedding statistics) and what
// it predicts, on the validation split. Monitoring compares live traffic
// with it, so every figure keeps a sample of its values (for KS tests and
// PSI bins), not only a mean.

#include <algorithm>
#include <cmath>

#include "data/image_profile.h"
#include "pipeline/jobs_internal.h"

namespace detops {
namespace {

constexpr size_t kSample = 500;  // values kept per figure

// Rounded to `unit` (a power of ten below 1), printed without binary noise.
double Round(double v, double unit) {
  const double scale = std::round(1 / unit);
  return std::round(v * scale) / scale;
}

// count, mean, std, min, quantiles, max and a sample of sorted values.
Json SummarizeValues(std::vector<double> v) {
  Json j = {{"count", v.size()}};
  if (v.empty()) return j;
  std::sort(v.begin(), v.end());
  double sum = 0, sq = 0;
  for (double x : v) sum += x;
  const double mean = sum / v.size();
  for (double x : v) sq += (x - mean) * (x - mean);
  auto q = [&](double p) { return v[static_cast<size_t>(std::lround(p * (v.size() - 1)))]; };
  j["mean"] = mean;
  j["std"] = std::sqrt(sq / v.size());
  j["min"] = v.front();
  j["p05"] = q(0.05);
  j["p25"] = q(0.25);
  j["p50"] = q(0.5);
  j["p75"] = q(0.75);
  j["p95"] = q(0.95);
  j["max"] = v.back();
  Json sample = Json::array();
  const size_t n = std::min(kSample, v.size());
  for (size_t i = 0; i < n; ++i) {
    sample.push_back(Round(v[i * v.size() / n], 1e-4));  // evenly spaced order statistics
  }
  j["sample"] = sample;
  return j;
}

}  // namespace

Result<std::string> BuildReferenceProfile(Workspace& ws, Detector& detector,
                                          const Manifest& manifest, int max_images) {
  // The validation split first, then test, then train, up to max_images:
  // a drift test against a reference of a handful of photos (a small set's
  // validation split) has no power, and PSI on it is noise. Images the
  // model trained on describe the photos to expect as well as held-out ones
  // do; their embeddings sit a little closer to what the network learned.
  std::vector<const ImageEntry*> entries;
  std::string split;
  for (Split s : {Split::kVal, Split::kTest, Split::kTrain}) {
    bool used = false;
    for (const ImageEntry& e : manifest.images) {
      if (e.split == s && static_cast<int>(entries.size()) < max_images) {
        entries.push_back(&e);
        used = true;
      }
    }
    if (used) split += (split.empty() ? "" : "+") + std::string(SplitName(s));
  }
  std::map<std::string, std::vector<double>> image_stats;
  std::vector<double> dets_per_image, scores, box_area, low_conf;
  std::vector<int64_t> class_counts(manifest.classes.size(), 0);
  std::vector<std::vector<float>> embeddings;
  PredictOptions po;  // the serving defaults
  constexpr size_t kBatch = 8;
  for (size_t first = 0; first < entries.size(); first += kBatch) {
    std::vector<cv::Mat> mats;
    for (size_t i = first; i < std::min(entries.size(), first + kBatch); ++i) {
      const std::filesystem::path path = ws.blobs().PathOf(entries[i]->blob);
      // Measured on the decoded image, as the server measures each request
      // (a reduced-scale JPEG decode gives other sharpness figures).
      auto img = LoadImageForModel(path);
      if (!img.ok()) continue;
      const ImageProfile p = ProfileDecodedImage(*img);
      image_stats["brightness"].push_back(p.brightness);
      image_stats["contrast"].push_back(p.contrast);
      image_stats["sharpness"].push_back(p.sharpness);
      image_stats["mean_b"].push_back(p.mean_b);
      image_stats["mean_g"].push_back(p.mean_g);
      image_stats["mean_r"].push_back(p.mean_r);
      image_stats["width"].push_back(p.width);
      image_stats["height"].push_back(p.height);
      mats.push_back(*img);
    }
    if (mats.empty()) continue;
    std::vector<std::vector<float>> emb;
    ASSIGN_OR_RETURN(auto dets, detector.Predict(mats, po, &emb));
    for (size_t k = 0; k < mats.size(); ++k) {
      dets_per_image.push_back(static_cast<double>(dets[k].size()));
      int low = 0;
      const double area = static_cast<double>(mats[k].cols) * mats[k].rows;
      for (const Detection& d : dets[k]) {
        scores.push_back(d.score);
        box_area.push_back((d.x2 - d.x1) * (d.y2 - d.y1) / area);
        if (d.score < 0.5) ++low;
        if (d.class_id >= 0 && d.class_id < static_cast<int>(class_counts.size())) {
          ++class_counts[d.class_id];
        }
      }
      low_conf.push_back(dets[k].empty() ? 0.0 : static_cast<double>(low) / dets[k].size());
      embeddings.push_back(std::move(emb[k]));
    }
  }
  if (embeddings.empty()) {
    return Status::InvalidInput("the dataset has no readable image to profile the model on");
  }
  Json images = Json::object();
  for (auto& [k, v] : image_stats) images[k] = SummarizeValues(v);
  // Embeddings: per-dimension mean and standard deviation, and a sample of
  // whole vectors (MMD and other two-sample tests need vectors).
  const size_t dim = embeddings[0].size();
  std::vector<double> mean(dim, 0), sd(dim, 0);
  for (const auto& e : embeddings)
    for (size_t d = 0; d < dim; ++d) mean[d] += e[d];
  for (double& m : mean) m /= embeddings.size();
  for (const auto& e : embeddings)
    for (size_t d = 0; d < dim; ++d) sd[d] += (e[d] - mean[d]) * (e[d] - mean[d]);
  Json jm = Json::array(), js = Json::array(), vectors = Json::array();
  for (size_t d = 0; d < dim; ++d) {
    jm.push_back(Round(mean[d], 1e-5));
    js.push_back(Round(std::sqrt(sd[d] / embeddings.size()), 1e-5));
  }
  for (size_t i = 0; i < std::min<size_t>(200, embeddings.size()); ++i) {
    Json v = Json::array();
    for (float x : embeddings[i]) v.push_back(Round(x, 1e-4));
    vectors.push_back(std::move(v));
  }
  Json classes = Json::object();
  int64_t total = 0;
  for (int64_t c : class_counts) total += c;
  for (size_t c = 0; c < class_counts.size(); ++c) {
    classes[manifest.classes[c]] = total ? static_cast<double>(class_counts[c]) / total : 0.0;
  }
  Json j = {{"split", split},
            {"precision", detector.precision()},
            {"images", embeddings.size()},
            {"image", images},
            {"embedding", {{"dim", dim}, {"mean", jm}, {"std", js}, {"sample", vectors}}},
            {"predictions",
             {{"conf", po.conf},
              {"detections_per_image", SummarizeValues(dets_per_image)},
              {"score", SummarizeValues(scores)},
              {"box_area_fraction", SummarizeValues(box_area)},
              {"low_confidence_fraction", SummarizeValues(low_conf)},
              {"class_share", classes}}}};
  return j.dump();
}

}  // namespace detops
