// The model stage's speed: inference ms per image at 320 px (letterbox +
// forward + decode + NMS on decoded 640x480 BGR images) for batch 1 and 8 on
// 1 and 2 intra-op threads (ms per image = 1000 / items_per_second), in fp32 and bf16;
// training images/s; parameters and FLOPs of each variant. Weights come from a one-epoch training
// run on synthetic car scenes (speed does not depend on how well they are trained). Run:
// build/bench/ml_bench [--benchmark_filter=Predict]

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <opencv2/imgcodecs.hpp>

#include "data/synth.h"
#include "ml/ml.h"

namespace detops {
namespace {

namespace fs = std::filesystem;

constexpr int kImages = 48;

struct Trained {
  fs::path weights;
  double train_images_per_s = 0;
  int64_t parameters = 0;
  double gflops = 0;
};

struct Fixture {
  fs::path dir = fs::temp_directory_path() / ("detops-ml-bench-" + std::to_string(::getpid()));
  TrainData data;
  std::vector<cv::Mat> images;
  std::map<std::string, Trained> models;

  Fixture() {
    fs::create_directories(dir);
    data.classes = SceneClasses(SceneKind::kCar);
    for (int i = 0; i < kImages; ++i) {
      SynthScene s = RenderScene(SceneKind::kCar, 1, i, Lighting::kNormal);
      fs::path p = dir / ("car" + std::to_string(i) + ".jpg");
      cv::imwrite(p.string(), s.image);
      data.train.push_back({p, s.boxes});
      images.push_back(s.image);
    }
  }
  ~Fixture() { fs::remove_all(dir); }

  // One epoch (3 steps of 16) of variant `v` at 320 px on 2 threads.
  const Trained& Model(const std::string& v) {
    auto it = models.find(v);
    if (it != models.end()) return it->second;
    TrainOptions o;
    o.variant = v;
    o.epochs = 1;
    o.batch = 16;
    o.threads = 2;
    o.warmup_epochs = 0;
    std::vector<double> rates;
    TrainCallbacks cb;
    cb.on_step = [&](const TrainProgress& p) { rates.push_back(p.images_per_s); };
    // A fresh folder: an existing checkpoint would make this a resume.
    fs::remove_all(dir / ("run-" + v));
    SetProcessThreads(o.threads);
    TrainResult r = TrainDetector(data, o, dir / ("run-" + v), cb).value();
    Trained t;
    t.weights = r.last_weights;
    t.train_images_per_s = rates.empty() ? 0 : rates.back();  // cumulative over the epoch
    t.parameters = r.parameters;
    t.gflops = r.flops / 1e9;
    return models[v] = t;
  }
};

Fixture& F() {
  static Fixture f;
  return f;
}

const char* Variant(int64_t i) { return i == 0 ? "n" : "s"; }

// args: variant (0 n, 1 s), batch, threads, bf16 (0 fp32, 1 bf16:
// DetectorOptions::precision; skipped where the CPU lacks AVX512-BF16, as
// Detector::Load refuses it there)
void BM_Predict(benchmark::State& state) {
  const std::string v = Variant(state.range(0));
  const int batch = static_cast<int>(state.range(1));
  const int threads = static_cast<int>(state.range(2));
  const std::string precision = state.range(3) ? "bf16" : "fp32";
  const Trained& t = F().Model(v);
  SetProcessThreads(threads);
  auto loaded = Detector::Load(t.weights, {"cpu", threads, precision});
  if (!loaded.ok()) {
    state.SkipWithError(loaded.status().ToString().c_str());
    return;
  }
  auto det = std::move(loaded).value();
  std::vector<cv::Mat> in(F().images.begin(), F().images.begin() + batch);
  PredictOptions po;
  (void)det->Predict(in, po);  // warm-up: oneDNN picks its kernels
  for (auto _ : state) {
    auto r = det->Predict(in, po);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["params_M"] = t.parameters / 1e6;
  state.counters["GFLOPs"] = t.gflops;
  state.SetLabel(std::string("model ") + v + ", batch " + std::to_string(batch) + ", " +
                 std::to_string(threads) + " thread(s), " + precision);
}
BENCHMARK(BM_Predict)
    ->ArgsProduct({{0, 1}, {1, 8}, {1, 2}, {0, 1}})
    ->ArgNames({"model", "batch", "threads", "bf16"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

// One training epoch (48 images, batch 16, 320 px, 2 threads, full
// augmentation with mosaic): images/s as the progress bar reports it.
void BM_Train(benchmark::State& state) {
  const std::string v = Variant(state.range(0));
  for (auto _ : state) {
    F().models.erase(v);
    benchmark::DoNotOptimize(F().Model(v));
  }
  const Trained& t = F().Model(v);
  state.counters["train_images_per_s"] = t.train_images_per_s;
  state.counters["params_M"] = t.parameters / 1e6;
  state.counters["GFLOPs"] = t.gflops;
  state.SetLabel(std::string("model ") + v);
}
BENCHMARK(BM_Train)
    ->Arg(0)
    ->Arg(1)
    ->ArgNames({"model"})
    ->Unit(benchmark::kSecond)
    ->Iterations(1)
    ->UseRealTime();

// Training images/s in fp32 and in bf16 (`--precision`), model n, batch 16,
// 2 threads: the second of two epochs over the 48 images (the first also
// warms oneDNN up and caches the images).
void BM_TrainPrecision(benchmark::State& state) {
  const std::string precision = state.range(0) == 0 ? "fp32" : "bf16";
  if (!ResolvePrecision(precision, "cpu").ok()) {
    state.SkipWithError("this CPU has no AVX512-BF16");
    return;
  }
  double rate = 0;
  for (auto _ : state) {
    TrainOptions o;
    o.epochs = 2;
    o.batch = 16;
    o.threads = 2;
    o.warmup_epochs = 0;
    o.precision = precision;
    TrainCallbacks cb;
    cb.on_step = [&](const TrainProgress& p) { rate = p.images_per_s; };
    fs::path run = F().dir / ("run-" + precision);
    fs::remove_all(run);
    SetProcessThreads(o.threads);
    benchmark::DoNotOptimize(TrainDetector(F().data, o, run, cb).value());
  }
  state.counters["train_images_per_s"] = rate;
  state.SetLabel("model n, " + precision);
}
BENCHMARK(BM_TrainPrecision)
    ->Arg(0)
    ->Arg(1)
    ->ArgNames({"bf16"})
    ->Unit(benchmark::kSecond)
    ->Iterations(1)
    ->UseRealTime();

}  // namespace
}  // namespace detops

BENCHMARK_MAIN();
