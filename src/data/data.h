#pragma once
// Public header of the data module: importing labelled image folders (YOLO,
// COCO, VOC) into immutable dataset versions, inspecting and diffing them,
// exporting them, and validating them against an expectation suite. The
// synthetic scene generator is in data/synth.h; suites in data/validate.h.

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/core.h"
#include "data/class_map.h"
#include "data/synth.h"
#include "data/validate.h"
#include "store/store.h"

namespace detops {

// "name" (latest) or "name@3".
struct DatasetRef {
  std::string name;
  int version = 0;  // 0: the latest
  std::string ToString() const;
};
Result<DatasetRef> ParseDatasetRef(std::string_view text);
// The rule for a new dataset's name: CheckName (core/names.h), as for models.
Status CheckDatasetName(std::string_view name);

struct SplitCounts {
  int images = 0;
  int boxes = 0;
  int labelled = 0;
  int background = 0;  // labelled and without boxes: damage-free images
  std::vector<int> boxes_per_class;
};

// What `data show` prints; computed at import, stored with the version.
struct DatasetStats {
  std::vector<std::string> classes;
  std::map<std::string, SplitCounts> splits;  // "train", "val", "test"
  SplitCounts total;
  std::map<std::string, int> boxes_per_image;  // "0","1","2","3","4","5+" -> images
  std::map<std::string, int> image_sizes;      // "640x480" -> images (top sizes)
  int min_width = 0, max_width = 0, min_height = 0, max_height = 0;
  std::map<std::string, int> box_sizes;  // COCO areas: "small","medium","large"
  double labelled_fraction = 0;
};
DatasetStats ComputeStats(const Manifest& manifest);
Json StatsToJson(const DatasetStats& stats);
DatasetStats StatsFromJson(const Json& j);

struct VersionInfo {
  int64_t id = 0;
  std::string dataset;
  int version = 0;
  std::string manifest_sha;    // the version's content id
  int parent_version = 0;      // 0: none
  std::string parent_dataset;  // the parent's dataset (another one for a derived version)
  std::string source;          // the folder it was imported from (derived: the parent)
  std::string format;
  std::string created_at;
  std::string validation_status;  // unvalidated | passed | warnings | failed
  DatasetStats stats;
  std::vector<SourceIssue> issues;  // problems found while importing
  std::string Ref() const { return dataset + "@" + std::to_string(version); }
  std::string ShortId() const { return manifest_sha.substr(0, 12); }
  // "cars@2"; empty without a parent.
  std::string ParentRef() const {
    return parent_version > 0 ? parent_dataset + "@" + std::to_string(parent_version) : "";
  }
};

struct SplitRatios {
  double train = 0.8, val = 0.1, test = 0.1;
};

struct ImportOptions {
  std::string name;
  std::filesystem::path source;
  std::string format = "auto";  // yolo | coco | voc | auto
  SplitRatios ratios;           // used only where the source has no splits
  int threads = 2;
  std::function<void(size_t done, size_t total)> progress;
  // The source holds new images only (an inbox batch): the version is the
  // latest one plus these (a batch image named like one of the dataset's is
  // renamed NAME-<sha8> unless it is the same photo, whose labels it then
  // replaces; classes are matched by name, new names are added at the end;
  // a YOLO batch without data.yaml uses the dataset's class ids).
  bool append = false;
  // Renames, merges and drops of the source's classes (see data/class_map.h),
  // applied before anything else; a class it names that the source lacks is
  // refused.
  ClassMap class_map;
};

struct ImportResult {
  VersionInfo version;
  bool created = false;  // false: the content equals the latest version
  int images = 0;
  int images_hashed = 0;  // read and hashed (not served by the stat cache)
};

// Imports `options.source` as a new version of dataset `options.name`. Blobs
// are written first and the version row in one transaction last, so a crash
// leaves the metadata as it was (unreferenced blobs go with `gc`).
Result<ImportResult> ImportDataset(Workspace& ws, const ImportOptions& options);

// Lists versions, newest first; of one dataset when `name` is not empty.
Result<std::vector<VersionInfo>> ListVersions(Workspace& ws, const std::string& name = "");
Result<VersionInfo> ResolveVersion(Workspace& ws, const DatasetRef& ref);
Result<Manifest> LoadManifest(Workspace& ws, const VersionInfo& version);

struct ImageChange {
  std::string name;  // "<split>/<name>"
  std::string detail;
};
struct DatasetDiff {
  std::vector<ImageChange> added, removed, relabelled, moved;
  std::map<std::string, std::pair<int, int>> class_counts;  // class -> (boxes in A, in B)
  int images_a = 0, images_b = 0;
};
DatasetDiff DiffManifests(const Manifest& a, const Manifest& b);

// Writes a version as a YOLO (Ultralytics) or COCO folder into `out` (must be
// absent or empty). Re-importing the export gives the same version id.
// One YOLO label line, "class cx cy w h\n", for a box in normalized corners;
// coordinates printed exactly enough to re-import to the same version.
std::string YoloLabelLine(const Box& box);

Status ExportDataset(Workspace& ws, const VersionInfo& version, const std::filesystem::path& out,
                     const std::string& format);

struct ValidateOptions {
  Suite suite = DefaultSuite();
  int threads = 2;
  std::function<void(size_t done, size_t total)> progress;
};
// Profiles every image (cached by content), runs the suite, stores the
// report with the version and updates its validation status.
Result<ValidationReport> ValidateVersion(Workspace& ws, const VersionInfo& version,
                                         const ValidateOptions& options);
// The latest stored report of a version; NotFound when never validated.
Result<ValidationReport> LatestReport(Workspace& ws, const VersionInfo& version);

}  // namespace detops
