#pragma once
// Public header of the monitor module. Today: the prediction log (what the
// server predicted, on what kind of image, how fast) and feedback (the
// corrected boxes clients send back for a prediction). Drift tests and
// alerts over them come next.
//
// Tables predictions and feedback (migration 4). Kept images are blobs.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/core.h"
#include "store/store.h"

namespace detops {

// Image statistics measured on the decoded image the model saw (the same
// quantities as data/image_profile.h, so that live traffic compares with a
// model's reference profile).
struct LiveImageProfile {
  double brightness = 0;  // mean luma, 0..255
  double contrast = 0;    // standard deviation of luma
  double sharpness = 0;   // variance of the Laplacian of the luma
  double mean_b = 0, mean_g = 0, mean_r = 0;
};

struct LoggedDetection {
  std::string class_name;
  int class_id = 0;
  double score = 0;
  double x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // original image pixels
};

struct PredictionRecord {
  std::string id;       // 16 lower-case hex characters; NewPredictionId()
  int64_t time_ms = 0;  // Unix epoch milliseconds
  std::string model_name;
  int model_version = 0;
  int width = 0, height = 0;  // original image size
  LiveImageProfile profile;
  std::vector<float> embedding;  // the model's image embedding
  std::vector<LoggedDetection> detections;
  double queue_ms = 0, inference_ms = 0, total_ms = 0;
  // The encoded image as received, when sampled for keeping ("" = not
  // kept); stored as a blob so that it can be labelled later.
  std::string image_bytes;
};

// A random 16-hex-character id.
std::string NewPredictionId();

struct PredictionLogOptions {
  size_t buffer_max = 10000;    // records waiting to be written; beyond, Append drops
  int flush_interval_ms = 200;  // the writer wakes at least this often
  size_t flush_records = 500;   // ... or as soon as this many wait
};

// Asynchronous, batched writer of prediction records: Append never touches
// the disk (a push under a mutex); a background thread writes batches in
// one transaction each. When the store falls behind and the buffer is
// full, Append drops the record and counts it. Thread-safe. The workspace
// must outlive the log.
class PredictionLog {
 public:
  static Result<std::unique_ptr<PredictionLog>> Open(Workspace& ws,
                                                     PredictionLogOptions options = {});
  ~PredictionLog();  // flushes what is buffered, then stops the writer
  PredictionLog(const PredictionLog&) = delete;
  PredictionLog& operator=(const PredictionLog&) = delete;

  // false when the buffer was full and the record was dropped. An empty
  // id or a zero time_ms is filled in (NewPredictionId(), now).
  bool Append(PredictionRecord record);
  // Blocks until everything appended before the call is written; returns
  // the last write error, if any.
  Status Flush();
  int64_t written() const { return written_.load(); }
  int64_t dropped() const { return dropped_.load(); }
  int64_t failed_writes() const { return failed_writes_.load(); }
  size_t buffered() const;

 private:
  PredictionLog(Workspace& ws, PredictionLogOptions options);
  void WriterLoop();
  Status Write(std::vector<PredictionRecord>& batch);

  Workspace& ws_;
  const PredictionLogOptions options_;
  // Guards buffer_, appended_, settled_, stop_, flush_requested_, last_error_.
  mutable std::mutex mu_;
  std::condition_variable wake_, progress_;
  std::deque<PredictionRecord> buffer_;
  int64_t appended_ = 0, settled_ = 0;
  bool stop_ = false, flush_requested_ = false;
  Status last_error_;
  std::atomic<int64_t> written_{0}, dropped_{0}, failed_writes_{0};
  std::thread writer_;
};

// A logged prediction, as read back.
struct StoredPrediction {
  PredictionRecord record;  // image_bytes empty; see image_blob
  std::string at;           // ISO-8601
  std::string image_blob;   // "" when the image was not kept
};

// NotFound for an unknown id.
Result<StoredPrediction> GetPrediction(Workspace& ws, const std::string& id);
// Newest first; `model_name` "" = all models; limit 0 = no limit.
Result<std::vector<StoredPrediction>> ListPredictions(Workspace& ws, const std::string& model_name,
                                                      int limit);

struct FeedbackBox {
  std::string class_name;
  double x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // original image pixels
};

struct FeedbackRecord {
  int64_t id = 0;
  std::string prediction_id, at, actor;
  std::vector<FeedbackBox> boxes;  // the truth: may be empty (no damage)
  std::string exported_to;         // "cars@4" once exported, else ""
};

// Records corrected boxes for a logged prediction. NotFound for an unknown
// prediction; InvalidInput for a box with x2 <= x1 or y2 <= y1, outside
// the image (beyond 1 px of tolerance, which is clamped), a non-finite
// coordinate, or a class not in `classes` (the model's classes). A later
// feedback for the same prediction supersedes the earlier one.
Result<FeedbackRecord> RecordFeedback(Workspace& ws, const std::string& prediction_id,
                                      std::vector<FeedbackBox> boxes,
                                      const std::vector<std::string>& classes,
                                      const std::string& actor);
// The latest feedback per prediction, for predictions of `model_name` (""
// = every model), oldest first; `only_unexported` skips those already
// exported.
Result<std::vector<FeedbackRecord>> ListFeedback(Workspace& ws, const std::string& model_name,
                                                 bool only_unexported);
// Sets exported_to of feedback rows in one transaction; unknown ids are
// ignored.
Status MarkFeedbackExported(Workspace& ws, const std::vector<int64_t>& ids,
                            const std::string& dataset_version);

// {"id", "at", "time_ms", "model_name", "model_version", "width", "height",
//  "profile": {...}, "embedding": [...], "detections": [{"class", "class_id",
//  "score", "x1", "y1", "x2", "y2"}], "latency_ms": {"queue", "inference",
//  "total"}, "image_blob"}
Json PredictionToJson(const StoredPrediction& p);
// {"id", "prediction_id", "at", "actor", "boxes": [...], "exported_to"}
Json FeedbackToJson(const FeedbackRecord& f);
// Boxes as FeedbackToJson writes them: [{"class": "dent", "x1": 10, "y1":
// 20, "x2": 50, "y2": 60}, ...]. InvalidInput naming the box index and the
// field for anything else (coordinates are not range-checked here:
// RecordFeedback does that).
Json FeedbackBoxesToJson(const std::vector<FeedbackBox>& boxes);
Result<std::vector<FeedbackBox>> FeedbackBoxesFromJson(const Json& j);

}  // namespace detops
