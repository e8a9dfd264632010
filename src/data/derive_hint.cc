// DeriveFixCommand: the one place that says which failed checks `derive`
// fixes, and how.

#include <algorithm>

#include "data/derive.h"

namespace detops {

std::string DeriveFixCommand(const ValidationReport& report, const std::string& ref) {
  // Checks whose findings name images of the version: dropping those images
  // fixes them (boxes outside, of no area or of unknown class are dropped
  // with their image; fix the labels and import again to keep it).
  static const char* const kDroppable[] = {"images_decode", "resolution_within",
                                           "boxes_inside_image", "boxes_positive_area",
                                           "class_ids_known"};
  std::string ops;
  for (const ExpectationResult& r : report.results) {
    if (r.passed || r.skipped || r.severity != Severity::kError) continue;
    if (r.type == "no_split_leakage") {
      ops += " --fix-leakage";
      continue;
    }
    // Unlabelled images can be dropped; labels without an image cannot.
    if (r.type == "labels_match_images" && !r.findings.empty() &&
        std::all_of(r.findings.begin(), r.findings.end(), [](const Finding& f) {
          return f.message.rfind("image without label", 0) == 0;
        })) {
      ops += " --drop-finding " + r.type;
      continue;
    }
    for (const char* type : kDroppable) {
      if (r.type == type && !r.findings.empty()) ops += " --drop-finding " + r.type;
    }
  }
  return ops.empty() ? "" : "detops data derive " + ref + ops;
}

}  // namespace detops
