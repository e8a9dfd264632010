#pragma once
// What a format reader makes of a source folder, before images are hashed:
// image files with their labels, the class names, and the problems found.
// Internal to the data module.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/core.h"

namespace detops {

struct SourceImage {
  std::filesystem::path path;  // the image file
  std::string name;            // name within its split ('/'-separated, relative)
  std::optional<Split> split;  // from the source; nullopt: assigned by hash
  bool labelled = false;       // a label record exists (empty = background)
  // Boxes in pixels of the declared size (COCO, VOC) when true, else
  // normalized (YOLO). A declared size of 0 means "use the real size".
  bool pixel_boxes = false;
  int declared_width = 0;
  int declared_height = 0;
  std::vector<Box> boxes;
  // Where the labels came from, so that findings name it: the label file
  // (relative to the source root) and, per box, its 1-based line (YOLO, VOC)
  // or its annotation id (COCO); 0 when unknown.
  std::string label_file;
  std::vector<int64_t> box_origins;  // parallel to `boxes`
  int64_t coco_image_id = -1;        // the image's id in a COCO file
};

struct SourceSet {
  std::string format;  // "yolo", "coco", "voc"
  std::filesystem::path root;
  std::vector<std::string> classes;
  std::vector<SourceImage> images;
  std::vector<SourceIssue> issues;
};

// Each reader refuses (InvalidInput / NotFound) when the source as a whole
// cannot be read: no such path, malformed data.yaml or COCO JSON, no images.
// Problems with single files or lines become issues and the rest goes on.
Result<SourceSet> ReadYolo(const std::filesystem::path& path);
Result<SourceSet> ReadCoco(const std::filesystem::path& path);
Result<SourceSet> ReadVoc(const std::filesystem::path& path);
// What a YOLO data.yaml says, before any path in it is resolved: the
// `path` key, the class names (from `names`, or `nc` alone) and each split's
// entries (folders, list files). InvalidInput naming `source` and the line
// for malformed YAML, missing or gapped names, or `nc` disagreeing with them.
struct DataYaml {
  std::optional<std::string> path;
  std::vector<std::string> classes;
  std::vector<std::pair<Split, std::vector<std::string>>> splits;  // in train, val, test order
};
Result<DataYaml> ParseDataYaml(std::string_view text, const std::string& source);
// "yolo", "coco" or "voc" from what the folder holds.
Result<std::string> DetectFormat(const std::filesystem::path& path);

// Path of `p` relative to `root` with '/' separators.
std::string RelativeName(const std::filesystem::path& p, const std::filesystem::path& root);
// Image files under `dir` (recursive, any case of extension), sorted. Files
// reached through symlinks that leave `root` become issues, not images.
std::vector<std::filesystem::path> ListImages(const std::filesystem::path& dir,
                                              const std::filesystem::path& root,
                                              std::vector<SourceIssue>& issues);
// Parses a number the way label files write them; false when it is not one.
bool ParseNumber(std::string_view s, double& out);

}  // namespace detops
