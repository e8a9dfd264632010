// The train step: a tracked training run on a dataset version, warm-started
// from production by default, with the augmentation that matches a shift
// the monitor named. A crash mid-training resumes the same run from its
// last checkpoint.

#include <cstdio>
#include <sstream>

#include "core/hash.h"
#include "orchestrate/steps_internal.h"
#include "registry/registry.h"
#include "track/track.h"

namespace detops {
namespace {

// What `init` means now: "" (from scratch) or a weights file / run.
struct Init {
  std::string from;         // for TrainJobOptions::init_from
  std::string description;  // "cars@3 (production)"
  std::string variant;      // of the production version ("" = not known)
  int imgsz = 0;
};

Result<Init> ResolveInit(StepContext& c) {
  const std::string init = c.Get("init", "production");
  if (init == "none" || init == "scratch") return Init{"", "scratch", "", 0};
  if (init != "production") return Init{init, init, "", 0};
  const std::string model = c.Get("model");
  if (model.empty()) {
    return Status::InvalidInput("step " + c.step_id +
                                ": init production needs the model's name (input 'model')");
  }
  ASSIGN_OR_RETURN(auto registry, Registry::Open(c.ws));
  ASSIGN_OR_RETURN(std::optional<int> prod, registry->AliasVersion(model, "production"));
  if (!prod) return Init{"", "scratch (" + model + " has no production version)", "", 0};
  ASSIGN_OR_RETURN(ModelVersion v, registry->Get(ModelRef{model, *prod, ""}));
  return Init{registry->WeightsPath(v).string(), v.Ref() + " (production)", v.spec.variant,
              v.spec.imgsz};
}

// The recipe: a warm start keeps the architecture and input size of what it
// starts from unless told otherwise.
Result<TrainOptions> Recipe(StepContext& c, const Init& init) {
  TrainOptions o;
  o.epochs = 0;
  if (!init.variant.empty()) o.variant = init.variant;
  if (init.imgsz > 0) o.imgsz = init.imgsz;
  if (!c.Get("recipe").empty()) {
    ASSIGN_OR_RETURN(o, LoadTrainConfig(c.Get("recipe"), o));
  }
  o.variant = c.Get("variant", o.variant);
  ASSIGN_OR_RETURN(double minutes, c.Number("minutes", o.max_minutes));
  ASSIGN_OR_RETURN(double epochs, c.Number("epochs", o.epochs));
  ASSIGN_OR_RETURN(double imgsz, c.Number("imgsz", o.imgsz));
  ASSIGN_OR_RETURN(double batch, c.Number("batch", o.batch));
  ASSIGN_OR_RETURN(double lr, c.Number("lr", o.lr));
  ASSIGN_OR_RETURN(double seed, c.Number("seed", static_cast<double>(o.seed)));
  o.max_minutes = minutes;
  o.epochs = static_cast<int>(epochs);
  if (o.epochs == 0 && o.max_minutes <= 0) o.epochs = kDefaultEpochs;
  o.imgsz = static_cast<int>(imgsz);
  o.augment.imgsz = o.imgsz;
  o.batch = static_cast<int>(batch);
  o.lr = lr;
  o.seed = static_cast<uint64_t>(seed);
  o.threads = c.threads;
  o.precision = c.Get("precision", o.precision);
  // The shift the monitor named: more of it in training.
  for (const auto& [knob, p] : AugmentForSignals(CommaList(c.Get("shift")))) {
    double* slot = knob == "dark"    ? &o.augment.dark
                   : knob == "haze"  ? &o.augment.haze
                   : knob == "blur"  ? &o.augment.blur
                   : knob == "noise" ? &o.augment.noise
                                     : nullptr;
    if (slot && *slot < p) {
      c.log("shift: augment." + knob + " " + std::to_string(*slot) + " -> " + std::to_string(p));
      *slot = p;
    }
  }
  return o;
}

Json Outputs(const TrainJobResult& r, const std::string& init) {
  char buf[32];
  auto num = [&](double v) {
    std::snprintf(buf, sizeof buf, "%.4f", v);
    return std::string(buf);
  };
  return {{"run", r.run.id},
          {"run_name", r.run.name},
          {"dataset", r.run.dataset_version},
          {"epochs", std::to_string(r.train.epochs_done)},
          {"val_map50", num(r.train.best_map50)},
          {"test_map50", r.evaluated ? num(r.test.map50) : ""},
          {"test_map", r.evaluated ? num(r.test.map) : ""},
          {"init", init}};
}

// The outputs of a run that finished before the runner could record them.
Json OutputsOf(const RunInfo& run, const std::string& init) {
  auto metric = [&](const std::string& key) {
    auto it = run.final_metrics.find(key);
    if (it == run.final_metrics.end()) return std::string();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4f", it->second);
    return std::string(buf);
  };
  return {{"run", run.id},
          {"run_name", run.name},
          {"dataset", run.dataset_version},
          {"epochs", metric("best/epoch")},
          {"val_map50", metric("best/val_map50")},
          {"test_map50", metric("test/map50")},
          {"test_map", metric("test/map")},
          {"init", init}};
}

}  // namespace

StepType TrainStep() {
  StepType t;
  t.name = "train";
  t.summary =
      "trains a detector on a dataset version (init: production | none | a run or "
      "weights file; shift: monitor signals whose augmentation to turn up)";
  t.required = {"dataset"};
  t.optional = {"init", "model", "variant", "minutes", "epochs", "imgsz",     "batch",
                "lr",   "seed",  "shift",   "recipe",  "name",   "precision", "force"};
  t.fingerprint = [](StepContext& c) -> Result<Json> {
    ASSIGN_OR_RETURN(DatasetRef ref, ParseDatasetRef(c.Get("dataset")));
    ASSIGN_OR_RETURN(VersionInfo v, ResolveVersion(c.ws, ref));
    // `init` counts as written ("production"), not as the version it
    // resolves to: the run that promoted a new production must not make the
    // same pipeline, run again on the same data, train again.
    Json facts = {{"dataset", v.Ref()}, {"content", v.manifest_sha}};
    if (!c.Get("recipe").empty()) {
      ASSIGN_OR_RETURN(facts["recipe"], Sha256File(c.Get("recipe")));
    }
    return facts;
  };
  t.run = [](StepContext& c) -> Result<Json> {
    ASSIGN_OR_RETURN(auto tracker, Tracker::Open(c.ws));
    TrainCallbacks ui;
    ui.stop = c.stop;
    ui.on_epoch = [&](const EpochSummary& e) {
      char line[160];
      std::snprintf(
          line, sizeof line, "epoch %d/%d  loss %.3f%s  %.1f s", e.epoch, e.planned_epochs,
          e.train_loss,
          e.evaluated ? ("  val mAP50 " + std::to_string(e.val_map50).substr(0, 5)).c_str() : "",
          e.seconds);
      c.log(line);
    };
    // A run an earlier attempt started (the runner died, or the attempt
    // failed mid-way): continue it from its checkpoint.
    if (c.resume.contains("run_name")) {
      const std::string name = c.resume["run_name"];
      auto run = tracker->GetRun(name);
      if (run.ok() && run->status == RunStatus::kFinished) {
        c.log("run " + name + " had finished before the interruption");
        return OutputsOf(*run, c.resume.value("init", ""));
      }
      if (run.ok()) {
        c.log("resuming run " + name + " from its checkpoint");
        auto r = ResumeTrainJob(c.ws, run->id, c.build, ui, c.threads);
        if (r.ok()) {
          if (!r->train.completed && c.stop && c.stop->load()) {
            return Status::Unavailable("cancelled: training stopped at epoch " +
                                       std::to_string(r->train.epochs_done));
          }
          return Outputs(*r, c.resume.value("init", ""));
        }
        if (r.status().code() != StatusCode::kNotFound) return r.status();
        // Killed before its first checkpoint: settle it, then train anew.
        RETURN_IF_ERROR(
            tracker->SetTags(run->id, {{"failure_reason",
                                        "the pipeline runner stopped before the first "
                                        "checkpoint; trained again by the next attempt"}}));
        RETURN_IF_ERROR(tracker->SetStatus(run->id, RunStatus::kFailed));
        c.log("run " + name + " has no checkpoint; training again");
      }
    }
    TrainJobOptions o;
    ASSIGN_OR_RETURN(o.dataset, c.Require("dataset"));
    ASSIGN_OR_RETURN(Init init, ResolveInit(c));
    ASSIGN_OR_RETURN(o.train, Recipe(c, init));
    o.init_from = init.from;
    o.force = c.Flag("force", false);
    o.build = c.build;
    o.name = c.Get("name", "pipeline" + std::to_string(c.pipeline_run) + "-" + c.step_id);
    int attempt = c.resume.value("attempt", 0) + 1;
    if (attempt > 1) o.name += "-" + std::to_string(attempt);
    o.tags = {{"pipeline_run", std::to_string(c.pipeline_run)}, {"step", c.step_id}};
    RETURN_IF_ERROR(
        c.save_resume({{"run_name", o.name}, {"attempt", attempt}, {"init", init.description}}));
    c.log("training " + o.name + " on " + o.dataset + " from " + init.description +
          (o.train.max_minutes > 0 ? ", " + std::to_string(o.train.max_minutes) + " min" : "") +
          (o.train.epochs > 0 ? ", at most " + std::to_string(o.train.epochs) + " epochs" : ""));
    ASSIGN_OR_RETURN(TrainJobResult r, RunTrainJob(c.ws, o, ui));
    if (!r.train.completed && c.stop && c.stop->load()) {
      return Status::Unavailable("cancelled: training stopped at epoch " +
                                 std::to_string(r.train.epochs_done));
    }
    return Outputs(r, init.description);
  };
  return t;
}

}  // namespace detops
