#include "store/migrations.h"

namespace detops {
namespace {

// Append only: a released migration never changes. SQL in the common subset
// of SQLite and PostgreSQL.
const char* const kMigrations[] = {
    // 1: datasets and their immutable versions.
    R"sql(
CREATE TABLE datasets (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL
);
CREATE TABLE dataset_versions (
  id INTEGER PRIMARY KEY,
  dataset_id INTEGER NOT NULL REFERENCES datasets(id),
  version INTEGER NOT NULL,
  manifest_sha TEXT NOT NULL,
  parent_id INTEGER REFERENCES dataset_versions(id),
  source TEXT NOT NULL,
  format TEXT NOT NULL,
  created_at TEXT NOT NULL,
  stats_json TEXT NOT NULL,
  issues_json TEXT NOT NULL,
  validation_status TEXT NOT NULL DEFAULT 'unvalidated',
  UNIQUE (dataset_id, version)
);
CREATE INDEX dataset_versions_manifest ON dataset_versions(manifest_sha);
CREATE TABLE validation_reports (
  id INTEGER PRIMARY KEY,
  version_id INTEGER NOT NULL REFERENCES dataset_versions(id),
  created_at TEXT NOT NULL,
  suite TEXT NOT NULL,
  status TEXT NOT NULL,
  report_sha TEXT NOT NULL
);
CREATE TABLE file_hash_cache (
  path TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  inode INTEGER NOT NULL,
  sha TEXT NOT NULL
);
CREATE TABLE image_headers (
  sha TEXT PRIMARY KEY,
  format TEXT NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  error TEXT NOT NULL
);
CREATE TABLE image_profiles (
  sha TEXT PRIMARY KEY,
  profile_json TEXT NOT NULL
);
)sql",
    // 2: experiment runs (src/track): params, tags, metric series and their
    // per-key summary, artifacts (blobs). A NULL metric value is NaN.
    R"sql(
CREATE TABLE runs (
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL UNIQUE,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at TEXT NOT NULL,
  ended_at TEXT NOT NULL,
  dataset_version TEXT NOT NULL,
  parent_run TEXT NOT NULL,
  env_json TEXT NOT NULL,
  UNIQUE (kind, name)
);
CREATE TABLE run_params (
  run_id TEXT NOT NULL REFERENCES runs(id),
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (run_id, key)
);
CREATE TABLE run_tags (
  run_id TEXT NOT NULL REFERENCES runs(id),
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (run_id, key)
);
CREATE TABLE run_metrics (
  run_id TEXT NOT NULL,
  key TEXT NOT NULL,
  step BIGINT NOT NULL,
  value DOUBLE PRECISION,
  time_ms BIGINT NOT NULL
);
CREATE INDEX run_metrics_series ON run_metrics(run_id, key, step);
CREATE TABLE run_metric_summary (
  run_id TEXT NOT NULL REFERENCES runs(id),
  key TEXT NOT NULL,
  points BIGINT NOT NULL,
  last_step BIGINT NOT NULL,
  last_value DOUBLE PRECISION,
  min_value DOUBLE PRECISION,
  max_value DOUBLE PRECISION,
  PRIMARY KEY (run_id, key)
);
CREATE TABLE run_artifacts (
  run_id TEXT NOT NULL REFERENCES runs(id),
  name TEXT NOT NULL,
  blob TEXT NOT NULL,
  size BIGINT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (run_id, name)
);
)sql",
    // 3: the model registry (src/registry): immutable model versions, the
    // aliases that point at them, and the audit log of every alias change.
    R"sql(
CREATE TABLE model_versions (
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  run_id TEXT NOT NULL,
  weights_blob TEXT NOT NULL,
  profile_blob TEXT NOT NULL,
  config_json TEXT NOT NULL,
  metrics_json TEXT NOT NULL,
  dataset_version TEXT NOT NULL,
  dataset_validation TEXT NOT NULL,
  description TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (name, version)
);
CREATE TABLE model_aliases (
  name TEXT NOT NULL,
  alias TEXT NOT NULL,
  version INTEGER NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (name, alias)
);
CREATE TABLE model_audit (
  seq INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  alias TEXT NOT NULL,
  from_version INTEGER,
  to_version INTEGER,
  reason TEXT NOT NULL,
  forced INTEGER NOT NULL,
  gates_json TEXT NOT NULL
);
CREATE INDEX model_audit_name ON model_audit(name, seq);
)sql",
    // 4: serving (src/serve, src/monitor): the prediction log, feedback
    // (corrected boxes for a prediction) and API tokens (hashed).
    R"sql(
CREATE TABLE predictions (
  id TEXT PRIMARY KEY,
  at TEXT NOT NULL,
  at_ms BIGINT NOT NULL,
  model_name TEXT NOT NULL,
  model_version INTEGER NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  profile_json TEXT NOT NULL,
  embedding_json TEXT NOT NULL,
  detections_json TEXT NOT NULL,
  queue_ms DOUBLE PRECISION NOT NULL,
  inference_ms DOUBLE PRECISION NOT NULL,
  total_ms DOUBLE PRECISION NOT NULL,
  image_blob TEXT NOT NULL
);
CREATE INDEX predictions_time ON predictions(at_ms);
CREATE INDEX predictions_model ON predictions(model_name, model_version, at_ms);
CREATE TABLE feedback (
  id INTEGER PRIMARY KEY,
  prediction_id TEXT NOT NULL,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  boxes_json TEXT NOT NULL,
  exported_to TEXT NOT NULL
);
CREATE INDEX feedback_prediction ON feedback(prediction_id);
CREATE TABLE api_tokens (
  id TEXT PRIMARY KEY,
  secret_sha TEXT NOT NULL,
  role TEXT NOT NULL,
  name TEXT NOT NULL,
  created_at TEXT NOT NULL,
  revoked_at TEXT NOT NULL
);
)sql",
    // 5: where each box of a dataset version came from (src/data: label file
    // and line, or COCO annotation id), so that validation names it. Empty
    // for versions recorded before.
    R"sql(
ALTER TABLE dataset_versions ADD COLUMN origins_json TEXT NOT NULL DEFAULT '';
)sql",
    // 6: monitoring (src/monitor): alerts (one row per episode), the scored
    // windows of the prediction log, and the server's periodic samples of
    // its counters and resources (errors, drops, CPU, memory).
    R"sql(
CREATE TABLE alerts (
  id INTEGER PRIMARY KEY,
  model_name TEXT NOT NULL,
  model_version INTEGER NOT NULL,
  signal TEXT NOT NULL,
  kind TEXT NOT NULL,
  level TEXT NOT NULL,
  peak_level TEXT NOT NULL,
  state TEXT NOT NULL,
  statistic TEXT NOT NULL,
  value DOUBLE PRECISION NOT NULL,
  threshold DOUBLE PRECISION NOT NULL,
  window_start_ms BIGINT NOT NULL,
  window_end_ms BIGINT NOT NULL,
  window_n BIGINT NOT NULL,
  windows INTEGER NOT NULL,
  ok_windows INTEGER NOT NULL,
  examples_json TEXT NOT NULL,
  message TEXT NOT NULL,
  action TEXT NOT NULL,
  opened_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  acked_at TEXT NOT NULL,
  acked_by TEXT NOT NULL,
  resolved_at TEXT NOT NULL,
  resolved_by TEXT NOT NULL,
  note TEXT NOT NULL,
  notified_level TEXT NOT NULL,
  notify_error TEXT NOT NULL
);
CREATE INDEX alerts_episode ON alerts(model_name, signal, kind, state);
CREATE TABLE monitor_windows (
  id INTEGER PRIMARY KEY,
  model_name TEXT NOT NULL,
  model_version INTEGER NOT NULL,
  start_ms BIGINT NOT NULL,
  end_ms BIGINT NOT NULL,
  last_id TEXT NOT NULL,
  n BIGINT NOT NULL,
  level TEXT NOT NULL,
  report_json TEXT NOT NULL,
  evaluated_at TEXT NOT NULL
);
CREATE INDEX monitor_windows_model ON monitor_windows(model_name, end_ms);
CREATE TABLE service_samples (
  id INTEGER PRIMARY KEY,
  at_ms BIGINT NOT NULL,
  instance TEXT NOT NULL,
  model_name TEXT NOT NULL,
  model_version INTEGER NOT NULL,
  sample_json TEXT NOT NULL
);
CREATE INDEX service_samples_model ON service_samples(model_name, at_ms);
)sql",
    // 7: the monitor reads a model's predictions in time order across its
    // versions (windows after a cursor, labels in a time range) and the last
    // windows of one version: without these indexes each read scanned every
    // row of the model (2.2 s a window at 1,000,000 logged predictions,
    // bench/monitor_bench.cc).
    R"sql(
CREATE INDEX predictions_model_time ON predictions(model_name, at_ms, id);
CREATE INDEX monitor_windows_version ON monitor_windows(model_name, model_version, id);
)sql",
    // 8: unattended retraining and release (issue 23). Pipeline runs and
    // their steps (state, attempts, outputs, logs; a runner that died is
    // found by its owner and heartbeat and resumed), the step cache (a
    // step's outputs by the hash of its inputs), what each trigger decided
    // (de-duplication and cooldowns read it), and releases under live
    // traffic: shadow and canary rollouts with the candidate's shadow
    // answers.
    R"sql(
CREATE TABLE pipeline_runs (
  id INTEGER PRIMARY KEY,
  pipeline TEXT NOT NULL,
  spec_path TEXT NOT NULL,
  spec_yaml TEXT NOT NULL,
  params_json TEXT NOT NULL,
  trigger TEXT NOT NULL,
  trigger_detail TEXT NOT NULL,
  model_name TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL,
  owner TEXT NOT NULL,
  heartbeat_ms BIGINT NOT NULL,
  cancel_requested INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  outputs_json TEXT NOT NULL
);
CREATE INDEX pipeline_runs_state ON pipeline_runs(state, pipeline);
CREATE TABLE step_runs (
  id INTEGER PRIMARY KEY,
  pipeline_run INTEGER NOT NULL,
  step TEXT NOT NULL,
  uses TEXT NOT NULL,
  position INTEGER NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  cache_key TEXT NOT NULL,
  inputs_json TEXT NOT NULL,
  outputs_json TEXT NOT NULL,
  resume_json TEXT NOT NULL,
  error TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  duration_ms DOUBLE PRECISION NOT NULL,
  log_path TEXT NOT NULL
);
CREATE UNIQUE INDEX step_runs_step ON step_runs(pipeline_run, step);
CREATE TABLE step_cache (
  cache_key TEXT PRIMARY KEY,
  uses TEXT NOT NULL,
  outputs_json TEXT NOT NULL,
  pipeline_run INTEGER NOT NULL,
  step TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE TABLE trigger_events (
  id INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  at_ms BIGINT NOT NULL,
  trigger TEXT NOT NULL,
  model_name TEXT NOT NULL,
  dedup_key TEXT NOT NULL,
  decision TEXT NOT NULL,
  reason TEXT NOT NULL,
  pipeline_run INTEGER NOT NULL,
  detail_json TEXT NOT NULL
);
CREATE INDEX trigger_events_key ON trigger_events(trigger, model_name, dedup_key);
CREATE TABLE rollouts (
  id INTEGER PRIMARY KEY,
  model_name TEXT NOT NULL,
  candidate_version INTEGER NOT NULL,
  baseline_version INTEGER NOT NULL,
  mode TEXT NOT NULL,
  stages_json TEXT NOT NULL,
  stage INTEGER NOT NULL,
  share DOUBLE PRECISION NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL,
  policy_json TEXT NOT NULL,
  report_json TEXT NOT NULL,
  actor TEXT NOT NULL,
  started_at_ms BIGINT NOT NULL,
  stage_started_at_ms BIGINT NOT NULL,
  finished_at TEXT NOT NULL,
  finished_at_ms BIGINT NOT NULL
);
CREATE INDEX rollouts_model ON rollouts(model_name, state);
CREATE TABLE shadow_predictions (
  id INTEGER PRIMARY KEY,
  rollout INTEGER NOT NULL,
  prediction_id TEXT NOT NULL,
  at_ms BIGINT NOT NULL,
  model_version INTEGER NOT NULL,
  detections_json TEXT NOT NULL,
  inference_ms DOUBLE PRECISION NOT NULL,
  agreement DOUBLE PRECISION NOT NULL,
  error TEXT NOT NULL
);
CREATE INDEX shadow_predictions_rollout ON shadow_predictions(rollout, at_ms);
)sql",
    // 9: a derived dataset version (src/data/derive.h) records its
    // operations, their parameters and what each changed; its parent may
    // be a version of another dataset. Empty for imported versions.
    R"sql(
ALTER TABLE dataset_versions ADD COLUMN derivation_json TEXT NOT NULL DEFAULT '';
)sql",
};

}  // namespace

Status ApplyMigrations(Database& db) {
  RETURN_IF_ERROR(db.Exec(
      "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT "
      "NOT NULL)"));
  const int total = static_cast<int>(std::size(kMigrations));
  for (int v = 1; v <= total; ++v) {
    Status s = db.InTransaction([&]() -> Status {
      // Re-checked inside the write lock: another process may have applied it.
      ASSIGN_OR_RETURN(auto rows,
                       db.Query("SELECT 1 FROM schema_version WHERE version = ?", {int64_t{v}}));
      if (!rows.empty()) return Status::Ok();
      RETURN_IF_ERROR(db.Exec(kMigrations[v - 1]).WithContext("migration " + std::to_string(v)));
      return db.Exec("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                     {int64_t{v}, NowIso8601()});
    });
    RETURN_IF_ERROR(s);
  }
  return Status::Ok();
}

}  // namespace detops
