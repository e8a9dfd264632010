#pragma once
// Dataset validation: a suite of named expectations (in the spirit of Great
// Expectations) run over a manifest, the issues found while importing it and
// one image profile per image. Each expectation yields a pass/fail, a summary
// with numbers and every offending file as a finding. A dataset is trainable
// when no error-level expectation fails; warnings are reported only.
//
// Suites come from DefaultSuite() or from YAML (see ParseSuite). Everything
// here is plain data plus pure functions: thread-compatible, no shared state.

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "core/types.h"
#include "data/image_profile.h"
#include "data/origins.h"

namespace detops {

enum class Severity { kError, kWarning };
const char* SeverityName(Severity s);  // "error", "warning"
std::optional<Severity> ParseSeverity(std::string_view s);

// One configured expectation. `params` holds numeric thresholds by name;
// every known parameter is present (defaults filled in).
struct ExpectationSpec {
  std::string type;  // e.g. "resolution_within"
  Severity severity = Severity::kError;
  std::map<std::string, double> params;
  bool enabled = true;
};

struct Suite {
  std::string name;
  std::vector<ExpectationSpec> expectations;  // run in this order
};

// What an expectation type is and which parameters it takes.
struct ParamInfo {
  std::string name;
  double default_value = 0;
  double min = 0;  // accepted range, inclusive
  double max = 0;
};
struct ExpectationInfo {
  std::string type;
  Severity default_severity = Severity::kError;
  std::vector<ParamInfo> params;
  std::string description;  // one line, for `--help` and docs
};

// All known expectation types in their canonical order, with defaults:
//   images_decode (error)            every image decodes
//   resolution_within (error)        min_width/min_height 32, max_width/max_height 10000
//   no_exact_duplicates (warning)    the same blob appears once
//   no_split_leakage (error)         no blob or near-duplicate in two splits: dhash
//                                    <= max_hamming 8 and, where both images have a
//                                    thumbnail, thumbnail correlation >= min_correlation
//                                    0.95 (a profile without one: the dhash decides)
//   near_duplicates (warning)        no pair of distinct blobs so close (same two
//                                    parameters and defaults)
//   boxes_inside_image (error)       corners within [0,1] +- tolerance 0.001
//   boxes_positive_area (error)      x2 > x1 and y2 > y1
//   boxes_min_size (warning)         box width and height >= min_pixels 2 (image pixels)
//   class_ids_known (error)          0 <= class_id < classes.size()
//   labels_parse (error)             no label_parse / file_parse import issue
//   labels_match_images (error)      no orphan_label issue, every image labelled
//   labelled_fraction (warning)      labelled images / images >= min 0.9
//   class_min_count (warning)        every declared class has >= min 10 boxes
//   class_imbalance (warning)        most / least frequent class <= max_ratio 20, among
//                                    classes with at least one box (absent classes are
//                                    class_min_count's business)
//   brightness_within (warning)      mean luma in [min_mean 40, max_mean 220]; fails when
//                                    more than max_fraction 0.05 of the images are outside
//   contrast_within (warning)        luma std-dev >= min_std 15; same max_fraction 0.05
//   import_issues (error)            any other import issue; the result has the
//                                    configured severity when an issue of kind
//                                    image_unreadable or symlink_outside is present and
//                                    warning otherwise
std::vector<ExpectationInfo> ExpectationCatalog();

// Every known expectation, enabled, with its default severity and params.
Suite DefaultSuite();

// Parses a suite from YAML:
//
//   name: strict                 # optional, default "custom"
//   base: default                # optional: "default" (start from DefaultSuite,
//                                #   the default) or "none" (only those listed)
//   expectations:
//     resolution_within: {min_width: 64, min_height: 64, severity: warning}
//     near_duplicates: {enabled: false}
//     class_imbalance: false     # shorthand for enabled: false
//
// Errors (InvalidInput) name `what`, the 1-based line and the reason:
// malformed YAML, an unknown key, an unknown expectation type, a parameter
// that is unknown, not a number or out of range, a bad severity.
Result<Suite> ParseSuite(std::string_view yaml_text, const std::string& what);
// The same from a file; NotFound / IOError when it cannot be read.
Result<Suite> LoadSuite(const std::filesystem::path& yaml_file);

// One offending item. `file` is "<split>/<image name>" for a manifest image
// (a finding about a box starts its message with the label file and line it
// came from when known: "labels/train/a.txt:4: box 3 ..."),
// the issue's file for an import issue, empty for dataset-level findings
// (e.g. a class with too few boxes). `line` is 1-based, 0 when unknown.
struct Finding {
  std::string file;
  int line = 0;
  std::string message;
  bool operator==(const Finding&) const = default;
};

struct ExpectationResult {
  std::string type;
  Severity severity = Severity::kError;
  bool passed = true;
  // True when the input lacked what the expectation needs (no profiles);
  // a skipped expectation passes.
  bool skipped = false;
  std::string summary;            // with numbers: "3 of 600 images outside 32x32..10000x10000"
  double observed = 0;            // the measured quantity (a count, a fraction or a ratio)
  std::vector<Finding> findings;  // all of them, in manifest order
  bool operator==(const ExpectationResult&) const = default;
};

struct ValidationReport {
  std::string suite;
  std::vector<ExpectationResult> results;  // enabled expectations, suite order

  int failed_errors() const;
  int failed_warnings() const;
  // No error-level expectation failed.
  bool trainable() const { return failed_errors() == 0; }
  bool operator==(const ValidationReport&) const = default;
};

// Borrowed views of what is validated; must outlive RunSuite. `issues` and
// `profiles` may be null: expectations that need profiles are then skipped.
// When set, `profiles` has one entry per manifest->images[i], same order.
struct ValidationInput {
  const Manifest* manifest = nullptr;
  const std::vector<SourceIssue>* issues = nullptr;
  const std::vector<ImageProfile>* profiles = nullptr;
  // Optional: where each box came from (label file and line, or COCO file
  // and annotation id); box findings name it before the box.
  const BoxOrigins* origins = nullptr;
};

// Runs every enabled expectation of `suite`. `input.manifest` must be set;
// a profiles vector of the wrong size is treated as absent (the profile
// expectations are skipped and say why).
ValidationReport RunSuite(const Suite& suite, const ValidationInput& input);

// JSON form: {"suite", "trainable", "failed_errors", "failed_warnings",
// "results": [{"type", "severity", "passed", "skipped", "summary",
// "observed", "findings": [{"file", "line", "message"}]}]}.
Json ReportToJson(const ValidationReport& report);
// InvalidInput naming the offending field when `j` is not such a report.
Result<ValidationReport> ReportFromJson(const Json& j);

// A table for people: one row per expectation (status PASS / FAIL for a
// failed error / WARN for a failed warning / SKIP, type, severity, summary),
// each failed row followed by its first `max_findings_per_row` findings and
// "... and N more".
std::string ReportToTable(const ValidationReport& report, size_t max_findings_per_row = 5);

}  // namespace detops
