// Reading a model version's reference profile (pipeline/model_profile.cc
// writes it) into what the drift tests take: sorted samples and vectors.

#include <algorithm>
#include <cmath>

#include "monitor/evaluator.h"

namespace detops {
namespace {

// {"count", "sample": [sorted values], ...} -> the sample, sorted again
// (rounding may have swapped neighbours), and the count it stands for.
std::vector<double> SortedSample(const Json& summary, int64_t* count) {
  std::vector<double> out;
  if (!summary.is_object()) return out;
  auto c = summary.find("count");
  if (c != summary.end() && c->is_number()) *count = c->get<int64_t>();
  auto s = summary.find("sample");
  if (s == summary.end() || !s->is_array()) return out;
  for (const Json& v : *s) {
    if (v.is_number() && std::isfinite(v.get<double>())) out.push_back(v.get<double>());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Result<ReferenceProfile> ParseReferenceProfile(const std::string& json) {
  ASSIGN_OR_RETURN(Json j, ParseJson(json, "reference profile"));
  if (!j.is_object()) return Status::Corruption("reference profile: not a JSON object");
  ReferenceProfile p;
  if (auto it = j.find("images"); it != j.end() && it->is_number()) p.images = it->get<int64_t>();
  if (auto it = j.find("precision"); it != j.end() && it->is_string()) p.precision = *it;
  if (auto it = j.find("image"); it != j.end() && it->is_object()) {
    for (const auto& [name, summary] : it->items()) {
      int64_t count = 0;
      p.image[name] = SortedSample(summary, &count);
      p.image_count[name] = count;
    }
  }
  if (auto e = j.find("embedding"); e != j.end() && e->is_object()) {
    if (auto s = e->find("sample"); s != e->end() && s->is_array()) {
      for (const Json& v : *s) {
        if (!v.is_array()) continue;
        std::vector<float> vec;
        vec.reserve(v.size());
        for (const Json& x : v) vec.push_back(x.is_number() ? x.get<float>() : 0.f);
        p.embeddings.push_back(std::move(vec));
      }
    }
  }
  if (auto pr = j.find("predictions"); pr != j.end() && pr->is_object()) {
    if (auto it = pr->find("detections_per_image"); it != pr->end()) {
      p.detections_per_image = SortedSample(*it, &p.detections_count);
    }
    if (auto it = pr->find("score"); it != pr->end()) p.score = SortedSample(*it, &p.score_count);
    if (auto it = pr->find("low_confidence_fraction"); it != pr->end() && it->is_object()) {
      if (auto m = it->find("mean"); m != it->end() && m->is_number()) {
        p.low_confidence_mean = m->get<double>();
      }
    }
    if (auto it = pr->find("class_share"); it != pr->end() && it->is_object()) {
      for (const auto& [name, share] : it->items()) {
        if (share.is_number()) p.class_share[name] = share.get<double>();
      }
    }
  }
  return p;
}

}  // namespace detops
