// Reading pipeline runs back: one run with its steps, lists, JSON.

#include "orchestrate/runner.h"

namespace detops {
namespace {

constexpr const char* kRunColumns =
    "id, pipeline, spec_path, params_json, trigger, trigger_detail, model_name, state, reason, "
    "owner, heartbeat_ms, cancel_requested, created_at, finished_at";

Result<PipelineRunInfo> RunFromRow(const SqlRow& r) {
  PipelineRunInfo run;
  run.id = r.Int(0);
  run.pipeline = r.Text(1);
  run.spec_path = r.Text(2);
  ASSIGN_OR_RETURN(Json params, ParseJson(r.Text(3), "params of pipeline run"));
  for (const auto& [k, v] : params.items()) run.params[k] = v.get<std::string>();
  run.trigger = r.Text(4);
  run.trigger_detail = r.Text(5);
  run.model_name = r.Text(6);
  run.state = r.Text(7);
  run.reason = r.Text(8);
  run.owner = r.Text(9);
  run.heartbeat_ms = r.Int(10);
  run.cancel_requested = r.Int(11) != 0;
  run.created_at = r.Text(12);
  run.finished_at = r.Text(13);
  return run;
}

Status LoadSteps(Workspace& ws, PipelineRunInfo& run) {
  ASSIGN_OR_RETURN(auto rows,
                   ws.db().Query("SELECT id, step, uses, position, state, attempts, cache_key, "
                                 "inputs_json, outputs_json, resume_json, error, started_at, "
                                 "finished_at, duration_ms, log_path FROM step_runs WHERE "
                                 "pipeline_run = ? ORDER BY position",
                                 {run.id}));
  for (const SqlRow& r : rows) {
    StepRunInfo s;
    s.id = r.Int(0);
    s.step = r.Text(1);
    s.uses = r.Text(2);
    s.position = static_cast<int>(r.Int(3));
    s.state = r.Text(4);
    s.attempts = static_cast<int>(r.Int(5));
    s.cache_key = r.Text(6);
    ASSIGN_OR_RETURN(s.inputs, ParseJson(r.Text(7), "step inputs"));
    ASSIGN_OR_RETURN(s.outputs, ParseJson(r.Text(8), "step outputs"));
    ASSIGN_OR_RETURN(s.resume, ParseJson(r.Text(9), "step resume state"));
    s.error = r.Text(10);
    s.started_at = r.Text(11);
    s.finished_at = r.Text(12);
    s.duration_ms = r.Real(13);
    s.log_path = r.Text(14);
    run.steps.push_back(std::move(s));
  }
  return Status::Ok();
}

}  // namespace

Result<PipelineRunInfo> GetPipelineRun(Workspace& ws, int64_t run_id) {
  ASSIGN_OR_RETURN(auto rows, ws.db().Query(std::string("SELECT ") + kRunColumns +
                                                " FROM pipeline_runs WHERE id = ?",
                                            {run_id}));
  if (rows.empty()) return Status::NotFound("no pipeline run " + std::to_string(run_id));
  ASSIGN_OR_RETURN(PipelineRunInfo run, RunFromRow(rows[0]));
  RETURN_IF_ERROR(LoadSteps(ws, run));
  return run;
}

Result<std::vector<PipelineRunInfo>> ListPipelineRuns(Workspace& ws, const PipelineRunFilter& f) {
  std::string sql = std::string("SELECT ") + kRunColumns + " FROM pipeline_runs WHERE 1 = 1";
  std::vector<SqlValue> args;
  auto add = [&](const std::string& col, const std::string& v) {
    if (v.empty()) return;
    sql += " AND " + col + " = ?";
    args.push_back(v);
  };
  add("pipeline", f.pipeline);
  add("state", f.state);
  add("model_name", f.model_name);
  add("trigger", f.trigger);
  sql += " ORDER BY id DESC";
  if (f.limit > 0) sql += " LIMIT " + std::to_string(f.limit);
  ASSIGN_OR_RETURN(auto rows, ws.db().Query(sql, args));
  std::vector<PipelineRunInfo> out;
  for (const SqlRow& r : rows) {
    ASSIGN_OR_RETURN(PipelineRunInfo run, RunFromRow(r));
    RETURN_IF_ERROR(LoadSteps(ws, run));
    out.push_back(std::move(run));
  }
  return out;
}

Json PipelineRunToJson(const PipelineRunInfo& r) {
  Json steps = Json::array();
  for (const StepRunInfo& s : r.steps) {
    steps.push_back({{"step", s.step},
                     {"uses", s.uses},
                     {"state", s.state},
                     {"attempts", s.attempts},
                     {"inputs", s.inputs},
                     {"outputs", s.outputs},
                     {"resume", s.resume},
                     {"error", s.error},
                     {"cache_key", s.cache_key},
                     {"started_at", s.started_at},
                     {"finished_at", s.finished_at},
                     {"duration_ms", s.duration_ms},
                     {"log", s.log_path}});
  }
  return {{"id", r.id},
          {"pipeline", r.pipeline},
          {"file", r.spec_path},
          {"params", r.params},
          {"trigger", r.trigger},
          {"trigger_detail", r.trigger_detail},
          {"model", r.model_name},
          {"state", r.state},
          {"reason", r.reason},
          {"owner", r.owner},
          {"cancel_requested", r.cancel_requested},
          {"created_at", r.created_at},
          {"finished_at", r.finished_at},
          {"steps", steps}};
}

}  // namespace detops
