#pragma once
// Where each box of a dataset version came from: the label file and line
// (YOLO, VOC) or the COCO file and annotation id, kept beside the manifest
// (not in it: the version's id is its content, not its provenance) so that
// validation findings name the place a person edits.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace detops {

struct ImageOrigin {
  std::string label_file;      // relative to the source root; empty: unknown
  std::vector<int64_t> boxes;  // per box: 1-based line, or COCO annotation id; 0: unknown
  int64_t coco_image_id = -1;  // -1: not from a COCO file
  // The size the label file declares, set only when it differs from the
  // image's real (displayed) size; boxes were scaled from the declared one.
  int declared_width = 0, declared_height = 0;
};

struct BoxOrigins {
  bool annotation_ids = false;      // COCO: boxes hold annotation ids, else lines
  std::vector<ImageOrigin> images;  // by manifest image index; empty: unknown

  // Image i's origin; null when unknown (a version recorded before origins
  // were kept, or an index out of range).
  const ImageOrigin* Image(size_t i) const;
  // "labels/train/a.txt:4" or "train/_annotations.coco.json, annotation id
  // 17"; the label file alone when the box is unknown; empty when nothing is.
  std::string BoxText(size_t image, size_t box) const;
};

// Compact JSON text; and back. Text that is empty or not such a document
// gives empty origins (older versions keep validating, naming images only).
std::string OriginsToText(const BoxOrigins& origins);
BoxOrigins OriginsFromText(std::string_view text);

}  // namespace detops
