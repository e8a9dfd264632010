// Differences between two manifests, keyed by image content and name.

#include <map>
#include <tuple>

#include "data/data.h"

namespace detops {
namespace {

std::string Where(const ImageEntry& e) { return std::string(SplitName(e.split)) + "/" + e.name; }

std::map<std::string, int> ClassCounts(const Manifest& m) {
  std::map<std::string, int> out;
  for (const std::string& c : m.classes) out[c] = 0;
  for (const ImageEntry& e : m.images) {
    for (const Box& b : e.boxes) {
      bool known = b.class_id >= 0 && static_cast<size_t>(b.class_id) < m.classes.size();
      out[known ? m.classes[b.class_id] : "#" + std::to_string(b.class_id)]++;
    }
  }
  return out;
}

// Boxes with class names instead of ids, so that a reordered class list is
// not reported as relabelling.
std::vector<std::tuple<std::string, double, double, double, double, bool>> Named(
    const ImageEntry& e, const Manifest& m) {
  std::vector<std::tuple<std::string, double, double, double, double, bool>> out;
  for (const Box& b : e.boxes) {
    bool known = b.class_id >= 0 && static_cast<size_t>(b.class_id) < m.classes.size();
    out.emplace_back(known ? m.classes[b.class_id] : "#" + std::to_string(b.class_id), b.x1, b.y1,
                     b.x2, b.y2, b.difficult);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

DatasetDiff DiffManifests(const Manifest& a, const Manifest& b) {
  DatasetDiff d;
  d.images_a = static_cast<int>(a.images.size());
  d.images_b = static_cast<int>(b.images.size());
  // Key: content and name. The same bytes under a new name count as a
  // removal plus an addition; a new split for the same key is a move.
  std::map<std::pair<std::string, std::string>, const ImageEntry*> in_a;
  for (const ImageEntry& e : a.images) in_a[{e.blob, e.name}] = &e;
  std::map<std::pair<std::string, std::string>, bool> seen;
  for (const ImageEntry& e : b.images) {
    auto key = std::make_pair(e.blob, e.name);
    seen[key] = true;
    auto it = in_a.find(key);
    if (it == in_a.end()) {
      d.added.push_back({Where(e), std::to_string(e.boxes.size()) + " boxes"});
      continue;
    }
    const ImageEntry& old = *it->second;
    if (old.split != e.split) {
      d.moved.push_back({Where(e), std::string("from ") + SplitName(old.split)});
    }
    if (Named(old, a) != Named(e, b) || old.labelled != e.labelled) {
      d.relabelled.push_back({Where(e), std::to_string(old.boxes.size()) + " -> " +
                                            std::to_string(e.boxes.size()) + " boxes"});
    }
  }
  for (const ImageEntry& e : a.images) {
    if (!seen.count({e.blob, e.name})) {
      d.removed.push_back({Where(e), std::to_string(e.boxes.size()) + " boxes"});
    }
  }
  auto ca = ClassCounts(a), cb = ClassCounts(b);
  for (const auto& [k, v] : ca) d.class_counts[k] = {v, 0};
  for (const auto& [k, v] : cb) d.class_counts[k].second = v;
  return d;
}

}  // namespace detops
