// detops pipelines run | resume | ls | show | logs | cancel | cat | steps,
// detops triggers ls, detops controller.

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "cli/output.h"
#include "core/fs.h"
#include "detops_git_commit.h"
#include "orchestrate/controller.h"
#include "orchestrate/runner.h"
#include "orchestrate/steps.h"

namespace detops::cli {
namespace {

std::atomic<bool> g_interrupt{false};
void OnSignal(int) { g_interrupt = true; }

void CatchSignals() {
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
}

BuildInfo Build() { return {DETOPS_GIT_COMMIT, DETOPS_VERSION}; }

std::string Seconds(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", ms / 1000);
  return buf;
}

void PrintRun(const PipelineRunInfo& r) {
  std::cout << "pipeline run " << r.id << " (" << r.pipeline << "): " << r.state
            << (r.reason.empty() ? "" : " — " + r.reason) << "\n";
  std::cout << "  trigger " << r.trigger
            << (r.trigger_detail.empty() ? "" : ": " + r.trigger_detail) << "\n  created "
            << r.created_at << (r.finished_at.empty() ? "" : ", finished " + r.finished_at) << "\n";
  if (!r.params.empty()) {
    std::string p;
    for (const auto& [k, v] : r.params) p += (p.empty() ? "" : " ") + k + "=" + v;
    std::cout << "  params " << p << "\n";
  }
  Table t({"STEP", "USES", "STATE", "ATTEMPTS", "TIME", "OUTPUTS / ERROR"});
  for (const StepRunInfo& s : r.steps) {
    std::string what;
    if (!s.error.empty() && s.state != kStepSucceeded) {
      what = s.error;
    } else {
      for (const auto& [k, v] : s.outputs.items()) {
        what +=
            (what.empty() ? "" : " ") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
      }
    }
    t.Add({s.step, s.uses, s.state, std::to_string(s.attempts),
           s.duration_ms > 0 ? Seconds(s.duration_ms) : "-", what.empty() ? "-" : what});
  }
  std::cout << t.Render();
}

int Report(const Result<PipelineRunInfo>& r, bool json) {
  if (!r.ok()) return Fail(r.status());
  if (json) {
    PrintJson(PipelineRunToJson(*r));
  } else {
    PrintRun(*r);
  }
  if (r->state == kRunSucceeded) return kExitOk;
  if (r->state == kRunRunning) return kExitError;  // interrupted: resumable
  return kExitError;
}

PipelineRunOptions Options(bool quiet) {
  PipelineRunOptions o;
  o.actor = Actor();
  o.build = Build();
  o.stop = &g_interrupt;
  if (const char* at = std::getenv("DETOPS_TEST_KILL_AT_STEP")) o.kill_at_step = at;
  if (!quiet) {
    o.on_log = [](const std::string& step, const std::string& line) {
      std::cerr << (step.empty() ? "" : "[" + step + "] ") << line << "\n";
    };
  }
  return o;
}

struct RunArgs {
  std::string pipeline;
  std::vector<std::string> params;
  int threads = 2;
  bool json = false, quiet = false;
};

int RunCmd(Globals& g, const RunArgs& a) {
  auto ws = OpenWorkspace(g);
  if (!ws.ok()) return Fail(ws.status());
  PipelineRunOptions o = Options(a.quiet);
  o.pipeline = a.pipeline;
  o.threads = a.threads;
  for (const std::string& kv : a.params) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Fail(Status::InvalidInput("--param takes NAME=VALUE; got '" + kv + "'"));
    }
    o.params[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  SetProcessThreads(a.threads);
  CatchSignals();
  return Report(RunPipeline(**ws, o), a.json);
}

int ResumeCmd(Globals& g, int64_t id, int threads, bool json, bool quiet) {
  auto ws = OpenWorkspace(g);
  if (!ws.ok()) return Fail(ws.status());
  PipelineRunOptions o = Options(quiet);
  o.threads = threads;
  SetProcessThreads(threads);
  CatchSignals();
  return Report(ExecutePipelineRun(**ws, id, o), json);
}

int ListCmd(Globals& g, const PipelineRunFilter& f, bool json) {
  auto ws = OpenWorkspace(g);
  if (!ws.ok()) return Fail(ws.status());
  auto runs = ListPipelineRuns(**ws, f);
  if (!runs.ok()) return Fail(runs.status());
  if (json) {
    Json j = Json::array();
    for (const auto& r : *runs) j.push_back(PipelineRunToJson(r));
    PrintJson(j);
    return kExitOk;
  }
  if (runs->empty()) {
    std::cout << "no pipeline runs\n";
    return kExitOk;
  }
  Table t({"ID", "PIPELINE", "MODEL", "TRIGGER", "STATE", "STEPS", "CREATED", "REASON"});
  for (const auto& r : *runs) {
    int done = 0;
    for (const auto& s : r.steps) {
      done += s.state == kStepSucceeded || s.state == kStepCached || s.state == kStepSkipped;
    }
    t.Add({std::to_string(r.id), r.pipeline, r.model_name.empty() ? "-" : r.model_name, r.trigger,
           r.state, std::to_string(done) + "/" + std::to_string(r.steps.size()),
           r.created_at.substr(0, 19), r.reason.empty() ? "-" : r.reason});
  }
  std::cout << t.Render();
  return kExitOk;
}

int LogsCmd(Globals& g, int64_t id, const std::string& step) {
  auto ws = OpenWorkspace(g);
  if (!ws.ok()) return Fail(ws.status());
  auto run = GetPipelineRun(**ws, id);
  if (!run.ok()) return Fail(run.status());
  bool found = step.empty();
  for (const StepRunInfo& s : run->steps) {
    if (!step.empty() && s.step != step) continue;
    found = true;
    if (s.log_path.empty()) continue;
    auto text = ReadFile(s.log_path);
    if (!text.ok()) continue;
    if (step.empty()) std::cout << "== " << s.step << " (" << s.uses << ", " << s.state << ")\n";
    std::cout << *text;
  }
  if (!found)
    return Fail(Status::NotFound("pipeline run " + std::to_string(id) + " has no step " + step));
  return kExitOk;
}

int CatCmd(const std::string& name) {
  const auto& builtins = BuiltinPipelines();
  auto it = builtins.find(name);
  if (it == builtins.end()) {
    std::string known;
    for (const auto& [k, _] : builtins) known += (known.empty() ? "" : ", ") + k;
    return Fail(Status::NotFound("no built-in pipeline '" + name + "' (built in: " + known + ")"));
  }
  std::cout << it->second.substr(it->second.find_first_not_of('\n'));
  return kExitOk;
}

int StepsCmd() {
  Table t({"STEP", "REQUIRED", "OPTIONAL", "WHAT IT DOES"});
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s.empty() ? std::string("-") : s;
  };
  for (const StepType& s : BuiltinSteps()) {
    t.Add({s.name, join(s.required), join(s.optional), s.summary});
  }
  std::cout << t.Render();
  return kExitOk;
}

int TriggersCmd(Globals& g, const std::string& model, int limit, bool json) {
  auto ws = OpenWorkspace(g);
  if (!ws.ok()) return Fail(ws.status());
  auto events = ListTriggerEvents(**ws, model, limit);
  if (!events.ok()) return Fail(events.status());
  if (json) {
    Json j = Json::array();
    for (const auto& e : *events) j.push_back(TriggerEventToJson(e));
    PrintJson(j);
    return kExitOk;
  }
  if (events->empty()) {
    std::cout << "no trigger decisions" << (model.empty() ? "" : " for " + model) << "\n";
    return kExitOk;
  }
  Table t({"ID", "AT", "MODEL", "TRIGGER", "DECISION", "RUN", "REASON"});
  for (const auto& e : *events) {
    t.Add({std::to_string(e.id), e.at.substr(0, 19), e.model_name, e.trigger, e.decision,
           e.pipeline_run ? std::to_string(e.pipeline_run) : "-", e.reason});
  }
  std::cout << t.Render();
  return kExitOk;
}

struct ControllerArgs {
  std::string config_file, model, pipeline;
  std::vector<std::string> params;
  int threads = 2;
  bool once = false;
  double cooldown = -1, quiet = -1, tick = -1;
  std::string schedule, monitor_policy;
  bool no_monitor = false, no_inbox = false, no_drift = false;
};

Status ApplyControllerFlags(const std::string& model, const std::string& pipeline,
                            const std::vector<std::string>& params, double cooldown, double quiet,
                            double tick, const std::string& schedule,
                            const std::string& monitor_policy, bool no_monitor, bool no_inbox,
                            bool no_drift, ControllerConfig& c) {
  if (!model.empty()) c.model = model;
  if (!pipeline.empty()) c.pipeline = pipeline;
  for (const std::string& kv : params) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidInput("--param takes NAME=VALUE; got '" + kv + "'");
    }
    c.params[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (cooldown >= 0) c.cooldown_seconds = cooldown;
  if (quiet >= 0) c.inbox_quiet_seconds = quiet;
  if (tick > 0) c.tick_seconds = tick;
  if (!schedule.empty()) c.schedule = schedule;
  if (!monitor_policy.empty()) c.monitor_policy = monitor_policy;
  if (no_monitor) c.monitor = false;
  if (no_inbox) c.inbox = false;
  if (no_drift) c.drift = c.decay = false;
  return Status::Ok();
}

int ControllerCmd(Globals& g, const ControllerArgs& a) {
  auto ws = OpenWorkspace(g);
  if (!ws.ok()) return Fail(ws.status());
  Result<ControllerConfig> cfg = ControllerConfig{};
  if (!a.config_file.empty()) cfg = LoadControllerConfig(a.config_file);
  if (!cfg.ok()) return Fail(cfg.status());
  ControllerConfig c = *cfg;
  if (Status st = ApplyControllerFlags(a.model, a.pipeline, a.params, a.cooldown, a.quiet, a.tick,
                                       a.schedule, a.monitor_policy, a.no_monitor, a.no_inbox,
                                       a.no_drift, c);
      !st.ok())
    return Fail(st);
  if (c.model.empty())
    return Fail(Status::InvalidInput("name the model: --model or the file's model:"));
  ControllerOptions o;
  o.threads = a.threads;
  o.build = Build();
  auto precision = ResolvePrecision("auto", "cpu");
  o.serving_precision = precision.ok() ? *precision : "fp32";
  o.on_log = [](const std::string& line) {
    std::cerr << NowIso8601().substr(11, 12) << " " << line << "\n";
  };
  SetProcessThreads(a.threads);
  auto controller = Controller::Open(**ws, c, o);
  if (!controller.ok()) return Fail(controller.status());
  std::cerr << "controller for " << c.model << ": pipeline " << c.pipeline
            << ", triggers:" << (c.inbox ? " inbox" : "") << (c.drift ? " drift" : "")
            << (c.decay ? " decay" : "")
            << (c.schedule.empty() ? "" : " schedule(" + c.schedule + ")")
            << (c.monitor ? "; monitor on" : "") << "\n";
  CatchSignals();
  if (a.once) {
    auto r = (*controller)
                 ->Tick(std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count());
    if (!r.ok()) return Fail(r.status());
    while ((*controller)->Busy() && !g_interrupt)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return kExitOk;
  }
  (*controller)->Run(g_interrupt);
  std::cerr << "controller stopped\n";
  return kExitOk;
}

}  // namespace

void AddPipelineCommands(CLI::App& app, Globals& g) {
  auto* p = app.add_subcommand("pipelines",
                               "pipelines: YAML DAGs of built-in steps, cached, "
                               "retried and resumable (docs/pipelines.md)");
  p->require_subcommand(1);

  auto ra = std::make_shared<RunArgs>();
  auto* run = p->add_subcommand("run", "run a pipeline file (or a built-in: retrain) to the end");
  run->add_option("pipeline", ra->pipeline, "pipeline file, or a built-in name")->required();
  run->add_option("--param,-p", ra->params,
                  "NAME=VALUE, overriding the file's params (repeatable)");
  run->add_option("--threads", ra->threads, "intra-op threads")->capture_default_str();
  run->add_flag("--json", ra->json, "print the run as JSON");
  run->add_flag("-q,--quiet", ra->quiet, "no step log on stderr");
  run->callback([&g, ra] { g.exit_code = RunCmd(g, *ra); });

  auto resume_id = std::make_shared<int64_t>(0);
  auto resume_threads = std::make_shared<int>(2);
  auto resume_json = std::make_shared<bool>(false);
  auto resume_quiet = std::make_shared<bool>(false);
  auto* resume =
      p->add_subcommand("resume",
                        "continue a run whose runner died or was interrupted, at the step that was "
                        "running (finished steps are not redone)");
  resume->add_option("run", *resume_id, "pipeline run id")->required();
  resume->add_option("--threads", *resume_threads, "intra-op threads")->capture_default_str();
  resume->add_flag("--json", *resume_json, "print the run as JSON");
  resume->add_flag("-q,--quiet", *resume_quiet, "no step log on stderr");
  resume->callback([&g, resume_id, resume_threads, resume_json, resume_quiet] {
    g.exit_code = ResumeCmd(g, *resume_id, *resume_threads, *resume_json, *resume_quiet);
  });

  auto filter = std::make_shared<PipelineRunFilter>();
  auto ls_json = std::make_shared<bool>(false);
  auto* ls = p->add_subcommand("ls", "pipeline runs, newest first");
  ls->add_option("--pipeline", filter->pipeline, "only this pipeline");
  ls->add_option("--state", filter->state, "running | succeeded | failed | cancelled");
  ls->add_option("--model", filter->model_name, "only runs about this model");
  ls->add_option("--trigger", filter->trigger, "manual | inbox | drift | decay | schedule");
  ls->add_option("--limit", filter->limit, "at most this many")->capture_default_str();
  ls->add_flag("--json", *ls_json, "JSON");
  ls->callback([&g, filter, ls_json] { g.exit_code = ListCmd(g, *filter, *ls_json); });

  auto show_id = std::make_shared<int64_t>(0);
  auto show_json = std::make_shared<bool>(false);
  auto* show = p->add_subcommand("show", "one run: every step's state, attempts, time, outputs");
  show->add_option("run", *show_id, "pipeline run id")->required();
  show->add_flag("--json", *show_json, "JSON");
  show->callback([&g, show_id, show_json] {
    auto ws = OpenWorkspace(g);
    if (!ws.ok()) {
      g.exit_code = Fail(ws.status());
      return;
    }
    auto r = GetPipelineRun(**ws, *show_id);
    g.exit_code = r.ok() ? (Report(r, *show_json), kExitOk) : Fail(r.status());
  });

  auto logs_id = std::make_shared<int64_t>(0);
  auto logs_step = std::make_shared<std::string>();
  auto* logs = p->add_subcommand("logs", "the step logs of a run");
  logs->add_option("run", *logs_id, "pipeline run id")->required();
  logs->add_option("step", *logs_step, "only this step");
  logs->callback([&g, logs_id, logs_step] { g.exit_code = LogsCmd(g, *logs_id, *logs_step); });

  auto cancel_id = std::make_shared<int64_t>(0);
  auto cancel_reason = std::make_shared<std::string>();
  auto* cancel = p->add_subcommand("cancel",
                                   "stop a running pipeline run (its step stops "
                                   "cleanly; the run is settled as cancelled)");
  cancel->add_option("run", *cancel_id, "pipeline run id")->required();
  cancel->add_option("--reason", *cancel_reason, "recorded with the run");
  cancel->callback([&g, cancel_id, cancel_reason] {
    auto ws = OpenWorkspace(g);
    if (!ws.ok()) {
      g.exit_code = Fail(ws.status());
      return;
    }
    auto r = CancelPipelineRun(**ws, *cancel_id, Actor(), *cancel_reason);
    if (!r.ok()) {
      g.exit_code = Fail(r.status());
      return;
    }
    std::cout << "pipeline run " << r->id << ": "
              << (r->state == kRunCancelled ? "cancelled"
                                            : "cancel requested (its runner stops it)")
              << "\n";
  });

  auto cat_name = std::make_shared<std::string>();
  auto* cat = p->add_subcommand("cat", "print a built-in pipeline (a start for your own file)");
  cat->add_option("name", *cat_name, "built-in pipeline name (retrain)")->required();
  cat->callback([&g, cat_name] { g.exit_code = CatCmd(*cat_name); });

  auto* steps = p->add_subcommand("steps", "the built-in step types and their inputs");
  steps->callback([&g] { g.exit_code = StepsCmd(); });

  auto* triggers = app.add_subcommand("triggers", "what the triggers decided, and why");
  triggers->require_subcommand(1);
  auto tmodel = std::make_shared<std::string>();
  auto tlimit = std::make_shared<int>(50);
  auto tjson = std::make_shared<bool>(false);
  auto* tls = triggers->add_subcommand("ls", "trigger decisions, newest first");
  tls->add_option("--model", *tmodel, "only this model");
  tls->add_option("--limit", *tlimit, "at most this many")->capture_default_str();
  tls->add_flag("--json", *tjson, "JSON");
  tls->callback(
      [&g, tmodel, tlimit, tjson] { g.exit_code = TriggersCmd(g, *tmodel, *tlimit, *tjson); });
}

void AddControllerCommand(CLI::App& app, Globals& g) {
  auto a = std::make_shared<ControllerArgs>();
  auto* c =
      app.add_subcommand("controller",
                         "keep a model healthy unattended: run its monitor and triggers (inbox, "
                         "drift, accuracy decay, schedule) and the pipelines they start");
  c->add_option("--config", a->config_file, "controller YAML (docs/pipelines.md)");
  c->add_option("--model", a->model, "the registry model (overrides the file)");
  c->add_option("--pipeline", a->pipeline, "pipeline file or built-in name (default retrain)");
  c->add_option("--param,-p", a->params, "NAME=VALUE for every run (repeatable)");
  c->add_option("--cooldown", a->cooldown, "seconds between drift/decay retrainings");
  c->add_option("--inbox-quiet", a->quiet, "seconds an inbox folder must stay unchanged");
  c->add_option("--tick", a->tick, "seconds between passes");
  c->add_option("--schedule", a->schedule, "cron expression (UTC) for scheduled runs");
  c->add_option("--monitor-policy", a->monitor_policy, "monitor policy YAML");
  c->add_flag("--no-monitor", a->no_monitor, "do not run the monitor here (a server runs it)");
  c->add_flag("--no-inbox", a->no_inbox, "do not watch the inbox");
  c->add_flag("--no-drift", a->no_drift, "no drift or decay triggers");
  c->add_option("--threads", a->threads, "intra-op threads")->capture_default_str();
  c->add_flag("--once", a->once, "one pass, wait for what it started, exit");
  c->callback([&g, a] { g.exit_code = ControllerCmd(g, *a); });
}

}  // namespace detops::cli
