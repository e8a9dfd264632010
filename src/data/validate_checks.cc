// The expectations about images, boxes, labels and classes, and RunSuite.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>
#include <unordered_map>

#include "data/validate.h"
#include "data/validate_internal.h"

namespace detops {
namespace validate_internal {

std::string Context::ImageFile(size_t i) const {
  const ImageEntry& e = manifest.images[i];
  return std::string(SplitName(e.split)) + "/" + e.name;
}

std::pair<int, int> Context::ImageSize(size_t i) const {
  const ImageEntry& e = manifest.images[i];
  if (e.width > 0 && e.height > 0) return {e.width, e.height};
  if (profiles && (*profiles)[i].decodes) return {(*profiles)[i].width, (*profiles)[i].height};
  return {0, 0};
}

std::string Context::BoxOrigin(size_t i, size_t k) const {
  return origins ? origins->BoxText(i, k) : "";
}

std::string Num(double v) {
  char buf[32];
  if (std::fabs(v - std::round(v)) < 1e-9 && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.4g", v);
  }
  return buf;
}

std::string Percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * fraction);
  return buf;
}

namespace {

std::string BoxText(size_t k, const Box& b) {
  std::ostringstream s;
  s << "box " << k + 1 << " (class " << b.class_id << ", " << Num(b.x1) << "," << Num(b.y1) << ","
    << Num(b.x2) << "," << Num(b.y2) << ")";
  return s.str();
}

std::string ClassName(const Manifest& m, int id) {
  std::string out = "class " + std::to_string(id);
  if (id >= 0 && static_cast<size_t>(id) < m.classes.size()) out += " '" + m.classes[id] + "'";
  return out;
}

bool NeedProfiles(const Context& ctx, ExpectationResult& r) {
  if (ctx.profiles) return true;
  r.skipped = true;
  r.summary = "skipped: " + ctx.no_profiles_reason;
  return false;
}

void CheckImagesDecode(const ExpectationSpec&, const Context& ctx, ExpectationResult& r) {
  if (!NeedProfiles(ctx, r)) return;
  const auto& profiles = *ctx.profiles;
  for (size_t i = 0; i < profiles.size(); ++i) {
    if (!profiles[i].decodes) r.findings.push_back({ctx.ImageFile(i), 0, profiles[i].error});
  }
  r.observed = static_cast<double>(r.findings.size());
  r.passed = r.findings.empty();
  r.summary = r.passed ? "all " + std::to_string(profiles.size()) + " images decode"
                       : std::to_string(r.findings.size()) + " of " +
                             std::to_string(profiles.size()) + " images do not decode";
}

void CheckResolution(const ExpectationSpec& spec, const Context& ctx, ExpectationResult& r) {
  double min_w = spec.params.at("min_width"), min_h = spec.params.at("min_height");
  double max_w = spec.params.at("max_width"), max_h = spec.params.at("max_height");
  std::string range = Num(min_w) + "x" + Num(min_h) + ".." + Num(max_w) + "x" + Num(max_h);
  size_t known = 0;
  for (size_t i = 0; i < ctx.manifest.images.size(); ++i) {
    auto [w, h] = ctx.ImageSize(i);
    if (w <= 0 || h <= 0) continue;  // unknown size: images_decode reports it
    ++known;
    if (w < min_w || h < min_h || w > max_w || h > max_h) {
      r.findings.push_back(
          {ctx.ImageFile(i), 0, std::to_string(w) + "x" + std::to_string(h) + " outside " + range});
    }
  }
  r.observed = static_cast<double>(r.findings.size());
  r.passed = r.findings.empty();
  r.summary = std::to_string(r.findings.size()) + " of " + std::to_string(known) +
              " images outside " + range;
}

// Runs `bad(box, image index)` over every box; a non-empty return is a finding.
template <typename Fn>
size_t ForEachBox(const Context& ctx, ExpectationResult& r, Fn bad) {
  size_t boxes = 0;
  for (size_t i = 0; i < ctx.manifest.images.size(); ++i) {
    const auto& img = ctx.manifest.images[i];
    for (size_t k = 0; k < img.boxes.size(); ++k, ++boxes) {
      std::string why = bad(img.boxes[k], i);
      if (why.empty()) continue;
      std::string origin = ctx.BoxOrigin(i, k);
      r.findings.push_back(
          {ctx.ImageFile(i), 0,
           (origin.empty() ? "" : origin + ": ") + BoxText(k, img.boxes[k]) + why});
    }
  }
  return boxes;
}

void BoxSummary(ExpectationResult& r, size_t boxes, const std::string& what) {
  std::set<std::string> files;
  for (const auto& f : r.findings) files.insert(f.file);
  r.observed = static_cast<double>(r.findings.size());
  r.passed = r.findings.empty();
  r.summary = std::to_string(r.findings.size()) + " of " + std::to_string(boxes) + " boxes " +
              what + " (in " + std::to_string(files.size()) + " images)";
}

void CheckBoxesInside(const ExpectationSpec& spec, const Context& ctx, ExpectationResult& r) {
  double tol = spec.params.at("tolerance");
  size_t boxes = ForEachBox(ctx, r, [&](const Box& b, size_t) -> std::string {
    for (double v : {b.x1, b.y1, b.x2, b.y2}) {
      if (!(v >= -tol && v <= 1 + tol)) return " extends outside [0,1]";
    }
    return "";
  });
  // Where the label file declares another size than the image's, that is
  // the cause to fix: one finding per image says so instead of its boxes.
  BoxSummary(r, boxes, "outside the image");
  if (!ctx.origins) return;
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < ctx.manifest.images.size(); ++i) index.emplace(ctx.ImageFile(i), i);
  std::vector<Finding> kept;
  std::string last;
  for (Finding& f : r.findings) {
    size_t i = index.at(f.file);
    const ImageOrigin* o = ctx.origins->Image(i);
    if (!o || o->declared_width <= 0) {
      kept.push_back(std::move(f));
      continue;
    }
    if (f.file == last) continue;
    last = f.file;
    const ImageEntry& e = ctx.manifest.images[i];
    std::string what =
        o->coco_image_id >= 0 ? "image id " + std::to_string(o->coco_image_id) : "the image";
    kept.push_back({f.file, 0,
                    o->label_file + " declares " + what + " as " +
                        std::to_string(o->declared_width) + "x" +
                        std::to_string(o->declared_height) + " but the image is " +
                        std::to_string(e.width) + "x" + std::to_string(e.height) +
                        ": boxes scaled from the declared size extend outside it"});
  }
  r.findings = std::move(kept);
}

void CheckBoxesPositive(const ExpectationSpec&, const Context& ctx, ExpectationResult& r) {
  size_t boxes = ForEachBox(ctx, r, [&](const Box& b, size_t) -> std::string {
    if (!(b.x2 > b.x1)) return " has x2 <= x1";
    if (!(b.y2 > b.y1)) return " has y2 <= y1";
    return "";
  });
  BoxSummary(r, boxes, "with zero or negative area");
}

void CheckBoxesMinSize(const ExpectationSpec& spec, const Context& ctx, ExpectationResult& r) {
  double min_px = spec.params.at("min_pixels");
  size_t boxes = ForEachBox(ctx, r, [&](const Box& b, size_t i) -> std::string {
    auto [w, h] = ctx.ImageSize(i);
    if (w <= 0 || h <= 0 || !(b.x2 > b.x1 && b.y2 > b.y1)) return "";
    double bw = b.Width() * w, bh = b.Height() * h;
    if (bw >= min_px && bh >= min_px) return "";
    return " is " + Num(bw) + "x" + Num(bh) + " px (min " + Num(min_px) + ")";
  });
  BoxSummary(r, boxes, "smaller than " + Num(min_px) + " px");
}

void CheckClassIds(const ExpectationSpec&, const Context& ctx, ExpectationResult& r) {
  int n = static_cast<int>(ctx.manifest.classes.size());
  std::string known =
      n == 0 ? "no classes are declared" : "known ids are 0.." + std::to_string(n - 1);
  size_t boxes = ForEachBox(ctx, r, [&](const Box& b, size_t) -> std::string {
    if (b.class_id >= 0 && b.class_id < n) return "";
    return " has unknown class id " + std::to_string(b.class_id) + "; " + known;
  });
  BoxSummary(r, boxes, "with an unknown class id");
}

void CheckLabelsParse(const ExpectationSpec&, const Context& ctx, ExpectationResult& r) {
  std::set<std::string> files;
  for (const auto& issue : ctx.issues) {
    if (issue.kind != "label_parse" && issue.kind != "file_parse") continue;
    r.findings.push_back({issue.file, issue.line, issue.message});
    files.insert(issue.file);
  }
  r.observed = static_cast<double>(r.findings.size());
  r.passed = r.findings.empty();
  r.summary = std::to_string(r.findings.size()) + " label parse errors in " +
              std::to_string(files.size()) + " files";
}

void CheckLabelsMatchImages(const ExpectationSpec&, const Context& ctx, ExpectationResult& r) {
  size_t orphans = 0, unlabelled = 0;
  for (const auto& issue : ctx.issues) {
    if (issue.kind != "orphan_label") continue;
    r.findings.push_back({issue.file, issue.line, "label without image: " + issue.message});
    ++orphans;
  }
  for (size_t i = 0; i < ctx.manifest.images.size(); ++i) {
    if (ctx.manifest.images[i].labelled) continue;
    r.findings.push_back(
        {ctx.ImageFile(i), 0, "image without label (an empty label file declares background)"});
    ++unlabelled;
  }
  r.observed = static_cast<double>(r.findings.size());
  r.passed = r.findings.empty();
  r.summary = std::to_string(orphans) + " labels without image, " + std::to_string(unlabelled) +
              " images without label";
}

void CheckLabelledFraction(const ExpectationSpec& spec, const Context& ctx, ExpectationResult& r) {
  double min = spec.params.at("min");
  size_t n = ctx.manifest.images.size(), labelled = 0;
  for (size_t i = 0; i < n; ++i) {
    if (ctx.manifest.images[i].labelled) {
      ++labelled;
    } else {
      r.findings.push_back({ctx.ImageFile(i), 0, "image without label"});
    }
  }
  r.observed = n == 0 ? 1.0 : static_cast<double>(labelled) / static_cast<double>(n);
  r.passed = r.observed >= min;
  r.summary = std::to_string(labelled) + " of " + std::to_string(n) + " images labelled (" +
              Percent(r.observed) + ", min " + Percent(min) + ")";
}

std::vector<size_t> ClassCounts(const Manifest& m) {
  std::vector<size_t> counts(m.classes.size(), 0);
  for (const auto& img : m.images) {
    for (const auto& b : img.boxes) {
      if (b.class_id >= 0 && static_cast<size_t>(b.class_id) < counts.size()) ++counts[b.class_id];
    }
  }
  return counts;
}

void CheckClassMinCount(const ExpectationSpec& spec, const Context& ctx, ExpectationResult& r) {
  double min = spec.params.at("min");
  std::vector<size_t> counts = ClassCounts(ctx.manifest);
  for (size_t c = 0; c < counts.size(); ++c) {
    if (static_cast<double>(counts[c]) >= min) continue;
    r.findings.push_back({"", 0,
                          ClassName(ctx.manifest, static_cast<int>(c)) + ": " +
                              std::to_string(counts[c]) + " boxes (min " + Num(min) + ")"});
  }
  r.observed = static_cast<double>(r.findings.size());
  r.passed = r.findings.empty();
  r.summary = std::to_string(r.findings.size()) + " of " + std::to_string(counts.size()) +
              " classes have fewer than " + Num(min) + " boxes";
}

void CheckClassImbalance(const ExpectationSpec& spec, const Context& ctx, ExpectationResult& r) {
  double max_ratio = spec.params.at("max_ratio");
  std::vector<size_t> counts = ClassCounts(ctx.manifest);
  int most = -1, least = -1;
  for (size_t c = 0; c < counts.size(); ++c) {
    if (counts[c] == 0) continue;
    if (most < 0 || counts[c] > counts[most]) most = static_cast<int>(c);
    if (least < 0 || counts[c] < counts[least]) least = static_cast<int>(c);
  }
  if (most < 0 || most == least) {
    r.summary = "fewer than 2 classes have boxes";
    r.observed = most < 0 ? 0 : 1;
    return;
  }
  r.observed = static_cast<double>(counts[most]) / static_cast<double>(counts[least]);
  for (size_t c = 0; c < counts.size(); ++c) {
    if (counts[c] == 0 || static_cast<double>(counts[c]) * max_ratio >= counts[most]) continue;
    double ratio = static_cast<double>(counts[most]) / static_cast<double>(counts[c]);
    r.findings.push_back({"", 0,
                          ClassName(ctx.manifest, static_cast<int>(c)) + ": " +
                              std::to_string(counts[c]) + " boxes vs " +
                              std::to_string(counts[most]) + " of " +
                              ClassName(ctx.manifest, most) + " (ratio " + Num(ratio) + ")"});
  }
  r.passed = r.findings.empty();
  r.summary = "most/least frequent class " + std::to_string(counts[most]) + "/" +
              std::to_string(counts[least]) + " boxes = ratio " + Num(r.observed) + " (max " +
              Num(max_ratio) + ")";
}

// Shared by brightness/contrast: `why` returns a finding text for an image
// out of range, else empty.
template <typename Fn>
void CheckFractionOutside(const ExpectationSpec& spec, const Context& ctx, ExpectationResult& r,
                          const std::string& what, Fn why) {
  if (!NeedProfiles(ctx, r)) return;
  double max_fraction = spec.params.at("max_fraction");
  size_t decoded = 0;
  for (size_t i = 0; i < ctx.profiles->size(); ++i) {
    const ImageProfile& p = (*ctx.profiles)[i];
    if (!p.decodes) continue;
    ++decoded;
    std::string text = why(p);
    if (!text.empty()) r.findings.push_back({ctx.ImageFile(i), 0, text});
  }
  r.observed = decoded == 0 ? 0 : static_cast<double>(r.findings.size()) / decoded;
  r.passed = r.observed <= max_fraction;
  r.summary = std::to_string(r.findings.size()) + " of " + std::to_string(decoded) + " images (" +
              Percent(r.observed) + ") have " + what + " (max " + Percent(max_fraction) + ")";
}

void CheckBrightness(const ExpectationSpec& spec, const Context& ctx, ExpectationResult& r) {
  double lo = spec.params.at("min_mean"), hi = spec.params.at("max_mean");
  std::string range = "[" + Num(lo) + ", " + Num(hi) + "]";
  CheckFractionOutside(
      spec, ctx, r, "mean luma outside " + range, [&](const ImageProfile& p) -> std::string {
        if (p.brightness >= lo && p.brightness <= hi) return "";
        return std::string(p.brightness < lo ? "too dark" : "too bright") + ": mean luma " +
               Num(std::round(p.brightness * 10) / 10) + " outside " + range;
      });
}

void CheckContrast(const ExpectationSpec& spec, const Context& ctx, ExpectationResult& r) {
  double min_std = spec.params.at("min_std");
  CheckFractionOutside(spec, ctx, r, "luma std-dev below " + Num(min_std),
                       [&](const ImageProfile& p) -> std::string {
                         if (p.contrast >= min_std) return "";
                         return "low contrast: luma std-dev " +
                                Num(std::round(p.contrast * 10) / 10) + " < " + Num(min_std);
                       });
}

void CheckImportIssues(const ExpectationSpec& spec, const Context& ctx, ExpectationResult& r) {
  bool serious = false;
  for (const auto& issue : ctx.issues) {
    if (issue.kind == "label_parse" || issue.kind == "file_parse" || issue.kind == "orphan_label") {
      continue;  // labels_parse and labels_match_images report these
    }
    serious = serious || issue.kind == "image_unreadable" || issue.kind == "symlink_outside";
    r.findings.push_back({issue.file, issue.line, issue.kind + ": " + issue.message});
  }
  r.observed = static_cast<double>(r.findings.size());
  r.passed = r.findings.empty();
  if (!r.passed && !serious) r.severity = Severity::kWarning;
  r.summary = std::to_string(r.findings.size()) + " other import issues" +
              (serious ? " (unreadable or unsafe files among them)" : "");
  (void)spec;
}

struct Entry {
  const char* type;
  CheckFn fn;
};
constexpr Entry kChecks[] = {
    {"images_decode", CheckImagesDecode},
    {"resolution_within", CheckResolution},
    {"no_exact_duplicates", CheckNoExactDuplicates},
    {"no_split_leakage", CheckNoSplitLeakage},
    {"near_duplicates", CheckNearDuplicates},
    {"boxes_inside_image", CheckBoxesInside},
    {"boxes_positive_area", CheckBoxesPositive},
    {"boxes_min_size", CheckBoxesMinSize},
    {"class_ids_known", CheckClassIds},
    {"labels_parse", CheckLabelsParse},
    {"labels_match_images", CheckLabelsMatchImages},
    {"labelled_fraction", CheckLabelledFraction},
    {"class_min_count", CheckClassMinCount},
    {"class_imbalance", CheckClassImbalance},
    {"brightness_within", CheckBrightness},
    {"contrast_within", CheckContrast},
    {"import_issues", CheckImportIssues},
};

}  // namespace
}  // namespace validate_internal

int ValidationReport::failed_errors() const {
  return static_cast<int>(std::count_if(results.begin(), results.end(), [](const auto& r) {
    return !r.passed && r.severity == Severity::kError;
  }));
}

int ValidationReport::failed_warnings() const {
  return static_cast<int>(std::count_if(results.begin(), results.end(), [](const auto& r) {
    return !r.passed && r.severity == Severity::kWarning;
  }));
}

ValidationReport RunSuite(const Suite& suite, const ValidationInput& input) {
  using namespace validate_internal;
  assert(input.manifest && "ValidationInput.manifest is required");
  const std::vector<SourceIssue> no_issues;
  Context ctx{*input.manifest, input.issues ? *input.issues : no_issues, nullptr, "",
              input.origins && input.origins->images.size() == input.manifest->images.size()
                  ? input.origins
                  : nullptr};
  if (!input.profiles) {
    ctx.no_profiles_reason = "no image profiles";
  } else if (input.profiles->size() != input.manifest->images.size()) {
    ctx.no_profiles_reason = std::to_string(input.profiles->size()) + " image profiles for " +
                             std::to_string(input.manifest->images.size()) + " images";
  } else {
    ctx.profiles = input.profiles;
  }
  ValidationReport report;
  report.suite = suite.name;
  for (const auto& spec : suite.expectations) {
    if (!spec.enabled) continue;
    // Missing params (a hand-built spec) fall back to the catalogue defaults.
    ExpectationSpec full = spec;
    for (const auto& info : ExpectationCatalog()) {
      if (info.type != spec.type) continue;
      for (const auto& p : info.params) full.params.try_emplace(p.name, p.default_value);
    }
    ExpectationResult r;
    r.type = spec.type;
    r.severity = spec.severity;
    const Entry* entry = nullptr;
    for (const auto& e : kChecks) {
      if (spec.type == e.type) entry = &e;
    }
    if (!entry) {
      r.passed = false;
      r.summary = "unknown expectation type '" + spec.type + "'";
    } else {
      entry->fn(full, ctx, r);
    }
    report.results.push_back(std::move(r));
  }
  return report;
}

}  // namespace detops
