#include "orchestrate/controller.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "core/names.h"
#include "data/data.h"
#include "monitor/alerts.h"
#include "monitor/evaluator.h"
#include "orchestrate/cron.h"
#include "orchestrate/runner_internal.h"
#include "registry/registry.h"

namespace detops {
namespace fs = std::filesystem;

namespace {

std::string Family(const std::string& signal) { return signal.substr(0, signal.find('.')); }

// drift, decay or "" (the alert starts no retraining: service, kpi, data).
std::string TriggerOf(const std::string& signal) {
  const std::string f = Family(signal);
  if (f == "input" || f == "embedding" || f == "prediction") return "drift";
  if (f == "accuracy") return "decay";
  return "";
}

}  // namespace

Controller::Controller(Workspace& ws, ControllerConfig config, ControllerOptions options)
    : ws_(ws), config_(std::move(config)), options_(std::move(options)) {}

Result<std::unique_ptr<Controller>> Controller::Open(Workspace& ws, ControllerConfig config,
                                                     ControllerOptions options) {
  RETURN_IF_ERROR(CheckName("model", config.model));
  // The pipeline must load before anything is watched.
  RETURN_IF_ERROR(LoadPipeline(config.pipeline).status());
  std::unique_ptr<Controller> c(new Controller(ws, std::move(config), std::move(options)));
  if (c->config_.monitor) {
    MonitorOptions mo;
    mo.policy = DefaultMonitorPolicy();
    if (!c->config_.monitor_policy.empty()) {
      ASSIGN_OR_RETURN(mo.policy, LoadMonitorPolicy(c->config_.monitor_policy));
    }
    mo.model = c->config_.model;
    mo.actor = c->options_.actor;
    mo.serving_precision = c->options_.serving_precision;
    ASSIGN_OR_RETURN(c->monitor_, Monitor::Open(ws, std::move(mo)));
  }
  if (c->config_.inbox) {
    std::error_code ec;
    fs::create_directories(ws.root() / "inbox", ec);
    InboxOptions io{ws.root() / "inbox", c->config_.inbox_quiet_seconds, {}};
    // The model's dataset: the one named in params, else production's.
    std::string dataset = c->config_.params.count("dataset") ? c->config_.params["dataset"] : "";
    if (dataset.empty()) {
      ASSIGN_OR_RETURN(auto registry, Registry::Open(ws));
      ASSIGN_OR_RETURN(std::optional<int> prod,
                       registry->AliasVersion(c->config_.model, kProduction));
      if (prod) {
        ASSIGN_OR_RETURN(ModelVersion v, registry->Get(ModelRef{c->config_.model, *prod, ""}));
        if (auto ref = ParseDatasetRef(v.dataset_version); ref.ok()) dataset = ref->name;
      }
    }
    if (!dataset.empty()) io.datasets.insert(dataset);
    c->inbox_ = std::make_unique<InboxWatcher>(std::move(io));
  }
  if (!c->config_.schedule.empty()) {
    RETURN_IF_ERROR(CronSchedule::Parse(c->config_.schedule).status());
  }
  c->schedule_from_s_ = NowMillis() / 1000;
  c->worker_ = std::thread([p = c.get()] { p->Worker(); });
  return c;
}

Controller::~Controller() {
  {
    std::lock_guard lock(mu_);
    stop_worker_ = true;
  }
  stop_pipeline_ = true;
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void Controller::Log(const std::string& line) const {
  if (options_.on_log) options_.on_log(line);
}

bool Controller::Busy() const {
  std::lock_guard lock(mu_);
  return running_job_ || !queue_.empty();
}

Result<TriggerEvent> Controller::Record(TriggerEvent e) {
  e.at = NowIso8601();
  e.at_ms = NowMillis();
  e.model_name = config_.model;
  RETURN_IF_ERROR(ws_.db().Exec(
      "INSERT INTO trigger_events (at, at_ms, trigger, model_name, dedup_key, decision, reason, "
      "pipeline_run, detail_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      {e.at, e.at_ms, e.trigger, e.model_name, e.dedup_key, e.decision, e.reason, e.pipeline_run,
       e.detail.dump()}));
  ASSIGN_OR_RETURN(auto rows, ws_.db().Query("SELECT MAX(id) FROM trigger_events"));
  e.id = rows[0].Int(0);
  Log(e.trigger + " trigger: " + e.decision +
      (e.pipeline_run ? " pipeline run " + std::to_string(e.pipeline_run) : std::string()) + " (" +
      e.reason + ")");
  return e;
}

Result<int64_t> Controller::Start(const std::string& trigger, const std::string& detail,
                                  std::map<std::string, std::string> params, Job job) {
  PipelineRunOptions o;
  o.pipeline = config_.pipeline;
  o.params = config_.params;
  params["model"] = config_.model;
  // What a trigger knows (shift, source, ...) goes to the pipelines that
  // declare it; the config's own params must all be declared.
  ASSIGN_OR_RETURN(PipelineSpec spec, LoadPipeline(config_.pipeline));
  for (auto& [k, v] : params) {
    if (spec.params.count(k)) o.params[k] = std::move(v);
  }
  o.trigger = trigger;
  o.trigger_detail = detail;
  o.model_name = config_.model;
  o.actor = options_.actor;
  ASSIGN_OR_RETURN(PipelineRunInfo run, CreatePipelineRun(ws_, o));
  job.run = run.id;
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(job));
  }
  wake_.notify_all();
  return run.id;
}

void Controller::Worker() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return stop_worker_ || !queue_.empty(); });
      if (stop_worker_) return;
      job = queue_.front();
      queue_.pop_front();
      running_job_ = true;
    }
    PipelineRunOptions o;
    o.actor = options_.actor;
    o.threads = options_.threads;
    o.build = options_.build;
    o.stop = &stop_pipeline_;
    o.on_log = [this, run = job.run](const std::string& step, const std::string& line) {
      Log("run " + std::to_string(run) + (step.empty() ? "" : " " + step) + ": " + line);
    };
    Result<PipelineRunInfo> r = ExecutePipelineRun(ws_, job.run, o);
    Finished(job, r);
    {
      std::lock_guard lock(mu_);
      running_job_ = false;
    }
  }
}

// Settles an inbox batch with its run's outcome; a batch whose data failed
// validation raises an alert naming the failed expectations.
void Controller::Finished(const Job& job, const Result<PipelineRunInfo>& r) {
  if (!r.ok()) Log("run " + std::to_string(job.run) + ": " + r.status().message());
  if (job.inbox_batch.empty()) return;
  if (r.ok() && r->state == kRunRunning) return;  // stopped with us: resumed later
  const bool ok = r.ok() && r->state == kRunSucceeded;
  const std::string reason = r.ok() ? r->state + ": " + r->reason : r.status().message();
  auto settled = SettleInboxBatch(ws_.root() / "inbox", job.inbox_batch, ok, reason, job.run);
  if (!settled.ok()) Log("inbox: " + settled.status().message());
  if (!r.ok() || ok) return;
  for (const StepRunInfo& s : r->steps) {
    if (s.uses != "validate" || s.state != kStepFailed) continue;
    AlertObservation obs;
    obs.model_name = config_.model;
    obs.signal = "data.validation";
    obs.statistic = "failed_expectations";
    obs.level = Level::kWarn;
    obs.value = 1;
    obs.threshold = 1;
    obs.message = "the batch " + job.inbox_batch.filename().string() + " for dataset " +
                  job.dataset + " failed validation; nothing was trained (pipeline run " +
                  std::to_string(job.run) + "): " + s.error;
    obs.action = "batch moved to " + (settled.ok() ? settled->string() : std::string("inbox"));
    auto change = ObserveAlert(ws_, obs, 1000000);
    if (!change.ok()) Log("alert: " + change.status().message());
  }
}

Status Controller::ResumeOrphans(std::vector<TriggerEvent>& out) {
  ASSIGN_OR_RETURN(std::vector<int64_t> orphans, FindOrphanedRuns(ws_));
  for (int64_t id : orphans) {
    {
      std::lock_guard lock(mu_);
      bool queued = false;
      for (const Job& j : queue_) queued |= j.run == id;
      if (queued || running_job_) continue;  // ours, waiting for the worker
    }
    ASSIGN_OR_RETURN(PipelineRunInfo run, GetPipelineRun(ws_, id));
    if (run.model_name != config_.model) continue;
    TriggerEvent e;
    e.trigger = run.trigger;
    e.dedup_key = "resume:" + std::to_string(id) + ":" + std::to_string(run.heartbeat_ms);
    e.decision = "resumed";
    e.reason = "its runner " +
               (run.owner.empty() ? std::string("never started it") : run.owner + " is gone");
    e.pipeline_run = id;
    ASSIGN_OR_RETURN(e, Record(e));
    out.push_back(e);
    Job job{id, {}, ""};
    if (run.trigger == "inbox" && run.params.count("source")) {  // its batch is settled after
      job.inbox_batch = run.params.at("source");
      job.dataset = run.params.count("dataset") ? run.params.at("dataset") : "";
    }
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(job));
    wake_.notify_all();
  }
  return Status::Ok();
}

Status Controller::MonitorTick(int64_t now_ms) {
  if (!monitor_) return Status::Ok();
  auto r = monitor_->Tick(now_ms);
  if (!r.ok()) {
    // No production version yet, say: nothing to watch, not a reason to stop.
    if (r.status().code() == StatusCode::kNotFound) return Status::Ok();
    return r.status();
  }
  for (const std::string& a : r->actions) Log("monitor: " + a);
  return Status::Ok();
}

Status Controller::AlertTriggers(int64_t now_ms, std::vector<TriggerEvent>& out) {
  AlertFilter f;
  f.model_name = config_.model;
  f.state = "active";
  ASSIGN_OR_RETURN(std::vector<Alert> alerts, ListAlerts(ws_, f));
  std::vector<std::string> shift;  // the drifted input signals now
  // Past the larger threshold on any signal, a person decides: nothing is
  // retrained automatically, whatever the other alerts say.
  const Alert* escalated = nullptr;
  for (const Alert& a : alerts) {
    if (!TriggerOf(a.signal).empty() && a.kind == kAlertThreshold &&
        a.peak_level >= Level::kEscalate)
      escalated = &a;
  }
  for (const Alert& a : alerts) {
    if (a.kind == kAlertThreshold && a.peak_level >= Level::kRetrain && Family(a.signal) == "input")
      shift.push_back(a.signal);
  }
  for (auto it = alerts.rbegin(); it != alerts.rend(); ++it) {  // oldest first
    const Alert& a = *it;
    const std::string trigger = TriggerOf(a.signal);
    if (trigger.empty() || a.kind != kAlertThreshold || a.peak_level < Level::kRetrain) continue;
    if ((trigger == "drift" && !config_.drift) || (trigger == "decay" && !config_.decay)) continue;
    const std::string key = "alert:" + std::to_string(a.id);
    ASSIGN_OR_RETURN(auto seen, ws_.db().Query("SELECT 1 FROM trigger_events WHERE model_name = ? "
                                               "AND dedup_key = ?",
                                               {config_.model, key}));
    if (!seen.empty()) continue;  // every alert is decided once
    TriggerEvent e;
    e.trigger = trigger;
    e.dedup_key = key;
    e.detail = {{"alert", a.id},
                {"signal", a.signal},
                {"level", LevelName(a.peak_level)},
                {"value", a.value}};
    char value[64];
    std::snprintf(value, sizeof value, " (%s %.3g)", a.statistic.c_str(), a.value);
    const std::string what = "alert " + std::to_string(a.id) + ": " + a.signal + " at " +
                             LevelName(a.peak_level) + value;
    if (escalated) {
      e.decision = "skipped";
      e.reason = what + ": beyond retraining" +
                 (escalated->id == a.id ? std::string()
                                        : " (alert " + std::to_string(escalated->id) + ", " +
                                              escalated->signal + ", is at escalate)") +
                 "; a person decides (automatic promotion is frozen)";
      ASSIGN_OR_RETURN(e, Record(e));
      out.push_back(e);
      continue;
    }
    // One retraining at a time, and none within the cooldown of the last.
    ASSIGN_OR_RETURN(
        auto running,
        ws_.db().Query("SELECT id FROM pipeline_runs WHERE model_name = ? AND state = ?",
                       {config_.model, std::string(kRunRunning)}));
    ASSIGN_OR_RETURN(auto last, ws_.db().Query("SELECT pipeline_run, at_ms FROM trigger_events "
                                               "WHERE model_name = ? AND decision = 'started' AND "
                                               "trigger IN ('drift', 'decay') ORDER BY id DESC "
                                               "LIMIT 1",
                                               {config_.model}));
    if (!running.empty()) {
      e.decision = "skipped";
      e.reason =
          what + ": pipeline run " + std::to_string(running[0].Int(0)) + " of the model is running";
      e.pipeline_run = running[0].Int(0);
    } else if (!last.empty() && now_ms - last[0].Int(1) < config_.cooldown_seconds * 1000) {
      e.decision = "skipped";
      e.reason = what + ": within the cooldown after pipeline run " +
                 std::to_string(last[0].Int(0)) + " (" +
                 std::to_string((now_ms - last[0].Int(1)) / 1000) + " s of " +
                 std::to_string(static_cast<int64_t>(config_.cooldown_seconds)) + " s)";
      e.pipeline_run = last[0].Int(0);
    } else {
      std::string shifted;
      for (const std::string& s : shift) shifted += (shifted.empty() ? "" : ",") + s;
      std::map<std::string, std::string> params;
      if (!shifted.empty()) params["shift"] = shifted;
      auto id = Start(trigger, what, params, Job{});
      if (id.ok()) {
        e.pipeline_run = *id;
        e.decision = "started";
        e.reason = what + (shifted.empty() ? "" : "; augmenting for " + shifted);
      } else {  // recorded, so that the other triggers go on
        e.decision = "refused";
        e.reason = what + ": " + id.status().message();
      }
    }
    ASSIGN_OR_RETURN(e, Record(e));
    out.push_back(e);
  }
  return Status::Ok();
}

Status Controller::InboxTrigger(int64_t now_ms, std::vector<TriggerEvent>& out) {
  if (!inbox_) return Status::Ok();
  ASSIGN_OR_RETURN(std::vector<InboxBatch> batches, inbox_->Poll(now_ms));
  for (const std::string& r : inbox_->rejected) Log("inbox: " + r);
  inbox_->rejected.clear();
  for (const InboxBatch& b : batches) {
    TriggerEvent e;
    e.trigger = "inbox";
    e.dedup_key = "inbox:" + b.folder.filename().string();
    e.detail = {{"dataset", b.dataset},
                {"folder", b.folder.string()},
                {"files", b.fingerprint.files},
                {"bytes", b.fingerprint.bytes},
                {"complete_by", b.by_marker ? "marker" : "quiet period"}};
    const std::string what = std::to_string(b.fingerprint.files) + " files for " + b.dataset +
                             " (" + (b.by_marker ? "marker" : "quiet period") + ")";
    auto id =
        Start("inbox", "inbox batch " + b.folder.filename().string(),
              {{"source", b.folder.string()}, {"dataset", b.dataset}}, Job{0, b.folder, b.dataset});
    if (!id.ok()) {
      e.decision = "refused";
      e.reason = what + ": " + id.status().message();
      (void)SettleInboxBatch(ws_.root() / "inbox", b.folder, false, e.reason, 0);
    } else {
      e.decision = "started";
      e.reason = what;
      e.pipeline_run = *id;
    }
    ASSIGN_OR_RETURN(e, Record(e));
    out.push_back(e);
  }
  return Status::Ok();
}

Status Controller::ScheduleTrigger(int64_t now_ms, std::vector<TriggerEvent>& out) {
  if (config_.schedule.empty()) return Status::Ok();
  ASSIGN_OR_RETURN(CronSchedule cron, CronSchedule::Parse(config_.schedule));
  // From the later of the controller's start and the last due time
  // decided (its key), so that each due time is decided once.
  ASSIGN_OR_RETURN(auto last, ws_.db().Query("SELECT dedup_key FROM trigger_events WHERE "
                                             "model_name = ? AND trigger = 'schedule' ORDER BY "
                                             "id DESC LIMIT 1",
                                             {config_.model}));
  int64_t from = schedule_from_s_;
  if (!last.empty() && last[0].Text(0).rfind("cron:", 0) == 0) {
    from = std::max(from, static_cast<int64_t>(std::atoll(last[0].Text(0).c_str() + 5)));
  }
  int64_t due = cron.Next(from);
  if (due < 0 || due > now_ms / 1000) return Status::Ok();
  TriggerEvent e;
  e.trigger = "schedule";
  e.dedup_key = "cron:" + std::to_string(due);
  e.detail = {{"cron", config_.schedule}, {"due", due}};
  bool busy = Busy();
  if (busy) {
    e.decision = "skipped";
    e.reason = "'" + config_.schedule + "': a pipeline of the model is running";
  } else {
    auto id = Start("schedule", "cron " + config_.schedule, {}, Job{});
    e.decision = id.ok() ? "started" : "refused";
    e.reason = "'" + config_.schedule + "' was due" + (id.ok() ? "" : ": " + id.status().message());
    e.pipeline_run = id.ok() ? *id : 0;
  }
  ASSIGN_OR_RETURN(e, Record(e));
  out.push_back(e);
  return Status::Ok();
}

Result<std::vector<TriggerEvent>> Controller::Tick(int64_t now_ms) {
  std::vector<TriggerEvent> out;
  RETURN_IF_ERROR(ResumeOrphans(out));
  RETURN_IF_ERROR(MonitorTick(now_ms));
  RETURN_IF_ERROR(AlertTriggers(now_ms, out));
  RETURN_IF_ERROR(InboxTrigger(now_ms, out));
  RETURN_IF_ERROR(ScheduleTrigger(now_ms, out));
  return out;
}

void Controller::Run(const std::atomic<bool>& stop) {
  while (!stop.load()) {
    auto r = Tick(NowMillis());
    if (!r.ok()) Log("controller: " + r.status().message());
    for (int i = 0; i < config_.tick_seconds * 10 && !stop.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

Result<std::vector<TriggerEvent>> ListTriggerEvents(Workspace& ws, const std::string& model,
                                                    int limit) {
  std::string sql =
      "SELECT id, at, at_ms, trigger, model_name, dedup_key, decision, reason, pipeline_run, "
      "detail_json FROM trigger_events";
  std::vector<SqlValue> args;
  if (!model.empty()) {
    sql += " WHERE model_name = ?";
    args.push_back(model);
  }
  sql += " ORDER BY id DESC";
  if (limit > 0) sql += " LIMIT " + std::to_string(limit);
  ASSIGN_OR_RETURN(auto rows, ws.db().Query(sql, args));
  std::vector<TriggerEvent> out;
  for (const SqlRow& r : rows) {
    TriggerEvent e;
    e.id = r.Int(0);
    e.at = r.Text(1);
    e.at_ms = r.Int(2);
    e.trigger = r.Text(3);
    e.model_name = r.Text(4);
    e.dedup_key = r.Text(5);
    e.decision = r.Text(6);
    e.reason = r.Text(7);
    e.pipeline_run = r.Int(8);
    ASSIGN_OR_RETURN(e.detail, ParseJson(r.Text(9), "trigger event detail"));
    out.push_back(std::move(e));
  }
  return out;
}

Json TriggerEventToJson(const TriggerEvent& e) {
  return {{"id", e.id},           {"at", e.at},
          {"trigger", e.trigger}, {"model", e.model_name},
          {"key", e.dedup_key},   {"decision", e.decision},
          {"reason", e.reason},   {"pipeline_run", e.pipeline_run},
          {"detail", e.detail}};
}

}  // namespace detops
