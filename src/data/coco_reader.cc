// COCO instances JSON: one file per split (annotations/instances_<split>.json,
// or Roboflow's <split>/_annotations.coco.json), category ids of any
// numbering mapped to contiguous class ids in id order.

#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "data/source.h"

namespace detops {
namespace fs = std::filesystem;
namespace {

std::optional<Split> SplitFromName(const std::string& s) {
  std::string l = s;
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
  if (l.find("train") != std::string::npos) return Split::kTrain;
  if (l.find("val") != std::string::npos) return Split::kVal;
  if (l.find("test") != std::string::npos) return Split::kTest;
  return std::nullopt;
}

// The COCO files of a source: the path itself, or *.json under it.
std::vector<fs::path> FindJsonFiles(const fs::path& path) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return {path};
  for (auto it = fs::recursive_directory_iterator(path, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() > 2) it.disable_recursion_pending();
    if (it->is_regular_file(ec) && LowerExtension(it->path()) == ".json") out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Where an image named in a COCO file lives.
fs::path FindImage(const fs::path& json, const fs::path& root, const std::string& file_name,
                   std::optional<Split> split) {
  fs::path dir = json.parent_path();
  std::vector<fs::path> candidates = {dir / file_name, dir / "images" / file_name,
                                      dir.parent_path() / "images" / file_name,
                                      root / "images" / file_name, root / file_name};
  if (split) {
    candidates.push_back(dir.parent_path() / "images" / SplitName(*split) / file_name);
    candidates.push_back(root / "images" / SplitName(*split) / file_name);
    candidates.push_back(root / SplitName(*split) / file_name);
  }
  std::string stem = json.stem().string();  // instances_train2017 -> train2017
  if (auto u = stem.find('_'); u != std::string::npos) {
    candidates.push_back(dir.parent_path() / stem.substr(u + 1) / file_name);
  }
  std::error_code ec;
  for (const fs::path& c : candidates) {
    if (fs::is_regular_file(c, ec)) return c.lexically_normal();
  }
  return {};
}

// An integer field as T. nlohmann converts a float outside T's range with
// undefined behaviour (1e300 to int), so such a value throws type_error, as
// a string there does, and ReadCoco reports it.
template <typename T>
T IntegerOf(const Json& v) {
  constexpr double kMin = static_cast<double>(std::numeric_limits<T>::min());
  if (v.is_number_float() && !(v.get<double>() >= kMin && v.get<double>() < -kMin)) {
    throw Json::type_error::create(302, "number " + v.dump() + " is out of range", &v);
  }
  return v.get<T>();
}

struct Category {
  std::string name;
  std::string supercategory;
};

// Adds one COCO file's images and boxes to `set`. Throws Json::exception on
// a field of the wrong type.
void ReadCocoFile(const fs::path& file, const Json& json, std::optional<Split> split,
                  const std::map<std::string, int>& class_of_name, SourceSet& set) {
  std::string rel = RelativeName(file, set.root);
  std::map<int64_t, int> class_of_id;
  for (const Json& c : json.at("categories")) {
    auto it = class_of_name.find(c["name"].get<std::string>());
    if (it != class_of_name.end()) class_of_id[c["id"].get<int64_t>()] = it->second;
  }
  std::map<int64_t, size_t> index_of_image;
  for (const Json& im : json.at("images")) {
    if (!im.is_object() || !im.contains("id") || !im.contains("file_name") ||
        !im["file_name"].is_string()) {
      set.issues.push_back({"label_parse", rel, 0,
                            "image record needs 'id' and 'file_name': " + im.dump().substr(0, 80)});
      continue;
    }
    std::string name = im["file_name"].get<std::string>();
    fs::path image_file = FindImage(file, set.root, name, split);
    if (image_file.empty()) {
      set.issues.push_back({"image_missing", rel, 0, "image '" + name + "' not found"});
      continue;
    }
    if (!IsInside(set.root, image_file)) {
      set.issues.push_back({"symlink_outside", RelativeName(image_file, set.root), 0,
                            "image lies outside the source folder; not imported"});
      continue;
    }
    SourceImage img;
    img.path = image_file;
    img.name = fs::path(name).generic_string();
    img.split = split;
    img.labelled = im.value("detops_labelled", true);
    img.pixel_boxes = true;
    img.declared_width = im.contains("width") ? IntegerOf<int>(im["width"]) : 0;
    img.declared_height = im.contains("height") ? IntegerOf<int>(im["height"]) : 0;
    img.label_file = rel;
    if (im["id"].is_number_integer()) img.coco_image_id = im["id"].get<int64_t>();
    index_of_image[IntegerOf<int64_t>(im["id"])] = set.images.size();
    set.images.push_back(std::move(img));
  }
  if (!json.contains("annotations")) return;
  size_t k = 0;
  for (const Json& a : json.at("annotations")) {
    ++k;
    std::string where = "annotation #" + std::to_string(k);
    if (a.is_object() && a.contains("id")) where = "annotation id " + a["id"].dump();
    if (!a.is_object() || !a.contains("image_id") || !a.contains("bbox") || !a["bbox"].is_array() ||
        a["bbox"].size() != 4 || !a.contains("category_id")) {
      set.issues.push_back(
          {"label_parse", rel, 0, where + ": needs image_id, category_id, bbox[4]"});
      continue;
    }
    auto img_it = index_of_image.find(IntegerOf<int64_t>(a["image_id"]));
    if (img_it == index_of_image.end()) {
      set.issues.push_back(
          {"label_parse", rel, 0, where + ": unknown image_id " + a["image_id"].dump()});
      continue;
    }
    auto cls_it = class_of_id.find(IntegerOf<int64_t>(a["category_id"]));
    if (cls_it == class_of_id.end()) {
      set.issues.push_back(
          {"label_parse", rel, 0, where + ": unknown category_id " + a["category_id"].dump()});
      continue;
    }
    const Json& bb = a["bbox"];
    if (!bb[0].is_number() || !bb[1].is_number() || !bb[2].is_number() || !bb[3].is_number()) {
      set.issues.push_back({"label_parse", rel, 0, where + ": bbox values must be numbers"});
      continue;
    }
    Box b;
    b.class_id = cls_it->second;
    b.x1 = bb[0].get<double>();
    b.y1 = bb[1].get<double>();
    b.x2 = b.x1 + bb[2].get<double>();
    b.y2 = b.y1 + bb[3].get<double>();
    b.difficult = a.contains("iscrowd") && IntegerOf<int>(a["iscrowd"]) != 0;
    SourceImage& img = set.images[img_it->second];
    img.boxes.push_back(b);
    img.box_origins.push_back(a["id"].is_number_integer() ? a["id"].get<int64_t>() : 0);
  }
}

}  // namespace

Result<SourceSet> ReadCoco(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::NotFound(path.string() + ": no such file or folder");
  SourceSet set;
  set.format = "coco";
  set.root = (fs::is_directory(path, ec) ? path : path.parent_path()).lexically_normal();
  std::vector<fs::path> files = FindJsonFiles(path);
  if (files.empty()) return Status::InvalidInput(path.string() + ": no COCO .json file found");

  // Classes are the union of every file's categories, by name, ordered by
  // their first id; categories that only serve as another's supercategory
  // and have no boxes (Roboflow's id 0) are dropped.
  struct FileData {
    fs::path file;
    Json json;
    std::optional<Split> split;
  };
  std::vector<FileData> data;
  std::map<int64_t, Category> first_ids;  // id -> category, over all files
  std::set<std::string> used_names;
  for (const fs::path& f : files) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(f));
    ASSIGN_OR_RETURN(Json j, ParseJson(text, f.string()));
    if (!j.is_object() || !j.contains("images") || !j["images"].is_array()) {
      if (fs::is_regular_file(path, ec)) {
        return Status::InvalidInput(f.string() + ": not a COCO file (no 'images' array)");
      }
      continue;  // some other JSON in the folder
    }
    if (!j.contains("categories") || !j["categories"].is_array()) {
      return Status::InvalidInput(f.string() + ": no 'categories' array");
    }
    for (const Json& c : j["categories"]) {
      if (!c.is_object() || !c.contains("id") || !c["id"].is_number_integer() ||
          !c.contains("name") || !c["name"].is_string()) {
        return Status::InvalidInput(f.string() + ": category " + c.dump() +
                                    " needs an integer 'id' and a string 'name'");
      }
      // value() would throw for a supercategory of another type (5, null).
      const Json& super = c.contains("supercategory") ? c["supercategory"] : Json();
      first_ids.emplace(c["id"].get<int64_t>(),
                        Category{c["name"].get<std::string>(),
                                 super.is_string() ? super.get<std::string>() : ""});
    }
    if (j.contains("annotations") && j["annotations"].is_array()) {
      std::map<int64_t, std::string> id_to_name;
      for (const Json& c : j["categories"]) id_to_name[c["id"]] = c["name"];
      for (const Json& a : j["annotations"]) {
        if (a.is_object() && a.contains("category_id") && a["category_id"].is_number_integer()) {
          auto it = id_to_name.find(a["category_id"].get<int64_t>());
          if (it != id_to_name.end()) used_names.insert(it->second);
        }
      }
    }
    auto split = SplitFromName(RelativeName(f, set.root));
    data.push_back({f, std::move(j), split});
  }
  if (data.empty()) return Status::InvalidInput(path.string() + ": no COCO instances file found");

  std::set<std::string> supers;
  for (const auto& [id, c] : first_ids) supers.insert(c.supercategory);
  std::map<std::string, int> class_of_name;
  for (const auto& [id, c] : first_ids) {
    if (class_of_name.count(c.name)) continue;
    if (!used_names.count(c.name) && supers.count(c.name) && first_ids.size() > 1) continue;
    class_of_name[c.name] = static_cast<int>(set.classes.size());
    set.classes.push_back(c.name);
  }

  // nlohmann throws on a field of the wrong type (a string width, say).
  fs::path current;
  try {
    for (FileData& fd : data) {
      current = fd.file;
      ReadCocoFile(fd.file, fd.json, fd.split, class_of_name, set);
    }
  } catch (const Json::exception& e) {
    return Status::InvalidInput(current.string() + ": unexpected value: " + e.what());
  }
  if (set.images.empty()) return Status::InvalidInput(path.string() + ": no images found");
  return set;
}

}  // namespace detops
