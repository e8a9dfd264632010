// Rollouts: the stored row, its stage machine, routing and JSON. The
// comparison of the arms is in rollout_compare.cc.

#include "monitor/rollout.h"

#include <cmath>
#include <limits>

#include "core/names.h"
#include "monitor/monitor_internal.h"

namespace detops {
namespace {

constexpr const char* kColumns =
    "SELECT id, model_name, candidate_version, baseline_version, mode, stages_json, stage, share, "
    "state, reason, policy_json, report_json, actor, started_at_ms, stage_started_at_ms, "
    "finished_at, finished_at_ms FROM rollouts ";

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string Percent(double share) { return Fixed(share * 100, share * 100 < 1 ? 1 : 0) + " %"; }

Json ArmToJson(const ArmFigures& a) {
  return {{"model_version", a.model_version},
          {"requests", a.requests},
          {"failures", a.failures},
          {"error_rate", a.error_rate},
          {"p95_ms", a.p95_ms},
          {"mean_score", a.mean_score},
          {"low_confidence_share", a.low_confidence_share},
          {"detections_per_image", a.detections_per_image},
          {"labelled", a.labelled},
          {"map50", a.map50},
          {"agreement", a.agreement}};
}

ArmFigures ArmFromJson(const Json& j) {
  ArmFigures a;
  if (!j.is_object()) return a;
  a.model_version = j.value("model_version", 0);
  a.requests = j.value("requests", int64_t{0});
  a.failures = j.value("failures", int64_t{0});
  a.error_rate = j.value("error_rate", 0.0);
  a.p95_ms = j.value("p95_ms", 0.0);
  a.mean_score = j.value("mean_score", 0.0);
  a.low_confidence_share = j.value("low_confidence_share", 0.0);
  a.detections_per_image = j.value("detections_per_image", 0.0);
  a.labelled = j.value("labelled", int64_t{0});
  a.map50 = j.value("map50", -1.0);
  a.agreement = j.value("agreement", -1.0);
  return a;
}

RolloutReport ReportFromJson(const Json& j) {
  RolloutReport r;
  if (!j.is_object()) return r;
  r.production = ArmFromJson(j.value("production", Json()));
  r.candidate = ArmFromJson(j.value("candidate", Json()));
  r.failed = j.value("failed", std::vector<std::string>{});
  r.passed = j.value("passed", std::vector<std::string>{});
  r.skipped = j.value("skipped", std::vector<std::string>{});
  r.checks = GateReportFromJson(j.value("checks", Json::array()));
  r.enough = j.value("enough", false);
  r.from_ms = j.value("from_ms", int64_t{0});
  r.to_ms = j.value("to_ms", int64_t{0});
  return r;
}

Result<Rollout> RowToRollout(const SqlRow& row) {
  Rollout r;
  r.id = row.Int(0);
  r.model_name = row.Text(1);
  r.candidate_version = static_cast<int>(row.Int(2));
  r.baseline_version = static_cast<int>(row.Int(3));
  r.mode = row.Text(4);
  const std::string what = "rollout " + std::to_string(r.id);
  ASSIGN_OR_RETURN(Json stages, ParseJson(row.Text(5), what + " stages_json"));
  if (!stages.is_array()) return Status::Corruption(what + ": stages_json is not an array");
  for (const Json& s : stages) r.stages.push_back(s.is_number() ? s.get<double>() : 0.0);
  r.stage = static_cast<int>(row.Int(6));
  r.share = row.Real(7);
  r.state = row.Text(8);
  r.reason = row.Text(9);
  ASSIGN_OR_RETURN(Json policy, ParseJson(row.Text(10), what + " policy_json"));
  auto p = RolloutPolicyFromJson(policy);
  if (!p.ok()) return Status::Corruption(what + " policy_json: " + p.status().message());
  r.policy = std::move(*p);
  ASSIGN_OR_RETURN(Json report, ParseJson(row.Text(11), what + " report_json"));
  r.report = ReportFromJson(report);
  r.actor = row.Text(12);
  r.started_at_ms = row.Int(13);
  r.stage_started_at_ms = row.Int(14);
  r.finished_at = row.Text(15);
  r.finished_at_ms = row.Int(16);
  return r;
}

Result<std::vector<Rollout>> QueryRollouts(Workspace& ws, const std::string& where,
                                           const std::vector<SqlValue>& params) {
  ASSIGN_OR_RETURN(auto rows, ws.db().Query(std::string(kColumns) + where, params));
  std::vector<Rollout> out;
  out.reserve(rows.size());
  for (const SqlRow& row : rows) {
    ASSIGN_OR_RETURN(Rollout r, RowToRollout(row));
    out.push_back(std::move(r));
  }
  return out;
}

Status CheckPolicy(const RolloutPolicy& p, const std::string& mode) {
  if (mode == kRolloutCanary && p.stages.empty()) {
    return Status::InvalidInput("stages: a canary needs at least one share");
  }
  for (size_t i = 0; i < p.stages.size(); ++i) {
    const double s = p.stages[i];
    if (!(s > 0 && s <= 1)) {
      return Status::InvalidInput("stages[" + std::to_string(i) + "] " + Fixed(s, 3) +
                                  ": a share must lie in (0, 1]");
    }
    if (i > 0 && s <= p.stages[i - 1]) {
      return Status::InvalidInput("stages[" + std::to_string(i) + "] " + Fixed(s, 3) +
                                  ": shares must increase");
    }
  }
  if (p.min_requests < 1) return Status::InvalidInput("min_requests: must be at least 1");
  if (p.min_labels < 0) return Status::InvalidInput("min_labels: must not be negative");
  for (auto [key, v] : {std::pair{"stage_seconds", p.stage_seconds},
                        std::pair{"timeout_seconds", p.timeout_seconds},
                        std::pair{"max_p95_ratio", p.max_p95_ratio},
                        std::pair{"max_error_rate_increase", p.max_error_rate_increase},
                        std::pair{"max_low_confidence_increase", p.max_low_confidence_increase},
                        std::pair{"max_accuracy_drop", p.max_accuracy_drop},
                        std::pair{"min_agreement", p.min_agreement}}) {
    if (!std::isfinite(v) || v < 0) {
      return Status::InvalidInput(std::string(key) + ": must be a number >= 0");
    }
  }
  return Status::Ok();
}

// Writes the row's mutable fields.
Status Update(Database& db, const Rollout& r) {
  return db.Exec(
      "UPDATE rollouts SET stage = ?, share = ?, state = ?, reason = ?, report_json = ?, "
      "stage_started_at_ms = ?, finished_at = ?, finished_at_ms = ? WHERE id = ?",
      {int64_t{r.stage}, r.share, r.state, r.reason, RolloutReportToJson(r.report).dump(),
       r.stage_started_at_ms, r.finished_at, r.finished_at_ms, r.id});
}

Status Audit(Database& db, const Rollout& r, const std::string& action, const std::string& actor,
             const std::string& reason, const GateReport& gates) {
  AuditEntry e;
  e.name = r.model_name;
  e.at = NowIso8601();
  e.actor = actor;
  e.action = action;
  e.from_version = r.baseline_version;
  e.to_version = r.candidate_version;
  e.reason = "rollout #" + std::to_string(r.id) + " (" + r.mode + "): " + reason;
  e.gates = gates;
  return AppendAuditEntry(db, e);
}

void Settle(Rollout& r, const std::string& state, const std::string& reason, int64_t now_ms) {
  r.state = state;
  r.reason = reason;
  r.share = 0;
  r.finished_at = IsoFromMs(now_ms);
  r.finished_at_ms = now_ms;
}

std::string StageName(const Rollout& r) {
  if (r.mode != kRolloutCanary) return "shadow";
  return "stage " + std::to_string(r.stage + 1) + "/" + std::to_string(r.stages.size()) + " (" +
         Percent(r.share) + ")";
}

std::string JoinChecks(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : "; ") + x;
  return s;
}

}  // namespace

Result<Rollout> StartRollout(Workspace& ws, const std::string& model_name, int candidate_version,
                             const std::string& mode, const RolloutPolicy& policy,
                             const std::string& actor) {
  RETURN_IF_ERROR(CheckName("model", model_name));
  if (mode != kRolloutShadow && mode != kRolloutCanary) {
    return Status::InvalidInput("mode '" + mode + "': expected shadow or canary");
  }
  RETURN_IF_ERROR(CheckPolicy(policy, mode));
  ASSIGN_OR_RETURN(auto registry, Registry::Open(ws));
  RETURN_IF_ERROR(registry->Get(ModelRef{model_name, candidate_version, ""}).status());
  Rollout out;
  Database& db = ws.db();
  RETURN_IF_ERROR(db.InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(auto active, QueryRollouts(ws, "WHERE model_name = ? AND state = ?",
                                                {model_name, std::string(kRolloutActive)}));
    if (!active.empty()) {
      const Rollout& a = active[0];
      if (a.candidate_version == candidate_version) {
        out = a;
        return Status::Ok();
      }
      return Status::AlreadyExists(model_name + " has an active " + a.mode + " rollout #" +
                                   std::to_string(a.id) + " of version " +
                                   std::to_string(a.candidate_version) +
                                   "; let it settle or abort it first (detops rollouts abort " +
                                   std::to_string(a.id) + " --reason ...)");
    }
    ASSIGN_OR_RETURN(auto production, registry->AliasVersion(model_name, kProduction));
    if (!production) {
      return Status::NotFound(model_name +
                              " has no production version to compare a candidate with");
    }
    if (*production == candidate_version) {
      return Status::InvalidInput(model_name + "@" + std::to_string(candidate_version) +
                                  " is production already");
    }
    const int64_t now = NowMs();
    Rollout& r = out;
    r.model_name = model_name;
    r.candidate_version = candidate_version;
    r.baseline_version = *production;
    r.mode = mode;
    r.stages = mode == kRolloutCanary ? policy.stages : std::vector<double>{};
    r.share = mode == kRolloutCanary ? r.stages[0] : 0;
    r.state = kRolloutActive;
    r.policy = policy;
    r.actor = actor;
    r.started_at_ms = r.stage_started_at_ms = now;
    ASSIGN_OR_RETURN(auto next, db.Query("SELECT COALESCE(MAX(id), 0) + 1 FROM rollouts"));
    r.id = next.at(0).Int(0);
    RETURN_IF_ERROR(db.Exec(
        "INSERT INTO rollouts (id, model_name, candidate_version, baseline_version, mode, "
        "stages_json, stage, share, state, reason, policy_json, report_json, actor, "
        "started_at_ms, stage_started_at_ms, finished_at, finished_at_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, '', 0)",
        {r.id, r.model_name, int64_t{r.candidate_version}, int64_t{r.baseline_version}, r.mode,
         Json(r.stages).dump(), int64_t{0}, r.share, r.state, RolloutPolicyToJson(policy).dump(),
         RolloutReportToJson(r.report).dump(), r.actor, now, now}));
    return Audit(db, r, kAuditRolloutStart, actor,
                 "version " + std::to_string(candidate_version) + " against production " +
                     std::to_string(r.baseline_version) +
                     (mode == kRolloutCanary ? ", " + StageName(r) : ""),
                 {});
  }));
  return out;
}

Result<std::optional<Rollout>> ActiveRollout(Workspace& ws, const std::string& model_name) {
  ASSIGN_OR_RETURN(auto rows, QueryRollouts(ws, "WHERE model_name = ? AND state = ? LIMIT 1",
                                            {model_name, std::string(kRolloutActive)}));
  if (rows.empty()) return std::optional<Rollout>();
  return std::optional<Rollout>(std::move(rows[0]));
}

Result<Rollout> GetRollout(Workspace& ws, int64_t id) {
  ASSIGN_OR_RETURN(auto rows, QueryRollouts(ws, "WHERE id = ?", {id}));
  if (rows.empty()) return Status::NotFound("no rollout #" + std::to_string(id));
  return std::move(rows[0]);
}

Result<std::vector<Rollout>> ListRollouts(Workspace& ws, const std::string& model_name, int limit) {
  std::string where;
  std::vector<SqlValue> params;
  if (!model_name.empty()) {
    where = "WHERE model_name = ? ";
    params.emplace_back(model_name);
  }
  where += "ORDER BY id DESC";
  if (limit > 0) {
    where += " LIMIT ?";
    params.emplace_back(int64_t{limit});
  }
  return QueryRollouts(ws, where, params);
}

Result<Rollout> AdvanceRollout(Workspace& ws, int64_t id, int64_t now_ms) {
  ASSIGN_OR_RETURN(Rollout seen, GetRollout(ws, id));
  if (seen.state != kRolloutActive) return seen;
  ASSIGN_OR_RETURN(RolloutReport report, CompareArms(ws, seen, now_ms));
  ASSIGN_OR_RETURN(auto registry, Registry::Open(ws));
  Rollout out;
  Database& db = ws.db();
  RETURN_IF_ERROR(db.InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(auto rows, QueryRollouts(ws, "WHERE id = ?", {id}));
    if (rows.empty()) return Status::NotFound("no rollout #" + std::to_string(id));
    out = std::move(rows[0]);
    // Another step or an abort got there first: theirs stands.
    if (out.state != kRolloutActive || out.stage != seen.stage ||
        out.stage_started_at_ms != seen.stage_started_at_ms) {
      return Status::Ok();
    }
    Rollout& r = out;
    r.report = report;
    const std::string stage = StageName(r);
    ASSIGN_OR_RETURN(auto production, registry->AliasVersion(r.model_name, kProduction));
    const int64_t elapsed_ms = now_ms - r.stage_started_at_ms;
    std::string action, why;
    if (production != r.baseline_version) {
      action = kAuditRolloutAborted;
      why = "production moved from version " + std::to_string(r.baseline_version) + " to " +
            (production ? "version " + std::to_string(*production) : "none") +
            " outside the rollout";
    } else if (report.enough && !report.failed.empty()) {
      action = kAuditRolloutAborted;
      why = stage + ": " + JoinChecks(report.failed);
    } else if (report.enough) {
      if (r.mode == kRolloutCanary && r.stage + 1 < static_cast<int>(r.stages.size())) {
        action = kAuditRolloutStage;
        const std::string from = stage;
        ++r.stage;
        r.share = r.stages[r.stage];
        r.stage_started_at_ms = now_ms;
        why = from + " passed on " + std::to_string(report.candidate.requests) +
              " candidate requests; now " + StageName(r);
      } else {
        action = kAuditRolloutPassed;
        why = stage + " passed on " + std::to_string(report.candidate.requests) +
              " candidate requests: " + JoinChecks(report.passed);
      }
    } else if (elapsed_ms > r.policy.timeout_seconds * 1000) {
      action = kAuditRolloutAborted;
      why = stage + " timed out after " + Fixed(elapsed_ms / 1000.0, 0) + " s with " +
            std::to_string(report.candidate.requests) + " of " +
            std::to_string(r.policy.min_requests) + " candidate requests";
    }
    if (action == kAuditRolloutAborted) Settle(r, kRolloutAborted, why, now_ms);
    if (action == kAuditRolloutPassed) Settle(r, kRolloutPassed, why, now_ms);
    RETURN_IF_ERROR(Update(db, r));
    if (action.empty()) return Status::Ok();
    return Audit(db, r, action, r.actor, why, report.checks);
  }));
  return out;
}

Result<Rollout> AbortRollout(Workspace& ws, int64_t id, const std::string& actor,
                             const std::string& reason) {
  Rollout out;
  Database& db = ws.db();
  RETURN_IF_ERROR(db.InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(auto rows, QueryRollouts(ws, "WHERE id = ?", {id}));
    if (rows.empty()) return Status::NotFound("no rollout #" + std::to_string(id));
    out = std::move(rows[0]);
    if (out.state != kRolloutActive) {
      return Status::InvalidInput("rollout #" + std::to_string(id) + " has already " +
                                  (out.state == kRolloutPassed ? "passed" : "been aborted") +
                                  (out.reason.empty() ? "" : ": " + out.reason));
    }
    const std::string why = "aborted by " + actor + (reason.empty() ? "" : ": " + reason);
    Settle(out, kRolloutAborted, why, NowMs());
    RETURN_IF_ERROR(Update(db, out));
    return Audit(db, out, kAuditRolloutAborted, actor, why, {});
  }));
  return out;
}

bool RoutesToCandidate(const std::string& request_id, double share) {
  if (!(share > 0)) return false;
  if (share >= 1) return true;
  // FNV-1a, then SplitMix64's finalizer: ids that differ in one character
  // land far apart.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : request_id) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return static_cast<double>(h >> 11) * 0x1.0p-53 < share;
}

Result<std::vector<CandidateSpan>> CanaryCandidateSpans(Workspace& ws,
                                                        const std::string& model_name) {
  ASSIGN_OR_RETURN(auto rows, ws.db().Query("SELECT candidate_version, started_at_ms, state, "
                                            "finished_at_ms FROM rollouts WHERE model_name = ? "
                                            "AND mode = ? ORDER BY id",
                                            {model_name, std::string(kRolloutCanary)}));
  std::vector<CandidateSpan> out;
  for (const SqlRow& r : rows) {
    CandidateSpan s;
    s.version = static_cast<int>(r.Int(0));
    s.from_ms = r.Int(1);
    s.to_ms = r.Text(2) == kRolloutActive ? std::numeric_limits<int64_t>::max()
                                          : r.Int(3) + kCanaryGraceMs;
    out.push_back(s);
  }
  return out;
}

Json RolloutPolicyToJson(const RolloutPolicy& p) {
  return {{"stages", p.stages},
          {"min_requests", p.min_requests},
          {"stage_seconds", p.stage_seconds},
          {"timeout_seconds", p.timeout_seconds},
          {"max_p95_ratio", p.max_p95_ratio},
          {"max_error_rate_increase", p.max_error_rate_increase},
          {"max_low_confidence_increase", p.max_low_confidence_increase},
          {"min_labels", p.min_labels},
          {"max_accuracy_drop", p.max_accuracy_drop},
          {"min_agreement", p.min_agreement}};
}

Result<RolloutPolicy> RolloutPolicyFromJson(const Json& j) {
  if (!j.is_object()) return Status::InvalidInput("rollout policy: expected an object");
  RolloutPolicy p;
  for (const auto& [key, v] : j.items()) {
    if (key == "stages") {
      if (!v.is_array()) return Status::InvalidInput("stages: expected an array of shares");
      p.stages.clear();
      for (const Json& s : v) {
        if (!s.is_number()) return Status::InvalidInput("stages: shares must be numbers");
        p.stages.push_back(s.get<double>());
      }
      continue;
    }
    if (key == "min_requests" || key == "min_labels") {
      if (!v.is_number_integer()) return Status::InvalidInput(key + ": expected a whole number");
      (key == "min_requests" ? p.min_requests : p.min_labels) = v.get<int>();
      continue;
    }
    double* field = key == "stage_seconds"                 ? &p.stage_seconds
                    : key == "timeout_seconds"             ? &p.timeout_seconds
                    : key == "max_p95_ratio"               ? &p.max_p95_ratio
                    : key == "max_error_rate_increase"     ? &p.max_error_rate_increase
                    : key == "max_low_confidence_increase" ? &p.max_low_confidence_increase
                    : key == "max_accuracy_drop"           ? &p.max_accuracy_drop
                    : key == "min_agreement"               ? &p.min_agreement
                                                           : nullptr;
    if (!field) return Status::InvalidInput("rollout policy: unknown key '" + key + "'");
    if (!v.is_number()) return Status::InvalidInput(key + ": expected a number");
    *field = v.get<double>();
  }
  RETURN_IF_ERROR(CheckPolicy(p, ""));
  return p;
}

Json RolloutReportToJson(const RolloutReport& r) {
  return {{"production", ArmToJson(r.production)},
          {"candidate", ArmToJson(r.candidate)},
          {"failed", r.failed},
          {"passed", r.passed},
          {"skipped", r.skipped},
          {"checks", GateReportToJson(r.checks)},
          {"enough", r.enough},
          {"from_ms", r.from_ms},
          {"to_ms", r.to_ms}};
}

Json RolloutToJson(const Rollout& r) {
  return {{"id", r.id},
          {"model", r.model_name},
          {"candidate_version", r.candidate_version},
          {"baseline_version", r.baseline_version},
          {"mode", r.mode},
          {"stages", r.stages},
          {"stage", r.stage},
          {"share", r.share},
          {"state", r.state},
          {"reason", r.reason},
          {"policy", RolloutPolicyToJson(r.policy)},
          {"report", RolloutReportToJson(r.report)},
          {"actor", r.actor},
          {"started_at", IsoFromMs(r.started_at_ms)},
          {"started_at_ms", r.started_at_ms},
          {"stage_started_at_ms", r.stage_started_at_ms},
          {"finished_at", r.finished_at},
          {"finished_at_ms", r.finished_at_ms}};
}

}  // namespace detops
