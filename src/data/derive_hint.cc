// DeriveFixCommand: the one place that says which failed checks `derive`
// fixes, and how.

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
    for (const char* type : kDroppable) {
      if (r.type == type && !r.findings.empty()) ops += " --drop-finding " + r.type;
    }
  }
  return ops.empty() ? "" : "detops data derive " + ref + ops;
}

}  // namespace detops
