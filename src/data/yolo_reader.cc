// Ultralytics / Darknet YOLO layouts: a data.yaml naming image folders (or
// lists) per split, labels in a sibling "labels" tree, one "cls cx cy w h"
// line per box. Also reads Roboflow exports (train/images + "../train/images"
// paths, or data.yaml beside a dataset/ folder with paths right for nobody:
// the split folders are then found by name), bare folders without a yaml,
// and a folder inside an export, named by the data.yaml one level up.

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

void AddOnce(std::vector<fs::path>& v, const fs::path& p) {
  fs::path n = p.lexically_normal();
  if (std::find(v.begin(), v.end(), n) == v.end()) v.push_back(std::move(n));
}

// Where a split entry of data.yaml may be, in the documented orders: relative
// to `path:` (when given), then to the yaml's folder, each also with the
// Roboflow fix-up ("../train/images" written from inside the dataset).
std::vector<fs::path> EntryCandidates(const fs::path& yaml_dir,
                                      const std::optional<std::string>& yaml_path,
                                      const std::string& entry) {
  std::vector<fs::path> out;
  if (fs::path(entry).is_absolute()) {
    AddOnce(out, entry);
    return out;
  }
  std::vector<fs::path> bases;
  if (yaml_path) {
    fs::path p = *yaml_path;
    AddOnce(bases, p.is_absolute() ? p : yaml_dir / p);
  }
  AddOnce(bases, yaml_dir);
  for (const fs::path& base : bases) {
    AddOnce(out, base / entry);
    if (entry.rfind("../", 0) == 0) AddOnce(out, base / entry.substr(3));
  }
  return out;
}

std::vector<std::string> ConventionalNames(Split s) {
  if (s == Split::kVal) return {"valid", "val"};
  return {std::string(SplitName(s))};
}

// Folders that hold a split by its conventional name (<name>/images or
// images/<name>) in the yaml's folder, then in each folder directly under it
// (sorted, hidden ones skipped): where exports put them whatever data.yaml says.
std::vector<fs::path> ConventionalFolders(const fs::path& yaml_dir, Split s) {
  std::error_code ec;
  std::vector<fs::path> roots{yaml_dir};
  std::vector<fs::path> subs;
  for (const auto& e : fs::directory_iterator(yaml_dir, ec)) {
    std::string name = e.path().filename().string();
    if (!name.empty() && name[0] != '.' && e.is_directory(ec)) subs.push_back(e.path());
  }
  std::sort(subs.begin(), subs.end());
  roots.insert(roots.end(), subs.begin(), subs.end());
  std::vector<fs::path> out;
  for (const fs::path& root : roots) {
    for (const std::string& name : ConventionalNames(s)) {
      for (const fs::path& dir : {root / name / "images", root / "images" / name}) {
        if (fs::is_directory(dir, ec)) AddOnce(out, dir);
      }
    }
  }
  return out;
}

// `p` for a message: relative to the source root when below it.
std::string Shown(const fs::path& p, const fs::path& root) {
  fs::path rel = p.lexically_normal().lexically_relative(root);
  if (rel.empty() || rel == "." || *rel.begin() == "..") return p.lexically_normal().string();
  return rel.generic_string();
}

std::string ShownList(const std::vector<fs::path>& paths, const fs::path& root) {
  std::string out;
  for (const fs::path& p : paths) out += (out.empty() ? "" : ", ") + Shown(p, root);
  return out;
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

// Reads data.yaml's classes and splits. A split entry that is nowhere
// data.yaml's documented readings put it is looked for by its conventional
// folder names (a split_folder_guessed issue says which was used); `looked`
// collects, per entry, where its images were looked for.
Status ReadYaml(const fs::path& yaml, SourceSet& set, std::vector<SplitSource>& splits,
                std::vector<std::string>& looked) {
  auto text = ReadFile(yaml);
  if (!text.ok()) return Status::IOError(yaml.string() + ": cannot read");
  ASSIGN_OR_RETURN(DataYaml doc, ParseDataYaml(*text, yaml.string()));
  const fs::path yaml_dir = yaml.parent_path();
  const std::string yaml_name = RelativeName(yaml, set.root);
  set.classes = std::move(doc.classes);
  for (const auto& [s, entries] : doc.splits) {
    const std::string key = SplitName(s);
    std::vector<fs::path> used;  // this split's folders and lists so far
    for (const std::string& e : entries) {
      std::error_code ec;
      std::vector<fs::path> candidates = EntryCandidates(yaml_dir, doc.path, e);
      fs::path p;
      for (const fs::path& c : candidates) {
        if (fs::exists(c, ec)) {
          p = c;
          break;
        }
      }
      if (p.empty()) {
        std::string gave = key + ": data.yaml gives '" + e + "', which is not there (tried " +
                           ShownList(candidates, set.root) + ")";
        std::vector<fs::path> found = ConventionalFolders(yaml_dir, s);
        if (found.empty()) {
          std::string names;
          for (const std::string& n : ConventionalNames(s)) names += (names.empty() ? "" : "|") + n;
          std::string conventional = "no " + names + "/images or images/" + names + " folder in " +
                                     Shown(yaml_dir, set.root) +
                                     " or the folders directly under it";
          set.issues.push_back({"missing_split", yaml_name, 0, gave + "; " + conventional});
          looked.push_back(key + " '" + e + "': " + ShownList(candidates, set.root) + "; " +
                           conventional);
          continue;
        }
        p = found.front();
        if (std::find(used.begin(), used.end(), p) != used.end()) continue;  // read already
        std::string also;
        if (found.size() > 1) {
          also = " (also found: " +
                 ShownList(std::vector<fs::path>(found.begin() + 1, found.end()), set.root) + ")";
        }
        set.issues.push_back({"split_folder_guessed", yaml_name, 0,
                              gave + "; used " + Shown(p, set.root) + also + " instead"});
      }
      used.push_back(p);
      looked.push_back(key + " '" + e + "': " + Shown(p, set.root));
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
      }
      splits.push_back(std::move(src));
    }
  }
  return Status::Ok();
}

// Without a yaml: images/{train,val,test}, {train,valid,test}/images, or one
// folder of images (no splits: returns false, the importer assigns them).
bool GuessLayout(SourceSet& set, std::vector<SplitSource>& splits,
                 std::vector<std::string>& looked) {
  std::error_code ec;
  for (Split s : kAllSplits) {
    for (std::string name :
         {std::string(SplitName(s)), std::string(s == Split::kVal ? "valid" : "")}) {
      if (name.empty()) continue;
      for (fs::path dir : {set.root / "images" / name, set.root / name / "images"}) {
        if (!fs::is_directory(dir, ec)) continue;
        splits.push_back({s, ListImages(dir, set.root, set.issues), dir});
        looked.push_back(Shown(dir, set.root));
      }
    }
  }
  if (!splits.empty()) return true;
  fs::path dir = fs::is_directory(set.root / "images", ec) ? set.root / "images" : set.root;
  splits.push_back({Split::kTrain, ListImages(dir, set.root, set.issues), dir});
  looked.push_back(dir.string() + " and the folders below it");
  return false;
}

fs::path FindYaml(const fs::path& dir) {
  std::error_code ec;
  for (const char* n : {"data.yaml", "data.yml", "dataset.yaml"}) {
    if (fs::is_regular_file(dir / n, ec)) return dir / n;
  }
  return {};
}

// Class names from the data.yaml one folder up, for a folder imported from
// inside an export (Roboflow's data.yaml beside dataset/). An issue says
// where the names came from, or why that yaml was not used.
void ReadParentYamlClasses(SourceSet& set) {
  fs::path yaml = FindYaml(set.root.parent_path());
  if (yaml.empty() || set.root.parent_path() == set.root) return;
  std::string shown = RelativeName(yaml, set.root);
  auto text = ReadFile(yaml);
  Result<DataYaml> doc = text.ok() ? ParseDataYaml(*text, shown) : Result<DataYaml>(text.status());
  if (!doc.ok()) {
    set.issues.push_back({"parent_yaml_unreadable", shown, 0,
                          "not used for class names: " + doc.status().message()});
    return;
  }
  set.classes = std::move(doc->classes);
  set.issues.push_back({"classes_from_parent_yaml", shown, 0,
                        "the folder has no data.yaml; class names taken from " + shown});
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
    yaml = FindYaml(path);
  }
  set.root = set.root.lexically_normal();
  std::vector<SplitSource> splits;
  std::vector<std::string> looked;  // for the error when no image is found
  bool split_known = true;
  if (!yaml.empty()) {
    RETURN_IF_ERROR(ReadYaml(yaml, set, splits, looked));
  } else {
    split_known = GuessLayout(set, splits, looked);
    ReadClassesFile(set);
    if (set.classes.empty()) ReadParentYamlClasses(set);
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
    std::string where;
    for (const std::string& l : looked) where += "\n  " + l;
    if (where.empty()) where = "\n  (data.yaml names no train, val or test split)";
    return Status::InvalidInput(
        path.string() + ": no images found (.jpg/.jpeg/.png/.bmp/.webp/.tif); looked in:" + where);
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
