#pragma once
// Public header of the pipeline module: the jobs that join the stages of
// the loop. Train: a validated dataset version -> a tracked training run
// with its weights and test-split evaluation. Eval: a model on a dataset
// split -> a tracked evaluation run. Predict: a model on image files.

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "data/data.h"
#include "eval/eval.h"
#include "ml/ml.h"
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
  // file. Fine-tuning on new data, warm starts when retraining.
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

// Runs or resumes (`resume_run` non-empty) a training job. Refuses a dataset
// version whose validation failed, naming the failed expectations, unless
// `force`; a version never validated is validated first. Progress and
// stopping go through `ui`.
Result<TrainJobResult> RunTrainJob(Workspace& ws, const TrainJobOptions& options,
                                   const TrainCallbacks& ui);
Result<TrainJobResult> ResumeTrainJob(Workspace& ws, const std::string& run, const BuildInfo& build,
                                      const TrainCallbacks& ui, int threads);

struct EvalJobOptions {
  std::string model;    // run (id, prefix, name) or weights file
  std::string dataset;  // NAME or NAME@V
  std::string split = "test";
  float conf = 0.25f;  // operating point for P/R/F1, misses, false alarms
  int batch = 8;
  int threads = 2;
  std::string device = "cpu";
  std::string plots_dir;  // where to write pr_curve.png and confusion.png ("" = run only)
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

}  // namespace detops
