// detops models register | ls | show | promote | history | rollback

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "cli/output.h"
#include "pipeline/pipeline.h"

namespace detops::cli {
namespace {

std::string Fixed(double v, int digits = 3) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string Metric(const ModelVersion& v, const std::string& key, int digits = 3) {
  auto it = v.metrics.find(key);
  return it == v.metrics.end() ? "-" : Fixed(it->second, digits);
}

std::string Join(const std::vector<std::string>& v, const char* sep = ",") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

std::string Version(const std::optional<int>& v) { return v ? std::to_string(*v) : "-"; }

void PrintGates(const GateReport& r) {
  Table t({"GATE", "REQUIRED", "ACTUAL", "MARGIN", "RESULT"});
  for (const GateCheck& c : r.checks) {
    t.Add({c.gate, c.required, c.actual, c.margin == 0 ? "-" : Fixed(c.margin),
           c.passed ? "pass" : "FAIL"});
  }
  std::cout << t.Render();
}

std::function<void(const std::string&)> Narrate(bool quiet) {
  return [quiet](const std::string& what) {
    if (!quiet) std::fprintf(stderr, "%s...\n", what.c_str());
  };
}

struct RegisterArgs {
  RegisterJobOptions o;
  bool json = false;
};

int Register(Globals& g, RegisterArgs& a) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  Workspace& ws = **opened;
  a.o.actor = Actor();
  a.o.on_progress = Narrate(a.json);
  auto v = RunRegisterJob(ws, a.o);
  if (!v.ok()) return Fail(v.status());
  if (a.json) {
    PrintJson(ModelVersionToJson(*v));
    return kExitOk;
  }
  std::cout << "registered " << v->Ref() << " from run " << v->run_id << " (" << v->dataset_version
            << ", validation " << v->dataset_validation << ")\n"
            << "  test mAP50 " << Metric(*v, "map50") << "  mAP50-95 " << Metric(*v, "map")
            << "  recall " << Metric(*v, "recall") << "  p95 " << Metric(*v, "latency_p95_ms", 1)
            << " ms\n"
            << "next: detops models promote " << v->Ref() << " --to staging\n";
  return kExitOk;
}

int List(Globals& g, const std::string& name, bool json) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  Workspace& ws = **opened;
  auto reg = Registry::Open(ws);
  if (!reg.ok()) return Fail(reg.status());
  auto all = (*reg)->List(name);
  if (!all.ok()) return Fail(all.status());
  if (json) {
    Json j = Json::array();
    for (const ModelVersion& v : *all) j.push_back(ModelVersionToJson(v));
    PrintJson(j);
    return kExitOk;
  }
  Table t(
      {"MODEL", "ALIASES", "MAP50", "MAP50-95", "RECALL", "P95 MS", "DATASET", "RUN", "CREATED"});
  for (const ModelVersion& v : *all) {
    t.Add({v.Ref(), v.aliases.empty() ? "-" : Join(v.aliases), Metric(v, "map50"), Metric(v, "map"),
           Metric(v, "recall"), Metric(v, "latency_p95_ms", 1), v.dataset_version, v.run_id,
           v.created_at.substr(0, 19)});
  }
  std::cout << t.Render();
  if (all->empty()) std::cout << "no models yet: detops models register RUN --name NAME\n";
  return kExitOk;
}

int Show(Globals& g, const std::string& ref, bool json) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  Workspace& ws = **opened;
  auto reg = Registry::Open(ws);
  if (!reg.ok()) return Fail(reg.status());
  auto v = (*reg)->Get(ref);
  if (!v.ok()) return Fail(v.status());
  if (json) {
    PrintJson(ModelVersionToJson(*v));
    return kExitOk;
  }
  std::cout << v->Ref() << (v->aliases.empty() ? "" : "  [" + Join(v->aliases) + "]") << "\n"
            << "  architecture  " << v->spec.architecture << " " << v->spec.variant << ", input "
            << v->spec.imgsz << " px\n"
            << "  classes       " << Join(v->spec.classes, ", ") << "\n"
            << "  dataset       " << v->dataset_version << " (validation " << v->dataset_validation
            << ")\n"
            << "  run           " << v->run_id << "\n"
            << "  weights       " << v->weights_blob << "\n"
            << "  profile       " << v->profile_blob << "\n"
            << "  created       " << v->created_at << " by " << v->created_by << "\n";
  if (!v->description.empty()) std::cout << "  description   " << v->description << "\n";
  Table t({"METRIC (test split)", "VALUE"});
  for (const auto& [k, val] : v->metrics) t.Add({k, Fixed(val, k.find("_ms") != k.npos ? 1 : 4)});
  std::cout << t.Render();
  return kExitOk;
}

struct PromoteArgs {
  PromoteJobOptions o;
  bool json = false;
};

int Promote(Globals& g, PromoteArgs& a) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  Workspace& ws = **opened;
  a.o.actor = Actor();
  a.o.on_progress = Narrate(a.json);
  auto r = RunPromoteJob(ws, a.o);
  if (!r.ok()) return Fail(r.status());
  const int code = r->applied || r->unchanged ? kExitOk : kExitValidation;
  if (a.json) {
    Json j = {{"candidate", r->candidate.Ref()},
              {"to", a.o.to},
              {"applied", r->applied},
              {"unchanged", r->unchanged},
              {"gates", GateReportToJson(r->gates)},
              {"notes", r->notes}};
    if (r->production) j["production"] = r->production->Ref();
    if (r->applied) j["audit"] = AuditEntryToJson(r->entry);
    PrintJson(j);
    return code;
  }
  if (r->unchanged) {
    std::cout << r->candidate.Ref() << " is already " << a.o.to << "\n";
    return code;
  }
  for (const std::string& n : r->notes) std::cout << "note: " << n << "\n";
  std::cout << "gates for " << r->candidate.Ref() << " -> " << a.o.to
            << (r->production ? " (production now " + r->production->Ref() + ")" : "") << "\n";
  PrintGates(r->gates);
  if (r->applied) {
    std::cout << (r->entry.forced ? "FORCED: " : "") << r->candidate.name << " " << a.o.to << ": "
              << Version(r->entry.from_version) << " -> " << Version(r->entry.to_version)
              << " (audit #" << r->entry.seq << ")\n";
  } else {
    std::fprintf(stderr,
                 "error: %s not promoted to %s: a gate failed (--force --reason TEXT "
                 "overrides, and is recorded)\n",
                 r->candidate.Ref().c_str(), a.o.to.c_str());
  }
  return code;
}

int History(Globals& g, const std::string& name, bool json) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  Workspace& ws = **opened;
  auto reg = Registry::Open(ws);
  if (!reg.ok()) return Fail(reg.status());
  auto h = (*reg)->History(name);
  if (!h.ok()) return Fail(h.status());
  if (json) {
    Json j = Json::array();
    for (const AuditEntry& e : *h) j.push_back(AuditEntryToJson(e));
    PrintJson(j);
    return kExitOk;
  }
  Table t({"#", "WHEN", "WHO", "ACTION", "ALIAS", "FROM", "TO", "GATES", "WHY"});
  for (const AuditEntry& e : *h) {
    int failed = 0;
    for (const GateCheck& c : e.gates.checks) failed += !c.passed;
    std::string gates = e.gates.checks.empty() ? "-"
                        : failed               ? std::to_string(failed) + " failed"
                                               : "passed";
    t.Add({std::to_string(e.seq), e.at.substr(0, 19), e.actor,
           e.action + (e.forced ? " (forced)" : ""), e.alias, Version(e.from_version),
           Version(e.to_version), gates, e.reason.empty() ? "-" : e.reason});
  }
  std::cout << t.Render();
  if (h->empty()) std::cout << "no alias changes for " << name << "\n";
  return kExitOk;
}

int Rollback(Globals& g, const std::string& name, const std::string& alias,
             const std::string& reason) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  Workspace& ws = **opened;
  auto e = RunRollbackJob(ws, name, alias, Actor(), reason);
  if (!e.ok()) return Fail(e.status());
  std::cout << name << " " << alias << " rolled back: " << Version(e->from_version) << " -> "
            << Version(e->to_version) << " (audit #" << e->seq << ")\n";
  return kExitOk;
}

}  // namespace

void AddRegistryCommands(CLI::App& app, Globals& g) {
  auto* models = app.add_subcommand(
      "models", "Model registry: versions, staging/production aliases, gated promotion, rollback");
  models->require_subcommand(1);

  auto* reg = models->add_subcommand(
      "register",
      "Make an immutable model version of a train run (weights, classes, test "
      "metrics, dataset version, reference profile for monitoring)");
  auto ra = std::make_shared<RegisterArgs>();
  reg->add_option("run", ra->o.run, "train run: id, prefix or name")->required();
  reg->add_option("--name", ra->o.name, "model name (default: the run's dataset name)");
  reg->add_option("--description", ra->o.description, "free text kept with the version");
  reg->add_option("--threads", ra->o.threads, "inference threads")->capture_default_str();
  reg->add_option("--device", ra->o.device, "cpu | cuda")->capture_default_str();
  reg->add_flag("--json", ra->json, "print the version as JSON");
  reg->callback([&g, ra] {
    SetProcessThreads(ra->o.threads);  // once per process, before the model loads
    g.exit_code = Register(g, *ra);
  });

  auto* ls = models->add_subcommand("ls", "List model versions with their aliases and metrics");
  auto ls_name = std::make_shared<std::string>();
  auto ls_json = std::make_shared<bool>(false);
  ls->add_option("name", *ls_name, "only this model");
  ls->add_flag("--json", *ls_json, "print JSON");
  ls->callback([&g, ls_name, ls_json] { g.exit_code = List(g, *ls_name, *ls_json); });

  auto* show = models->add_subcommand("show", "Show one version: spec, metrics, lineage");
  auto show_ref = std::make_shared<std::string>();
  auto show_json = std::make_shared<bool>(false);
  show->add_option("model", *show_ref, "NAME (latest), NAME@VERSION or NAME@ALIAS")->required();
  show->add_flag("--json", *show_json, "print JSON");
  show->callback([&g, show_ref, show_json] { g.exit_code = Show(g, *show_ref, *show_json); });

  auto* pro = models->add_subcommand(
      "promote",
      "Move staging or production to a version when the promotion policy's gates pass "
      "(metric floors, no regression against production, p95 latency, dataset validation); "
      "exit 4 when a gate fails");
  auto pa = std::make_shared<PromoteArgs>();
  pro->add_option("model", pa->o.model, "NAME@VERSION")->required();
  pro->add_option("--to", pa->o.to, "staging | production")
      ->required()
      ->check(CLI::IsMember({"staging", "production"}));
  pro->add_option("--reason", pa->o.reason, "why (recorded in the audit log)");
  pro->add_flag("--force", pa->o.force, "promote even if a gate fails; needs --reason");
  pro->add_option("--policy", pa->o.policy_file, "promotion policy YAML (default: built in)")
      ->check(CLI::ExistingFile);
  pro->add_option("--threads", pa->o.threads, "threads for re-evaluating production")
      ->capture_default_str();
  pro->add_option("--device", pa->o.device, "cpu | cuda")->capture_default_str();
  pro->add_flag("--json", pa->json, "print the gate report as JSON");
  pro->callback([&g, pa] {
    SetProcessThreads(pa->o.threads);  // once per process, before production is re-evaluated
    g.exit_code = Promote(g, *pa);
  });

  auto* hist = models->add_subcommand(
      "history", "Every alias change of a model: who, when, from, to, why, gate results");
  auto hist_name = std::make_shared<std::string>();
  auto hist_json = std::make_shared<bool>(false);
  hist->add_option("name", *hist_name, "model name")->required();
  hist->add_flag("--json", *hist_json, "print JSON (with each gate)");
  hist->callback([&g, hist_name, hist_json] { g.exit_code = History(g, *hist_name, *hist_json); });

  auto* rb = models->add_subcommand(
      "rollback", "Return production (or --alias staging) to the version it held before");
  auto rb_name = std::make_shared<std::string>();
  auto rb_alias = std::make_shared<std::string>("production");
  auto rb_reason = std::make_shared<std::string>();
  rb->add_option("name", *rb_name, "model name")->required();
  rb->add_option("--alias", *rb_alias, "staging | production")
      ->check(CLI::IsMember({"staging", "production"}))
      ->capture_default_str();
  rb->add_option("--reason", *rb_reason, "why (recorded in the audit log)");
  rb->callback([&g, rb_name, rb_alias, rb_reason] {
    g.exit_code = Rollback(g, *rb_name, *rb_alias, *rb_reason);
  });
}

}  // namespace detops::cli
