// Pascal VOC: one XML per image (Annotations/ beside JPEGImages/, or next to
// the image), pixel corners 1-based and inclusive, `difficult` flags kept;
// splits from ImageSets/Main/{train,val,test}.txt when present.

#include <pugixml.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "data/source.h"

namespace detops {
namespace fs = std::filesystem;
namespace {

std::vector<fs::path> ListXml(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && LowerExtension(it->path()) == ".xml") out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Split of each image stem from ImageSets/Main/<split>.txt.
std::map<std::string, Split> ReadImageSets(const fs::path& root) {
  std::map<std::string, Split> out;
  for (Split s : kAllSplits) {
    std::ifstream in(root / "ImageSets" / "Main" / (std::string(SplitName(s)) + ".txt"));
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (auto sp = line.find_first_of(" \t"); sp != std::string::npos) line.resize(sp);
      if (!line.empty()) out[line] = s;
    }
  }
  return out;
}

struct VocObject {
  std::string name;
  Box box;
  int line = 0;  // of its <object> element
};

// Parses one annotation; `img` gets the declared size, `objects` the boxes.
Status ParseXml(const fs::path& xml, const std::string& rel, std::string& filename, int& width,
                int& height, std::vector<VocObject>& objects, std::vector<SourceIssue>& issues) {
  auto text = ReadFile(xml);
  if (!text.ok()) return Status::IOError(rel + ": cannot read");
  pugi::xml_document doc;
  pugi::xml_parse_result r = doc.load_buffer(text->data(), text->size());
  if (!r) {
    return Status::InvalidInput(rel + ": malformed XML at byte " + std::to_string(r.offset) + ": " +
                                r.description());
  }
  pugi::xml_node ann = doc.child("annotation");
  if (!ann) return Status::InvalidInput(rel + ": no <annotation> element");
  filename = ann.child_value("filename");
  width = ann.child("size").child("width").text().as_int(0);
  height = ann.child("size").child("height").text().as_int(0);
  int k = 0;
  for (pugi::xml_node obj : ann.children("object")) {
    ++k;
    std::string name = obj.child_value("name");
    pugi::xml_node bb = obj.child("bndbox");
    double v[4];
    const char* keys[] = {"xmin", "ymin", "xmax", "ymax"};
    bool ok = !name.empty() && bb;
    for (int i = 0; ok && i < 4; ++i) ok = ParseNumber(bb.child_value(keys[i]), v[i]);
    if (!ok) {
      issues.push_back({"label_parse", rel, 0,
                        "object #" + std::to_string(k) +
                            " needs a <name> and numeric <bndbox> xmin/ymin/xmax/ymax"});
      continue;
    }
    VocObject o;
    o.name = name;
    // VOC pixels are 1-based and inclusive: [xmin-1, xmax) in 0-based edges.
    o.box.x1 = v[0] - 1;
    o.box.y1 = v[1] - 1;
    o.box.x2 = v[2];
    o.box.y2 = v[3];
    o.box.difficult = obj.child("difficult").text().as_int(0) != 0;
    ptrdiff_t at = obj.offset_debug();
    if (at >= 0 && static_cast<size_t>(at) <= text->size()) {
      o.line = 1 + static_cast<int>(std::count(text->begin(), text->begin() + at, '\n'));
    }
    objects.push_back(o);
  }
  return Status::Ok();
}

fs::path FindImageFor(const fs::path& xml, const fs::path& root, const std::string& filename) {
  std::error_code ec;
  std::vector<fs::path> dirs = {root / "JPEGImages", xml.parent_path(), root / "images", root};
  for (const fs::path& d : dirs) {
    if (!filename.empty() && fs::is_regular_file(d / filename, ec)) return d / filename;
  }
  // Same stem, any image extension in any case.
  std::string stem = xml.stem().string();
  for (const fs::path& d : dirs) {
    for (const auto& e : fs::directory_iterator(d, ec)) {
      if (e.path().stem() == stem && IsImageExtension(e.path())) return e.path();
    }
  }
  return {};
}

}  // namespace

Result<SourceSet> ReadVoc(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::NotFound(path.string() + ": no such file or folder");
  if (!fs::is_directory(path, ec)) return Status::InvalidInput(path.string() + ": not a folder");
  SourceSet set;
  set.format = "voc";
  set.root = path.lexically_normal();
  fs::path ann_dir =
      fs::is_directory(set.root / "Annotations", ec) ? set.root / "Annotations" : set.root;
  std::vector<fs::path> xmls = ListXml(ann_dir);
  if (xmls.empty()) return Status::InvalidInput(path.string() + ": no VOC .xml annotations found");
  std::map<std::string, Split> sets = ReadImageSets(set.root);

  struct Pending {
    SourceImage img;
    std::vector<VocObject> objects;
  };
  std::vector<Pending> pending;
  std::set<fs::path> labelled_images;
  std::set<std::string> names;
  for (const fs::path& xml : xmls) {
    std::string rel = RelativeName(xml, set.root);
    std::string filename;
    Pending p;
    Status s = ParseXml(xml, rel, filename, p.img.declared_width, p.img.declared_height, p.objects,
                        set.issues);
    fs::path image = FindImageFor(xml, set.root, filename);
    if (image.empty()) {
      set.issues.push_back({s.ok() ? "orphan_label" : "file_parse", rel, 0,
                            s.ok() ? "annotation has no matching image" : s.message()});
      continue;
    }
    if (!IsInside(set.root, image)) {
      set.issues.push_back({"symlink_outside", RelativeName(image, set.root), 0,
                            "image lies outside the source folder; not imported"});
      continue;
    }
    labelled_images.insert(image.lexically_normal());
    p.img.path = image;
    p.img.label_file = rel;
    p.img.pixel_boxes = true;
    if (!s.ok()) {
      // The image is kept, unlabelled, and the report names the broken XML.
      set.issues.push_back({"file_parse", rel, 0, s.message()});
      p.objects.clear();
      p.img.labelled = false;
    } else {
      p.img.labelled = true;
    }
    for (const VocObject& o : p.objects) names.insert(o.name);
    pending.push_back(std::move(p));
  }
  // Class ids: a labels file if given, else the sorted names seen.
  for (const char* f : {"labels.txt", "classes.txt"}) {
    std::ifstream in(set.root / f);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) set.classes.push_back(line);
    }
    if (!set.classes.empty()) break;
  }
  std::map<std::string, int> id;
  for (size_t i = 0; i < set.classes.size(); ++i) id[set.classes[i]] = static_cast<int>(i);
  for (const std::string& n : names) {
    if (!id.count(n)) {
      id[n] = static_cast<int>(set.classes.size());
      set.classes.push_back(n);
    }
  }
  fs::path image_root =
      fs::is_directory(set.root / "JPEGImages", ec) ? set.root / "JPEGImages" : set.root;
  for (Pending& p : pending) {
    for (VocObject& o : p.objects) {
      o.box.class_id = id[o.name];
      p.img.boxes.push_back(o.box);
      p.img.box_origins.push_back(o.line);
    }
    p.img.name = RelativeName(p.img.path, image_root);
    auto it = sets.find(p.img.path.stem().string());
    if (it != sets.end()) p.img.split = it->second;
    set.images.push_back(std::move(p.img));
  }
  // Images without an annotation.
  for (const fs::path& img : ListImages(image_root, set.root, set.issues)) {
    if (labelled_images.count(img.lexically_normal())) continue;
    SourceImage si;
    si.path = img;
    si.name = RelativeName(img, image_root);
    auto it = sets.find(img.stem().string());
    if (it != sets.end()) si.split = it->second;
    set.images.push_back(std::move(si));
  }
  return set;
}

}  // namespace detops
