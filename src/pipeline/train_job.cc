// The train job: gate on validation, build the training set from a dataset
// version, train with tracking, evaluate the best weights on the test split.

#include "data/derive.h"
#include "pipeline/jobs_internal.h"
#include "pipeline/train_options.h"

namespace detops {
namespace fs = std::filesystem;
namespace {

std::vector<TrainSample> Samples(Workspace& ws, const Manifest& m, Split split) {
  std::vector<TrainSample> out;
  for (const ImageEntry& e : m.images) {
    // Unlabelled images teach nothing; declared backgrounds teach "no damage".
    if (e.split != split || !e.labelled || e.width <= 0) continue;
    TrainSample s;
    s.path = ws.blobs().PathOf(e.blob);
    for (const Box& b : e.boxes) {
      if (b.difficult) continue;
      Box c = b;
      c.x1 = std::clamp(c.x1, 0.0, 1.0);
      c.y1 = std::clamp(c.y1, 0.0, 1.0);
      c.x2 = std::clamp(c.x2, 0.0, 1.0);
      c.y2 = std::clamp(c.y2, 0.0, 1.0);
      if (c.x2 > c.x1 && c.y2 > c.y1 && c.class_id >= 0 &&
          c.class_id < static_cast<int>(m.classes.size())) {
        s.boxes.push_back(c);
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

// Refuses a version whose validation failed, naming what failed.
Status Gate(Workspace& ws, VersionInfo& version, bool force) {
  if (version.validation_status == "unvalidated") {
    ASSIGN_OR_RETURN(ValidationReport r, ValidateVersion(ws, version, {}));
    ASSIGN_OR_RETURN(version, ResolveVersion(ws, {version.dataset, version.version}));
  }
  if (version.validation_status != "failed" || force) return Status::Ok();
  ASSIGN_OR_RETURN(ValidationReport r, LatestReport(ws, version));
  std::string failed;
  for (const ExpectationResult& e : r.results) {
    if (!e.passed && e.severity == Severity::kError) {
      failed += "\n  " + e.type + ": " + e.summary;
    }
  }
  const std::string fix = DeriveFixCommand(r, version.Ref());
  return Status::InvalidInput(version.Ref() + " failed validation (see `detops data validate " +
                              version.Ref() + "`); pass --force to train anyway:" + failed +
                              (fix.empty() ? "" : "\n  fix: " + fix));
}

// Records with the run how the classes of the init weights become
// `classes` (the param init.classes, one line, and the artifact
// init_classes.json: which classes kept which init class's output and which
// started fresh), and tells `ui` when they differ. Errors when the class map
// names an unknown class or the weights are unreadable.
Status RecordClassTransfer(Tracker& tracker, const std::string& run, const TrainOptions& options,
                           const std::vector<std::string>& classes, const std::string& init,
                           const TrainCallbacks& ui) {
  auto planned = PlanClassTransfer(options.init_weights, classes, options.init_class_map);
  if (!planned.ok()) {
    return Status(planned.status().code(), "--init " + init + ": " + planned.status().message());
  }
  const ClassTransferPlan& plan = *planned;
  const std::string line = DescribeClassTransfer(plan, init);
  if (!plan.Identity() && ui.on_note) ui.on_note("init: " + line);
  Json kept = Json::object(), fresh = Json::array();
  for (size_t i = 0; i < plan.classes.size(); ++i) {
    if (plan.source[i] >= 0) {
      kept[plan.classes[i]] = plan.init_classes[plan.source[i]];
    } else {
      fresh.push_back(plan.classes[i]);
    }
  }
  Json j = {{"init", init},
            {"init_classes", plan.init_classes},
            {"classes", plan.classes},
            {"kept", kept},
            {"fresh", fresh}};
  RETURN_IF_ERROR(tracker.LogParams(run, {{"init.classes", line}}));
  return tracker.LogArtifactBytes(run, "init_classes.json", j.dump(2));
}

struct Prepared {
  VersionInfo version;
  Manifest manifest;
  TrainData data;
};

Result<Prepared> Prepare(Workspace& ws, const std::string& dataset, bool force) {
  Prepared p;
  ASSIGN_OR_RETURN(DatasetRef ref, ParseDatasetRef(dataset));
  ASSIGN_OR_RETURN(p.version, ResolveVersion(ws, ref));
  RETURN_IF_ERROR(Gate(ws, p.version, force));
  ASSIGN_OR_RETURN(p.manifest, LoadManifest(ws, p.version));
  p.data.classes = p.manifest.classes;
  p.data.train = Samples(ws, p.manifest, Split::kTrain);
  p.data.val = Samples(ws, p.manifest, Split::kVal);
  if (p.data.val.empty()) p.data.val = Samples(ws, p.manifest, Split::kTest);
  if (p.data.train.empty()) {
    return Status::InvalidInput(p.version.Ref() + " has no labelled images in its train split");
  }
  return p;
}

// Trains in the run's folder with metrics streamed to the tracker, then
// stores weights and the test-split evaluation with the run, and marks it
// finished, or killed when training was stopped. Errors are the caller's to
// record (SettleRun).
Result<TrainJobResult> Execute(Workspace& ws, Tracker& tracker, RunInfo run, Prepared& p,
                               const TrainOptions& options, const TrainCallbacks& ui) {
  fs::path dir = ws.root() / "runs" / run.id;
  MetricLogger log(tracker, run.id);
  TrainCallbacks cb;
  cb.stop = ui.stop;
  cb.on_step = [&](const TrainProgress& pr) {
    log.Log("train/loss", pr.loss, pr.global_step);
    log.Log("train/box_loss", pr.box_loss, pr.global_step);
    log.Log("train/cls_loss", pr.cls_loss, pr.global_step);
    log.Log("train/lr", pr.lr, pr.global_step);
    log.Log("train/images_per_s", pr.images_per_s, pr.global_step);
    if (ui.on_step) ui.on_step(pr);
  };
  cb.on_epoch = [&](const EpochSummary& e) {
    log.Log("epoch/train_loss", e.train_loss, e.epoch);
    log.Log("epoch/seconds", e.seconds, e.epoch);
    log.Log("epoch/planned", e.planned_epochs, e.epoch);  // re-planned under a time budget
    if (e.evaluated) {
      log.Log("val/map", e.val_map, e.epoch);
      log.Log("val/map50", e.val_map50, e.epoch);
    }
    if (ui.on_epoch) ui.on_epoch(e);
  };
  auto trained = TrainDetector(p.data, options, dir, cb);
  const Status flushed = log.Flush();
  if (!trained.ok()) return trained.status();
  RETURN_IF_ERROR(flushed);
  TrainJobResult result;
  result.train = *trained;
  if (!trained->pretrained.is_null()) {
    // Where the backbone's weights came from: package, version, licence
    // and the files' hashes, with every run that starts from them.
    const Json& src = trained->pretrained;
    RETURN_IF_ERROR(
        tracker.LogParams(run.id, {{"pretrained.package", src.value("package", "")},
                                   {"pretrained.version", src.value("version", "")},
                                   {"pretrained.license", src.value("license", "")},
                                   {"pretrained.upstream", src.value("upstream", "")}}));
    RETURN_IF_ERROR(tracker.LogArtifactBytes(run.id, "pretrained.json", src.dump(2)));
  }
  RETURN_IF_ERROR(
      tracker.LogMetrics(run.id, {{"model/parameters", 0, double(trained->parameters), 0},
                                  {"model/gflops", 0, trained->flops / 1e9, 0},
                                  {"best/val_map", 0, trained->best_map, 0},
                                  {"best/val_map50", 0, trained->best_map50, 0},
                                  {"best/epoch", 0, double(trained->best_epoch), 0}}));
  if (!trained->completed) {
    RETURN_IF_ERROR(tracker.SetStatus(run.id, RunStatus::kKilled));
    ASSIGN_OR_RETURN(result.run, tracker.GetRun(run.id));
    return result;
  }
  RETURN_IF_ERROR(tracker.LogArtifact(run.id, "weights/best.pt", trained->best_weights));
  RETURN_IF_ERROR(tracker.LogArtifact(run.id, "weights/last.pt", trained->last_weights));
  bool has_test = false;
  for (const ImageEntry& e : p.manifest.images) has_test |= e.split == Split::kTest && e.labelled;
  if (has_test) {
    ASSIGN_OR_RETURN(auto detector,
                     Detector::Load(trained->best_weights, {options.device, options.threads}));
    ASSIGN_OR_RETURN(SplitEvaluation ev,
                     EvaluateSplit(ws, *detector, p.manifest, Split::kTest, {}, 8));
    RETURN_IF_ERROR(RecordEvaluation(tracker, run.id, ev, dir));
    result.evaluated = true;
    result.test = ev.report;
    result.latency = ev.latency;
  }
  RETURN_IF_ERROR(tracker.SetStatus(run.id, RunStatus::kFinished));
  ASSIGN_OR_RETURN(result.run, tracker.GetRun(run.id));
  return result;
}

}  // namespace

Result<TrainJobResult> RunTrainJob(Workspace& ws, const TrainJobOptions& o,
                                   const TrainCallbacks& ui) {
  ASSIGN_OR_RETURN(Prepared p, Prepare(ws, o.dataset, o.force));
  ASSIGN_OR_RETURN(auto tracker, Tracker::Open(ws));
  TrainOptions options = o.train;
  NewRun nr;
  nr.kind = "train";
  nr.name = o.name;
  nr.dataset_version = p.version.Ref();
  nr.tags = o.tags;
  if (o.force && p.version.validation_status == "failed") nr.tags["forced"] = "true";
  if (!o.init_from.empty()) {
    ASSIGN_OR_RETURN(options.init_weights, ResolveWeights(ws, o.init_from));
    auto parent = tracker->GetRun(o.init_from);
    if (parent.ok()) nr.parent_run = parent->id;
    nr.tags["init_from"] = o.init_from;
  }
  if (!options.init_class_map.empty() && options.init_weights.empty()) {
    return Status::InvalidInput("an init class map needs init weights (--init)");
  }
  ASSIGN_OR_RETURN(options.precision, ResolvePrecision(options.precision, options.device));
  nr.params = TrainOptionsToParams(options);
  nr.params["options_json"] = TrainOptionsToJson(options).dump();
  nr.env = CaptureEnvironment(o.build.git_commit, o.build.version, options.device, TorchVersion(),
                              options.threads);
  ASSIGN_OR_RETURN(RunInfo run, tracker->CreateRun(nr));
  return SettleRun<TrainJobResult>(*tracker, run.id, [&]() -> Result<TrainJobResult> {
    if (!options.init_weights.empty()) {
      const std::string init = o.init_from.empty() ? options.init_weights.string() : o.init_from;
      RETURN_IF_ERROR(RecordClassTransfer(*tracker, run.id, options, p.data.classes, init, ui));
    }
    return Execute(ws, *tracker, run, p, options, ui);
  });
}

Result<TrainJobResult> ResumeTrainJob(Workspace& ws, const std::string& ref, const BuildInfo& build,
                                      const TrainCallbacks& ui, int threads) {
  ASSIGN_OR_RETURN(auto tracker, Tracker::Open(ws));
  ASSIGN_OR_RETURN(RunInfo run, tracker->GetRun(ref));
  if (run.kind != "train") return Status::InvalidInput(run.id + " is not a training run");
  if (run.status == RunStatus::kFinished) {
    return Status::InvalidInput("run " + run.id + " (" + run.name + ") already finished");
  }
  if (!fs::exists(ws.root() / "runs" / run.id / "checkpoint.pt")) {
    return Status::NotFound("run " + run.id + " has no checkpoint to resume from");
  }
  auto it = run.params.find("options_json");
  if (it == run.params.end())
    return Status::Corruption("run " + run.id + " has no recorded options");
  ASSIGN_OR_RETURN(Json j, ParseJson(it->second, "options of run " + run.id));
  ASSIGN_OR_RETURN(TrainOptions options, TrainOptionsFromJson(j));
  if (threads > 0) options.threads = threads;  // not part of the recipe
  bool forced = run.tags.count("forced") > 0;
  ASSIGN_OR_RETURN(Prepared p, Prepare(ws, run.dataset_version, forced));
  RETURN_IF_ERROR(tracker->SetStatus(run.id, RunStatus::kRunning));
  std::map<std::string, std::string> tags = {{"resumed", "true"}};
  // The run's environment names the build it started with; a resume by
  // another build says so.
  if (build.git_commit != run.env.git_commit) tags["resumed_git_commit"] = build.git_commit;
  return SettleRun<TrainJobResult>(*tracker, run.id, [&]() -> Result<TrainJobResult> {
    RETURN_IF_ERROR(tracker->SetTags(run.id, tags));
    return Execute(ws, *tracker, run, p, options, ui);
  });
}

}  // namespace detops
