// Writes a version as a YOLO (Ultralytics) or COCO folder. The folder is
// built beside the target and renamed into place at the end, so an
// interrupted export leaves no half-written dataset.

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>

#include "data/data.h"

namespace detops {
namespace fs = std::filesystem;
namespace {

// Manifest coordinates lie on a 1e-6 grid, so centres need at most 7
// decimals; re-reading and quantizing gives the same grid point back.
std::string Num(double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.7f", v);
  std::string s = buf;
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

// Pixel coordinates rounded to 1e-6 px: exact enough to map back to the
// same normalized grid point, and short in the JSON.
double Px(double v) { return std::round(v * 1e6) / 1e6; }

// Refuses names that would leave the export folder.
Status CheckName(const std::string& name) {
  fs::path p(name);
  if (p.is_absolute() || name.empty())
    return Status::InvalidInput("unsafe image name '" + name + "'");
  for (const auto& part : p) {
    if (part == "..") return Status::InvalidInput("unsafe image name '" + name + "'");
  }
  return Status::Ok();
}

Status CopyBlob(Workspace& ws, const std::string& sha, const fs::path& dst) {
  std::error_code ec;
  fs::create_directories(dst.parent_path(), ec);
  fs::copy_file(ws.blobs().PathOf(sha), dst, fs::copy_options::overwrite_existing, ec);
  if (ec) return Status::IOError(dst.string() + ": cannot write: " + ec.message());
  return Status::Ok();
}

Status WriteYolo(Workspace& ws, const Manifest& m, const fs::path& out) {
  std::string yaml = "# exported by detops\npath: .\n";
  for (Split s : kAllSplits) {
    yaml += std::string(SplitName(s)) + ": images/" + SplitName(s) + "\n";
  }
  yaml += "nc: " + std::to_string(m.classes.size()) + "\nnames:\n";
  for (const std::string& c : m.classes) yaml += "  - " + Json(c).dump() + "\n";
  RETURN_IF_ERROR(WriteFileAtomic(out / "data.yaml", yaml));
  for (Split s : kAllSplits) fs::create_directories(out / "images" / SplitName(s));
  for (const ImageEntry& e : m.images) {
    RETURN_IF_ERROR(CheckName(e.name));
    fs::path img = out / "images" / SplitName(e.split) / e.name;
    RETURN_IF_ERROR(CopyBlob(ws, e.blob, img));
    if (!e.labelled) continue;  // no label file: "not labelled", as it came
    std::string text;
    for (const Box& b : e.boxes) {
      text += YoloLabelLine(b);
    }
    fs::path label = out / "labels" / SplitName(e.split) / e.name;
    label.replace_extension(".txt");
    fs::create_directories(label.parent_path());
    std::ofstream f(label, std::ios::binary);
    f << text;
    if (!f) return Status::IOError(label.string() + ": cannot write");
  }
  return Status::Ok();
}

Status WriteCoco(Workspace& ws, const Manifest& m, const fs::path& out) {
  Json categories = Json::array();
  for (size_t i = 0; i < m.classes.size(); ++i) {
    categories.push_back({{"id", i + 1}, {"name", m.classes[i]}, {"supercategory", "damage"}});
  }
  for (Split s : kAllSplits) {
    Json images = Json::array(), annotations = Json::array();
    int64_t image_id = 0, ann_id = 0;
    for (const ImageEntry& e : m.images) {
      if (e.split != s) continue;
      RETURN_IF_ERROR(CheckName(e.name));
      RETURN_IF_ERROR(CopyBlob(ws, e.blob, out / "images" / SplitName(s) / e.name));
      ++image_id;
      Json im = {{"id", image_id}, {"file_name", e.name}, {"width", e.width}, {"height", e.height}};
      if (!e.labelled) im["detops_labelled"] = false;
      images.push_back(std::move(im));
      for (const Box& b : e.boxes) {
        double x = Px(b.x1 * e.width), y = Px(b.y1 * e.height);
        double w = Px((b.x2 - b.x1) * e.width), h = Px((b.y2 - b.y1) * e.height);
        annotations.push_back({{"id", ++ann_id},
                               {"image_id", image_id},
                               {"category_id", b.class_id + 1},
                               {"bbox", {x, y, w, h}},
                               {"area", w * h},
                               {"iscrowd", b.difficult ? 1 : 0}});
      }
    }
    if (images.empty()) continue;
    Json doc = {{"info", {{"description", "exported by detops"}}},
                {"images", std::move(images)},
                {"annotations", std::move(annotations)},
                {"categories", categories}};
    RETURN_IF_ERROR(WriteFileAtomic(
        out / "annotations" / ("instances_" + std::string(SplitName(s)) + ".json"), doc.dump(1)));
  }
  return Status::Ok();
}

}  // namespace

std::string YoloLabelLine(const Box& b) {
  return std::to_string(b.class_id) + " " + Num((b.x1 + b.x2) / 2) + " " + Num((b.y1 + b.y2) / 2) +
         " " + Num(b.x2 - b.x1) + " " + Num(b.y2 - b.y1) + "\n";
}

Status ExportDataset(Workspace& ws, const VersionInfo& version, const fs::path& out,
                     const std::string& format) {
  if (format != "yolo" && format != "coco") {
    return Status::InvalidInput("unknown export format '" + format + "' (yolo|coco)");
  }
  std::error_code ec;
  if (fs::exists(out, ec) && !(fs::is_directory(out, ec) && fs::is_empty(out, ec))) {
    return Status::AlreadyExists(out.string() + ": exists and is not an empty folder");
  }
  ASSIGN_OR_RETURN(Manifest m, LoadManifest(ws, version));
  fs::path tmp = out;
  tmp += ".detops-tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return Status::IOError(tmp.string() + ": cannot create: " + ec.message());
  Status s = format == "yolo" ? WriteYolo(ws, m, tmp) : WriteCoco(ws, m, tmp);
  if (!s.ok()) {
    fs::remove_all(tmp, ec);
    return s;
  }
  fs::remove(out, ec);  // an empty folder
  fs::rename(tmp, out, ec);
  if (ec) {
    fs::remove_all(tmp, ec);
    return Status::IOError(out.string() + ": cannot move the export into place");
  }
  return Status::Ok();
}

}  // namespace detops
