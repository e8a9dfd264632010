#pragma once
// Pieces shared by the train and eval jobs. Internal to pipeline.

#include "pipeline/pipeline.h"

namespace detops {

struct SplitEvaluation {
  EvalReport report;
  LatencySummary latency;  // batch-1 predict time per image
};

// Predicts every image of `split` (at confidence 0.001, as COCO needs) and
// scores it; latency is measured at batch 1 on up to 50 images.
Result<SplitEvaluation> EvaluateSplit(Workspace& ws, Detector& detector, const Manifest& manifest,
                                      Split split, const EvalOptions& options, int batch);

// Logs a report's headline figures as metrics (prefix "test/") and its
// JSON and plots as artifacts of `run`.
Status RecordEvaluation(Tracker& tracker, const std::string& run, const SplitEvaluation& eval,
                        const std::filesystem::path& plots_dir);

Json LatencyToJson(const LatencySummary& l);

}  // namespace detops
