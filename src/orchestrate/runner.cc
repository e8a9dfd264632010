#include "orchestrate/runner.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

#include "core/fs.h"
#include "core/hash.h"
#include "orchestrate/runner_internal.h"
#include "orchestrate/steps.h"
#include "track/track.h"

namespace detops {
namespace fs = std::filesystem;

namespace {

constexpr int64_t kHeartbeatMs = 2000;
constexpr double kMaxBackoffSeconds = 300;

// Keeps the run's heartbeat fresh and turns a cancel request in the
// database into the stop flag the steps watch. One thread per executing
// run (not per step).
class Heartbeat {
 public:
  Heartbeat(Workspace& ws, int64_t run, const std::atomic<bool>* external)
      : ws_(ws), run_(run), external_(external), thread_([this] { Loop(); }) {}
  ~Heartbeat() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  const std::atomic<bool>* flag() const { return &stop_; }
  // Stopped by a cancel request (settle as cancelled) rather than by the
  // caller's flag (interrupted: the run stays resumable).
  bool cancelled() const { return cancelled_.load(); }
  // Sleeps up to `seconds`; false when stopped meanwhile.
  bool Sleep(double seconds) {
    std::unique_lock lock(mu_);
    wake_.wait_for(lock, std::chrono::duration<double>(seconds),
                   [&] { return done_ || stop_.load(); });
    return !stop_.load();
  }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    while (!done_) {
      lock.unlock();
      (void)ws_.db().Exec("UPDATE pipeline_runs SET heartbeat_ms = ? WHERE id = ?",
                          {NowMillis(), run_});
      auto rows = ws_.db().Query("SELECT cancel_requested FROM pipeline_runs WHERE id = ?", {run_});
      bool cancel = rows.ok() && !rows->empty() && (*rows)[0].Int(0) != 0;
      if (cancel) cancelled_ = true;
      if (cancel || (external_ && external_->load())) stop_ = true;
      lock.lock();
      if (stop_) wake_.notify_all();
      wake_.wait_for(lock, std::chrono::milliseconds(stop_ ? kHeartbeatMs : 250));
    }
  }
  Workspace& ws_;
  int64_t run_;
  const std::atomic<bool>* external_;
  std::atomic<bool> stop_{false}, cancelled_{false};
  std::mutex mu_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

std::string Host() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

// The step log: appended to the file, echoed to the caller.
struct StepLog {
  fs::path path;
  std::string step;
  const PipelineRunOptions* options;
  void operator()(const std::string& line) const {
    std::ofstream out(path, std::ios::app);
    out << NowIso8601() << " " << line << "\n";
    if (options->on_log) options->on_log(step, line);
  }
};

Status SaveStep(Workspace& ws, const StepRunInfo& s) {
  return ws.db().Exec(
      "UPDATE step_runs SET state = ?, attempts = ?, cache_key = ?, inputs_json = ?, "
      "outputs_json = ?, resume_json = ?, error = ?, started_at = ?, finished_at = ?, "
      "duration_ms = ?, log_path = ? WHERE id = ?",
      {s.state, int64_t{s.attempts}, s.cache_key, s.inputs.dump(), s.outputs.dump(),
       s.resume.dump(), s.error, s.started_at, s.finished_at, s.duration_ms, s.log_path, s.id});
}

Status Settle(Workspace& ws, PipelineRunInfo& run, const std::string& state,
              const std::string& reason) {
  run.state = state;
  run.reason = reason;
  run.finished_at = NowIso8601();
  Json outputs = Json::object();
  for (const StepRunInfo& s : run.steps) outputs[s.step] = s.outputs;
  return ws.db().Exec(
      "UPDATE pipeline_runs SET state = ?, reason = ?, finished_at = ?, outputs_json = ?, "
      "owner = '' WHERE id = ?",
      {state, reason, run.finished_at, outputs.dump(), run.id});
}

// The cache key: the step type, its expanded inputs and the outside facts
// its outputs depend on.
std::string CacheKey(const StepRunInfo& s, const Json& facts) {
  Json key = {{"uses", s.uses}, {"with", s.inputs}, {"facts", facts}, {"format", 1}};
  return Sha256Hex(key.dump());
}

Result<std::optional<Json>> CachedOutputs(Workspace& ws, const std::string& key) {
  ASSIGN_OR_RETURN(auto rows,
                   ws.db().Query("SELECT outputs_json FROM step_cache WHERE cache_key = ?", {key}));
  if (rows.empty()) return std::optional<Json>{};
  ASSIGN_OR_RETURN(Json j, ParseJson(rows[0].Text(0), "cached step outputs"));
  return std::optional<Json>{std::move(j)};
}

Status StoreCache(Workspace& ws, const StepRunInfo& s, int64_t run) {
  return ws.db().Exec(
      "INSERT INTO step_cache (cache_key, uses, outputs_json, pipeline_run, step, at) VALUES "
      "(?, ?, ?, ?, ?, ?) ON CONFLICT (cache_key) DO UPDATE SET outputs_json = "
      "excluded.outputs_json, pipeline_run = excluded.pipeline_run, step = excluded.step, at = "
      "excluded.at",
      {s.cache_key, s.uses, s.outputs.dump(), run, s.step, NowIso8601()});
}

// The crash failpoint (PipelineRunOptions::kill_at_step).
void MaybeKillAt(const PipelineRunOptions& o, const std::string& step) {
  if (!o.kill_at_step.empty() && step == o.kill_at_step) ::kill(::getpid(), SIGKILL);
}

struct Executor {
  Workspace& ws;
  PipelineRunInfo& run;
  const PipelineSpec& spec;
  const PipelineRunOptions& options;
  Heartbeat& beat;
  std::map<std::string, Json> outputs;  // finished steps'

  void Log(const std::string& line) const {
    if (options.on_log) options.on_log("", line);
  }

  // Runs one step to a settled state; false when the pipeline must stop.
  Result<bool> Step(const StepSpec& sp, StepRunInfo& s) {
    const StepType* type = FindStepType(sp.uses);
    if (!type) return Status::InvalidInput("step " + sp.id + ": unknown type " + sp.uses);
    fs::path log_dir = ws.root() / "logs" / "pipelines" / std::to_string(run.id);
    std::error_code ec;
    fs::create_directories(log_dir, ec);
    s.log_path = (log_dir / (sp.id + ".log")).string();
    StepLog log{s.log_path, sp.id, &options};

    StepContext ctx(ws);
    ctx.pipeline_run = run.id;
    ctx.step_id = sp.id;
    ctx.resume = s.resume;
    ctx.actor = options.actor;
    ctx.threads = options.threads;
    ctx.build = options.build;
    ctx.stop = beat.flag();
    ctx.log = log;
    ctx.save_resume = [&](const Json& j) {
      s.resume = j;
      ctx.resume = j;  // a retry in this process continues from it too
      return SaveStep(ws, s);
    };
    // `if` first: a skipped step's inputs may name what a skipped step
    // before it did not produce.
    const std::string where = "step " + sp.id;
    if (!sp.if_expr.empty()) {
      ASSIGN_OR_RETURN(std::string cond, Expand(sp.if_expr, run.params, outputs, where + ", if"));
      if (!Truthy(cond)) {
        s.state = kStepSkipped;
        s.error = "if: '" + sp.if_expr + "' is false";
        s.finished_at = NowIso8601();
        outputs[sp.id] = s.outputs = Json::object();
        log("skipped: " + s.error);
        RETURN_IF_ERROR(SaveStep(ws, s));
        return true;
      }
    }
    // Inputs.
    Json inputs = Json::object();
    for (const auto& [k, raw] : sp.with) {
      ASSIGN_OR_RETURN(std::string v, Expand(raw, run.params, outputs, where + ", with." + k));
      ctx.with[k] = v;
      inputs[k] = v;
    }
    s.inputs = inputs;
    Json facts = Json::object();
    if (type->fingerprint) {
      auto f = type->fingerprint(ctx);
      if (!f.ok()) return Fail(sp, s, log, f.status().message());
      facts = *f;
    }
    s.cache_key = CacheKey(s, facts);
    if (sp.cache) {
      ASSIGN_OR_RETURN(auto hit, CachedOutputs(ws, s.cache_key));
      if (hit) {
        s.state = kStepCached;
        s.outputs = *hit;
        s.finished_at = NowIso8601();
        outputs[sp.id] = s.outputs;
        ++run.cached;
        log("cached: same inputs as an earlier run (key " + s.cache_key.substr(0, 12) + ")");
        RETURN_IF_ERROR(SaveStep(ws, s));
        return true;
      }
    }
    // Attempts.
    double backoff = sp.backoff_seconds;
    for (;;) {
      if (beat.flag()->load()) return false;
      ++s.attempts;
      s.state = kStepRunning;
      s.error.clear();
      if (s.started_at.empty()) s.started_at = NowIso8601();
      RETURN_IF_ERROR(SaveStep(ws, s));
      log("attempt " + std::to_string(s.attempts) + " (retries: " + std::to_string(sp.retries) +
          "): " + sp.uses + (ctx.resume.empty() ? "" : " (resuming " + ctx.resume.dump() + ")"));
      MaybeKillAt(options, sp.id);
      auto t0 = std::chrono::steady_clock::now();
      Result<Json> r = type->run(ctx);
      s.duration_ms +=
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (r.ok()) {
        s.state = kStepSucceeded;
        s.outputs = *r;
        s.finished_at = NowIso8601();
        outputs[sp.id] = s.outputs;
        ++run.executed;
        log("succeeded in " + std::to_string(static_cast<int>(s.duration_ms / 1000)) +
            " s: " + s.outputs.dump());
        RETURN_IF_ERROR(SaveStep(ws, s));
        if (sp.cache) RETURN_IF_ERROR(StoreCache(ws, s, run.id));
        return true;
      }
      if (beat.flag()->load()) {
        // A step that noticed the stop says so itself ("cancelled: training
        // stopped at epoch 3"); say it once.
        const std::string& why = r.status().message();
        s.error = why.rfind("cancelled", 0) == 0 ? why : "cancelled: " + why;
        return false;
      }
      log("attempt " + std::to_string(s.attempts) + " failed: " + r.status().message());
      if (s.attempts > sp.retries) return Fail(sp, s, log, r.status().message());
      s.error = r.status().message();
      RETURN_IF_ERROR(SaveStep(ws, s));
      log("retrying in " + std::to_string(backoff) + " s");
      if (!beat.Sleep(backoff)) return false;
      backoff = std::min(backoff * 2, kMaxBackoffSeconds);
    }
  }

  Result<bool> Fail(const StepSpec& sp, StepRunInfo& s, const StepLog& log,
                    const std::string& error) {
    s.state = kStepFailed;
    s.error = error;
    s.finished_at = NowIso8601();
    log("failed: " + error);
    RETURN_IF_ERROR(SaveStep(ws, s));
    run.reason = "step " + sp.id + " (" + sp.uses + ") failed after " + std::to_string(s.attempts) +
                 " attempt" + (s.attempts == 1 ? "" : "s") + ": " + error;
    return false;
  }
};

}  // namespace

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<PipelineSpec> LoadPipeline(const std::string& file_or_name, std::string* text) {
  const auto& builtins = BuiltinPipelines();
  if (auto it = builtins.find(file_or_name); it != builtins.end() && !fs::exists(file_or_name)) {
    if (text) *text = it->second;
    ASSIGN_OR_RETURN(PipelineSpec spec, ParsePipelineSpec(it->second, "builtin:" + file_or_name));
    spec.path = "builtin:" + file_or_name;  // what errors and `pipelines show` name
    return spec;
  }
  ASSIGN_OR_RETURN(PipelineSpec spec, LoadPipelineSpec(file_or_name));
  if (text) {
    ASSIGN_OR_RETURN(*text, ReadFile(file_or_name));
  }
  return spec;
}

Result<PipelineRunInfo> CreatePipelineRun(Workspace& ws, const PipelineRunOptions& options) {
  std::string text;
  ASSIGN_OR_RETURN(PipelineSpec spec, LoadPipeline(options.pipeline, &text));
  ASSIGN_OR_RETURN(auto params, ResolveParams(spec, options.params));
  // Every step's inputs are known to its type before anything runs.
  for (const StepSpec& sp : spec.steps) {
    const StepType* type = FindStepType(sp.uses);
    if (!type) {
      return Status::InvalidInput(spec.path + ":" + std::to_string(sp.line) + ": step " + sp.id +
                                  ": unknown type " + sp.uses);
    }
    for (const auto& [k, v] : sp.with) {
      bool known =
          std::find(type->required.begin(), type->required.end(), k) != type->required.end() ||
          std::find(type->optional.begin(), type->optional.end(), k) != type->optional.end();
      if (!known) {
        std::string keys;
        for (const auto& r : type->required) keys += (keys.empty() ? "" : ", ") + r;
        for (const auto& o : type->optional) keys += (keys.empty() ? "" : ", ") + o;
        return Status::InvalidInput(spec.path + ":" + std::to_string(sp.line) + ": step " + sp.id +
                                    " (" + sp.uses + "): unknown input '" + k +
                                    "' (known: " + keys + ")");
      }
    }
    for (const std::string& r : type->required) {
      if (!sp.with.count(r)) {
        return Status::InvalidInput(spec.path + ":" + std::to_string(sp.line) + ": step " + sp.id +
                                    " (" + sp.uses + "): input '" + r + "' is required");
      }
    }
  }
  PipelineRunInfo run;
  run.pipeline = spec.name;
  run.spec_path = spec.path;
  run.params = params;
  run.trigger = options.trigger;
  run.trigger_detail = options.trigger_detail;
  run.model_name = options.model_name;
  if (run.model_name.empty() && params.count("model")) run.model_name = params.at("model");
  run.state = kRunRunning;
  run.created_at = NowIso8601();
  Json pj = params;
  RETURN_IF_ERROR(ws.db().InTransaction([&]() -> Status {
    RETURN_IF_ERROR(ws.db().Exec(
        "INSERT INTO pipeline_runs (pipeline, spec_path, spec_yaml, params_json, trigger, "
        "trigger_detail, model_name, state, reason, owner, heartbeat_ms, cancel_requested, "
        "created_at, finished_at, outputs_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', '', 0, 0, ?, "
        "'', '{}')",
        {run.pipeline, run.spec_path, text, pj.dump(), run.trigger, run.trigger_detail,
         run.model_name, run.state, run.created_at}));
    ASSIGN_OR_RETURN(auto rows, ws.db().Query("SELECT MAX(id) FROM pipeline_runs"));
    run.id = rows[0].Int(0);
    int position = 0;
    for (const StepSpec& sp : spec.steps) {
      RETURN_IF_ERROR(ws.db().Exec(
          "INSERT INTO step_runs (pipeline_run, step, uses, position, state, attempts, cache_key, "
          "inputs_json, outputs_json, resume_json, error, started_at, finished_at, duration_ms, "
          "log_path) VALUES (?, ?, ?, ?, ?, 0, '', '{}', '{}', '{}', '', '', '', 0, '')",
          {run.id, sp.id, sp.uses, int64_t{position++}, std::string(kStepPending)}));
    }
    return Status::Ok();
  }));
  return GetPipelineRun(ws, run.id);
}

namespace {

bool OwnerAlive(const std::string& owner, int64_t heartbeat_ms, int64_t stale_ms) {
  if (owner.empty()) return false;
  if (NowMillis() - heartbeat_ms > stale_ms) return false;
  auto colon = owner.rfind(':');
  if (colon == std::string::npos) return false;
  if (owner.substr(0, colon) != Host()) return true;  // fresh heartbeat elsewhere
  pid_t pid = static_cast<pid_t>(std::atoll(owner.c_str() + colon + 1));
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

}  // namespace

Result<PipelineRunInfo> ExecutePipelineRun(Workspace& ws, int64_t run_id,
                                           const PipelineRunOptions& options) {
  const std::string me = Host() + ":" + std::to_string(::getpid());
  // Claim the run: nobody alive owns it.
  RETURN_IF_ERROR(ws.db().InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(auto rows, ws.db().Query("SELECT state, owner, heartbeat_ms FROM "
                                              "pipeline_runs WHERE id = ?",
                                              {run_id}));
    if (rows.empty()) return Status::NotFound("pipeline run " + std::to_string(run_id));
    if (rows[0].Text(0) != kRunRunning) {
      return Status::InvalidInput("pipeline run " + std::to_string(run_id) + " is " +
                                  rows[0].Text(0) + " already");
    }
    if (rows[0].Text(1) != me && OwnerAlive(rows[0].Text(1), rows[0].Int(2), 60000)) {
      return Status::AlreadyExists("pipeline run " + std::to_string(run_id) +
                                   " is being executed by " + rows[0].Text(1));
    }
    return ws.db().Exec("UPDATE pipeline_runs SET owner = ?, heartbeat_ms = ? WHERE id = ?",
                        {me, NowMillis(), run_id});
  }));
  ASSIGN_OR_RETURN(PipelineRunInfo run, GetPipelineRun(ws, run_id));
  ASSIGN_OR_RETURN(auto rows,
                   ws.db().Query("SELECT spec_yaml FROM pipeline_runs WHERE id = ?", {run_id}));
  // The run executes the pipeline as it was when it started, whatever the
  // file says now.
  Result<PipelineSpec> parsed = ParsePipelineSpec(rows[0].Text(0), run.spec_path);
  if (!parsed.ok()) {
    RETURN_IF_ERROR(Settle(ws, run, kRunFailed, parsed.status().message()));
    return run;
  }
  const PipelineSpec& spec = *parsed;
  Heartbeat beat(ws, run_id, options.stop);
  Executor ex{ws, run, spec, options, beat, {}};
  bool resumed = false;
  for (const StepRunInfo& s : run.steps) resumed |= s.state != kStepPending;
  ex.Log(std::string(resumed ? "resuming" : "running") + " pipeline " + spec.name + " (run " +
         std::to_string(run.id) + ", " + std::to_string(spec.steps.size()) + " steps)");
  std::string end_state = kRunSucceeded;
  for (size_t i = 0; i < spec.steps.size(); ++i) {
    const StepSpec& sp = spec.steps[i];
    StepRunInfo* s = nullptr;
    for (StepRunInfo& candidate : run.steps) {
      if (candidate.step == sp.id) s = &candidate;
    }
    if (!s) {
      end_state = kRunFailed;
      run.reason = "step " + sp.id + " has no step run (corrupt run)";
      break;
    }
    if (s->state == kStepSucceeded || s->state == kStepCached || s->state == kStepSkipped) {
      ex.outputs[sp.id] = s->outputs;
      continue;
    }
    if (beat.flag()->load()) {
      end_state = kRunCancelled;
      break;
    }
    Result<bool> go = ex.Step(sp, *s);
    if (!go.ok()) {  // an error of the runner or the step's inputs: the step fails
      s->state = kStepFailed;
      s->error = go.status().message();
      s->finished_at = NowIso8601();
      (void)SaveStep(ws, *s);
      run.reason = "step " + sp.id + " (" + sp.uses + "): " + s->error;
      end_state = kRunFailed;
      break;
    }
    if (!*go) {
      end_state = beat.flag()->load() ? kRunCancelled : kRunFailed;
      if (end_state == kRunCancelled && s->state == kStepRunning) {
        s->state = kStepNotRun;
        s->error = s->error.empty() ? "cancelled" : s->error;
        (void)SaveStep(ws, *s);
      }
      break;
    }
  }
  if (end_state == kRunCancelled && !beat.cancelled()) {
    // Interrupted (a signal to the runner, the controller stopping): the
    // run stays running, owned by nobody, for `detops pipelines resume`
    // or a controller to continue.
    run.reason = "interrupted; resume with: detops pipelines resume " + std::to_string(run.id);
    RETURN_IF_ERROR(ws.db().Exec(
        "UPDATE pipeline_runs SET owner = '', heartbeat_ms = 0, reason = ? WHERE id = ?",
        {run.reason, run_id}));
    for (StepRunInfo& s : run.steps) {
      if (s.state == kStepNotRun) {  // the step that was stopped runs again
        s.state = kStepRunning;
        (void)SaveStep(ws, s);
      }
    }
    ex.Log("pipeline run " + std::to_string(run.id) + " " + run.reason);
    return GetPipelineRun(ws, run_id);
  }
  if (end_state != kRunSucceeded) {
    for (StepRunInfo& s : run.steps) {
      if (s.state == kStepPending || s.state == kStepRunning) {
        s.state = kStepNotRun;
        (void)SaveStep(ws, s);
      }
    }
    if (end_state == kRunCancelled) {
      ASSIGN_OR_RETURN(auto why,
                       ws.db().Query("SELECT reason FROM pipeline_runs WHERE id = ?", {run_id}));
      std::string asked = why.empty() ? "" : why[0].Text(0);
      run.reason = asked.empty() ? "cancelled" : asked;
    }
  } else {
    run.reason = std::to_string(run.executed) + " step" + (run.executed == 1 ? "" : "s") +
                 " ran, " + std::to_string(run.cached) + " cached";
    if (run.executed == 0) run.reason = "nothing to do: every step's inputs are unchanged";
  }
  RETURN_IF_ERROR(Settle(ws, run, end_state, run.reason));
  ex.Log("pipeline run " + std::to_string(run.id) + " " + end_state + ": " + run.reason);
  int executed = run.executed, cached = run.cached;
  ASSIGN_OR_RETURN(run, GetPipelineRun(ws, run_id));
  run.executed = executed;
  run.cached = cached;
  return run;
}

Result<PipelineRunInfo> RunPipeline(Workspace& ws, const PipelineRunOptions& options) {
  ASSIGN_OR_RETURN(PipelineRunInfo run, CreatePipelineRun(ws, options));
  return ExecutePipelineRun(ws, run.id, options);
}

Result<std::vector<int64_t>> FindOrphanedRuns(Workspace& ws, int64_t stale_ms) {
  ASSIGN_OR_RETURN(auto rows, ws.db().Query("SELECT id, owner, heartbeat_ms FROM pipeline_runs "
                                            "WHERE state = ? ORDER BY id",
                                            {std::string(kRunRunning)}));
  std::vector<int64_t> out;
  for (const SqlRow& r : rows) {
    if (!OwnerAlive(r.Text(1), r.Int(2), stale_ms)) out.push_back(r.Int(0));
  }
  return out;
}

Result<PipelineRunInfo> CancelPipelineRun(Workspace& ws, int64_t run_id, const std::string& actor,
                                          const std::string& reason) {
  ASSIGN_OR_RETURN(PipelineRunInfo run, GetPipelineRun(ws, run_id));
  if (run.state != kRunRunning) {
    return Status::InvalidInput("pipeline run " + std::to_string(run_id) + " is already " +
                                run.state);
  }
  const std::string why = "cancelled by " + actor + (reason.empty() ? "" : ": " + reason);
  RETURN_IF_ERROR(ws.db().Exec(
      "UPDATE pipeline_runs SET cancel_requested = 1, reason = ? WHERE id = ?", {why, run_id}));
  if (!OwnerAlive(run.owner, run.heartbeat_ms, 60000)) {
    ASSIGN_OR_RETURN(auto tracker, Tracker::Open(ws));
    for (StepRunInfo& s : run.steps) {
      // A training its dead runner left running is settled too.
      if (s.state == kStepRunning && s.resume.contains("run_name")) {
        auto tr = tracker->GetRun(s.resume["run_name"].get<std::string>());
        if (tr.ok() && tr->status == RunStatus::kRunning) {
          RETURN_IF_ERROR(tracker->SetTags(tr->id, {{"failure_reason", why}}));
          RETURN_IF_ERROR(tracker->SetStatus(tr->id, RunStatus::kKilled));
        }
      }
      if (s.state == kStepPending || s.state == kStepRunning) {
        s.state = kStepNotRun;
        s.error = "cancelled";
        RETURN_IF_ERROR(SaveStep(ws, s));
      }
    }
    RETURN_IF_ERROR(Settle(ws, run, kRunCancelled, why));
  }
  return GetPipelineRun(ws, run_id);
}

}  // namespace detops
