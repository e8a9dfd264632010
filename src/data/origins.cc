#include "data/origins.h"

#include <map>

#include "core/json.h"

namespace detops {

const ImageOrigin* BoxOrigins::Image(size_t i) const {
  if (i >= images.size() || images[i].label_file.empty()) return nullptr;
  return &images[i];
}

std::string BoxOrigins::BoxText(size_t image, size_t box) const {
  const ImageOrigin* o = Image(image);
  if (!o) return "";
  int64_t at = box < o->boxes.size() ? o->boxes[box] : 0;
  if (at <= 0) return o->label_file;
  if (annotation_ids) return o->label_file + ", annotation id " + std::to_string(at);
  return o->label_file + ":" + std::to_string(at);
}

// {"unit": "line" | "annotation_id", "files": [...],
//  "images": [[file index or -1, [box...], coco image id, declared w, declared h]]}
std::string OriginsToText(const BoxOrigins& origins) {
  std::map<std::string, int> index;
  Json files = Json::array();
  Json images = Json::array();
  for (const ImageOrigin& o : origins.images) {
    int f = -1;
    if (!o.label_file.empty()) {
      auto [it, added] = index.try_emplace(o.label_file, static_cast<int>(files.size()));
      if (added) files.push_back(o.label_file);
      f = it->second;
    }
    Json entry = {f, o.boxes};
    if (o.coco_image_id >= 0 || o.declared_width > 0) {
      entry.push_back(o.coco_image_id);
      entry.push_back(o.declared_width);
      entry.push_back(o.declared_height);
    }
    images.push_back(std::move(entry));
  }
  Json j = {{"unit", origins.annotation_ids ? "annotation_id" : "line"},
            {"files", std::move(files)},
            {"images", std::move(images)}};
  return j.dump();
}

BoxOrigins OriginsFromText(std::string_view text) {
  BoxOrigins out;
  if (text.empty()) return out;
  auto j = ParseJson(text, "origins");
  if (!j.ok()) return out;
  try {
    out.annotation_ids = j->at("unit").get<std::string>() == "annotation_id";
    auto files = j->at("files").get<std::vector<std::string>>();
    for (const Json& e : j->at("images")) {
      ImageOrigin o;
      int f = e.at(0).get<int>();
      if (f >= 0 && static_cast<size_t>(f) < files.size()) o.label_file = files[f];
      o.boxes = e.at(1).get<std::vector<int64_t>>();
      if (e.size() >= 5) {
        o.coco_image_id = e.at(2).get<int64_t>();
        o.declared_width = e.at(3).get<int>();
        o.declared_height = e.at(4).get<int>();
      }
      out.images.push_back(std::move(o));
    }
  } catch (const Json::exception&) {
    return BoxOrigins{};
  }
  return out;
}

}  // namespace detops
