// Registry: model versions, aliases and the audit log in the workspace
// database; weights and reference profiles in the blob store.

#include "registry/registry.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "core/names.h"

namespace detops {
namespace {

Status CheckAlias(const std::string& alias) {
  if (!IsKnownAlias(alias)) {
    return Status::InvalidInput("alias '" + alias + "': expected staging or production");
  }
  return Status::Ok();
}

Json SpecToJson(const ModelSpec& s) {
  return {{"architecture", s.architecture},
          {"variant", s.variant},
          {"imgsz", s.imgsz},
          {"classes", s.classes}};
}

ModelSpec SpecFromJson(const Json& j) {
  ModelSpec s;
  s.architecture = j.value("architecture", "");
  s.variant = j.value("variant", "");
  s.imgsz = j.value("imgsz", 0);
  s.classes = j.value("classes", std::vector<std::string>{});
  return s;
}

constexpr const char* kVersionColumns =
    "name, version, run_id, weights_blob, profile_blob, config_json, metrics_json, "
    "dataset_version, dataset_validation, description, created_by, created_at";

Result<ModelVersion> VersionFromRow(const SqlRow& r) {
  ModelVersion v;
  v.name = r.Text(0);
  v.version = static_cast<int>(r.Int(1));
  v.run_id = r.Text(2);
  v.weights_blob = r.Text(3);
  v.profile_blob = r.Text(4);
  ASSIGN_OR_RETURN(Json spec, ParseJson(r.Text(5), "model_versions.config_json of " + v.Ref()));
  v.spec = SpecFromJson(spec);
  ASSIGN_OR_RETURN(Json metrics, ParseJson(r.Text(6), "model_versions.metrics_json of " + v.Ref()));
  for (const auto& [k, val] : metrics.items()) {
    if (val.is_number()) v.metrics[k] = val.get<double>();
  }
  v.dataset_version = r.Text(7);
  v.dataset_validation = r.Text(8);
  v.description = r.Text(9);
  v.created_by = r.Text(10);
  v.created_at = r.Text(11);
  return v;
}

AuditEntry AuditFromRow(const SqlRow& r) {
  AuditEntry e;
  e.seq = r.Int(0);
  e.name = r.Text(1);
  e.at = r.Text(2);
  e.actor = r.Text(3);
  e.action = r.Text(4);
  e.alias = r.Text(5);
  if (!r.IsNull(6)) e.from_version = static_cast<int>(r.Int(6));
  if (!r.IsNull(7)) e.to_version = static_cast<int>(r.Int(7));
  e.reason = r.Text(8);
  e.forced = r.Int(9) != 0;
  auto gates = ParseJson(r.Text(10), "model_audit.gates_json");
  if (gates.ok()) e.gates = GateReportFromJson(*gates);
  return e;
}

constexpr const char* kAuditColumns =
    "seq, name, at, actor, action, alias, from_version, to_version, reason, forced, gates_json";

SqlValue OptionalInt(const std::optional<int>& v) {
  if (!v) return nullptr;
  return int64_t{*v};
}

std::string VersionText(const std::optional<int>& v) {
  return v ? "version " + std::to_string(*v) : "none";
}

}  // namespace

Status AppendAuditEntry(Database& db, AuditEntry& e) {
  RETURN_IF_ERROR(
      db.Exec("INSERT INTO model_audit (name, at, actor, action, alias, from_version, to_version, "
              "reason, forced, gates_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
              {e.name, e.at, e.actor, e.action, e.alias, OptionalInt(e.from_version),
               OptionalInt(e.to_version), e.reason, int64_t{e.forced ? 1 : 0},
               GateReportToJson(e.gates).dump()}));
  ASSIGN_OR_RETURN(auto seq, db.Query("SELECT MAX(seq) FROM model_audit"));
  e.seq = seq.at(0).Int(0);
  return Status::Ok();
}

Result<ModelRef> ParseModelRef(std::string_view text) {
  ModelRef ref;
  size_t at = text.find('@');
  ref.name = std::string(text.substr(0, at));
  RETURN_IF_ERROR(CheckName("model", ref.name));
  if (at == std::string_view::npos) return ref;
  std::string_view rest = text.substr(at + 1);
  if (rest.empty()) {
    return Status::InvalidInput("model '" + std::string(text) +
                                "': expected NAME, NAME@VERSION or NAME@ALIAS");
  }
  if (std::isdigit(static_cast<unsigned char>(rest[0]))) {
    int v = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
    if (ec != std::errc() || end != rest.data() + rest.size() || v < 1) {
      return Status::InvalidInput("model '" + std::string(text) +
                                  "': the version must be a positive integer");
    }
    ref.version = v;
    return ref;
  }
  ref.alias = std::string(rest);
  RETURN_IF_ERROR(CheckAlias(ref.alias));
  return ref;
}

Result<std::unique_ptr<Registry>> Registry::Open(Workspace& ws) {
  RETURN_IF_ERROR(ws.db().Migrate());
  return std::unique_ptr<Registry>(new Registry(ws));
}

Result<ModelVersion> Registry::Register(const NewModelVersion& in) {
  RETURN_IF_ERROR(CheckName("model", in.name));
  std::error_code ec;
  if (!std::filesystem::is_regular_file(in.weights, ec)) {
    return Status::InvalidInput("weights file " + in.weights.string() + " does not exist");
  }
  if (in.spec.imgsz <= 0 || in.spec.classes.empty()) {
    return Status::InvalidInput("model " + in.name + ": the spec needs an input size and classes");
  }
  ASSIGN_OR_RETURN(std::string weights, ws_.blobs().PutFile(in.weights));
  ASSIGN_OR_RETURN(std::string profile, ws_.blobs().Put(in.profile_json));
  Json metrics = Json::object();
  for (const auto& [k, v] : in.metrics) metrics[k] = v;
  const std::string now = NowIso8601();
  int version = 0;
  Status s = ws_.db().InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(auto rows,
                     ws_.db().Query("SELECT COALESCE(MAX(version), 0) FROM model_versions "
                                    "WHERE name = ?",
                                    {in.name}));
    version = static_cast<int>(rows.at(0).Int(0)) + 1;
    return ws_.db().Exec("INSERT INTO model_versions (" + std::string(kVersionColumns) +
                             ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         {in.name, int64_t{version}, in.run_id, weights, profile,
                          SpecToJson(in.spec).dump(), metrics.dump(), in.dataset_version,
                          in.dataset_validation, in.description, in.created_by, now});
  });
  RETURN_IF_ERROR(s);
  return Get(ModelRef{in.name, version, ""});
}

Result<ModelVersion> Registry::Get(const std::string& ref) {
  ASSIGN_OR_RETURN(ModelRef r, ParseModelRef(ref));
  return Get(r);
}

Result<ModelVersion> Registry::Get(const ModelRef& ref) {
  int version = ref.version;
  if (!ref.alias.empty()) {
    ASSIGN_OR_RETURN(auto v, AliasVersion(ref.name, ref.alias));
    if (!v) return Status::NotFound("model " + ref.name + " has no " + ref.alias + " version");
    version = *v;
  }
  std::vector<SqlRow> rows;
  if (version > 0) {
    ASSIGN_OR_RETURN(rows, ws_.db().Query("SELECT " + std::string(kVersionColumns) +
                                              " FROM model_versions WHERE name = ? AND version = ?",
                                          {ref.name, int64_t{version}}));
  } else {
    ASSIGN_OR_RETURN(rows, ws_.db().Query("SELECT " + std::string(kVersionColumns) +
                                              " FROM model_versions WHERE name = ? "
                                              "ORDER BY version DESC LIMIT 1",
                                          {ref.name}));
  }
  if (rows.empty()) {
    return Status::NotFound("no model " + ref.name +
                            (version > 0 ? "@" + std::to_string(version) : "") +
                            " (detops models ls lists them)");
  }
  ASSIGN_OR_RETURN(ModelVersion v, VersionFromRow(rows[0]));
  ASSIGN_OR_RETURN(auto aliases,
                   ws_.db().Query("SELECT alias FROM model_aliases WHERE name = ? AND version = ? "
                                  "ORDER BY alias",
                                  {v.name, int64_t{v.version}}));
  for (const SqlRow& a : aliases) v.aliases.push_back(a.Text(0));
  return v;
}

Result<std::vector<ModelVersion>> Registry::List(const std::string& name) {
  std::vector<SqlRow> rows;
  const std::string select = "SELECT " + std::string(kVersionColumns) + " FROM model_versions";
  if (name.empty()) {
    ASSIGN_OR_RETURN(rows, ws_.db().Query(select + " ORDER BY name, version"));
  } else {
    ASSIGN_OR_RETURN(rows, ws_.db().Query(select + " WHERE name = ? ORDER BY version", {name}));
  }
  ASSIGN_OR_RETURN(auto aliases,
                   ws_.db().Query("SELECT name, version, alias FROM model_aliases ORDER BY alias"));
  std::vector<ModelVersion> out;
  for (const SqlRow& r : rows) {
    ASSIGN_OR_RETURN(ModelVersion v, VersionFromRow(r));
    for (const SqlRow& a : aliases) {
      if (a.Text(0) == v.name && a.Int(1) == v.version) v.aliases.push_back(a.Text(2));
    }
    out.push_back(std::move(v));
  }
  return out;
}

Result<std::optional<int>> Registry::AliasVersion(const std::string& name,
                                                  const std::string& alias) {
  ASSIGN_OR_RETURN(auto rows,
                   ws_.db().Query("SELECT version FROM model_aliases WHERE name = ? AND alias = ?",
                                  {name, alias}));
  if (rows.empty()) return std::optional<int>();
  return std::optional<int>(static_cast<int>(rows[0].Int(0)));
}

Result<AuditEntry> Registry::SetAlias(const AliasChange& c) {
  RETURN_IF_ERROR(CheckName("model", c.name));
  RETURN_IF_ERROR(CheckAlias(c.alias));
  AuditEntry entry;
  Status s = ws_.db().InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(auto exists,
                     ws_.db().Query("SELECT 1 FROM model_versions WHERE name = ? AND version = ?",
                                    {c.name, int64_t{c.to_version}}));
    if (exists.empty()) {
      return Status::NotFound("no model " + c.name + "@" + std::to_string(c.to_version));
    }
    // Read inside the write lock: this is what makes parallel promotions safe.
    ASSIGN_OR_RETURN(auto now, AliasVersion(c.name, c.alias));
    if (now != c.expected_from) {
      return Status::AlreadyExists(c.name + " " + c.alias + " moved from " +
                                   VersionText(c.expected_from) + " to " + VersionText(now) +
                                   " while this promotion was being checked; check again");
    }
    entry = {0,   c.name,       NowIso8601(), c.actor,  "promote", c.alias,
             now, c.to_version, c.reason,     c.forced, c.gates};
    RETURN_IF_ERROR(
        ws_.db().Exec("DELETE FROM model_aliases WHERE name = ? AND alias = ?", {c.name, c.alias}));
    RETURN_IF_ERROR(ws_.db().Exec(
        "INSERT INTO model_aliases (name, alias, version, updated_at) VALUES (?, ?, ?, ?)",
        {c.name, c.alias, int64_t{c.to_version}, entry.at}));
    return AppendAuditEntry(ws_.db(), entry);
  });
  RETURN_IF_ERROR(s);
  return entry;
}

Result<AuditEntry> Registry::Rollback(const std::string& name, const std::string& alias,
                                      const std::string& actor, const std::string& reason) {
  RETURN_IF_ERROR(CheckName("model", name));
  RETURN_IF_ERROR(CheckAlias(alias));
  AuditEntry entry;
  Status s = ws_.db().InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(auto rows, ws_.db().Query("SELECT " + std::string(kAuditColumns) +
                                                   " FROM model_audit WHERE name = ? AND alias = ? "
                                                   "ORDER BY seq",
                                               {name, alias}));
    // Replay the alias' history as a stack: a promotion pushes its version,
    // a rollback pops one.
    std::vector<int> stack;
    for (const SqlRow& r : rows) {
      AuditEntry e = AuditFromRow(r);
      if (e.action == "rollback") {
        if (!stack.empty()) stack.pop_back();
      } else if (e.to_version) {
        stack.push_back(*e.to_version);
      }
    }
    ASSIGN_OR_RETURN(auto now, AliasVersion(name, alias));
    if (!now) return Status::NotFound("model " + name + " has no " + alias + " version");
    if (stack.size() < 2) {
      return Status::NotFound("model " + name + " has no earlier " + alias +
                              " version to roll back to");
    }
    int target = stack[stack.size() - 2];
    entry = {0, name, NowIso8601(), actor, "rollback", alias, now, target, reason, false, {}};
    RETURN_IF_ERROR(
        ws_.db().Exec("UPDATE model_aliases SET version = ?, updated_at = ? WHERE name = ? AND "
                      "alias = ?",
                      {int64_t{target}, entry.at, name, alias}));
    return AppendAuditEntry(ws_.db(), entry);
  });
  RETURN_IF_ERROR(s);
  return entry;
}

Result<std::vector<AuditEntry>> Registry::History(const std::string& name) {
  ASSIGN_OR_RETURN(auto rows, ws_.db().Query("SELECT " + std::string(kAuditColumns) +
                                                 " FROM model_audit WHERE name = ? ORDER BY seq",
                                             {name}));
  std::vector<AuditEntry> out;
  for (const SqlRow& r : rows) out.push_back(AuditFromRow(r));
  return out;
}

Result<std::string> Registry::Profile(const ModelVersion& version) {
  return ws_.blobs().Get(version.profile_blob);
}

std::filesystem::path Registry::WeightsPath(const ModelVersion& version) const {
  return ws_.blobs().PathOf(version.weights_blob);
}

Json ModelVersionToJson(const ModelVersion& v) {
  Json metrics = Json::object();
  for (const auto& [k, val] : v.metrics) metrics[k] = val;
  return {{"name", v.name},
          {"version", v.version},
          {"ref", v.Ref()},
          {"aliases", v.aliases},
          {"run_id", v.run_id},
          {"weights_blob", v.weights_blob},
          {"profile_blob", v.profile_blob},
          {"spec", SpecToJson(v.spec)},
          {"metrics", metrics},
          {"dataset_version", v.dataset_version},
          {"dataset_validation", v.dataset_validation},
          {"description", v.description},
          {"created_by", v.created_by},
          {"created_at", v.created_at}};
}

Json AuditEntryToJson(const AuditEntry& e) {
  return {{"seq", e.seq},
          {"name", e.name},
          {"at", e.at},
          {"actor", e.actor},
          {"action", e.action},
          {"alias", e.alias},
          {"from_version", e.from_version ? Json(*e.from_version) : Json(nullptr)},
          {"to_version", e.to_version ? Json(*e.to_version) : Json(nullptr)},
          {"reason", e.reason},
          {"forced", e.forced},
          {"gates", GateReportToJson(e.gates)}};
}

}  // namespace detops
