#pragma once
// Public header of the pipeline module: the jobs that join the stages of
// the loop. Train: a validated dataset version -> a tracked training run
// with its weights and test-split evaluation. Eval: a model on a dataset
// split -> a tracked evaluation run. Predict: a model on image files.

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "data/data.h"
#include "eval/eval.h"
#include "ml/ml.h"
#include "registry/registry.h"
#include "store/store.h"
#include "track/track.h"

namespace detops {

// Build facts recorded with every run.
struct BuildInfo {
  std::string git_commit;
  std::string version;
};

struct TrainJobOptions {
  std::string dataset;  // NAME or NAME@V
  TrainOptions train;
  bool force = false;  // train even when validation failed (tagged on the run)
  std::string name;    // run name; default "train-<n>"
  // Start from an earlier model: a run (id, prefix or name) or a weights
  // file. Fine-tuning on new data, warm starts when retraining. When its
  // classes differ from the data's, each class keeps the output of the init
  // class of its name (or the one train.init_class_map names) and the others
  // start fresh; the run records the mapping (param init.classes, artifact
  // init_classes.json) and ui.on_note hears it.
  std::string init_from;
  std::map<std::string, std::string> tags;
  BuildInfo build;
};

// Reads a training recipe (YAML) over `base`: any of the keys a run records
// as params (variant or model, epochs, imgsz, batch, lr, weight_decay,
// warmup_epochs, ema_decay, grad_clip, patience, eval_every, close_mosaic,
// max_minutes or minutes, seed, threads, loader_threads, device) and an
// `augment:` mapping (mosaic, flip, scale, translate, hsv_h, hsv_s, hsv_v,
// gamma, dark, noise, blur). Unknown keys and wrong types are errors naming
// the file, line and key. Command-line flags override it (the CLI's job).
Result<TrainOptions> LoadTrainConfig(const std::filesystem::path& file, const TrainOptions& base);

struct TrainJobResult {
  RunInfo run;
  TrainResult train;
  bool evaluated = false;  // on the test split (when it has images)
  EvalReport test;
  LatencySummary latency;
};

// Runs a training job. Refuses a dataset version whose validation failed,
// naming the failed expectations, unless `force`; a version never validated
// is validated first. Progress and stopping go through `ui`. Intra-op
// threads are the process's (SetProcessThreads); options.train.threads is
// recorded with the run. Once the run exists, every exit settles it:
// finished, killed (stopped through ui.stop; resumable), or failed with the
// reason in its tag failure_reason.
Result<TrainJobResult> RunTrainJob(Workspace& ws, const TrainJobOptions& options,
                                   const TrainCallbacks& ui);
// Continues a stopped (killed or failed) train run from its checkpoint with
// its recorded options; `threads` > 0 replaces the recorded thread count, and
// a `build` other than the one the run started with is tagged
// (resumed_git_commit). Settles the run as RunTrainJob does.
Result<TrainJobResult> ResumeTrainJob(Workspace& ws, const std::string& run, const BuildInfo& build,
                                      const TrainCallbacks& ui, int threads);

// The class-wise NMS IoU that evaluation predicts with unless told.
inline constexpr float kEvalNmsIou = 0.6f;

struct EvalJobOptions {
  std::string model;    // run (id, prefix, name) or weights file
  std::string dataset;  // NAME or NAME@V
  std::string split = "test";
  float conf = 0.25f;       // operating point for P/R/F1, misses, false alarms
  float iou = kEvalNmsIou;  // class-wise NMS IoU of the predictions evaluated
  int batch = 8;
  int threads = 2;
  std::string device = "cpu";
  std::string precision = "fp32";  // DetectorOptions::precision: evaluates what bf16 serving costs
  std::string plots_dir;           // where to write pr_curve.png and confusion.png ("" = run only)
  BuildInfo build;
};

struct EvalJobResult {
  RunInfo run;
  EvalReport report;
  LatencySummary latency;  // batch-1 predict time per image
};

Result<EvalJobResult> RunEvalJob(Workspace& ws, const EvalJobOptions& options);

// A weights file for a run reference or a path.
Result<std::filesystem::path> ResolveWeights(Workspace& ws, const std::string& model);

struct PredictJobOptions {
  std::string model;
  std::vector<std::string> inputs;  // image files or folders
  PredictOptions predict;
  std::string out;  // annotated images + predictions.json ("" = none)
  int threads = 2;
  std::string device = "cpu";
  std::string precision = "fp32";  // DetectorOptions::precision
};

struct ImagePrediction {
  std::string file;
  int width = 0, height = 0;
  std::vector<Detection> detections;
  std::string error;  // the image could not be read; the others go on
  double ms = 0;
};

Result<std::vector<ImagePrediction>> RunPredictJob(Workspace& ws, const PredictJobOptions& options);
Json PredictionsToJson(const std::vector<ImagePrediction>& predictions);
// Boxes with class and score labels, in the image's pixels.
void DrawDetections(cv::Mat& image, const std::vector<Detection>& detections);

struct RegisterJobOptions {
  std::string run;   // a train run: id, prefix or name
  std::string name;  // the model's name; default: the run's dataset name
  std::string description;
  std::string actor;  // who registers (recorded)
  int threads = 2;
  std::string device = "cpu";
  std::function<void(const std::string&)> on_progress;  // what it is doing now
};

// Makes a model version of a finished (or stopped) train run: its best
// weights, architecture, classes, input size, test-split metrics (evaluated
// now if the run stopped before its test evaluation), dataset version and
// validation status, and a reference profile for monitoring.
Result<ModelVersion> RunRegisterJob(Workspace& ws, const RegisterJobOptions& options);

struct PromoteJobOptions {
  std::string model;  // NAME@VERSION
  std::string to;     // staging | production
  std::string reason;
  bool force = false;       // apply even when a gate fails (needs a reason)
  std::string policy_file;  // YAML; "" = DefaultPromotionPolicy()
  std::string actor;
  int threads = 2;
  std::string device = "cpu";
  std::function<void(const std::string&)> on_progress;
  // A promotion no person asked for (a pipeline, a trigger). While an
  // escalate-level alert of the model is open (monitor/alerts.h
  // PromotionFreeze), an automatic promotion to production is refused;
  // a person's promotion goes ahead with a note naming the alert.
  bool automatic = false;
  // Test sets beyond the candidate's own test split (NAME@V: its test
  // split), e.g. feedback-labelled images of new conditions held out from
  // training. Candidate and production are both evaluated on each; the
  // candidate may not lose more than the policy's max_regression of map50
  // on any of them (with no production: the map50 floor applies), so it
  // cannot win on one by losing another.
  std::vector<std::string> extra_tests;
  bool dry_run = false;  // check the gates only; never move the alias
};

struct PromoteJobResult {
  ModelVersion candidate;
  std::optional<ModelVersion> production;  // compared against, if any
  GateReport gates;
  bool applied = false;            // the alias now points at the candidate
  bool unchanged = false;          // it already did: nothing checked or written
  AuditEntry entry;                // when applied
  std::vector<std::string> notes;  // re-evaluations, retries after a conflict
  // map50 of candidate and production on each extra test set (-1: none).
  std::map<std::string, std::pair<double, double>> extra_map50;
};

// Checks the candidate against the policy for the target alias (floors,
// no regression against production on the same test set: production is
// evaluated again on the candidate's test split when it was measured on
// another dataset version, p95 latency, dataset validation) and moves the
// alias when every gate passes, or when forced. A refusal is a result with
// applied = false, not an error.
Result<PromoteJobResult> RunPromoteJob(Workspace& ws, const PromoteJobOptions& options);

struct FeedbackExportOptions {
  std::string model;              // model name: feedback on its predictions
  std::string dataset;            // the dataset that gets the new version; default: the dataset of
                                  // the model's production version (else its latest version)
  std::string split = "train";    // where the feedback images go
  bool include_exported = false;  // export feedback already exported once, again
  // Share of the feedback images held out of training (0..1): they go to the
  // test split of `holdout_dataset` (default "<dataset>-holdout"), a slice of
  // the new conditions that a retrained candidate is gated on.
  double holdout = 0;
  std::string holdout_dataset;
};

// Where a feedback export builds its version, under the workspace: the
// versions it makes have a source below this (one rule for whoever needs to
// tell them apart).
inline constexpr const char* kFeedbackWorkPrefix = "tmp/feedback-";

struct FeedbackExportResult {
  bool created = false;  // false: nothing new to export (no version made)
  VersionInfo version;   // the new dataset version (parent: the latest one)
  int images_added = 0;  // feedback images in it
  int boxes = 0;
  int skipped_no_image = 0;     // feedback whose prediction kept no image
  VersionInfo holdout_version;  // the held-out slice's new version (holdout_images > 0)
  int holdout_images = 0;
};

// Turns labelled feedback into a new dataset version: the dataset's latest
// version that did not fail validation plus one image per corrected
// prediction (its kept image and the feedback boxes) in `split`. Marks the
// feedback exported.
Result<FeedbackExportResult> RunFeedbackExportJob(Workspace& ws,
                                                  const FeedbackExportOptions& options);

Result<AuditEntry> RunRollbackJob(Workspace& ws, const std::string& name, const std::string& alias,
                                  const std::string& actor, const std::string& reason);

}  // namespace detops
