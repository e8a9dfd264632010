// Tracker: runs, params, tags, artifacts and metric writes in the workspace
// database.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>

#include "track/track.h"

namespace detops {
namespace {

// Rows per multi-row INSERT: 5 parameters a row stays under SQLite's
// historical limit of 999 bound parameters per statement.
constexpr size_t kRowsPerInsert = 199;

std::string NewRunId() {
  std::random_device rd;
  uint64_t v = (static_cast<uint64_t>(rd()) << 32 | rd()) & 0xffffffffffffULL;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%012llx", static_cast<unsigned long long>(v));
  return buf;
}

bool IsRunIdPrefix(std::string_view s) {
  return s.size() >= 4 && s.size() <= 12 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 32; });
}

Status CheckKind(const std::string& kind) {
  bool ok = !kind.empty() && kind.size() <= 32 && std::all_of(kind.begin(), kind.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
  if (!ok) return Status::InvalidInput("run kind '" + kind + "': expected [a-z0-9_-]{1,32}");
  return Status::Ok();
}

Status CheckName(const std::string& name) {
  if (name.empty() || name.size() > 200 || HasControl(name) ||
      name.find_first_of(" \t") != std::string::npos) {
    return Status::InvalidInput("run name '" + name +
                                "': expected 1-200 characters without spaces");
  }
  if (name.size() == 12 && IsRunIdPrefix(name)) {
    return Status::InvalidInput("run name '" + name + "' looks like a run id; choose another");
  }
  return Status::Ok();
}

Status CheckKeys(const std::map<std::string, std::string>& m, const char* what) {
  for (const auto& [k, v] : m) {
    if (k.empty() || k.size() > 250 || HasControl(k) ||
        k.find_first_of(" \t`") != std::string::npos) {
      return Status::InvalidInput(std::string(what) + " key '" + k +
                                  "': expected 1-250 characters without spaces or backquotes");
    }
  }
  return Status::Ok();
}

Status CheckArtifactName(const std::string& name) {
  auto bad = [&](const char* why) {
    return Status::InvalidInput("artifact name '" + name + "': " + why);
  };
  if (name.empty() || name.size() > 512) return bad("expected 1-512 characters");
  if (HasControl(name) || name.find('\\') != std::string::npos) return bad("control or '\\'");
  if (name.front() == '/') return bad("must be a relative path");
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    if (slash == std::string::npos) slash = name.size();
    std::string_view part(name.data() + start, slash - start);
    if (part.empty() || part == "." || part == "..") return bad("empty, '.' or '..' component");
    start = slash + 1;
  }
  return Status::Ok();
}

double RealOrNan(const SqlRow& r, size_t i) {
  return r.IsNull(i) ? std::numeric_limits<double>::quiet_NaN() : r.Real(i);
}

SqlValue NullIfNan(double v) { return std::isnan(v) ? SqlValue(nullptr) : SqlValue(v); }

std::string InsertMetricsSql(size_t rows) {
  std::string sql = "INSERT INTO run_metrics (run_id, key, step, value, time_ms) VALUES ";
  for (size_t i = 0; i < rows; ++i) sql += i ? ",(?,?,?,?,?)" : "(?,?,?,?,?)";
  return sql;
}

}  // namespace

Result<std::unique_ptr<Tracker>> Tracker::Open(Workspace& ws) {
  // The runs table comes with migration 2; a workspace opened by an older
  // binary would lack it.
  ASSIGN_OR_RETURN(auto rows, ws.db().Query("SELECT COUNT(*) FROM runs"));
  (void)rows;
  return std::unique_ptr<Tracker>(new Tracker(ws));
}

Result<std::string> Tracker::ResolveId(const std::string& ref) {
  Database& db = ws_.db();
  if (ref.empty()) return Status::InvalidInput("empty run reference");
  ASSIGN_OR_RETURN(auto by_id, db.Query("SELECT id FROM runs WHERE id = ?", {ref}));
  if (!by_id.empty()) return by_id[0].Text(0);
  ASSIGN_OR_RETURN(auto by_name,
                   db.Query("SELECT id, kind FROM runs WHERE name = ? ORDER BY seq", {ref}));
  if (by_name.size() == 1) return by_name[0].Text(0);
  if (by_name.size() > 1) {
    std::string c;
    for (const SqlRow& r : by_name) c += (c.empty() ? "" : ", ") + r.Text(1) + " run " + r.Text(0);
    return Status::InvalidInput("run name '" + ref + "' is ambiguous: " + c + "; use the id");
  }
  if (IsRunIdPrefix(ref)) {
    ASSIGN_OR_RETURN(auto by_prefix, db.Query("SELECT id, name FROM runs WHERE id LIKE ? ORDER BY "
                                              "seq",
                                              {ref + "%"}));
    if (by_prefix.size() == 1) return by_prefix[0].Text(0);
    if (by_prefix.size() > 1) {
      std::string c;
      for (const SqlRow& r : by_prefix)
        c += (c.empty() ? "" : ", ") + r.Text(0) + " (" + r.Text(1) + ")";
      return Status::InvalidInput("run id prefix '" + ref + "' is ambiguous: " + c);
    }
  }
  return Status::NotFound("no run with id, name or id prefix '" + ref + "'");
}

Result<RunInfo> Tracker::CreateRun(const NewRun& spec) {
  RETURN_IF_ERROR(CheckKind(spec.kind));
  if (!spec.name.empty()) RETURN_IF_ERROR(CheckName(spec.name));
  RETURN_IF_ERROR(CheckKeys(spec.params, "param"));
  RETURN_IF_ERROR(CheckKeys(spec.tags, "tag"));
  std::string parent;
  if (!spec.parent_run.empty()) {
    auto p = ResolveId(spec.parent_run);
    if (!p.ok()) return p.status().WithContext("parent run");
    parent = *p;
  }
  Database& db = ws_.db();
  std::string id;
  const std::string env = EnvironmentToJson(spec.env).dump();
  Status s = db.InTransaction([&]() -> Status {
    for (int attempt = 0;; ++attempt) {
      id = NewRunId();
      ASSIGN_OR_RETURN(auto taken, db.Query("SELECT 1 FROM runs WHERE id = ?", {id}));
      if (taken.empty()) break;
      if (attempt == 10) return Status::Internal("cannot draw a fresh run id");
    }
    ASSIGN_OR_RETURN(auto seq_rows, db.Query("SELECT COALESCE(MAX(seq), 0) + 1 FROM runs"));
    int64_t seq = seq_rows[0].Int(0);
    std::string name = spec.name;
    if (name.empty()) {
      ASSIGN_OR_RETURN(auto n, db.Query("SELECT COUNT(*) FROM runs WHERE kind = ?", {spec.kind}));
      for (int64_t i = n[0].Int(0) + 1;; ++i) {
        name = spec.kind + "-" + std::to_string(i);
        ASSIGN_OR_RETURN(
            auto t, db.Query("SELECT 1 FROM runs WHERE kind = ? AND name = ?", {spec.kind, name}));
        if (t.empty()) break;
      }
    } else {
      ASSIGN_OR_RETURN(
          auto t, db.Query("SELECT id FROM runs WHERE kind = ? AND name = ?", {spec.kind, name}));
      if (!t.empty()) {
        return Status::AlreadyExists("a " + spec.kind + " run named '" + name +
                                     "' already exists (id " + t[0].Text(0) + ")");
      }
    }
    RETURN_IF_ERROR(db.Exec(
        "INSERT INTO runs (id, seq, name, kind, status, created_at, ended_at, dataset_version, "
        "parent_run, env_json) VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, ?)",
        {id, seq, name, spec.kind, std::string("running"), NowIso8601(), spec.dataset_version,
         parent, env}));
    for (const auto& [k, v] : spec.params) {
      RETURN_IF_ERROR(
          db.Exec("INSERT INTO run_params (run_id, key, value) VALUES (?, ?, ?)", {id, k, v}));
    }
    for (const auto& [k, v] : spec.tags) {
      RETURN_IF_ERROR(
          db.Exec("INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?)", {id, k, v}));
    }
    return Status::Ok();
  });
  RETURN_IF_ERROR(s);
  return GetRun(id);
}

Status Tracker::SetStatus(const std::string& run, RunStatus status) {
  ASSIGN_OR_RETURN(std::string id, ResolveId(run));
  Database& db = ws_.db();
  return db.InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(auto rows, db.Query("SELECT status, ended_at FROM runs WHERE id = ?", {id}));
    if (rows.empty()) return Status::NotFound("run " + id + " vanished");
    RunStatus old = ParseRunStatus(rows[0].Text(0)).value_or(RunStatus::kRunning);
    if (old == status) return Status::Ok();
    if (IsTerminal(old) && IsTerminal(status)) {
      return Status::InvalidInput("run " + id + " already " + RunStatusName(old) + " at " +
                                  rows[0].Text(1) + "; cannot mark it " + RunStatusName(status));
    }
    std::string ended = IsTerminal(status) ? NowIso8601() : "";
    return db.Exec("UPDATE runs SET status = ?, ended_at = ? WHERE id = ?",
                   {std::string(RunStatusName(status)), ended, id});
  });
}

Status Tracker::SetTags(const std::string& run, const std::map<std::string, std::string>& tags) {
  RETURN_IF_ERROR(CheckKeys(tags, "tag"));
  ASSIGN_OR_RETURN(std::string id, ResolveId(run));
  Database& db = ws_.db();
  return db.InTransaction([&]() -> Status {
    for (const auto& [k, v] : tags) {
      RETURN_IF_ERROR(db.Exec(
          "INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?) ON CONFLICT (run_id, key) "
          "DO UPDATE SET value = excluded.value",
          {id, k, v}));
    }
    return Status::Ok();
  });
}

Status Tracker::LogParams(const std::string& run,
                          const std::map<std::string, std::string>& params) {
  RETURN_IF_ERROR(CheckKeys(params, "param"));
  ASSIGN_OR_RETURN(std::string id, ResolveId(run));
  Database& db = ws_.db();
  return db.InTransaction([&]() -> Status {
    for (const auto& [k, v] : params) {
      ASSIGN_OR_RETURN(
          auto old, db.Query("SELECT value FROM run_params WHERE run_id = ? AND key = ?", {id, k}));
      if (!old.empty()) {
        if (old[0].Text(0) == v) continue;
        return Status::AlreadyExists("run " + id + ": param '" + k + "' is already '" +
                                     old[0].Text(0) + "'; params are immutable (got '" + v + "')");
      }
      RETURN_IF_ERROR(
          db.Exec("INSERT INTO run_params (run_id, key, value) VALUES (?, ?, ?)", {id, k, v}));
    }
    return Status::Ok();
  });
}

Status Tracker::RecordArtifact(const std::string& id, const std::string& name,
                               const std::string& sha, int64_t size) {
  return ws_.db().Exec(
      "INSERT INTO run_artifacts (run_id, name, blob, size, created_at) VALUES (?, ?, ?, ?, ?) "
      "ON CONFLICT (run_id, name) DO UPDATE SET blob = excluded.blob, size = excluded.size, "
      "created_at = excluded.created_at",
      {id, name, sha, size, NowIso8601()});
}

Status Tracker::LogArtifact(const std::string& run, const std::string& name,
                            const std::filesystem::path& file) {
  RETURN_IF_ERROR(CheckArtifactName(name));
  ASSIGN_OR_RETURN(std::string id, ResolveId(run));
  std::error_code ec;
  auto size = std::filesystem::file_size(file, ec);
  if (ec) return Status::NotFound(file.string() + ": cannot read artifact: " + ec.message());
  ASSIGN_OR_RETURN(std::string sha, ws_.blobs().PutFile(file));
  return RecordArtifact(id, name, sha, static_cast<int64_t>(size));
}

Status Tracker::LogArtifactBytes(const std::string& run, const std::string& name,
                                 std::string_view bytes) {
  RETURN_IF_ERROR(CheckArtifactName(name));
  ASSIGN_OR_RETURN(std::string id, ResolveId(run));
  ASSIGN_OR_RETURN(std::string sha, ws_.blobs().Put(bytes));
  return RecordArtifact(id, name, sha, static_cast<int64_t>(bytes.size()));
}

Status Tracker::LogMetrics(const std::string& run_id, const std::vector<MetricPoint>& points) {
  if (points.empty()) return Status::Ok();
  // Per-key summary of this batch, merged into run_metric_summary below.
  struct Agg {
    int64_t n = 0, last_step = 0;
    double last = 0, min = std::numeric_limits<double>::quiet_NaN(), max = min;
  };
  std::map<std::string_view, Agg> agg;
  for (const MetricPoint& p : points) {
    Agg& a = agg[p.key];
    if (a.n == 0 || p.step >= a.last_step) {
      a.last_step = p.step;
      a.last = p.value;
    }
    ++a.n;
    if (!std::isnan(p.value)) {
      if (std::isnan(a.min) || p.value < a.min) a.min = p.value;
      if (std::isnan(a.max) || p.value > a.max) a.max = p.value;
    }
  }
  static const std::string kFullInsert = InsertMetricsSql(kRowsPerInsert);
  Database& db = ws_.db();
  return db.InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(auto exists, db.Query("SELECT 1 FROM runs WHERE id = ?", {run_id}));
    if (exists.empty()) return Status::NotFound("no run with id '" + run_id + "'");
    std::vector<SqlValue> params;
    params.reserve(kRowsPerInsert * 5);
    for (size_t i = 0; i < points.size(); i += kRowsPerInsert) {
      size_t n = std::min(kRowsPerInsert, points.size() - i);
      params.clear();
      for (size_t j = i; j < i + n; ++j) {
        const MetricPoint& p = points[j];
        params.emplace_back(run_id);
        params.emplace_back(p.key);
        params.emplace_back(p.step);
        params.push_back(NullIfNan(p.value));
        params.emplace_back(p.time_ms);
      }
      RETURN_IF_ERROR(db.Exec(n == kRowsPerInsert ? kFullInsert : InsertMetricsSql(n), params));
    }
    for (const auto& [key, a] : agg) {
      RETURN_IF_ERROR(db.Exec(
          "INSERT INTO run_metric_summary (run_id, key, points, last_step, last_value, min_value, "
          "max_value) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, key) DO UPDATE SET "
          "points = run_metric_summary.points + excluded.points, "
          "last_value = CASE WHEN excluded.last_step >= run_metric_summary.last_step "
          "THEN excluded.last_value ELSE run_metric_summary.last_value END, "
          "last_step = CASE WHEN excluded.last_step >= run_metric_summary.last_step "
          "THEN excluded.last_step ELSE run_metric_summary.last_step END, "
          "min_value = CASE WHEN run_metric_summary.min_value IS NULL OR excluded.min_value < "
          "run_metric_summary.min_value THEN excluded.min_value ELSE run_metric_summary.min_value "
          "END, "
          "max_value = CASE WHEN run_metric_summary.max_value IS NULL OR excluded.max_value > "
          "run_metric_summary.max_value THEN excluded.max_value ELSE run_metric_summary.max_value "
          "END",
          {run_id, std::string(key), a.n, a.last_step, NullIfNan(a.last), NullIfNan(a.min),
           NullIfNan(a.max)}));
    }
    return Status::Ok();
  });
}

Result<std::vector<RunInfo>> Tracker::LoadRuns(const std::string& run_id) {
  Database& db = ws_.db();
  // One query per table; a run id narrows each to that run.
  const bool one = !run_id.empty();
  std::vector<SqlValue> p;
  if (one) p.push_back(run_id);
  auto where = [&](const char* col) {
    return one ? std::string(" WHERE ") + col + " = ?" : std::string();
  };
  ASSIGN_OR_RETURN(auto rows, db.Query("SELECT id, seq, name, kind, status, created_at, ended_at, "
                                       "dataset_version, parent_run, env_json FROM runs" +
                                           where("id") + " ORDER BY seq",
                                       p));
  std::vector<RunInfo> runs;
  std::map<std::string, size_t> index;
  for (const SqlRow& r : rows) {
    RunInfo info;
    info.id = r.Text(0);
    info.seq = r.Int(1);
    info.name = r.Text(2);
    info.kind = r.Text(3);
    info.status = ParseRunStatus(r.Text(4)).value_or(RunStatus::kRunning);
    info.created_at = r.Text(5);
    info.ended_at = r.Text(6);
    info.dataset_version = r.Text(7);
    info.parent_run = r.Text(8);
    auto env = ParseJson(r.Text(9), "env of run " + info.id);
    if (env.ok()) info.env = EnvironmentFromJson(*env);
    index[info.id] = runs.size();
    runs.push_back(std::move(info));
  }
  if (runs.empty()) return runs;
  auto each = [&](const std::string& sql, auto&& fn) -> Status {
    ASSIGN_OR_RETURN(auto rs, db.Query(sql, p));
    for (const SqlRow& r : rs) {
      auto it = index.find(r.Text(0));
      if (it != index.end()) fn(runs[it->second], r);
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(each("SELECT run_id, key, value FROM run_params" + where("run_id"),
                       [](RunInfo& i, const SqlRow& r) { i.params[r.Text(1)] = r.Text(2); }));
  RETURN_IF_ERROR(each("SELECT run_id, key, value FROM run_tags" + where("run_id"),
                       [](RunInfo& i, const SqlRow& r) { i.tags[r.Text(1)] = r.Text(2); }));
  RETURN_IF_ERROR(
      each("SELECT run_id, key, last_value FROM run_metric_summary" + where("run_id"),
           [](RunInfo& i, const SqlRow& r) { i.final_metrics[r.Text(1)] = RealOrNan(r, 2); }));
  RETURN_IF_ERROR(each("SELECT run_id, name, blob, size, created_at FROM run_artifacts" +
                           where("run_id") + " ORDER BY name",
                       [](RunInfo& i, const SqlRow& r) {
                         i.artifacts.push_back({r.Text(1), r.Text(2), r.Int(3), r.Text(4)});
                       }));
  return runs;
}

Result<RunInfo> Tracker::GetRun(const std::string& ref) {
  ASSIGN_OR_RETURN(std::string id, ResolveId(ref));
  ASSIGN_OR_RETURN(auto runs, LoadRuns(id));
  if (runs.empty()) return Status::NotFound("no run with id '" + id + "'");
  return std::move(runs[0]);
}

Result<std::vector<MetricPoint>> Tracker::MetricHistory(const std::string& run,
                                                        const std::string& key) {
  ASSIGN_OR_RETURN(std::string id, ResolveId(run));
  ASSIGN_OR_RETURN(auto rows, ws_.db().Query("SELECT step, value, time_ms FROM run_metrics WHERE "
                                             "run_id = ? AND key = ? ORDER BY step, time_ms",
                                             {id, key}));
  std::vector<MetricPoint> out;
  out.reserve(rows.size());
  for (const SqlRow& r : rows) out.push_back({key, r.Int(0), RealOrNan(r, 1), r.Int(2)});
  return out;
}

Result<std::vector<MetricSummary>> Tracker::MetricSummaries(const std::string& run) {
  ASSIGN_OR_RETURN(std::string id, ResolveId(run));
  ASSIGN_OR_RETURN(auto rows, ws_.db().Query("SELECT key, points, last_step, last_value, "
                                             "min_value, max_value FROM run_metric_summary WHERE "
                                             "run_id = ? ORDER BY key",
                                             {id}));
  std::vector<MetricSummary> out;
  for (const SqlRow& r : rows) {
    out.push_back(
        {r.Text(0), r.Int(1), r.Int(2), RealOrNan(r, 3), RealOrNan(r, 4), RealOrNan(r, 5)});
  }
  return out;
}

Result<std::vector<RunInfo>> Tracker::ListRuns(const RunQuery& query) {
  // Parse first: a bad filter is reported without touching the database.
  ASSIGN_OR_RETURN(RunSelection selection, RunSelection::Parse(query));
  ASSIGN_OR_RETURN(auto runs, LoadRuns(""));
  return selection.Apply(std::move(runs));
}

}  // namespace detops
