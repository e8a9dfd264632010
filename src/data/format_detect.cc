#include "data/source.h"

namespace detops {
namespace fs = std::filesystem;
namespace {

bool AnyWithExtension(const fs::path& dir, const std::string& ext, int max_depth) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() >= max_depth) it.disable_recursion_pending();
    if (LowerExtension(it->path()) == ext && it->is_regular_file(ec)) return true;
  }
  return false;
}

}  // namespace

Result<std::string> DetectFormat(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::NotFound(path.string() + ": no such file or folder");
  if (fs::is_regular_file(path, ec)) {
    std::string ext = LowerExtension(path);
    if (ext == ".json") return std::string("coco");
    if (ext == ".yaml" || ext == ".yml") return std::string("yolo");
    return Status::InvalidInput(path.string() + ": expected a folder, a COCO .json or a data.yaml");
  }
  for (const char* y : {"data.yaml", "data.yml", "dataset.yaml"}) {
    if (fs::exists(path / y, ec)) return std::string("yolo");
  }
  if (fs::is_directory(path / "Annotations", ec) || AnyWithExtension(path, ".xml", 1)) {
    return std::string("voc");
  }
  if (AnyWithExtension(path, ".json", 2)) return std::string("coco");
  if (fs::is_directory(path / "labels", ec) || AnyWithExtension(path, ".txt", 3)) {
    return std::string("yolo");
  }
  fs::directory_iterator it(path, ec);
  if (!ec && it == fs::directory_iterator())
    return Status::InvalidInput(path.string() + ": empty folder");
  return Status::InvalidInput(path.string() +
                              ": cannot tell the format (no data.yaml, COCO .json or VOC .xml); "
                              "pass --format yolo|coco|voc");
}

}  // namespace detops
