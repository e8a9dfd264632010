// Per-image costs of the data stage: header probe (import), profile
// (validation), scene rendering (synth), manifest hashing (versioning).

#include <benchmark/benchmark.h>

#include <opencv2/imgcodecs.hpp>

#include "data/data.h"
#include "data/image_header.h"

namespace detops {
namespace {

std::string SceneJpeg() {
  SynthScene s = RenderScene(SceneKind::kRoad, 1, 0, Lighting::kNormal);
  std::vector<unsigned char> buf;
  cv::imencode(".jpg", s.image, buf, {cv::IMWRITE_JPEG_QUALITY, 90});
  return std::string(buf.begin(), buf.end());
}

void BM_ProbeImageHeader(benchmark::State& state) {
  std::string jpg = SceneJpeg();
  for (auto _ : state) benchmark::DoNotOptimize(ProbeImageHeader(jpg, "x.jpg"));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ProbeImageHeader);

void BM_ProfileImage640x480(benchmark::State& state) {
  std::string jpg = SceneJpeg();
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(jpg.data()), jpg.size());
  for (auto _ : state) benchmark::DoNotOptimize(ProfileImageBytes(bytes));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ProfileImage640x480)->Unit(benchmark::kMillisecond);

void BM_RenderScene(benchmark::State& state) {
  SceneKind kind = state.range(0) == 0 ? SceneKind::kCar : SceneKind::kRoad;
  int i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(RenderScene(kind, 1, i++, Lighting::kNormal));
  state.SetLabel(SceneKindName(kind));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RenderScene)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_CanonicalManifest10k(benchmark::State& state) {
  Manifest m;
  m.classes = {"scratch", "dent"};
  for (int i = 0; i < 10000; ++i) {
    ImageEntry e;
    e.blob = Sha256Hex(std::to_string(i));
    e.name = "img" + std::to_string(i) + ".jpg";
    e.width = 640;
    e.height = 480;
    e.labelled = true;
    e.boxes.push_back({i % 2, 0.1, 0.2, 0.3, 0.4});
    m.images.push_back(e);
  }
  for (auto _ : state) {
    Manifest copy = m;
    Canonicalize(copy);
    benchmark::DoNotOptimize(Sha256Hex(CanonicalManifestText(copy)));
  }
}
BENCHMARK(BM_CanonicalManifest10k)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace detops

BENCHMARK_MAIN();
