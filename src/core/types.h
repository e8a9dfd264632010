#pragma once
// Value types shared by every module: boxes, labelled images, dataset
// manifests. Plain data; thread-compatible.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace detops {

enum class Split { kTrain = 0, kVal = 1, kTest = 2 };
const char* SplitName(Split s);                       // "train", "val", "test"
std::optional<Split> ParseSplit(std::string_view s);  // accepts "valid"/"validation" too
inline constexpr Split kAllSplits[] = {Split::kTrain, Split::kVal, Split::kTest};

// Box corners normalized to [0,1] by the displayed image size (after EXIF
// orientation). Values are kept as read, even when out of range or inverted,
// so that validation can report them; Quantize() snaps to a 1e-6 grid so that
// conversions between formats round-trip to identical manifests.
struct Box {
  int class_id = 0;
  double x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  // COCO-style "difficult"/"iscrowd": kept, ignored by default in training.
  bool difficult = false;

  double Width() const { return x2 - x1; }
  double Height() const { return y2 - y1; }
  bool operator==(const Box&) const = default;
};

double Quantize(double v);  // round to the nearest 1e-6
Box QuantizeBox(Box b);

// One image of a dataset version.
struct ImageEntry {
  std::string blob;  // SHA-256 of the file's bytes (its content address)
  std::string name;  // path under the split's image folder, '/'-separated
  Split split = Split::kTrain;
  int width = 0;  // displayed size in pixels (EXIF orientation applied)
  int height = 0;
  // True when the source had a label record for this image (an empty label
  // file counts: the image is declared background). False: no label at all.
  bool labelled = false;
  std::vector<Box> boxes;
  bool operator==(const ImageEntry&) const = default;
};

// The immutable content of a dataset version. Canonical order: by split, then
// name. Its SHA-256 over the canonical JSON is the version's id.
struct Manifest {
  std::vector<std::string> classes;
  std::vector<ImageEntry> images;
  bool operator==(const Manifest&) const = default;
};

// A problem found while reading a source, kept with the version so that the
// validation report can name it: "labels/train/a.txt", line 3, "...".
struct SourceIssue {
  std::string kind;  // e.g. "label_parse", "orphan_label", "image_unreadable"
  std::string file;  // path relative to the source root
  int line = 0;      // 1-based; 0 when not about a line
  std::string message;
  bool operator==(const SourceIssue&) const = default;
};

}  // namespace detops
