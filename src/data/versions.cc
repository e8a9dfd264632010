// Dataset version rows: naming, recording, listing, resolving.

#include <charconv>

#include "core/names.h"
#include "data/data.h"
#include "data/versions_internal.h"

namespace detops {
namespace {

constexpr const char* kVersionColumns =
    "SELECT v.id, d.name, v.version, v.manifest_sha, COALESCE(p.version, 0), v.source, v.format, "
    "v.created_at, v.validation_status, v.stats_json, v.issues_json, COALESCE(pd.name, '') FROM "
    "dataset_versions v JOIN datasets d ON d.id = v.dataset_id LEFT JOIN dataset_versions p ON "
    "p.id = v.parent_id LEFT JOIN datasets pd ON pd.id = p.dataset_id ";

VersionInfo RowToVersion(const SqlRow& r) {
  VersionInfo v;
  v.id = r.Int(0);
  v.dataset = r.Text(1);
  v.version = static_cast<int>(r.Int(2));
  v.manifest_sha = r.Text(3);
  v.parent_version = static_cast<int>(r.Int(4));
  v.source = r.Text(5);
  v.format = r.Text(6);
  v.created_at = r.Text(7);
  v.validation_status = r.Text(8);
  auto stats = ParseJson(r.Text(9), "stats");
  if (stats.ok()) v.stats = StatsFromJson(*stats);
  auto issues = ParseJson(r.Text(10), "issues");
  if (issues.ok()) v.issues = IssuesFromJson(*issues);
  v.parent_dataset = r.Text(11);
  return v;
}

}  // namespace

std::string DatasetRef::ToString() const {
  return version > 0 ? name + "@" + std::to_string(version) : name;
}

Status CheckDatasetName(std::string_view name) { return CheckName("dataset", name); }

Result<DatasetRef> ParseDatasetRef(std::string_view text) {
  DatasetRef ref;
  size_t at = text.find('@');
  ref.name = std::string(text.substr(0, at));
  // A leading '_' is refused only when a dataset is created: one named
  // before the rule was shared with models ('_cars') stays readable.
  std::string shared_rule_form = ref.name;
  if (!shared_rule_form.empty() && shared_rule_form[0] == '_') shared_rule_form[0] = 'x';
  if (!CheckName("dataset", shared_rule_form).ok()) RETURN_IF_ERROR(CheckDatasetName(ref.name));
  if (at != std::string_view::npos) {
    std::string_view v = text.substr(at + 1);
    if (v != "latest") {
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), ref.version);
      if (ec != std::errc() || p != v.data() + v.size() || ref.version <= 0) {
        return Status::InvalidInput("'" + std::string(text) +
                                    "': the version after '@' must be a positive number");
      }
    }
  }
  return ref;
}

Result<bool> RecordVersion(Workspace& ws, const NewVersion& v, VersionInfo& out) {
  std::string text = CanonicalManifestText(*v.manifest);
  ASSIGN_OR_RETURN(std::string sha, ws.blobs().Put(text));
  std::string now = NowIso8601();
  RETURN_IF_ERROR(ws.db().Exec(
      "INSERT INTO datasets (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
      {v.dataset, now}));
  ASSIGN_OR_RETURN(auto ds, ws.db().Query("SELECT id FROM datasets WHERE name = ?", {v.dataset}));
  int64_t dataset_id = ds.at(0).Int(0);
  ASSIGN_OR_RETURN(auto latest,
                   ws.db().Query("SELECT id, version, manifest_sha FROM dataset_versions WHERE "
                                 "dataset_id = ? ORDER BY version DESC LIMIT 1",
                                 {dataset_id}));
  std::string origins = v.origins ? OriginsToText(*v.origins) : "";
  if (!latest.empty() && latest[0].Text(2) == sha) {
    if (!origins.empty()) {  // a version recorded before origins were kept gets them
      RETURN_IF_ERROR(ws.db().Exec(
          "UPDATE dataset_versions SET origins_json = ? WHERE id = ? AND origins_json = ''",
          {origins, latest[0].Int(0)}));
    }
    ASSIGN_OR_RETURN(out, ResolveVersion(ws, {v.dataset, static_cast<int>(latest[0].Int(1))}));
    return false;
  }
  int64_t version = latest.empty() ? 1 : latest[0].Int(1) + 1;
  SqlValue parent = v.parent_id > 0  ? SqlValue(v.parent_id)
                    : latest.empty() ? SqlValue(nullptr)
                                     : SqlValue(latest[0].Int(0));
  RETURN_IF_ERROR(ws.db().Exec(
      "INSERT INTO dataset_versions (dataset_id, version, manifest_sha, parent_id, source, format, "
      "created_at, stats_json, issues_json, origins_json, derivation_json) VALUES (?, ?, ?, ?, ?, "
      "?, ?, ?, ?, ?, ?)",
      {dataset_id, version, sha, parent, v.source, v.format, now,
       StatsToJson(ComputeStats(*v.manifest)).dump(), IssuesToJson(*v.issues).dump(), origins,
       v.derivation}));
  ASSIGN_OR_RETURN(out, ResolveVersion(ws, {v.dataset, static_cast<int>(version)}));
  return true;
}

Result<std::vector<VersionInfo>> ListVersions(Workspace& ws, const std::string& name) {
  std::string sql = std::string(kVersionColumns) + (name.empty() ? "" : "WHERE d.name = ? ") +
                    "ORDER BY d.name, v.version DESC";
  std::vector<SqlValue> params;
  if (!name.empty()) params.push_back(name);
  ASSIGN_OR_RETURN(auto rows, ws.db().Query(sql, params));
  std::vector<VersionInfo> out;
  for (const SqlRow& r : rows) out.push_back(RowToVersion(r));
  return out;
}

Result<VersionInfo> ResolveVersion(Workspace& ws, const DatasetRef& ref) {
  std::string sql = std::string(kVersionColumns) + "WHERE d.name = ? " +
                    (ref.version > 0 ? "AND v.version = ?" : "ORDER BY v.version DESC LIMIT 1");
  std::vector<SqlValue> params = {ref.name};
  if (ref.version > 0) params.push_back(int64_t{ref.version});
  ASSIGN_OR_RETURN(auto rows, ws.db().Query(sql, params));
  if (rows.empty()) {
    ASSIGN_OR_RETURN(auto ds, ws.db().Query("SELECT 1 FROM datasets WHERE name = ?", {ref.name}));
    if (ds.empty()) return Status::NotFound("no dataset named '" + ref.name + "'");
    return Status::NotFound("dataset '" + ref.name + "' has no version " +
                            std::to_string(ref.version));
  }
  return RowToVersion(rows[0]);
}

Result<Manifest> LoadManifest(Workspace& ws, const VersionInfo& version) {
  ASSIGN_OR_RETURN(std::string text, ws.blobs().Get(version.manifest_sha));
  if (Sha256Hex(text) != version.manifest_sha) {
    return Status::Corruption("manifest of " + version.Ref() + " does not match its hash");
  }
  ASSIGN_OR_RETURN(Json j, ParseJson(text, "manifest of " + version.Ref()));
  return ManifestFromJson(j);
}

Result<BoxOrigins> LoadOrigins(Workspace& ws, const VersionInfo& version) {
  ASSIGN_OR_RETURN(
      auto rows,
      ws.db().Query("SELECT origins_json FROM dataset_versions WHERE id = ?", {version.id}));
  if (rows.empty()) return BoxOrigins{};
  return OriginsFromText(rows[0].Text(0));
}

}  // namespace detops
