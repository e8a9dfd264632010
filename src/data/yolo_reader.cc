// Ultralytics / Darknet YOLO layouts: a data.yaml naming image folders (or
// lists) per split, labels in a sibling "labels" tree, one "cls cx cy w h"
// line per box. Also reads Roboflow exports (train/images + "../train/images"
// paths) and bare folders without a yaml.

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "data/source.h"

namespace detops {
namespace fs = std::filesystem;
namespace {

// The most classes a YOLO source may number (data.yaml's nc, label class
// ids): past it a typo or a corrupt file would have the reader allocate one
// class name per id, gigabytes for an id of 2000000000.
constexpr int kMaxClasses = 100000;

std::vector<std::string> SplitFields(std::string_view line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == ',')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != ',') ++j;
    if (j > i) out.emplace_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

// The label file of an image: the last "images" folder becomes "labels".
fs::path LabelPathFor(const fs::path& image) {
  std::vector<fs::path> parts(image.begin(), image.end());
  fs::path out;
  ptrdiff_t last = -1;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (parts[i] == "images") last = static_cast<ptrdiff_t>(i);
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    out /= (static_cast<ptrdiff_t>(i) == last) ? fs::path("labels") : parts[i];
  }
  return out.replace_extension(".txt");
}

// Parses one label file into `img`; problems become issues.
void ParseLabelFile(const fs::path& file, const fs::path& root, SourceImage& img,
                    std::vector<SourceIssue>& issues) {
  std::string rel = RelativeName(file, root);
  auto text = ReadFile(file);
  if (!text.ok()) {
    issues.push_back({"label_parse", rel, 0, text.status().message()});
    return;
  }
  img.labelled = true;
  img.label_file = rel;
  std::string_view all = *text;
  if (all.substr(0, 3) == "\xEF\xBB\xBF") all.remove_prefix(3);
  int line_no = 0;
  size_t pos = 0;
  while (pos <= all.size()) {
    size_t nl = all.find('\n', pos);
    std::string_view line = all.substr(pos, nl == std::string_view::npos ? all.npos : nl - pos);
    pos = (nl == std::string_view::npos) ? all.size() + 1 : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::vector<std::string> f = SplitFields(line);
    if (f.empty()) continue;
    bool polygon = f.size() >= 7 && (f.size() - 1) % 2 == 0;
    if (f.size() != 5 && !polygon) {
      issues.push_back(
          {"label_parse", rel, line_no,
           "expected 5 fields (class cx cy w h) or a polygon, got " + std::to_string(f.size())});
      continue;
    }
    double cls = 0;
    if (!ParseNumber(f[0], cls) || cls < 0 || cls != std::floor(cls)) {
      issues.push_back(
          {"label_parse", rel, line_no, "class id '" + f[0] + "' is not a non-negative integer"});
      continue;
    }
    if (cls >= kMaxClasses) {
      issues.push_back(
          {"label_parse", rel, line_no,
           "class id " + f[0] + " is too large (at most " + std::to_string(kMaxClasses - 1) + ")"});
      continue;
    }
    std::vector<double> v(f.size() - 1);
    bool ok = true;
    for (size_t k = 1; k < f.size(); ++k) {
      if (!ParseNumber(f[k], v[k - 1])) {
        issues.push_back({"label_parse", rel, line_no,
                          "field " + std::to_string(k + 1) + " '" + f[k] + "' is not a number"});
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    Box b;
    b.class_id = static_cast<int>(cls);
    if (!polygon) {
      b.x1 = v[0] - v[2] / 2;
      b.y1 = v[1] - v[3] / 2;
      b.x2 = v[0] + v[2] / 2;
      b.y2 = v[1] + v[3] / 2;
    } else {  // segment: its bounding box
      b.x1 = b.y1 = 1e300;
      b.x2 = b.y2 = -1e300;
      for (size_t k = 0; k + 1 < v.size(); k += 2) {
        b.x1 = std::min(b.x1, v[k]);
        b.x2 = std::max(b.x2, v[k]);
        b.y1 = std::min(b.y1, v[k + 1]);
        b.y2 = std::max(b.y2, v[k + 1]);
      }
    }
    img.boxes.push_back(b);
    img.box_origins.push_back(line_no);
  }
}

struct SplitSource {
  Split split;
  std::vector<fs::path> images;
  fs::path image_dir;      // names are relative to this
  bool from_list = false;  // paths read from a .txt list: may not exist
};

// Resolves a split entry of data.yaml: relative to `base`, with the
// Roboflow fix-up ("../train/images" written from inside the dataset).
fs::path ResolveEntry(const fs::path& base, const std::string& entry) {
  fs::path p = fs::path(entry).is_absolute() ? fs::path(entry) : base / entry;
  std::error_code ec;
  if (!fs::exists(p, ec) && entry.rfind("../", 0) == 0) p = base / entry.substr(3);
  return p.lexically_normal();
}

}  // namespace

Result<DataYaml> ParseDataYaml(std::string_view text, const std::string& source) {
  auto yaml_error = [&](const YAML::Exception& e) {
    return Status::InvalidInput(source + ":" + std::to_string(e.mark.line + 1) +
                                ": malformed YAML: " + e.msg);
  };
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return yaml_error(e);
  }
  if (!doc.IsMap()) return Status::InvalidInput(source + ": expected a mapping at the top");
  DataYaml out;
  try {
    if (doc["path"] && doc["path"].IsScalar()) out.path = doc["path"].as<std::string>();
    const YAML::Node names = doc["names"];
    if (names && names.IsSequence()) {
      for (const auto& n : names) out.classes.push_back(n.as<std::string>());
    } else if (names && names.IsMap()) {
      std::map<int, std::string> by_id;
      for (const auto& kv : names) by_id[kv.first.as<int>()] = kv.second.as<std::string>();
      int expect = 0;
      for (const auto& [id, name] : by_id) {
        if (id != expect++) {
          return Status::InvalidInput(source + ":" + std::to_string(names.Mark().line + 1) +
                                      ": 'names' ids must be 0..n-1 without gaps");
        }
        out.classes.push_back(name);
      }
    } else if (doc["nc"]) {
      int nc = doc["nc"].as<int>();
      if (nc > kMaxClasses) {
        return Status::InvalidInput(source + ": 'nc' is " + std::to_string(nc) + "; at most " +
                                    std::to_string(kMaxClasses) + " classes");
      }
      for (int i = 0; i < nc; ++i) out.classes.push_back("class" + std::to_string(i));
    } else {
      return Status::InvalidInput(source + ": no 'names' (class names) given");
    }
    if (doc["nc"] && doc["nc"].as<int>() != static_cast<int>(out.classes.size())) {
      return Status::InvalidInput(source + ": 'nc' is " + doc["nc"].as<std::string>() +
                                  " but 'names' lists " + std::to_string(out.classes.size()));
    }
    for (Split s : kAllSplits) {
      YAML::Node node = doc[SplitName(s)];
      if (!node && s == Split::kVal) node = doc["valid"];
      if (!node || node.IsNull()) continue;
      std::vector<std::string> entries;
      if (node.IsSequence()) {
        for (const auto& e : node) entries.push_back(e.as<std::string>());
      } else {
        entries.push_back(node.as<std::string>());
      }
      out.splits.emplace_back(s, std::move(entries));
    }
  } catch (const YAML::Exception& e) {
    return yaml_error(e);
  }
  return out;
}

namespace {

Status ReadYaml(const fs::path& yaml, SourceSet& set, std::vector<SplitSource>& splits) {
  auto text = ReadFile(yaml);
  if (!text.ok()) return Status::IOError(yaml.string() + ": cannot read");
  ASSIGN_OR_RETURN(DataYaml doc, ParseDataYaml(*text, yaml.string()));
  fs::path base = yaml.parent_path();
  if (doc.path) {
    fs::path p = *doc.path;
    base = p.is_absolute() ? p : base / p;
  }
  set.classes = std::move(doc.classes);
  for (const auto& [s, entries] : doc.splits) {
    const std::string key = SplitName(s);
    for (const std::string& e : entries) {
      fs::path p = ResolveEntry(base, e);
      std::error_code ec;
      SplitSource src{s, {}, p};
      if (fs::is_directory(p, ec)) {
        src.images = ListImages(p, set.root, set.issues);
      } else if (fs::is_regular_file(p, ec)) {  // a list of image paths
        src.image_dir = p.parent_path();
        src.from_list = true;
        std::ifstream in(p);
        std::string line;
        while (std::getline(in, line)) {
          if (!line.empty() && line.back() == '\r') line.pop_back();
          if (line.empty()) continue;
          fs::path img = fs::path(line).is_absolute() ? fs::path(line) : p.parent_path() / line;
          src.images.push_back(img.lexically_normal());
        }
      } else {
        set.issues.push_back({"missing_split", RelativeName(yaml, set.root), 0,
                              key + ": '" + e + "' does not exist (looked at " + p.string() + ")"});
        continue;
      }
      splits.push_back(std::move(src));
    }
  }
  return Status::Ok();
}

// Without a yaml: images/{train,val,test}, {train,valid,test}/images, or one
// folder of images (no splits: returns false, the importer assigns them).
bool GuessLayout(SourceSet& set, std::vector<SplitSource>& splits) {
  std::error_code ec;
  for (Split s : kAllSplits) {
    for (std::string name :
         {std::string(SplitName(s)), std::string(s == Split::kVal ? "valid" : "")}) {
      if (name.empty()) continue;
      for (fs::path dir : {set.root / "images" / name, set.root / name / "images"}) {
        if (fs::is_directory(dir, ec))
          splits.push_back({s, ListImages(dir, set.root, set.issues), dir});
      }
    }
  }
  if (!splits.empty()) return true;
  fs::path dir = fs::is_directory(set.root / "images", ec) ? set.root / "images" : set.root;
  splits.push_back({Split::kTrain, ListImages(dir, set.root, set.issues), dir});
  return false;
}

void ReadClassesFile(SourceSet& set) {
  for (const char* name : {"classes.txt", "obj.names", "labels/classes.txt"}) {
    auto text = ReadFile(set.root / name);
    if (!text.ok()) continue;
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) set.classes.push_back(line);
    }
    return;
  }
}

}  // namespace

Result<SourceSet> ReadYolo(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::NotFound(path.string() + ": no such file or folder");
  SourceSet set;
  set.format = "yolo";
  fs::path yaml;
  if (fs::is_regular_file(path, ec)) {
    yaml = path;
    set.root = path.parent_path();
  } else {
    set.root = path;
    for (const char* n : {"data.yaml", "data.yml", "dataset.yaml"}) {
      if (fs::exists(path / n, ec)) {
        yaml = path / n;
        break;
      }
    }
  }
  set.root = set.root.lexically_normal();
  std::vector<SplitSource> splits;
  bool split_known = true;
  if (!yaml.empty()) {
    RETURN_IF_ERROR(ReadYaml(yaml, set, splits));
  } else {
    split_known = GuessLayout(set, splits);
    ReadClassesFile(set);
  }
  // Label folders are listed once: a set lookup per image instead of a
  // stat, and the same listing finds labels without images.
  std::map<fs::path, std::set<fs::path>> label_files;
  auto labels_in = [&](const fs::path& dir) -> const std::set<fs::path>& {
    auto it = label_files.find(dir);
    if (it != label_files.end()) return it->second;
    std::set<fs::path>& files = label_files[dir];
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (LowerExtension(e.path()) == ".txt") files.insert(e.path());
    }
    return files;
  };
  std::set<fs::path> used_labels;
  for (const SplitSource& src : splits) {
    for (const fs::path& p : src.images) {
      if (src.from_list && !fs::is_regular_file(p, ec)) {
        set.issues.push_back({"image_missing", RelativeName(p, set.root), 0,
                              "listed in the split but does not exist"});
        continue;
      }
      SourceImage img;
      img.path = p;
      img.name = RelativeName(p, src.image_dir);
      if (split_known) img.split = src.split;
      fs::path label = LabelPathFor(p);
      if (labels_in(label.parent_path()).count(label)) {
        used_labels.insert(label);
        ParseLabelFile(label, set.root, img, set.issues);
      }
      set.images.push_back(std::move(img));
    }
  }
  for (const auto& [dir, files] : label_files) {
    for (const fs::path& p : files) {
      if (used_labels.count(p)) continue;
      std::string name = p.filename().string();
      if (name == "classes.txt" || name == "obj.names") continue;
      set.issues.push_back(
          {"orphan_label", RelativeName(p, set.root), 0, "label file has no matching image"});
    }
  }
  if (set.images.empty()) {
    return Status::InvalidInput(path.string() +
                                ": no images found (looked for .jpg/.jpeg/.png/"
                                ".bmp/.webp/.tif in the folders data.yaml names, or in images/)");
  }
  // Classes missing from the yaml/classes file: number them after the ids seen.
  int max_id = -1;
  for (const SourceImage& img : set.images) {
    for (const Box& b : img.boxes) max_id = std::max(max_id, b.class_id);
  }
  if (set.classes.empty()) {
    for (int i = 0; i <= max_id; ++i) set.classes.push_back("class" + std::to_string(i));
  }
  return set;
}

}  // namespace detops
