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

// The tag that says why a run failed (its Status, "IOError: ...").
inline constexpr char kFailureReasonTag[] = "failure_reason";

// Marks `run` failed, with `why` as its failure_reason tag. Best effort: a
// run that cannot be written to stays as it was.
void MarkRunFailed(Tracker& tracker, const std::string& run, const Status& why);

// Runs `body`, the part of a job after its run was created, and settles the
// run on every exit path: `body` sets finished (or killed) itself on
// success; an error it returns, or an exception from a library that
// escapes it (converted here to Internal), marks the run failed with the
// reason. So no run stays "running" after its process moved on.
template <typename T, typename Body>
Result<T> SettleRun(Tracker& tracker, const std::string& run, Body&& body) {
  Status failed;
  try {
    Result<T> r = body();
    if (r.ok()) return r;
    failed = r.status();
  } catch (const std::exception& e) {
    failed = Status::Internal(std::string("unexpected error: ") + e.what());
  }
  MarkRunFailed(tracker, run, failed);
  return failed;
}

// The reference profile of a model (JSON text): image statistics, embedding
// statistics and prediction statistics on up to `max_images` images of the
// validation split (test, then train, when it is empty).
Result<std::string> BuildReferenceProfile(Workspace& ws, Detector& detector,
                                          const Manifest& manifest, int max_images);

}  // namespace detops
