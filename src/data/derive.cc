// DeriveDataset: load a version, apply the operations in order, record the
// result as a new version with its parent and its derivation.

#include "data/derive.h"

#include <cmath>
#include <set>

#include "data/derive_ops.h"
#include "data/profile_cache.h"
#include "data/versions_internal.h"

namespace detops {
namespace {

using derive_internal::Counts;
using derive_internal::Working;

struct OpName {
  DeriveOpKind kind;
  const char* name;
};
constexpr OpName kOpNames[] = {
    {DeriveOpKind::kFixLeakage, "fix-leakage"}, {DeriveOpKind::kResplit, "resplit"},
    {DeriveOpKind::kClassMap, "map-classes"},   {DeriveOpKind::kDropFinding, "drop-finding"},
    {DeriveOpKind::kSample, "sample"},          {DeriveOpKind::kMerge, "merge"},
};

Status Bad(std::string_view flag, std::string_view value, const std::string& why) {
  return Status::InvalidInput("--" + std::string(flag) + " '" + std::string(value) + "': " + why);
}

// "train=0.8,val=0.1,test=0.1" (omitted splits 0) or "0.8,0.1,0.1".
Status ParseRatios(std::string_view value, DeriveOp& op) {
  double r[3] = {0, 0, 0};
  std::string text(value);
  bool named = text.find('=') != std::string::npos;
  size_t start = 0;
  for (int k = 0; start <= text.size(); ++k) {
    size_t comma = text.find(',', start);
    std::string part = text.substr(start, comma == std::string::npos ? comma : comma - start);
    int slot = k;
    if (named) {
      size_t eq = part.find('=');
      std::optional<Split> s =
          eq == std::string::npos ? std::nullopt : ParseSplit(part.substr(0, eq));
      if (!s) return Bad("resplit", value, "'" + part + "' is not SPLIT=RATIO (train, val, test)");
      slot = static_cast<int>(*s);
      part = part.substr(eq + 1);
    } else if (k > 2) {
      return Bad("resplit", value, "expected three ratios TRAIN,VAL,TEST");
    }
    char* end = nullptr;
    double v = std::strtod(part.c_str(), &end);
    if (part.empty() || *end != '\0' || !(v >= 0) || !std::isfinite(v)) {
      return Bad("resplit", value, "'" + part + "' is not a ratio >= 0");
    }
    r[slot] = v;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (r[0] + r[1] + r[2] <= 0) return Bad("resplit", value, "the ratios add up to 0");
  op.ratio_train = r[0];
  op.ratio_val = r[1];
  op.ratio_test = r[2];
  return Status::Ok();
}

Json OpParams(const DeriveOp& op, uint64_t seed) {
  switch (op.kind) {
    case DeriveOpKind::kFixLeakage:
      return {{"policy", op.leakage == LeakagePolicy::kDrop ? "drop" : "move"}};
    case DeriveOpKind::kResplit:
      return {{"train", op.ratio_train},
              {"val", op.ratio_val},
              {"test", op.ratio_test},
              {"seed", seed}};
    case DeriveOpKind::kClassMap: {
      Json rename = Json::object();
      for (const auto& [from, to] : op.class_map.rename) rename[from] = to;
      return {{"rename", rename}, {"drop", op.class_map.drop}};
    }
    case DeriveOpKind::kDropFinding:
      return {{"check", op.check}};
    case DeriveOpKind::kSample:
      return {{"sample", op.sample}, {"seed", seed}};
    case DeriveOpKind::kMerge:
      return {{"other", op.other}};
  }
  return Json::object();
}

Result<Working> LoadWorking(Workspace& ws, const VersionInfo& v, const DeriveOptions& o,
                            bool source) {
  Working w;
  ASSIGN_OR_RETURN(w.manifest, LoadManifest(ws, v));
  ASSIGN_OR_RETURN(w.profiles, ProfileManifest(ws, w.manifest, o.threads, o.progress));
  for (const ImageEntry& e : w.manifest.images) {
    w.source_file.push_back(source ? std::string(SplitName(e.split)) + "/" + e.name : "");
  }
  return w;
}

// The source's import issues about images that were dropped (unreadable,
// another declared size) no longer apply; the others do.
std::vector<SourceIssue> KeptIssues(const std::vector<SourceIssue>& issues, const Manifest& before,
                                    const Manifest& after) {
  std::set<std::string> kept_names, dropped_names;
  for (const ImageEntry& e : after.images) kept_names.insert(e.name);
  for (const ImageEntry& e : before.images) {
    if (!kept_names.count(e.name)) dropped_names.insert(e.name);
  }
  std::vector<SourceIssue> out;
  for (const SourceIssue& issue : issues) {
    bool about_dropped = false;
    if (issue.kind == "image_unreadable" || issue.kind == "declared_size") {
      for (const std::string& n : dropped_names) {
        const std::string& f = issue.file;
        if (f == n ||
            (f.size() > n.size() && f.ends_with(n) && f[f.size() - n.size() - 1] == '/')) {
          about_dropped = true;
          break;
        }
      }
    }
    if (!about_dropped) out.push_back(issue);
  }
  return out;
}

}  // namespace

const char* DeriveOpName(DeriveOpKind kind) {
  for (const OpName& n : kOpNames) {
    if (n.kind == kind) return n.name;
  }
  return "?";
}

Result<DeriveOp> ParseDeriveOp(std::string_view flag, std::string_view value) {
  DeriveOp op;
  if (flag == "fix-leakage") {
    op.kind = DeriveOpKind::kFixLeakage;
    if (value == "drop") {
      op.leakage = LeakagePolicy::kDrop;
    } else if (!value.empty() && value != "move") {
      return Bad(flag, value, "expected 'move' (the default) or 'drop'");
    }
  } else if (flag == "resplit") {
    op.kind = DeriveOpKind::kResplit;
    RETURN_IF_ERROR(ParseRatios(value, op));
  } else if (flag == "map-classes") {
    op.kind = DeriveOpKind::kClassMap;
    ASSIGN_OR_RETURN(op.class_map.rename, ParseClassRenames(value));
  } else if (flag == "drop-classes") {
    op.kind = DeriveOpKind::kClassMap;
    ASSIGN_OR_RETURN(op.class_map.drop, ParseClassList(value));
  } else if (flag == "drop-finding") {
    op.kind = DeriveOpKind::kDropFinding;
    std::string known;
    for (const ExpectationInfo& info : ExpectationCatalog()) {
      if (info.type == value) op.check = info.type;
      known += (known.empty() ? "" : ", ") + info.type;
    }
    if (op.check.empty()) return Bad(flag, value, "not a validation check (checks: " + known + ")");
  } else if (flag == "sample") {
    op.kind = DeriveOpKind::kSample;
    std::string text(value);
    char* end = nullptr;
    op.sample = std::strtod(text.c_str(), &end);
    bool whole = op.sample >= 1 && op.sample == std::floor(op.sample);
    if (text.empty() || *end != '\0' || !(op.sample > 0) || (op.sample >= 1 && !whole) ||
        !std::isfinite(op.sample)) {
      return Bad(flag, value,
                 "expected a number of images per split (e.g. 200) or a fraction "
                 "in (0, 1) (e.g. 0.25)");
    }
  } else if (flag == "merge") {
    op.kind = DeriveOpKind::kMerge;
    RETURN_IF_ERROR(ParseDatasetRef(value).status());
    op.other = std::string(value);
  } else {
    return Status::InvalidInput("unknown derive operation --" + std::string(flag));
  }
  return op;
}

Json StepsToJson(const std::vector<DeriveStep>& steps) {
  Json out = Json::array();
  for (const DeriveStep& s : steps) {
    Json counts = Json::object();
    for (const auto& [k, v] : s.counts) counts[k] = v;
    out.push_back({{"op", s.op}, {"params", s.params}, {"counts", counts}});
  }
  return out;
}

std::vector<DeriveStep> StepsFromJson(const Json& j) {
  std::vector<DeriveStep> out;
  if (!j.is_array()) return out;
  for (const Json& js : j) {
    if (!js.is_object()) continue;
    DeriveStep s;
    s.op = js.value("op", "");
    s.params = js.value("params", Json::object());
    const Json counts = js.value("counts", Json::object());
    for (const auto& [k, v] : counts.items()) {
      if (v.is_number_integer()) s.counts[k] = v.get<int>();
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<DeriveResult> DeriveDataset(Workspace& ws, const DeriveOptions& options) {
  if (options.ops.empty()) {
    return Status::InvalidInput(
        "nothing to derive: give at least one operation (--fix-leakage, --resplit, "
        "--map-classes, --drop-classes, --drop-finding, --sample, --merge)");
  }
  ASSIGN_OR_RETURN(DatasetRef ref, ParseDatasetRef(options.from));
  ASSIGN_OR_RETURN(VersionInfo source, ResolveVersion(ws, ref));
  std::string name = options.name.empty() ? source.dataset : options.name;
  if (name != source.dataset) RETURN_IF_ERROR(CheckDatasetName(name));
  ASSIGN_OR_RETURN(Working w, LoadWorking(ws, source, options, true));
  const Manifest before = w.manifest;
  std::vector<SourceIssue> issues = source.issues;
  const derive_internal::CopyRule rule = derive_internal::CopyRuleOf(DefaultSuite());
  std::vector<ClassMap> maps_so_far;
  DeriveResult result;
  for (const DeriveOp& op : options.ops) {
    Counts counts;
    switch (op.kind) {
      case DeriveOpKind::kFixLeakage:
        counts = derive_internal::FixLeakage(w, op.leakage, rule);
        break;
      case DeriveOpKind::kResplit:
        counts = derive_internal::Resplit(w, op.ratio_train, op.ratio_val, op.ratio_test,
                                          options.seed, rule);
        break;
      case DeriveOpKind::kClassMap: {
        ASSIGN_OR_RETURN(ClassMapCounts c, ApplyClassMap(op.class_map, source.Ref(), w.manifest));
        counts = {{"boxes_renamed", c.boxes_renamed},
                  {"boxes_dropped", c.boxes_dropped},
                  {"classes_before", c.classes_before},
                  {"classes_after", c.classes_after}};
        maps_so_far.push_back(op.class_map);
        break;
      }
      case DeriveOpKind::kDropFinding: {
        auto report = LatestReport(ws, source);
        if (!report.ok() && report.status().code() == StatusCode::kNotFound) {
          return Status::InvalidInput("--drop-finding " + op.check + ": " + source.Ref() +
                                      " has not been validated; run `detops data validate " +
                                      source.Ref() + "` first");
        }
        if (!report.ok()) return report.status();
        ASSIGN_OR_RETURN(counts, derive_internal::DropFinding(w, *report, op.check, source.Ref()));
        break;
      }
      case DeriveOpKind::kSample:
        counts = derive_internal::Sample(w, op.sample, options.seed);
        break;
      case DeriveOpKind::kMerge: {
        ASSIGN_OR_RETURN(DatasetRef other_ref, ParseDatasetRef(op.other));
        ASSIGN_OR_RETURN(VersionInfo other, ResolveVersion(ws, other_ref));
        ASSIGN_OR_RETURN(Working ow, LoadWorking(ws, other, options, false));
        ASSIGN_OR_RETURN(counts, derive_internal::Merge(w, std::move(ow), maps_so_far, source.Ref(),
                                                        other.Ref()));
        for (SourceIssue issue : other.issues) {
          issue.file = other.Ref() + ":" + issue.file;
          issues.push_back(std::move(issue));
        }
        break;
      }
    }
    DeriveStep step{DeriveOpName(op.kind), OpParams(op, options.seed), counts};
    if (op.kind == DeriveOpKind::kMerge) step.params["other"] = op.other;
    result.steps.push_back(std::move(step));
    if (w.manifest.images.empty()) {
      return Status::InvalidInput("derive " + source.Ref() + ": no images left after --" +
                                  std::string(DeriveOpName(op.kind)));
    }
  }
  Manifest manifest = std::move(w.manifest);
  Canonicalize(manifest);
  issues = KeptIssues(issues, before, manifest);
  NewVersion nv;
  nv.dataset = name;
  nv.source = source.Ref();
  nv.format = "derive";
  nv.manifest = &manifest;
  nv.issues = &issues;
  nv.parent_id = source.id;
  nv.derivation = Json{{"from", source.Ref()}, {"operations", StepsToJson(result.steps)}}.dump();
  RETURN_IF_ERROR(ws.db().InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(result.created, RecordVersion(ws, nv, result.version));
    return Status::Ok();
  }));
  result.images = static_cast<int>(manifest.images.size());
  return result;
}

Result<std::vector<DeriveStep>> LoadDerivation(Workspace& ws, const VersionInfo& version) {
  ASSIGN_OR_RETURN(
      auto rows,
      ws.db().Query("SELECT derivation_json FROM dataset_versions WHERE id = ?", {version.id}));
  if (rows.empty() || rows[0].Text(0).empty()) return std::vector<DeriveStep>{};
  ASSIGN_OR_RETURN(Json j, ParseJson(rows[0].Text(0), "derivation of " + version.Ref()));
  return StepsFromJson(j.value("operations", Json::array()));
}

}  // namespace detops
