// Experiment tracking: metric points per second through MetricLogger into a
// real SQLite workspace (in /tmp), and the cost of Log() on the caller's
// thread. Run: build/bench/track_bench

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>

#include "track/track.h"

namespace detops {
namespace {

namespace fs = std::filesystem;

struct Bench {
  fs::path dir;
  std::unique_ptr<Workspace> ws;
  std::unique_ptr<Tracker> tracker;
  std::string run;

  Bench() {
    dir = fs::temp_directory_path() / ("detops-track-bench-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    ws = Workspace::Open({dir}).value();
    tracker = Tracker::Open(*ws).value();
    NewRun spec;
    spec.kind = "train";
    run = tracker->CreateRun(spec)->id;
  }
  ~Bench() {
    tracker.reset();
    ws.reset();
    fs::remove_all(dir);
  }
};

const char* const kKeys[] = {"loss", "loss_box", "loss_cls", "loss_obj",
                             "lr",   "map50",    "map",      "precision"};

// Points/s sustained: log N points, then Flush; the time includes the write.
void BM_MetricLoggerThroughput(benchmark::State& state) {
  Bench b;
  const int64_t n = state.range(0);
  int64_t step = 0;
  for (auto _ : state) {
    MetricLogger logger(*b.tracker, b.run);
    for (int64_t i = 0; i < n; ++i, ++step) logger.Log(kKeys[i & 7], 0.5 * i, step);
    if (!logger.Flush().ok()) state.SkipWithError("flush failed");
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_MetricLoggerThroughput)
    ->Arg(100000)
    ->Arg(1000000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The same through Tracker::LogMetrics directly (one transaction per batch).
void BM_LogMetricsBatch(benchmark::State& state) {
  Bench b;
  std::vector<MetricPoint> points;
  for (int64_t i = 0; i < state.range(0); ++i) points.push_back({kKeys[i & 7], i, 0.5 * i, 0});
  for (auto _ : state) {
    if (!b.tracker->LogMetrics(b.run, points).ok()) state.SkipWithError("write failed");
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_LogMetricsBatch)->Arg(20000)->Unit(benchmark::kMillisecond)->UseRealTime();

// Log() as the training loop sees it, while the writer drains in the
// background.
void BM_LogCallCost(benchmark::State& state) {
  static Bench* b = nullptr;
  static MetricLogger* logger = nullptr;
  if (state.thread_index() == 0) {
    b = new Bench();
    MetricLoggerOptions options;
    options.max_buffered_points = SIZE_MAX;  // measure appends, never the drop path
    logger = new MetricLogger(*b->tracker, b->run, options);
  }
  int64_t step = 0;
  for (auto _ : state) logger->Log("loss", 0.25, step++);
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    if (logger->dropped() != 0) state.SkipWithError("points dropped");
    delete logger;
    delete b;
  }
}
BENCHMARK(BM_LogCallCost)->Iterations(2000000)->Threads(1)->Threads(2);

}  // namespace
}  // namespace detops

BENCHMARK_MAIN();
