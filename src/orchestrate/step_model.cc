// Model steps: evaluate a model on a dataset split; register a train run
// as a model version.

#include <cstdio>

#include "orchestrate/steps_internal.h"
#include "registry/registry.h"

namespace detops {
namespace {

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

}  // namespace

StepType EvaluateStep() {
  StepType t;
  t.name = "evaluate";
  t.summary =
      "evaluates a model (a run, a model version NAME@V or a weights file) on a dataset "
      "version's split";
  t.required = {"model", "dataset"};
  t.optional = {"split", "precision", "conf"};
  t.fingerprint = [](StepContext& c) -> Result<Json> {
    ASSIGN_OR_RETURN(DatasetRef ref, ParseDatasetRef(c.Get("dataset")));
    ASSIGN_OR_RETURN(VersionInfo v, ResolveVersion(c.ws, ref));
    return Json{{"dataset", v.Ref()}, {"content", v.manifest_sha}};
  };
  t.run = [](StepContext& c) -> Result<Json> {
    EvalJobOptions o;
    ASSIGN_OR_RETURN(o.model, c.Require("model"));
    // A model version (NAME@V, NAME@ALIAS): its weights.
    if (o.model.find('@') != std::string::npos) {
      ASSIGN_OR_RETURN(auto registry, Registry::Open(c.ws));
      if (auto v = registry->Get(o.model); v.ok()) o.model = registry->WeightsPath(*v).string();
    }
    ASSIGN_OR_RETURN(o.dataset, c.Require("dataset"));
    o.split = c.Get("split", "test");
    o.precision = c.Get("precision", "fp32");
    ASSIGN_OR_RETURN(double conf, c.Number("conf", o.conf));
    o.conf = static_cast<float>(conf);
    o.threads = c.threads;
    o.build = c.build;
    ASSIGN_OR_RETURN(EvalJobResult r, RunEvalJob(c.ws, o));
    c.log("mAP50 " + Num(r.report.map50) + ", mAP50-95 " + Num(r.report.map) + " on " + o.dataset +
          " " + o.split);
    return Json{{"run", r.run.id},
                {"map50", Num(r.report.map50)},
                {"map", Num(r.report.map)},
                {"precision", Num(r.report.precision)},
                {"recall", Num(r.report.recall)},
                {"f1", Num(r.report.f1)}};
  };
  return t;
}

StepType RegisterStep() {
  StepType t;
  t.name = "register";
  t.summary = "registers a train run as a new version of a model (once per run)";
  t.required = {"run"};
  t.optional = {"name", "description"};
  t.run = [](StepContext& c) -> Result<Json> {
    ASSIGN_OR_RETURN(std::string run, c.Require("run"));
    ASSIGN_OR_RETURN(auto registry, Registry::Open(c.ws));
    // Registered already (the runner died after registering): the same version.
    ASSIGN_OR_RETURN(auto versions, registry->List(c.Get("name")));
    for (const ModelVersion& v : versions) {
      if (v.run_id == run) {
        c.log(run + " is registered already as " + v.Ref());
        return Json{{"model", v.Ref()}, {"name", v.name}, {"version", std::to_string(v.version)}};
      }
    }
    RegisterJobOptions o;
    o.run = run;
    o.name = c.Get("name");
    o.description = c.Get("description", "pipeline run " + std::to_string(c.pipeline_run));
    o.actor = c.actor;
    o.threads = c.threads;
    o.on_progress = c.log;
    ASSIGN_OR_RETURN(ModelVersion v, RunRegisterJob(c.ws, o));
    c.log("registered " + v.Ref());
    return Json{{"model", v.Ref()}, {"name", v.name}, {"version", std::to_string(v.version)}};
  };
  return t;
}

}  // namespace detops
