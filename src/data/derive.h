#pragma once
// Deriving a dataset version from another: curation that fixes what
// validation finds. Each operation works on the whole version in the order
// given; the result is recorded as a new version whose parent is the source
// version and whose derivation (the operations, their parameters and what
// each changed) is stored with it. Part of the data module's interface,
// beside data/data.h.

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "data/class_map.h"
#include "data/data.h"

namespace detops {

// What --fix-leakage does with a group of copies that straddles splits.
enum class LeakagePolicy {
  kMove,  // every member moves to the group's majority split
  kDrop,  // members outside the majority split are dropped
};

enum class DeriveOpKind {
  kFixLeakage,   // one split per group of copies (same blob or near-duplicates)
  kResplit,      // new splits by ratio, one split per group of copies, seeded
  kClassMap,     // rename/merge and drop classes (ClassMap)
  kDropFinding,  // drop the images a check of the latest report flagged
  kSample,       // keep N images or a fraction per split, stratified by class
  kMerge,        // add another version's images, classes matched by name
};
const char* DeriveOpName(DeriveOpKind kind);  // "fix-leakage", "resplit", ...

struct DeriveOp {
  DeriveOpKind kind = DeriveOpKind::kFixLeakage;
  LeakagePolicy leakage = LeakagePolicy::kMove;                 // kFixLeakage
  double ratio_train = 0.8, ratio_val = 0.1, ratio_test = 0.1;  // kResplit
  ClassMap class_map;  // kClassMap; for kMerge, applied to the other version first
  std::string check;   // kDropFinding: an expectation type, e.g. "images_decode"
  double sample = 0;   // kSample: >= 1 images per split, in (0, 1) a fraction
  std::string other;   // kMerge: NAME[@V]
};

// Parses one command-line operation: `flag` without dashes ("fix-leakage",
// "resplit", "map-classes", "drop-classes", "drop-finding", "sample",
// "merge") and its value ("" when none; "drop" for fix-leakage;
// "train=0.8,val=0.1,test=0.1" for resplit, where omitted splits get 0).
// InvalidInput naming the flag, the value and what was expected.
Result<DeriveOp> ParseDeriveOp(std::string_view flag, std::string_view value);

struct DeriveOptions {
  std::string from;           // NAME or NAME@V (latest when no version)
  std::string name;           // the new version's dataset; empty: the source's
  std::vector<DeriveOp> ops;  // applied in this order; at least one
  uint64_t seed = 0;          // resplit and sample draw with it
  int threads = 2;            // for profiling images not yet profiled
  std::function<void(size_t done, size_t total)> progress;
};

// One applied operation: its name, parameters and what it changed (e.g.
// {"groups": 3, "moved": 4}), as recorded with the version.
struct DeriveStep {
  std::string op;
  Json params = Json::object();
  std::map<std::string, int> counts;
};
Json StepsToJson(const std::vector<DeriveStep>& steps);
std::vector<DeriveStep> StepsFromJson(const Json& j);

struct DeriveResult {
  VersionInfo version;  // the new version (or the equal latest one)
  std::vector<DeriveStep> steps;
  bool created = false;  // false: equal content already is the latest version
  int images = 0;
};

// Derives a new version. Errors: NotFound for an
// unknown version; InvalidInput for an operation that cannot apply (an
// unknown class, a check without a report or findings on images, classes
// that cannot be merged, no images left), naming the operation and why.
// Images not yet profiled are profiled (and cached) first.
Result<DeriveResult> DeriveDataset(Workspace& ws, const DeriveOptions& options);

// The operations a version was derived with; empty when it was not.
Result<std::vector<DeriveStep>> LoadDerivation(Workspace& ws, const VersionInfo& version);

// The derive command that fixes what `report` failed on, for a version
// `ref` ("cars@3"): "detops data derive cars@3 --fix-leakage" for leakage,
// "--drop-finding CHECK" for failed error-level checks whose findings name
// images; empty when derive cannot fix any failed error. The one source of
// the "fix:" hint printed where validation fails.
std::string DeriveFixCommand(const ValidationReport& report, const std::string& ref);

}  // namespace detops
