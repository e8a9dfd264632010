#pragma once
// Pieces shared by the train and eval jobs. Internal to pipeline.

#include "pipeline/pipeline.h"

namespace detops {

struct SplitEvaluation {
  EvalReport report;
  LatencySummary latency;  // batch-1 predict time per image
};

// Predicts every image of `split` (at confidence 0.001, as COCO needs, and
// class-wise NMS at `nms_iou`) and scores it; latency is measured at batch 1
// on up to 50 images.
Result<SplitEvaluation> EvaluateSplit(Workspace& ws, Detector& detector, const Manifest& manifest,
                                      Split split, const EvalOptions& options, int batch,
                                      float nms_iou = kEvalNmsIou);

// A report's headline figures, by key (map, map50, map75, precision,
// recall, f1, miss_rate, false_alarm_rate, latency_p50_ms, latency_p95_ms,
// ap50/<class>): what runs log under "test/" and model versions keep.
std::map<std::string, double> HeadlineMetrics(const SplitEvaluation& eval);

// Logs a report's headline figures as metrics (prefix "test/") and its
// JSON and plots as artifacts of `run`.
Status RecordEvaluation(Tracker& tracker, const std::string& run, const SplitEvaluation& eval,
                        const std::filesystem::path& plots_dir);

Json LatencyToJson(const LatencySummary& l);

// The reference profile of a model (JSON text): image statistics, embedding
// statistics and prediction statistics on up to `max_images` images of the
// validation split (test, then train, when it is empty).
Result<std::string> BuildReferenceProfile(Workspace& ws, Detector& detector,
                                          const Manifest& manifest, int max_images);

}  // namespace detops
