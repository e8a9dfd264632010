// The expectation catalogue, the default suite and suites read from YAML.

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "data/validate.h"

namespace detops {
namespace {

constexpr double kHuge = 1e9;

ExpectationInfo Info(std::string type, Severity severity, std::vector<ParamInfo> params,
                     std::string description) {
  return {std::move(type), severity, std::move(params), std::move(description)};
}

const ExpectationInfo* FindInfo(const std::vector<ExpectationInfo>& catalog,
                                std::string_view type) {
  for (const auto& info : catalog) {
    if (info.type == type) return &info;
  }
  return nullptr;
}

ExpectationSpec SpecFromInfo(const ExpectationInfo& info) {
  ExpectationSpec spec;
  spec.type = info.type;
  spec.severity = info.default_severity;
  for (const auto& p : info.params) spec.params[p.name] = p.default_value;
  return spec;
}

// "<what>:<line>: <message>" with the node's 1-based line.
Status ErrorAt(const std::string& what, const YAML::Mark& mark, const std::string& message) {
  std::string where = what;
  if (mark.line >= 0) where += ":" + std::to_string(mark.line + 1);
  return Status::InvalidInput(where + ": " + message);
}

std::string KnownTypes(const std::vector<ExpectationInfo>& catalog) {
  std::string out;
  for (const auto& info : catalog) out += (out.empty() ? "" : ", ") + info.type;
  return out;
}

// Applies one `type: {...}` entry of `expectations` to `spec`.
Status ApplyEntry(const ExpectationInfo& info, const YAML::Node& node, const std::string& what,
                  ExpectationSpec& spec) {
  spec.enabled = true;
  if (node.IsNull()) return Status::Ok();
  if (node.IsScalar()) {
    bool enabled;
    if (!YAML::convert<bool>::decode(node, enabled)) {
      return ErrorAt(what, node.Mark(),
                     info.type + ": expected a mapping of parameters or true/false, got '" +
                         node.Scalar() + "'");
    }
    spec.enabled = enabled;
    return Status::Ok();
  }
  if (!node.IsMap()) {
    return ErrorAt(what, node.Mark(), info.type + ": expected a mapping of parameters");
  }
  for (const auto& kv : node) {
    std::string key = kv.first.Scalar();
    const YAML::Node& value = kv.second;
    if (key == "enabled") {
      bool enabled;
      if (!value.IsScalar() || !YAML::convert<bool>::decode(value, enabled)) {
        return ErrorAt(what, value.Mark(), info.type + ".enabled: expected true or false");
      }
      spec.enabled = enabled;
      continue;
    }
    if (key == "severity") {
      std::optional<Severity> s;
      if (value.IsScalar()) s = ParseSeverity(value.Scalar());
      if (!s) {
        return ErrorAt(what, value.Mark(),
                       info.type + ".severity: expected error or warning, got '" +
                           (value.IsScalar() ? value.Scalar() : std::string("?")) + "'");
      }
      spec.severity = *s;
      continue;
    }
    const ParamInfo* param = nullptr;
    for (const auto& p : info.params) {
      if (p.name == key) param = &p;
    }
    if (!param) {
      std::string known = "enabled, severity";
      for (const auto& p : info.params) known += ", " + p.name;
      return ErrorAt(what, kv.first.Mark(),
                     info.type + ": unknown parameter '" + key + "' (known: " + known + ")");
    }
    double v = 0;
    if (!value.IsScalar() || !YAML::convert<double>::decode(value, v) || !std::isfinite(v)) {
      return ErrorAt(what, value.Mark(),
                     info.type + "." + key + ": expected a number, got '" +
                         (value.IsScalar() ? value.Scalar() : std::string("a collection")) + "'");
    }
    if (v < param->min || v > param->max) {
      std::ostringstream msg;
      msg << info.type << "." << key << ": " << v << " is outside [" << param->min << ", "
          << param->max << "]";
      return ErrorAt(what, value.Mark(), msg.str());
    }
    spec.params[key] = v;
  }
  return Status::Ok();
}

Result<Suite> SuiteFromYaml(const YAML::Node& root, const std::string& what) {
  if (!root.IsMap()) return ErrorAt(what, root.Mark(), "expected a mapping with 'expectations'");
  std::vector<ExpectationInfo> catalog = ExpectationCatalog();
  Suite suite;
  suite.name = "custom";
  bool from_default = true;
  YAML::Node entries;
  for (const auto& kv : root) {
    std::string key = kv.first.Scalar();
    if (key == "name" && kv.second.IsScalar()) {
      suite.name = kv.second.Scalar();
    } else if (key == "base" && kv.second.IsScalar() &&
               (kv.second.Scalar() == "default" || kv.second.Scalar() == "none")) {
      from_default = kv.second.Scalar() == "default";
    } else if (key == "expectations" && (kv.second.IsMap() || kv.second.IsNull())) {
      entries = kv.second;
    } else if (key == "name" || key == "base" || key == "expectations") {
      return ErrorAt(what, kv.second.Mark(),
                     "bad value for '" + key + "' (name: a string; base: default or none; " +
                         "expectations: a mapping of expectation type to parameters)");
    } else {
      return ErrorAt(what, kv.first.Mark(),
                     "unknown key '" + key + "' (known: name, base, expectations)");
    }
  }
  std::vector<ExpectationSpec> specs;
  std::vector<bool> listed(catalog.size(), false);
  for (const auto& info : catalog) specs.push_back(SpecFromInfo(info));
  if (entries) {
    for (const auto& kv : entries) {
      std::string type = kv.first.Scalar();
      const ExpectationInfo* info = FindInfo(catalog, type);
      if (!info) {
        return ErrorAt(
            what, kv.first.Mark(),
            "unknown expectation type '" + type + "' (known: " + KnownTypes(catalog) + ")");
      }
      size_t i = static_cast<size_t>(info - catalog.data());
      listed[i] = true;
      RETURN_IF_ERROR(ApplyEntry(*info, kv.second, what, specs[i]));
    }
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    if (from_default || listed[i]) suite.expectations.push_back(std::move(specs[i]));
  }
  return suite;
}

}  // namespace

const char* SeverityName(Severity s) { return s == Severity::kError ? "error" : "warning"; }

std::optional<Severity> ParseSeverity(std::string_view s) {
  if (s == "error") return Severity::kError;
  if (s == "warning" || s == "warn") return Severity::kWarning;
  return std::nullopt;
}

// A pair within the dhash distance is a near-duplicate only when the 16x16
// luma thumbnails correlate at least this much.
constexpr double kMinCorrelation = 0.95;

std::vector<ExpectationInfo> ExpectationCatalog() {
  using S = Severity;
  return {
      Info("images_decode", S::kError, {}, "every image decodes"),
      Info("resolution_within", S::kError,
           {{"min_width", 32, 0, kHuge},
            {"min_height", 32, 0, kHuge},
            {"max_width", 10000, 0, kHuge},
            {"max_height", 10000, 0, kHuge}},
           "image width and height within [min, max] pixels"),
      Info("no_exact_duplicates", S::kWarning, {}, "no image file appears twice"),
      // Two stages: a candidate pair is within max_hamming bits of dhash,
      // and a near-duplicate only when the 16x16 luma thumbnails correlate
      // >= min_correlation too. A 64-bit dhash alone cannot tell plain scenes
      // apart (two distinct synthetic car panels measured distance 2); the
      // thumbnail can. Measured in docs/BENCHMARKS.md (2026-12-07): no
      // distinct pair flagged among 6,000 synthetic scenes (the dhash-only
      // rule flagged 16), and 11 of the 22 cross-split copies found by eye
      // in a Roboflow export caught (dhash-only: 6), no distinct pair.
      Info("no_split_leakage", S::kError,
           {{"max_hamming", 8, 0, 64}, {"min_correlation", kMinCorrelation, -1, 1}},
           "no image or near-duplicate (dhash distance <= max_hamming, thumbnail correlation >= "
           "min_correlation) in two splits"),
      Info("near_duplicates", S::kWarning,
           {{"max_hamming", 8, 0, 64}, {"min_correlation", kMinCorrelation, -1, 1}},
           "no two different images within dhash distance max_hamming and thumbnail correlation "
           "min_correlation"),
      Info("boxes_inside_image", S::kError, {{"tolerance", 1e-3, 0, 1}},
           "box corners within [0, 1] +- tolerance"),
      Info("boxes_positive_area", S::kError, {}, "boxes have x2 > x1 and y2 > y1"),
      Info("boxes_min_size", S::kWarning, {{"min_pixels", 2, 0, kHuge}},
           "box width and height at least min_pixels image pixels"),
      Info("class_ids_known", S::kError, {}, "class ids index the class list"),
      Info("labels_parse", S::kError, {}, "every label file parses"),
      Info("labels_match_images", S::kError, {},
           "no label without image, no image without label (empty label file = background)"),
      Info("labelled_fraction", S::kWarning, {{"min", 0.9, 0, 1}},
           "at least this fraction of images is labelled"),
      Info("class_min_count", S::kWarning, {{"min", 10, 0, kHuge}},
           "every class has at least min boxes"),
      Info("class_imbalance", S::kWarning, {{"max_ratio", 20, 1, kHuge}},
           "box count of the most over the least frequent present class <= max_ratio"),
      Info("brightness_within", S::kWarning,
           {{"min_mean", 40, 0, 255}, {"max_mean", 220, 0, 255}, {"max_fraction", 0.05, 0, 1}},
           "mean luma within [min_mean, max_mean] for all but max_fraction of the images"),
      Info("contrast_within", S::kWarning, {{"min_std", 15, 0, 255}, {"max_fraction", 0.05, 0, 1}},
           "luma std-dev >= min_std for all but max_fraction of the images"),
      Info("import_issues", S::kError, {},
           "no other problem found while importing (unreadable images: error, else warning)"),
  };
}

Suite DefaultSuite() {
  Suite suite;
  suite.name = "default";
  for (const auto& info : ExpectationCatalog()) suite.expectations.push_back(SpecFromInfo(info));
  return suite;
}

Result<Suite> ParseSuite(std::string_view yaml_text, const std::string& what) {
  try {
    YAML::Node root = YAML::Load(std::string(yaml_text));
    return SuiteFromYaml(root, what);
  } catch (const YAML::Exception& e) {
    return ErrorAt(what, e.mark, e.msg);
  }
}

Result<Suite> LoadSuite(const std::filesystem::path& yaml_file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(yaml_file, ec)) {
    return Status::NotFound(yaml_file.string() + ": no such suite file");
  }
  std::ifstream in(yaml_file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) return Status::IOError(yaml_file.string() + ": cannot read");
  return ParseSuite(text.str(), yaml_file.string());
}

}  // namespace detops
