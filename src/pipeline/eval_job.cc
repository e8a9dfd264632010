// Evaluation of a model on a dataset split, tracked as an "eval" run.

#include <chrono>

#include "pipeline/jobs_internal.h"

namespace detops {
namespace fs = std::filesystem;

Json LatencyToJson(const LatencySummary& l) {
  return {{"p50_ms", l.p50_ms},
          {"p95_ms", l.p95_ms},
          {"p99_ms", l.p99_ms},
          {"mean_ms", l.mean_ms},
          {"images_per_s", l.images_per_s},
          {"samples", l.samples}};
}

Result<fs::path> ResolveWeights(Workspace& ws, const std::string& model) {
  std::error_code ec;
  if (fs::is_regular_file(model, ec)) return fs::path(model);
  ASSIGN_OR_RETURN(auto tracker, Tracker::Open(ws));
  auto run = tracker->GetRun(model);
  if (!run.ok()) {
    return Status::NotFound("'" + model + "' is neither a weights file nor a run (" +
                            run.status().message() + ")");
  }
  for (const char* name : {"weights/best.pt", "weights/last.pt"}) {
    for (const Artifact& a : run->artifacts) {
      if (a.name == name) return ws.blobs().PathOf(a.blob);
    }
  }
  fs::path dir = ws.root() / "runs" / run->id;
  for (const char* name : {"best.pt", "last.pt"}) {
    if (fs::exists(dir / name, ec)) return dir / name;
  }
  return Status::NotFound("run " + run->id + " (" + run->name + ") has no weights yet");
}

Result<SplitEvaluation> EvaluateSplit(Workspace& ws, Detector& detector, const Manifest& manifest,
                                      Split split, const EvalOptions& options, int batch,
                                      float nms_iou) {
  // The model's class ids must mean the dataset's classes.
  if (detector.config().classes != manifest.classes) {
    std::string a, b;
    for (const auto& c : detector.config().classes) a += (a.empty() ? "" : ",") + c;
    for (const auto& c : manifest.classes) b += (b.empty() ? "" : ",") + c;
    return Status::InvalidInput("the model's classes [" + a + "] differ from the dataset's [" + b +
                                "]");
  }
  std::vector<const ImageEntry*> entries;
  for (const ImageEntry& e : manifest.images) {
    if (e.split == split && e.labelled) entries.push_back(&e);
  }
  if (entries.empty()) {
    return Status::InvalidInput(std::string("the ") + SplitName(split) +
                                " split has no labelled images");
  }
  PredictOptions po;
  po.conf = 0.001f;
  po.iou = nms_iou;
  po.max_det = options.max_detections;
  std::vector<EvalImage> images;
  std::vector<double> latency_ms;
  using Clock = std::chrono::steady_clock;
  for (size_t first = 0; first < entries.size(); first += static_cast<size_t>(batch)) {
    std::vector<cv::Mat> mats;
    std::vector<const ImageEntry*> batch_entries;
    for (size_t i = first; i < std::min(entries.size(), first + batch); ++i) {
      auto img = LoadImageForModel(ws.blobs().PathOf(entries[i]->blob));
      if (!img.ok()) continue;  // validation reports unreadable images
      mats.push_back(*img);
      batch_entries.push_back(entries[i]);
    }
    ASSIGN_OR_RETURN(auto dets, detector.Predict(mats, po));
    for (size_t k = 0; k < mats.size(); ++k) {
      const ImageEntry& e = *batch_entries[k];
      EvalImage im;
      for (const Box& b : e.boxes) {
        im.truth.push_back({b.class_id, float(b.x1 * mats[k].cols), float(b.y1 * mats[k].rows),
                            float(b.x2 * mats[k].cols), float(b.y2 * mats[k].rows), b.difficult});
      }
      for (const Detection& d : dets[k]) {
        im.detections.push_back({d.class_id, d.score, d.x1, d.y1, d.x2, d.y2});
      }
      images.push_back(std::move(im));
    }
    // Latency: the first images again, one at a time, as a client sends them.
    for (size_t k = 0; k < mats.size() && latency_ms.size() < 50; ++k) {
      PredictOptions served;
      auto t0 = Clock::now();
      auto r = detector.Predict({mats[k]}, served);
      if (r.ok()) {
        latency_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
    }
  }
  SplitEvaluation out;
  out.report = Evaluate(images, manifest.classes, options);
  out.latency = SummarizeLatency(latency_ms);
  return out;
}

std::map<std::string, double> HeadlineMetrics(const SplitEvaluation& eval) {
  const EvalReport& r = eval.report;
  std::map<std::string, double> m = {{"map", r.map},
                                     {"map50", r.map50},
                                     {"map75", r.map75},
                                     {"precision", r.precision},
                                     {"recall", r.recall},
                                     {"f1", r.f1},
                                     {"miss_rate", r.miss_rate},
                                     {"false_alarm_rate", r.false_alarm_rate},
                                     {"latency_p50_ms", eval.latency.p50_ms},
                                     {"latency_p95_ms", eval.latency.p95_ms}};
  for (const ClassMetrics& c : r.per_class) m["ap50/" + c.name] = c.ap50;
  return m;
}

Status RecordEvaluation(Tracker& tracker, const std::string& run, const SplitEvaluation& eval,
                        const fs::path& plots_dir) {
  const EvalReport& r = eval.report;
  std::vector<MetricPoint> points;
  for (const auto& [k, v] : HeadlineMetrics(eval)) points.push_back({"test/" + k, 0, v, 0});
  RETURN_IF_ERROR(tracker.LogMetrics(run, points));
  Json j = EvalReportToJson(r);
  j["latency"] = LatencyToJson(eval.latency);
  RETURN_IF_ERROR(tracker.LogArtifactBytes(run, "eval.json", j.dump(2)));
  if (!plots_dir.empty()) {
    std::error_code ec;
    fs::create_directories(plots_dir, ec);
    RETURN_IF_ERROR(WritePrCurvePlot(r, plots_dir / "pr_curve.png"));
    RETURN_IF_ERROR(WriteConfusionMatrixPlot(r, plots_dir / "confusion.png"));
    RETURN_IF_ERROR(tracker.LogArtifact(run, "plots/pr_curve.png", plots_dir / "pr_curve.png"));
    RETURN_IF_ERROR(tracker.LogArtifact(run, "plots/confusion.png", plots_dir / "confusion.png"));
  }
  return Status::Ok();
}

Result<EvalJobResult> RunEvalJob(Workspace& ws, const EvalJobOptions& o) {
  auto split = ParseSplit(o.split);
  if (!split)
    return Status::InvalidInput("--split must be train, val or test; got '" + o.split + "'");
  ASSIGN_OR_RETURN(fs::path weights, ResolveWeights(ws, o.model));
  ASSIGN_OR_RETURN(DatasetRef ref, ParseDatasetRef(o.dataset));
  ASSIGN_OR_RETURN(VersionInfo version, ResolveVersion(ws, ref));
  ASSIGN_OR_RETURN(Manifest manifest, LoadManifest(ws, version));
  ASSIGN_OR_RETURN(auto detector, Detector::Load(weights, {o.device, o.threads, o.precision}));
  if (!(o.iou > 0 && o.iou <= 1))
    return Status::InvalidInput("--iou must be in (0, 1]; got " + std::to_string(o.iou));
  EvalOptions eo;
  eo.operating_confidence = o.conf;
  ASSIGN_OR_RETURN(SplitEvaluation ev,
                   EvaluateSplit(ws, *detector, manifest, *split, eo, std::max(1, o.batch), o.iou));
  ASSIGN_OR_RETURN(auto tracker, Tracker::Open(ws));
  NewRun nr;
  nr.kind = "eval";
  nr.dataset_version = version.Ref();
  nr.params = {{"model", o.model},
               {"weights", weights.string()},
               {"split", o.split},
               {"conf", std::to_string(o.conf)},
               {"iou", std::to_string(o.iou)},
               {"imgsz", std::to_string(detector->config().imgsz)},
               {"precision", detector->precision()},
               {"variant", detector->config().variant}};
  auto parent = tracker->GetRun(o.model);
  if (parent.ok()) nr.parent_run = parent->id;
  nr.env =
      CaptureEnvironment(o.build.git_commit, o.build.version, o.device, TorchVersion(), o.threads);
  ASSIGN_OR_RETURN(RunInfo run, tracker->CreateRun(nr));
  fs::path plots = o.plots_dir.empty() ? ws.root() / "runs" / run.id : fs::path(o.plots_dir);
  return SettleRun<EvalJobResult>(*tracker, run.id, [&]() -> Result<EvalJobResult> {
    RETURN_IF_ERROR(RecordEvaluation(*tracker, run.id, ev, plots));
    RETURN_IF_ERROR(tracker->SetStatus(run.id, RunStatus::kFinished));
    ASSIGN_OR_RETURN(RunInfo done, tracker->GetRun(run.id));
    return EvalJobResult{done, ev.report, ev.latency};
  });
}

}  // namespace detops
