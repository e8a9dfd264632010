// TrainDetector: AdamW with warm-up and cosine decay, EMA weights, gradient
// clipping, validation mAP with early stopping, an atomic checkpoint every
// epoch (and on a clean stop) from which training resumes exactly.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>

#include <ATen/autocast_mode.h>

#include "eval/eval.h"
#include "ml/bf16.h"
#include "ml/class_transfer.h"
#include "ml/device.h"
#include "ml/inference.h"
#include "ml/loader.h"
#include "ml/loss.h"
#include "ml/ml.h"
#include "ml/optimizer.h"
#include "ml/pretrained.h"
#include "ml/weights.h"

namespace detops {
namespace ml {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct State {
  int epoch = 0;  // completed epochs
  int step = 0;   // steps done in the epoch in progress
  int64_t global_step = 0;
  int64_t ema_updates = 0;
  double best_map = -1, best_map50 = 0;
  int best_epoch = 0;
  int bad_epochs = 0;
  int planned_epochs = 0;  // fitted to a time budget after every epoch
  // For a time budget: seconds spent in completed epochs (resumes included),
  // the training time of the epochs that were not a process's first (which
  // also decodes every image once; validation is costed apart, from the
  // last one's time).
  double elapsed_s = 0;
  double steady_s = 0;
  int steady_epochs = 0;
  double last_val_s = 0;
};

// A pretrained variant's backbone at the start of a run: its graph, and its
// values when they come from the package (not from init weights or a
// checkpoint, which hold them with the rest of the model).
struct BackboneStart {
  Json spec;
  std::vector<torch::Tensor> values;
};

Result<BackboneStart> StartBackbone(const TrainOptions& o, const fs::path& run_dir) {
  const PretrainedVariant* v = FindPretrainedVariant(o.variant);
  if (!v) return BackboneStart{};
  std::error_code ec;
  for (const fs::path& from : {run_dir / "checkpoint.pt", o.init_weights}) {
    if (from.empty() || !fs::exists(from, ec)) continue;
    ASSIGN_OR_RETURN(ModelConfig c, ReadConfig(from));
    if (c.variant != o.variant) {
      return Status::InvalidInput("--model " + o.variant + " cannot start from " + from.string() +
                                  ", a model of variant " + c.variant +
                                  " (another backbone): train it without --init, or --init from "
                                  "an " +
                                  o.variant + " model");
    }
    return BackboneStart{c.backbone, {}};
  }
  ASSIGN_OR_RETURN(TfjsGraph g, LoadPretrainedBackbone(*v));
  return BackboneStart{std::move(g.spec), std::move(g.params)};
}

// Options that must not change across a resume.
Json FixedOptions(const TrainOptions& o, const std::vector<std::string>& classes) {
  return {{"variant", o.variant}, {"imgsz", o.imgsz}, {"batch", o.batch},
          {"lr", o.lr},           {"seed", o.seed},   {"classes", classes}};
}

double LearningRate(const TrainOptions& o, int64_t step, int64_t steps_per_epoch, int epochs) {
  double warm = std::max<double>(1, o.warmup_epochs * steps_per_epoch);
  double total = std::max<double>(1, static_cast<double>(epochs) * steps_per_epoch);
  if (step < warm) return o.lr * (0.1 + 0.9 * step / warm);
  double t = std::min(1.0, (step - warm) / std::max(1.0, total - warm));
  double floor = 0.05 * o.lr;
  return floor + (o.lr - floor) * 0.5 * (1 + std::cos(M_PI * t));
}

// Whether validation runs after `epoch` of `planned` (TrainOptions::eval_every).
bool ValidatesAfter(int epoch, int planned, int every) {
  if (epoch >= planned) return true;
  if (every > 0) return epoch % every == 0;
  return epoch % 4 == 0 || 4 * epoch > 3 * planned;
}

// The most epochs in all (between `done` and `cap`) that fit in `left_s`
// seconds: `done` epochs have trained (the last one's validation, when the
// plan asks for it, still to come), each further epoch trains in `epoch_s`
// and each validation that the plan asks for (ValidatesAfter) takes `val_s`.
int FitEpochs(int done, double left_s, double epoch_s, double val_s, int every, int cap) {
  auto cost = [&](int planned) {
    double c = 0;
    for (int e = done; e <= planned; ++e) {
      if (e > done) c += epoch_s;
      if (ValidatesAfter(e, planned, every)) c += val_s;
    }
    return c;
  };
  epoch_s = std::max(epoch_s, 1e-3);
  int lo = done;
  int hi = static_cast<int>(std::min<double>(cap, done + std::max(0.0, left_s) / epoch_s + 1));
  while (lo < hi) {  // the cost grows with the plan: bisect for the largest that fits
    const int mid = lo + (hi - lo + 1) / 2;
    if (cost(mid) <= left_s) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// The EMA's decay at update `updates`: ramped in, so that early weights,
// far from trained, leave it quickly.
double EmaDecay(double decay, int64_t updates) {
  return decay * (1 - std::exp(-static_cast<double>(updates) / 500.0));
}

// The training forward pass; in bf16, under LibTorch's CPU autocast
// (bf16.h), with the head's outputs back in fp32 for the loss. Leaving the
// autocast region drops its cache of bf16 weight copies, as Python's does.
HeadOutput TrainForward(DetectorNet& net, const torch::Tensor& x, bool bf16) {
  if (!bf16) return net->forward(x);
  struct Autocast {
    Autocast() {
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(true);
    }
    ~Autocast() {
      at::autocast::set_cpu_enabled(false);
      at::autocast::clear_cache();
    }
  };
  HeadOutput out;
  {
    Autocast on;
    out = net->forward(x);
  }
  return {out.logits.to(torch::kFloat), out.box.to(torch::kFloat), out.embedding.to(torch::kFloat)};
}

torch::Tensor ToTensor(const std::vector<Example>& batch, int s, torch::Device device) {
  const int64_t n = static_cast<int64_t>(batch.size());
  torch::Tensor t = torch::empty({n, s, s, 3}, torch::kUInt8);
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(t[i].data_ptr(), batch[i].image.data, static_cast<size_t>(s) * s * 3);
  }
  return InputFromBgr(t, device);
}

std::vector<torch::Tensor> Targets(const std::vector<Example>& batch, torch::Device device) {
  std::vector<torch::Tensor> out;
  for (const Example& e : batch) {
    std::vector<float> v;
    for (const Box& b : e.boxes) {
      v.insert(v.end(), {float(b.class_id), float(b.x1), float(b.y1), float(b.x2), float(b.y2)});
    }
    auto g = static_cast<int64_t>(e.boxes.size());
    out.push_back(torch::from_blob(v.data(), {g, 5}).clone().to(device));
  }
  return out;
}

// mAP of `net` on the validation samples, as COCO computes it.
std::pair<double, double> Validate(DetectorNet& net, const ModelConfig& config,
                                   torch::Device device, const Grid& grid, Loader& loader,
                                   const std::vector<TrainSample>& val, int batch) {
  net->eval();
  FuseBatchNorm(net);  // as served: one kernel less per layer; undone below
  std::vector<EvalImage> images;
  PredictOptions po;
  po.conf = 0.001f;
  po.iou = 0.6f;
  po.max_det = 100;
  for (size_t first = 0; first < val.size(); first += static_cast<size_t>(batch)) {
    std::vector<cv::Mat> mats;
    std::vector<size_t> ids;
    for (size_t i = first; i < std::min(val.size(), first + batch); ++i) {
      cv::Mat m = loader.Image(i);
      if (m.empty()) continue;
      mats.push_back(m);
      ids.push_back(i);
    }
    auto dets = Infer(net, config, device, grid, mats, po);
    for (size_t k = 0; k < ids.size(); ++k) {
      EvalImage im;
      for (const Box& b : val[ids[k]].boxes) {
        im.truth.push_back({b.class_id, float(b.x1 * mats[k].cols), float(b.y1 * mats[k].rows),
                            float(b.x2 * mats[k].cols), float(b.y2 * mats[k].rows), b.difficult});
      }
      for (const Detection& d : dets[k]) {
        im.detections.push_back({d.class_id, d.score, d.x1, d.y1, d.x2, d.y2});
      }
      images.push_back(std::move(im));
    }
  }
  UnfuseBatchNorm(net);
  net->train();
  EvalReport r = Evaluate(images, config.classes);
  return {std::max(0.0, r.map), std::max(0.0, r.map50)};
}

class Trainer {
 public:
  // `backbone`: a pretrained variant's graph; `pretrained`, its values when
  // training starts from the package (empty when init weights or a
  // checkpoint hold them).
  Trainer(const TrainData& data, const TrainOptions& o, fs::path dir, const TrainCallbacks& cb,
          torch::Device device, Json backbone, std::vector<torch::Tensor> pretrained)
      : data_(data),
        o_(o),
        dir_(std::move(dir)),
        cb_(cb),
        device_(device),
        config_{o.variant, o.imgsz, data.classes, std::move(backbone)},
        net_(NetConfigFor(config_)),
        ema_(NetConfigFor(config_)),
        pretrained_(std::move(pretrained)),
        grid_(MakeGrid(o.imgsz, device)),
        train_loader_(data.train, o.augment, std::max(1, o.loader_threads), o.seed),
        val_loader_(data.val, AugmentOptions{.imgsz = o.imgsz, .augment = false}, 0, o.seed) {}

  Result<TrainResult> Run();

 private:
  Status Init();
  Status SaveCheckpoint();
  Status LoadCheckpoint(const fs::path& path);
  void MakeOptimizer();
  // The steps of `epoch` from st_.step on, the next batch built on the
  // loader's workers while this one trains; the sum of their losses. Sets
  // *stopped when asked to stop (st_.step says where).
  Result<double> TrainSteps(int epoch, Clock::time_point epoch_start, bool* stopped);
  void ReportStep(int epoch, int64_t step, double lr, const LossOutput& loss, int64_t images,
                  Clock::time_point epoch_start);
  // Fits st_.planned_epochs to the time budget after `epoch` trained in
  // `train_s` seconds.
  void Replan(int epoch, double train_s);
  // Validates after `epoch` when the plan says so, keeping best.pt; the
  // seconds it took (0 when it did not run).
  Result<double> ValidateEpoch(int epoch, EpochSummary& sum);
  // Books the epoch's time, writes last.pt and the checkpoint, reports it.
  Status EndEpoch(const EpochSummary& sum, double val_s);
  Result<TrainResult> Finish(bool stopped);

  const TrainData& data_;
  TrainOptions o_;
  fs::path dir_;
  const TrainCallbacks& cb_;
  torch::Device device_;
  ModelConfig config_;
  DetectorNet net_, ema_;
  std::vector<torch::Tensor> pretrained_;
  Grid grid_;
  Loader train_loader_, val_loader_;
  std::unique_ptr<FusedAdamW> opt_;
  State st_;
  TrainResult result_;
  int batch_ = 0;
  int64_t steps_ = 0;             // per epoch: the ragged last batch is dropped
  bool first_epoch_here_ = true;  // decodes and caches every image
};

void Trainer::MakeOptimizer() { opt_ = std::make_unique<FusedAdamW>(net_, ema_, o_.weight_decay); }

Status Trainer::Init() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return Status::IOError(dir_.string() + ": cannot create: " + ec.message());
  net_->to(device_);
  ema_->to(device_);
  ToLayout(net_, LayoutFor(device_));
  ToLayout(ema_, LayoutFor(device_));
  if (!pretrained_.empty()) {
    RETURN_IF_ERROR(net_->backbone->Assign(pretrained_));
    pretrained_.clear();
  }
  if (!o_.init_weights.empty()) {
    ASSIGN_OR_RETURN(ClassTransferPlan plan,
                     PlanClassTransfer(o_.init_weights, data_.classes, o_.init_class_map));
    ASSIGN_OR_RETURN(auto counts, LoadWeightsForClasses(o_.init_weights, net_, plan));
    (void)counts;
  }
  {
    torch::NoGradGuard no_grad;
    auto ep = ema_->parameters();
    auto np = net_->parameters();
    for (size_t i = 0; i < ep.size(); ++i) ep[i].copy_(np[i]);
  }
  MakeOptimizer();
  // Without an epoch count, the first plan is the default's, until the
  // first epoch's time tells how many fit.
  st_.planned_epochs = o_.epochs > 0 ? o_.epochs : kDefaultEpochs;
  batch_ = static_cast<int>(std::min<size_t>(o_.batch, data_.train.size()));
  steps_ = static_cast<int64_t>(data_.train.size() / batch_);
  fs::path ckpt = dir_ / "checkpoint.pt";
  if (fs::exists(ckpt, ec)) RETURN_IF_ERROR(LoadCheckpoint(ckpt));
  result_.parameters = CountParameters(net_);
  DetectorNet probe(NetConfigFor(config_));
  result_.flops = EstimateFlops(probe, o_.imgsz);
  if (config_.backbone.contains("source")) result_.pretrained = config_.backbone["source"];
  return Status::Ok();
}

Status Trainer::SaveCheckpoint() {
  torch::serialize::OutputArchive a;
  a.write("checkpoint", c10::IValue(int64_t{1}));
  a.write("config", c10::IValue(ConfigToJson(config_).dump()));
  a.write("options", c10::IValue(FixedOptions(o_, data_.classes).dump()));
  Json s = {{"epoch", st_.epoch},
            {"step", st_.step},
            {"global_step", st_.global_step},
            {"ema_updates", st_.ema_updates},
            {"best_map", st_.best_map},
            {"best_map50", st_.best_map50},
            {"best_epoch", st_.best_epoch},
            {"bad_epochs", st_.bad_epochs},
            {"planned_epochs", st_.planned_epochs},
            {"elapsed_s", st_.elapsed_s},
            {"steady_s", st_.steady_s},
            {"steady_epochs", st_.steady_epochs},
            {"last_val_s", st_.last_val_s}};
  a.write("state", c10::IValue(s.dump()));
  WriteState(a, "", net_);
  WriteState(a, "ema/", ema_);
  torch::serialize::OutputArchive oa;
  opt_->Save(oa);
  a.write("optimizer", oa);
  return SaveArchive(a, dir_ / "checkpoint.pt");
}

Status Trainer::LoadCheckpoint(const fs::path& path) {
  ASSIGN_OR_RETURN(auto a, OpenArchive(path));
  c10::IValue v;
  if (!a->try_read("options", v) || !v.isString()) {
    return Status::Corruption(path.string() + ": not a training checkpoint");
  }
  ASSIGN_OR_RETURN(Json saved, ParseJson(v.toStringRef(), path.string()));
  Json now = FixedOptions(o_, data_.classes);
  if (saved != now) {
    return Status::InvalidInput(path.string() + ": cannot resume with different options: was " +
                                saved.dump() + ", now " + now.dump());
  }
  if (!a->try_read("state", v) || !v.isString()) {
    return Status::Corruption(path.string() + ": checkpoint has no training state");
  }
  ASSIGN_OR_RETURN(Json s, ParseJson(v.toStringRef(), path.string()));
  try {
    st_.epoch = s.at("epoch");
    st_.step = s.at("step");
    st_.global_step = s.at("global_step");
    st_.ema_updates = s.at("ema_updates");
    st_.best_map = s.at("best_map");
    st_.best_map50 = s.at("best_map50");
    st_.best_epoch = s.at("best_epoch");
    st_.bad_epochs = s.at("bad_epochs");
    st_.planned_epochs = s.at("planned_epochs");
    st_.elapsed_s = s.value("elapsed_s", 0.0);
    st_.steady_s = s.value("steady_s", 0.0);
    st_.steady_epochs = s.value("steady_epochs", 0);
    st_.last_val_s = s.value("last_val_s", 0.0);
  } catch (const Json::exception& e) {
    return Status::Corruption(path.string() + ": training state: " + e.what());
  }
  auto loaded = ReadState(*a, "", net_);
  auto loaded_ema = ReadState(*a, "ema/", ema_);
  if (loaded.second > 0 || loaded_ema.second > 0) {
    return Status::Corruption(path.string() + ": checkpoint does not match the model");
  }
  torch::serialize::InputArchive oa;
  if (!a->try_read("optimizer", oa)) {
    return Status::Corruption(path.string() + ": checkpoint has no optimizer state");
  }
  return opt_->Load(oa);
}

Result<TrainResult> Trainer::Run() {
  RETURN_IF_ERROR(Init());
  net_->train();
  ema_->eval();
  bool stopped = false;
  while (st_.epoch < st_.planned_epochs && !stopped) {
    const int epoch = st_.epoch + 1;
    const auto epoch_start = Clock::now();
    ASSIGN_OR_RETURN(const double loss_sum, TrainSteps(epoch, epoch_start, &stopped));
    if (stopped && st_.step < steps_) break;  // mid-epoch: the checkpoint below resumes here
    st_.epoch = epoch;
    st_.step = 0;
    if (o_.max_minutes > 0) Replan(epoch, Seconds(epoch_start));
    EpochSummary sum;
    sum.epoch = epoch;
    sum.train_loss = loss_sum / std::max<int64_t>(1, steps_);
    ASSIGN_OR_RETURN(const double val_s, ValidateEpoch(epoch, sum));
    sum.seconds = Seconds(epoch_start);
    sum.planned_epochs = st_.planned_epochs;
    RETURN_IF_ERROR(EndEpoch(sum, val_s));
    if (o_.patience > 0 && st_.bad_epochs >= o_.patience) {
      result_.early_stopped = true;
      break;
    }
  }
  if (stopped) RETURN_IF_ERROR(SaveCheckpoint());
  return Finish(stopped);
}

Result<double> Trainer::TrainSteps(int epoch, Clock::time_point epoch_start, bool* stopped) {
  const bool mosaic = epoch <= st_.planned_epochs - o_.close_mosaic;
  const std::vector<size_t> order = train_loader_.Order(epoch, true);
  auto build = [&](int64_t step) {
    return train_loader_.BuildAsync(epoch, order, static_cast<size_t>(step * batch_),
                                    static_cast<size_t>(batch_), mosaic);
  };
  double loss_sum = 0;
  int64_t images = 0;
  std::future<Result<std::vector<Example>>> next;
  if (st_.step < steps_) next = build(st_.step);
  for (int64_t step = st_.step; step < steps_; ++step) {
    ASSIGN_OR_RETURN(std::vector<Example> examples, next.get());
    if (step + 1 < steps_) next = build(step + 1);
    const double lr = LearningRate(o_, st_.global_step, steps_, st_.planned_epochs);
    HeadOutput out =
        TrainForward(net_, ToTensor(examples, o_.imgsz, device_), o_.precision == "bf16");
    LossOutput loss =
        ComputeLoss(out, grid_, Targets(examples, device_), o_.box_weight, o_.inside_box_weight);
    opt_->ZeroGrad();
    loss.total.backward();
    opt_->ClipGradNorm(o_.grad_clip);
    // The backbone's smaller rate: its step scaled down after the fact (the
    // fused optimizer has one rate; AdamW's step is proportional to it).
    // The EMA saw the full step for this update, (1 - decay) of it.
    std::vector<torch::Tensor> before;
    if (net_->backbone && o_.backbone_lr_scale < 1) {
      for (const torch::Tensor& p : net_->backbone->parameters())
        before.push_back(p.detach().clone());
    }
    opt_->Step(lr, EmaDecay(o_.ema_decay, ++st_.ema_updates));
    if (!before.empty()) {
      torch::NoGradGuard no_grad;
      auto params = net_->backbone->parameters();
      for (size_t i = 0; i < params.size(); ++i) {
        params[i].mul_(o_.backbone_lr_scale).add_(before[i], 1 - o_.backbone_lr_scale);
      }
    }
    ++st_.global_step;
    st_.step = static_cast<int>(step + 1);
    loss_sum += loss.total.item<double>();
    images += batch_;
    if (cb_.on_step) ReportStep(epoch, step, lr, loss, images, epoch_start);
    if (cb_.stop && cb_.stop->load()) {
      *stopped = true;
      break;  // a batch still being built is dropped; the loader finishes it
    }
  }
  return loss_sum;
}

void Trainer::ReportStep(int epoch, int64_t step, double lr, const LossOutput& loss, int64_t images,
                         Clock::time_point epoch_start) {
  TrainProgress p;
  p.epoch = epoch;
  p.epochs = st_.planned_epochs;
  p.step = static_cast<int>(step + 1);
  p.steps = static_cast<int>(steps_);
  p.global_step = st_.global_step;
  p.loss = loss.total.item<double>();
  p.box_loss = loss.box;
  p.cls_loss = loss.cls;
  p.lr = lr;
  p.images_per_s = images / std::max(Seconds(epoch_start), 1e-9);
  const double remaining_steps =
      (steps_ - step - 1) + static_cast<double>(st_.planned_epochs - epoch) * steps_;
  p.eta_s = remaining_steps * batch_ / std::max(p.images_per_s, 1e-9);
  cb_.on_step(p);
}

// After every epoch the plan is fitted to the time left (Ultralytics' `time`
// does the same), so that a slow first epoch, which also decodes every
// image, does not shrink the whole run, and the learning rate's cosine and
// the closing of mosaic end with the budget. Up to o_.epochs when given;
// without it (0), as many as fit.
void Trainer::Replan(int epoch, double train_s) {
  const double val_s = data_.val.empty() ? 0 : st_.last_val_s > 0 ? st_.last_val_s : 0.1 * train_s;
  const double epoch_s = st_.steady_epochs > 0 ? st_.steady_s / st_.steady_epochs : train_s;
  const double left = o_.max_minutes * 60 - (st_.elapsed_s + train_s);
  const int cap = o_.epochs > 0 ? o_.epochs : kMaxEpochs;
  const int fit = FitEpochs(epoch, left, epoch_s, val_s, o_.eval_every, cap);
  // An epoch that ran as the last ends the run; one that ran as not the
  // last is followed by at least one more, which runs as the last. So the
  // schedule (cosine, closing mosaic) always completes, at the price of
  // overrunning by up to one epoch when the machine slows down mid-run.
  const bool ran_as_last = st_.planned_epochs <= epoch;
  st_.planned_epochs = ran_as_last ? epoch : std::clamp(fit, std::min(epoch + 1, cap), cap);
}

Result<double> Trainer::ValidateEpoch(int epoch, EpochSummary& sum) {
  if (data_.val.empty() || !ValidatesAfter(epoch, st_.planned_epochs, o_.eval_every)) return 0.0;
  const auto start = Clock::now();
  auto [map, map50] = Validate(ema_, config_, device_, grid_, val_loader_, data_.val, batch_);
  const double val_s = Seconds(start);
  st_.last_val_s = val_s;
  sum.evaluated = true;
  sum.val_map = map;
  sum.val_map50 = map50;
  if (map > st_.best_map) {
    st_.best_map = map;
    st_.best_map50 = map50;
    st_.best_epoch = epoch;
    st_.bad_epochs = 0;
    RETURN_IF_ERROR(SaveWeights(dir_ / "best.pt", config_, ema_));
  } else {
    st_.bad_epochs = epoch - st_.best_epoch;
  }
  return val_s;
}

Status Trainer::EndEpoch(const EpochSummary& sum, double val_s) {
  st_.elapsed_s += sum.seconds;
  if (!first_epoch_here_) {
    st_.steady_s += sum.seconds - val_s;  // training only: validation is costed apart
    ++st_.steady_epochs;
  }
  first_epoch_here_ = false;
  RETURN_IF_ERROR(SaveWeights(dir_ / "last.pt", config_, ema_));
  RETURN_IF_ERROR(SaveCheckpoint());
  if (cb_.on_epoch) cb_.on_epoch(sum);
  return Status::Ok();
}

Result<TrainResult> Trainer::Finish(bool stopped) {
  if (data_.val.empty() && !fs::exists(dir_ / "best.pt")) {
    RETURN_IF_ERROR(SaveWeights(dir_ / "best.pt", config_, ema_));
  }
  result_.completed = !stopped;
  result_.epochs_done = st_.epoch;
  result_.planned_epochs = st_.planned_epochs;
  result_.best_map = std::max(0.0, st_.best_map);
  result_.best_map50 = st_.best_map50;
  result_.best_epoch = st_.best_epoch;
  result_.best_weights = dir_ / "best.pt";
  result_.last_weights = dir_ / "last.pt";
  result_.checkpoint = dir_ / "checkpoint.pt";
  return result_;
}

}  // namespace
}  // namespace ml

Result<TrainResult> TrainDetector(const TrainData& data, const TrainOptions& options,
                                  const std::filesystem::path& run_dir,
                                  const TrainCallbacks& callbacks) {
  if (data.classes.empty()) return Status::InvalidInput("training needs at least one class");
  if (data.train.empty()) return Status::InvalidInput("training needs images in the train split");
  if (options.imgsz < 64 || options.imgsz % 32 != 0) {
    return Status::InvalidInput("--imgsz must be a multiple of 32, at least 64; got " +
                                std::to_string(options.imgsz));
  }
  RETURN_IF_ERROR(CheckVariant(options.variant));
  if (options.backbone_lr_scale <= 0 || options.backbone_lr_scale > 1) {
    return Status::InvalidInput("the backbone's learning-rate share must be in (0, 1]; got " +
                                std::to_string(options.backbone_lr_scale));
  }
  if (options.batch < 1) return Status::InvalidInput("--batch must be at least 1");
  if (options.epochs < 0 || (options.epochs == 0 && options.max_minutes <= 0)) {
    return Status::InvalidInput("--epochs must be at least 1 (0, as many as fit, needs --minutes)");
  }
  if (!options.init_class_map.empty() && options.init_weights.empty()) {
    return Status::InvalidInput("an init class map needs init weights (--init)");
  }
  ASSIGN_OR_RETURN(torch::Device device, ml::ParseDevice(options.device));
  TrainOptions o = options;
  ASSIGN_OR_RETURN(o.precision, ResolvePrecision(o.precision, o.device));
  o.augment.imgsz = o.imgsz;
  try {
    // Seed before the networks are built: their initial weights come from
    // LibTorch's global generator.
    torch::manual_seed(o.seed);
    ASSIGN_OR_RETURN(ml::BackboneStart start, ml::StartBackbone(o, run_dir));
    ml::Trainer trainer(data, o, run_dir, callbacks, device, std::move(start.spec),
                        std::move(start.values));
    return trainer.Run();
  } catch (const c10::Error& e) {
    return Status::Internal(std::string("training failed: ") + e.what_without_backtrace());
  } catch (const cv::Exception& e) {
    return Status::Internal(std::string("training failed in image processing: ") + e.what());
  } catch (const Json::exception& e) {
    return Status::Internal(std::string("training failed reading its state: ") + e.what());
  } catch (const std::exception& e) {
    return Status::Internal(std::string("training failed: ") + e.what());
  }
}

}  // namespace detops
