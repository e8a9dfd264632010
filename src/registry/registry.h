#pragma once
// Public header of the registry module: model versions and the aliases that
// put them in staging and production.
//
// A model version (NAME@V) is immutable: weights blob, architecture, class
// map, input size, test-split metrics, dataset version, run, and a reference
// profile of its data (a JSON blob that monitoring compares live traffic
// with). Versions are numbered 1, 2, ... per name.
//
// Aliases ("staging", "production") point at one version each; a version
// may hold several. Every alias change is an audit entry (who, when, from,
// to, why, gate results). Alias changes are transactions that check the
// alias still points where the caller's gates were computed against, so
// that promotions from several processes at once cannot interleave into a
// state nobody checked (tables model_versions, model_aliases, model_audit;
// migration 3).
//
// Promotion policies (YAML) and the gate check are pure functions below;
// evaluating a model to feed them is the pipeline's job.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/core.h"
#include "store/store.h"

namespace detops {

// What a server needs to run the weights.
struct ModelSpec {
  std::string architecture = "detops-anchor-free";
  std::string variant;  // "n", "s"
  int imgsz = 0;
  std::vector<std::string> classes;
  bool operator==(const ModelSpec&) const = default;
};

struct NewModelVersion {
  std::string name;  // CheckName (core/names.h): the rule dataset names follow
  std::string run_id;
  std::filesystem::path weights;  // copied into the blob store
  std::string profile_json;       // the reference profile (stored as a blob)
  ModelSpec spec;
  // Test-split figures without the "test/" prefix: map, map50, recall,
  // latency_p95_ms, ap50/<class>, ...
  std::map<std::string, double> metrics;
  std::string dataset_version;     // "cars@3"
  std::string dataset_validation;  // "passed", "failed", "unvalidated"
  std::string description;
  std::string created_by;
};

struct ModelVersion {
  std::string name;
  int version = 0;
  std::string run_id, weights_blob, profile_blob;
  ModelSpec spec;
  std::map<std::string, double> metrics;
  std::string dataset_version, dataset_validation, description, created_by, created_at;
  std::vector<std::string> aliases;  // held now, sorted
  std::string Ref() const { return name + "@" + std::to_string(version); }
};

// NAME (the latest version), NAME@V, or NAME@ALIAS.
struct ModelRef {
  std::string name;
  int version = 0;    // 0: not given
  std::string alias;  // "" unless NAME@ALIAS
};
Result<ModelRef> ParseModelRef(std::string_view text);

// The aliases the registry knows.
inline constexpr const char* kStaging = "staging";
inline constexpr const char* kProduction = "production";
bool IsKnownAlias(std::string_view alias);

// ---- promotion policy and gates ----

// The gates one target alias applies.
struct TargetPolicy {
  std::map<std::string, double> floors;          // metric -> lowest accepted value
  std::map<std::string, double> max_regression;  // metric -> largest accepted drop against
                                                 // production on the same test set
  double max_latency_p95_ms = 0;                 // 0: no latency SLA
  bool require_validation = true;                // the dataset version passed validation
                                                 // (warnings allowed)
};

struct PromotionPolicy {
  TargetPolicy staging, production;
  const TargetPolicy& For(std::string_view alias) const {
    return alias == kProduction ? production : staging;
  }
};

// Floors: staging map50 >= 0.1; production map50 >= 0.25 and recall >=
// 0.25, no drop of map50 or map beyond 0.01 against production, p95 latency
// under 250 ms at the serving size; both require a validated dataset.
PromotionPolicy DefaultPromotionPolicy();

// YAML: top-level keys apply to both targets, a `staging:` or `production:`
// mapping overrides them for one:
//   floors: {map50: 0.5, recall: 0.4}
//   max_regression: {map50: 0.01}
//   max_latency_p95_ms: 100
//   require_validation: true
//   production: {floors: {map50: 0.7}}
// Keys not given keep the default policy's values. Unknown keys, wrong
// types and negative numbers are errors naming the file, line and key.
Result<PromotionPolicy> ParsePromotionPolicy(std::string_view yaml, const std::string& source);
Result<PromotionPolicy> LoadPromotionPolicy(const std::filesystem::path& file);

struct GateInputs {
  std::map<std::string, double> candidate;  // the candidate on its test set
  // The current production version on the same test set; nullopt when
  // there is none (or it is the candidate).
  std::optional<std::map<std::string, double>> production;
  std::string production_ref;  // "cars@2"
  std::string dataset_validation;
};

struct GateCheck {
  std::string gate;      // "floor map50", "regression map50", "latency p95", "dataset validation"
  std::string required;  // ">= 0.500", "<= 250 ms", "passed"
  std::string actual;    // "0.612", "31.2 ms", "failed"
  bool passed = false;
  // How far from the limit, in the metric's units: positive when passed
  // with room, negative by how much it failed; 0 for yes/no gates.
  double margin = 0;
};

struct GateReport {
  std::vector<GateCheck> checks;
  bool passed() const;
};

// Pure: applies `policy` to `inputs`. A metric the policy names but the
// candidate lacks fails its gate ("missing").
GateReport CheckGates(const TargetPolicy& policy, const GateInputs& inputs);
Json GateReportToJson(const GateReport& report);
GateReport GateReportFromJson(const Json& j);

// ---- audit ----

struct AuditEntry {
  int64_t seq = 0;
  std::string name, at, actor;
  std::string action;  // "promote", "rollback"
  std::string alias;
  std::optional<int> from_version, to_version;
  std::string reason;
  bool forced = false;
  GateReport gates;
};

// Appends `entry` to the audit log and sets its seq. For events that move
// no alias (a rollout's decisions, monitor/rollout.h): call it inside the
// caller's transaction on the workspace's database, so that the entry
// commits with the change it records, and leave entry.alias "" (Rollback
// replays the entries of its alias).
Status AppendAuditEntry(Database& db, AuditEntry& entry);

struct AliasChange {
  std::string name;
  std::string alias;
  int to_version = 0;
  // The version the caller saw at the alias when it checked its gates
  // (nullopt: none). If the alias points elsewhere by the time of the
  // write, the change is refused with AlreadyExists (a conflict; promote
  // again).
  std::optional<int> expected_from;
  std::string actor, reason;
  bool forced = false;
  GateReport gates;
};

// Versions, aliases and the audit log of a workspace. Thread-safe; safe
// across processes (every write is one transaction). The workspace must
// outlive the registry.
class Registry {
 public:
  static Result<std::unique_ptr<Registry>> Open(Workspace& ws);

  // Makes NAME@(latest+1). InvalidInput for a bad name or missing weights.
  Result<ModelVersion> Register(const NewModelVersion& version);
  // NotFound for an unknown name, version or unset alias.
  Result<ModelVersion> Get(const ModelRef& ref);
  Result<ModelVersion> Get(const std::string& ref);
  // Every version of `name` (every model when empty), by name then version.
  Result<std::vector<ModelVersion>> List(const std::string& name = "");
  // The version an alias points at, nullopt when unset.
  Result<std::optional<int>> AliasVersion(const std::string& name, const std::string& alias);
  // Moves an alias (see AliasChange) and records the audit entry.
  Result<AuditEntry> SetAlias(const AliasChange& change);
  // Points `alias` back at the version it held before the current one (the
  // promotions it received, minus those already rolled back). NotFound
  // when there is no earlier version.
  Result<AuditEntry> Rollback(const std::string& name, const std::string& alias,
                              const std::string& actor, const std::string& reason);
  // Oldest first.
  Result<std::vector<AuditEntry>> History(const std::string& name);
  // The reference profile of a version (its JSON text).
  Result<std::string> Profile(const ModelVersion& version);
  // Local path of a version's weights.
  std::filesystem::path WeightsPath(const ModelVersion& version) const;

 private:
  explicit Registry(Workspace& ws) : ws_(ws) {}
  Workspace& ws_;
};

Json ModelVersionToJson(const ModelVersion& v);
Json AuditEntryToJson(const AuditEntry& e);

}  // namespace detops
