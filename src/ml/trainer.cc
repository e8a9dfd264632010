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
#include "ml/device.h"
#include "ml/inference.h"
#include "ml/loader.h"
#include "ml/loss.h"
#include "ml/ml.h"
#include "ml/optimizer.h"
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
  Trainer(const TrainData& data, const TrainOptions& o, fs::path dir, const TrainCallbacks& cb,
          torch::Device device)
      : data_(data),
        o_(o),
        dir_(std::move(dir)),
        cb_(cb),
        device_(device),
        config_{o.variant, o.imgsz, data.classes},
        net_(NetConfig{o.variant, static_cast<int>(data.classes.size())}),
        ema_(NetConfig{o.variant, static_cast<int>(data.classes.size())}),
        grid_(MakeGrid(o.imgsz, device)),
        train_loader_(data.train, o.augment, o.loader_threads, o.seed),
        val_loader_(data.val, AugmentOptions{.imgsz = o.imgsz, .augment = false}, 1, o.seed) {}

  Result<TrainResult> Run();

 private:
  Status Init();
  Status SaveCheckpoint();
  Status LoadCheckpoint(const fs::path& path);
  void MakeOptimizer();

  const TrainData& data_;
  TrainOptions o_;
  fs::path dir_;
  const TrainCallbacks& cb_;
  torch::Device device_;
  ModelConfig config_;
  DetectorNet net_, ema_;
  Grid grid_;
  Loader train_loader_, val_loader_;
  std::unique_ptr<FusedAdamW> opt_;
  State st_;
  TrainResult result_;
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
  if (!o_.init_weights.empty()) {
    ASSIGN_OR_RETURN(auto counts, LoadWeightsInto(o_.init_weights, net_));
    (void)counts;
  }
  {
    torch::NoGradGuard no_grad;
    auto ep = ema_->parameters();
    auto np = net_->parameters();
    for (size_t i = 0; i < ep.size(); ++i) ep[i].copy_(np[i]);
  }
  MakeOptimizer();
  st_.planned_epochs = o_.epochs;
  fs::path ckpt = dir_ / "checkpoint.pt";
  if (fs::exists(ckpt, ec)) RETURN_IF_ERROR(LoadCheckpoint(ckpt));
  result_.parameters = CountParameters(net_);
  DetectorNet probe(NetConfig{o_.variant, static_cast<int>(data_.classes.size())});
  result_.flops = EstimateFlops(probe, o_.imgsz);
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
  a->read("state", v);
  ASSIGN_OR_RETURN(Json s, ParseJson(v.toStringRef(), path.string()));
  st_.epoch = s["epoch"];
  st_.step = s["step"];
  st_.global_step = s["global_step"];
  st_.ema_updates = s["ema_updates"];
  st_.best_map = s["best_map"];
  st_.best_map50 = s["best_map50"];
  st_.best_epoch = s["best_epoch"];
  st_.bad_epochs = s["bad_epochs"];
  st_.planned_epochs = s["planned_epochs"];
  st_.elapsed_s = s.value("elapsed_s", 0.0);
  st_.steady_s = s.value("steady_s", 0.0);
  st_.steady_epochs = s.value("steady_epochs", 0);
  st_.last_val_s = s.value("last_val_s", 0.0);
  auto loaded = ReadState(*a, "", net_);
  auto loaded_ema = ReadState(*a, "ema/", ema_);
  if (loaded.second > 0 || loaded_ema.second > 0) {
    return Status::Corruption(path.string() + ": checkpoint does not match the model");
  }
  torch::serialize::InputArchive oa;
  a->read("optimizer", oa);
  return opt_->Load(oa);
}

Result<TrainResult> Trainer::Run() {
  RETURN_IF_ERROR(Init());
  const int s = o_.imgsz;
  const size_t n = data_.train.size();
  const int batch = static_cast<int>(std::min<size_t>(o_.batch, n));
  const int64_t steps = static_cast<int64_t>(n / batch);  // drop the ragged last batch
  bool stopped = false;
  bool first_epoch_here = true;  // decodes and caches every image
  net_->train();
  ema_->eval();
  while (st_.epoch < st_.planned_epochs && !stopped) {
    const int epoch = st_.epoch + 1;
    auto epoch_start = Clock::now();
    bool mosaic = epoch <= st_.planned_epochs - o_.close_mosaic;
    std::vector<size_t> order = train_loader_.Order(epoch, true);
    double loss_sum = 0;
    int64_t images_seen = 0;
    auto build = [&](int64_t step) {
      return train_loader_.Build(epoch, order, static_cast<size_t>(step * batch), batch, mosaic);
    };
    std::future<std::vector<Example>> next =
        std::async(std::launch::async, build, static_cast<int64_t>(st_.step));
    for (int64_t step = st_.step; step < steps; ++step) {
      std::vector<Example> examples = next.get();
      if (step + 1 < steps) next = std::async(std::launch::async, build, step + 1);
      double lr = LearningRate(o_, st_.global_step, steps, st_.planned_epochs);
      HeadOutput out = TrainForward(net_, ToTensor(examples, s, device_), o_.precision == "bf16");
      LossOutput loss =
          ComputeLoss(out, grid_, Targets(examples, device_), o_.box_weight, o_.inside_box_weight);
      opt_->ZeroGrad();
      loss.total.backward();
      opt_->ClipGradNorm(o_.grad_clip);
      opt_->Step(lr, EmaDecay(o_.ema_decay, ++st_.ema_updates));
      ++st_.global_step;
      st_.step = static_cast<int>(step + 1);
      loss_sum += loss.total.item<double>();
      images_seen += batch;
      if (cb_.on_step) {
        double secs = std::chrono::duration<double>(Clock::now() - epoch_start).count();
        TrainProgress p;
        p.epoch = epoch;
        p.epochs = st_.planned_epochs;
        p.step = static_cast<int>(step + 1);
        p.steps = static_cast<int>(steps);
        p.global_step = st_.global_step;
        p.loss = loss.total.item<double>();
        p.box_loss = loss.box;
        p.cls_loss = loss.cls;
        p.lr = lr;
        p.images_per_s = images_seen / std::max(secs, 1e-9);
        double remaining_steps =
            (steps - step - 1) + static_cast<double>(st_.planned_epochs - epoch) * steps;
        p.eta_s = remaining_steps * batch / std::max(p.images_per_s, 1e-9);
        cb_.on_step(p);
      }
      if (cb_.stop && cb_.stop->load()) {
        stopped = true;
        if (step + 1 < steps) next.wait();
        break;
      }
    }
    if (stopped && st_.step < steps) break;  // mid-epoch: the checkpoint below resumes here
    st_.epoch = epoch;
    st_.step = 0;
    EpochSummary sum;
    sum.epoch = epoch;
    sum.train_loss = loss_sum / std::max<int64_t>(1, steps);
    // A time budget: after every epoch the plan is fitted to the time left
    // (Ultralytics' `time` does the same), so that a slow first epoch, which
    // also decodes every image, does not shrink the whole run.
    if (o_.max_minutes > 0) {
      const double train_s = std::chrono::duration<double>(Clock::now() - epoch_start).count();
      const double val_s = data_.val.empty()    ? 0
                           : st_.last_val_s > 0 ? st_.last_val_s
                                                : 0.1 * train_s;
      // Epochs from now on are costed with validation: with the automatic
      // cadence every epoch validates by the end, so the plan is short early
      // on and grows as the budget proves to allow it.
      const double val_share = o_.eval_every > 1 ? 1.0 / o_.eval_every : 1.0;
      const double per_epoch =
          (st_.steady_epochs > 0 ? st_.steady_s / st_.steady_epochs : train_s) + val_s * val_share;
      const double left = o_.max_minutes * 60 - (st_.elapsed_s + train_s + val_s);
      const int fit = epoch + std::max(0, static_cast<int>(left / std::max(per_epoch, 1e-3)));
      // An epoch that ran as the last ends the run; one that ran as not the
      // last is followed by at least one more, which runs as the last. So the
      // schedule (cosine, closing mosaic) always completes, at the price of
      // overrunning by up to one epoch when the machine slows down mid-run.
      const bool ran_as_last = st_.planned_epochs <= epoch;
      st_.planned_epochs =
          ran_as_last ? epoch : std::clamp(fit, std::min(epoch + 1, o_.epochs), o_.epochs);
    }
    double val_s = 0;
    if (!data_.val.empty() && ValidatesAfter(epoch, st_.planned_epochs, o_.eval_every)) {
      auto val_start = Clock::now();
      auto [map, map50] = Validate(ema_, config_, device_, grid_, val_loader_, data_.val, batch);
      val_s = std::chrono::duration<double>(Clock::now() - val_start).count();
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
    }
    sum.seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    st_.elapsed_s += sum.seconds;
    if (!first_epoch_here) {
      st_.steady_s += sum.seconds - val_s;  // training only: validation is costed apart
      ++st_.steady_epochs;
    }
    first_epoch_here = false;
    RETURN_IF_ERROR(SaveWeights(dir_ / "last.pt", config_, ema_));
    RETURN_IF_ERROR(SaveCheckpoint());
    if (cb_.on_epoch) cb_.on_epoch(sum);
    if (o_.patience > 0 && st_.bad_epochs >= o_.patience) {
      result_.early_stopped = true;
      break;
    }
  }
  if (stopped) RETURN_IF_ERROR(SaveCheckpoint());
  if (data_.val.empty() && !fs::exists(dir_ / "best.pt")) {
    RETURN_IF_ERROR(SaveWeights(dir_ / "best.pt", config_, ema_));
  }
  result_.completed = !stopped;
  result_.epochs_done = st_.epoch;
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
  if (options.variant != "n" && options.variant != "s") {
    return Status::InvalidInput("--model must be n or s; got '" + options.variant + "'");
  }
  if (options.batch < 1 || options.epochs < 1) {
    return Status::InvalidInput("--batch and --epochs must be at least 1");
  }
  ASSIGN_OR_RETURN(torch::Device device, ml::ParseDevice(options.device));
  TrainOptions o = options;
  ASSIGN_OR_RETURN(o.precision, ResolvePrecision(o.precision, o.device));
  o.augment.imgsz = o.imgsz;
  // Seed before the networks are built: their initial weights come from
  // LibTorch's global generator.
  torch::manual_seed(o.seed);
  try {
    ml::Trainer trainer(data, o, run_dir, callbacks, device);
    return trainer.Run();
  } catch (const c10::Error& e) {
    return Status::Internal(std::string("training failed: ") + e.what_without_backtrace());
  } catch (const cv::Exception& e) {
    return Status::Internal(std::string("training failed in image processing: ") + e.what());
  }
}

}  // namespace detops
