// Dataset statistics: what `data show` prints, computed from a manifest.

#include <algorithm>

#include "data/data.h"

namespace detops {
namespace {

void Count(SplitCounts& c, const ImageEntry& e, size_t nclasses) {
  if (c.boxes_per_class.size() < nclasses) c.boxes_per_class.resize(nclasses, 0);
  ++c.images;
  c.boxes += static_cast<int>(e.boxes.size());
  if (e.labelled) ++c.labelled;
  if (e.labelled && e.boxes.empty()) ++c.background;
  for (const Box& b : e.boxes) {
    if (b.class_id >= 0 && static_cast<size_t>(b.class_id) < nclasses)
      ++c.boxes_per_class[b.class_id];
  }
}

Json CountsToJson(const SplitCounts& c) {
  return {{"images", c.images},
          {"boxes", c.boxes},
          {"labelled", c.labelled},
          {"background", c.background},
          {"boxes_per_class", c.boxes_per_class}};
}

SplitCounts CountsFromJson(const Json& j) {
  SplitCounts c;
  c.images = j.value("images", 0);
  c.boxes = j.value("boxes", 0);
  c.labelled = j.value("labelled", 0);
  c.background = j.value("background", 0);
  c.boxes_per_class = j.value("boxes_per_class", std::vector<int>{});
  return c;
}

}  // namespace

DatasetStats ComputeStats(const Manifest& m) {
  DatasetStats s;
  s.classes = m.classes;
  size_t nc = m.classes.size();
  s.total.boxes_per_class.assign(nc, 0);
  std::map<std::string, int> sizes;
  bool first = true;
  for (const ImageEntry& e : m.images) {
    Count(s.splits[SplitName(e.split)], e, nc);
    Count(s.total, e, nc);
    size_t n = e.boxes.size();
    s.boxes_per_image[n >= 5 ? "5+" : std::to_string(n)]++;
    sizes[std::to_string(e.width) + "x" + std::to_string(e.height)]++;
    if (first) {
      s.min_width = s.max_width = e.width;
      s.min_height = s.max_height = e.height;
      first = false;
    }
    s.min_width = std::min(s.min_width, e.width);
    s.max_width = std::max(s.max_width, e.width);
    s.min_height = std::min(s.min_height, e.height);
    s.max_height = std::max(s.max_height, e.height);
    for (const Box& b : e.boxes) {
      // COCO area ranges, in pixels of the original image.
      double area = b.Width() * e.width * b.Height() * e.height;
      s.box_sizes[area < 32 * 32 ? "small" : area < 96 * 96 ? "medium" : "large"]++;
    }
  }
  // Keep the ten most common sizes.
  std::vector<std::pair<int, std::string>> by_count;
  for (const auto& [k, v] : sizes) by_count.push_back({-v, k});
  std::sort(by_count.begin(), by_count.end());
  for (size_t i = 0; i < by_count.size() && i < 10; ++i) {
    s.image_sizes[by_count[i].second] = -by_count[i].first;
  }
  s.labelled_fraction = m.images.empty() ? 0 : double(s.total.labelled) / m.images.size();
  return s;
}

Json StatsToJson(const DatasetStats& s) {
  Json splits = Json::object();
  for (const auto& [k, v] : s.splits) splits[k] = CountsToJson(v);
  return {{"classes", s.classes},
          {"splits", splits},
          {"total", CountsToJson(s.total)},
          {"boxes_per_image", s.boxes_per_image},
          {"image_sizes", s.image_sizes},
          {"width", {{"min", s.min_width}, {"max", s.max_width}}},
          {"height", {{"min", s.min_height}, {"max", s.max_height}}},
          {"box_sizes", s.box_sizes},
          {"labelled_fraction", s.labelled_fraction}};
}

DatasetStats StatsFromJson(const Json& j) {
  DatasetStats s;
  try {
    s.classes = j.value("classes", std::vector<std::string>{});
    const Json splits = j.value("splits", Json::object());
    for (const auto& [k, v] : splits.items()) s.splits[k] = CountsFromJson(v);
    s.total = CountsFromJson(j.value("total", Json::object()));
    s.boxes_per_image = j.value("boxes_per_image", std::map<std::string, int>{});
    s.image_sizes = j.value("image_sizes", std::map<std::string, int>{});
    s.box_sizes = j.value("box_sizes", std::map<std::string, int>{});
    s.min_width = j.at("width").value("min", 0);
    s.max_width = j.at("width").value("max", 0);
    s.min_height = j.at("height").value("min", 0);
    s.max_height = j.at("height").value("max", 0);
    s.labelled_fraction = j.value("labelled_fraction", 0.0);
  } catch (const Json::exception&) {
    // Stats are derived data: a damaged row shows as empty, never fails.
  }
  return s;
}

}  // namespace detops
