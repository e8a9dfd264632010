// In-process serving throughput: what the detector can do without HTTP, the
// ceiling for `detops serve` (bench/serve_compare.sh puts the two side by
// side). One iteration takes a batch of 1 or 8 JPEG-encoded 640x480 images
// (bytes in memory, as a request body holds them), decodes them with
// OpenCV's imdecode and runs Detector::Predict (letterbox, forward, decode,
// class-wise NMS at conf 0.25), on 1 and 2 intra-op threads; images/s =
// items_per_second.
//
//   build/bench/serve_bench [--weights=FILE] [--image=FILE.jpg] [--precision=fp32|bf16|auto]
//                           [benchmark flags]
//
// --weights: a detops weights file (default: one epoch of `n` trained here
// on synthetic car scenes; speed does not depend on training, though the
// number of detections NMS sees does). --image: the JPEG every batch slot
// holds (default: eight different synthetic 640x480 scenes, JPEG q90).
// --precision: the network's number format (DetectorOptions; default fp32).

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <opencv2/imgcodecs.hpp>

#include "data/synth.h"
#include "ml/ml.h"

namespace detops {
namespace {

namespace fs = std::filesystem;

constexpr int kImages = 48;  // training set of the default model

struct Fixture {
  fs::path dir = fs::temp_directory_path() / ("detops-serve-bench-" + std::to_string(::getpid()));
  fs::path weights;
  std::string precision = "fp32";
  std::vector<std::vector<uchar>> jpegs;  // one per batch slot (8)

  void Init(const fs::path& weights_file, const fs::path& image_file) {
    fs::create_directories(dir);
    if (!image_file.empty()) {
      std::ifstream f(image_file, std::ios::binary);
      std::vector<uchar> bytes((std::istreambuf_iterator<char>(f)),
                               std::istreambuf_iterator<char>());
      if (bytes.empty() || cv::imdecode(bytes, cv::IMREAD_COLOR).empty()) {
        std::fprintf(stderr, "serve_bench: %s is not a decodable image\n", image_file.c_str());
        std::exit(2);
      }
      jpegs.assign(8, bytes);
    } else {
      for (int i = 0; i < 8; ++i) {
        SynthScene s = RenderScene(SceneKind::kCar, 1, 1000 + i, Lighting::kNormal);
        std::vector<uchar> bytes;
        cv::imencode(".jpg", s.image, bytes, {cv::IMWRITE_JPEG_QUALITY, 90});
        jpegs.push_back(std::move(bytes));
      }
    }
    weights = weights_file.empty() ? Train() : weights_file;
  }
  ~Fixture() { fs::remove_all(dir); }

  // One epoch (3 steps of 16) of `n` at 320 px on 2 threads, as ml_bench.
  fs::path Train() {
    TrainData data;
    data.classes = SceneClasses(SceneKind::kCar);
    for (int i = 0; i < kImages; ++i) {
      SynthScene s = RenderScene(SceneKind::kCar, 1, i, Lighting::kNormal);
      fs::path p = dir / ("car" + std::to_string(i) + ".jpg");
      cv::imwrite(p.string(), s.image);
      data.train.push_back({p, s.boxes});
    }
    TrainOptions o;
    o.epochs = 1;
    o.threads = 2;
    o.warmup_epochs = 0;
    SetProcessThreads(o.threads);
    return TrainDetector(data, o, dir / "run").value().last_weights;
  }
};

Fixture& F() {
  static Fixture f;
  return f;
}

// args: batch, threads
void BM_DecodePredict(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  SetProcessThreads(threads);
  auto loaded = Detector::Load(F().weights, {"cpu", threads, F().precision});
  if (!loaded.ok()) {
    state.SkipWithError(loaded.status().ToString().c_str());
    return;
  }
  auto det = std::move(loaded).value();
  PredictOptions po;
  std::vector<cv::Mat> images(static_cast<size_t>(batch));
  size_t detections = 0;
  auto run = [&] {
    for (int i = 0; i < batch; ++i) images[i] = cv::imdecode(F().jpegs[i], cv::IMREAD_COLOR);
    auto r = det->Predict(images, po);
    detections = 0;
    for (const auto& d : r.value()) detections += d.size();
  };
  run();  // warm-up: oneDNN picks its kernels
  for (auto _ : state) run();
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["detections_per_image"] = static_cast<double>(detections) / batch;
  state.SetLabel("batch " + std::to_string(batch) + ", " + std::to_string(threads) +
                 " thread(s), " + det->precision());
}
BENCHMARK(BM_DecodePredict)
    ->ArgsProduct({{1, 8}, {1, 2}})
    ->ArgNames({"batch", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace detops

int main(int argc, char** argv) {
  // Our flags first; the rest are Google Benchmark's.
  std::filesystem::path weights, image;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--weights=", 10) == 0) {
      weights = argv[i] + 10;
    } else if (std::strncmp(argv[i], "--image=", 8) == 0) {
      image = argv[i] + 8;
    } else if (std::strncmp(argv[i], "--precision=", 12) == 0) {
      detops::F().precision = argv[i] + 12;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  detops::F().Init(weights, image);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
