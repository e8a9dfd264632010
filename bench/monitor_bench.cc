// The monitor's costs (issue 22): scoring one window against a reference
// profile, and the monitor over a prediction log of one million rows.
//
//   build/bench/monitor_bench                       everything
//   build/bench/monitor_bench --benchmark_filter=ScoreWindow
//
//   build/bench/monitor_bench --prepare             only write the workspace
//
// Everything takes about 7 minutes on the 2-core VM (the catch-up's 300 s
// budget included), plus about 80 s the first time to write the log.
//
// The million-row workspace is kept under $DETOPS_MONITOR_BENCH_DIR
// (default /tmp/detops-monitor-1m, 2.2 GB) and reused while it holds
// exactly that many predictions; the first run writes it through
// PredictionLog and prints how long that took and the database's size.
// DETOPS_MONITOR_BENCH_ROWS (default 1000000, a multiple of 200) sets
// another size, to see how the costs grow (use another folder for it).
//
// Over that workspace:
//  - CatchUp scores the whole backlog from nothing in one Tick, in a child
//    process (this program with --catch-up) stopped after
//    $DETOPS_MONITOR_BENCH_CATCHUP_S seconds (300); it prints how many
//    windows it stored by then, and what the whole backlog would take at
//    that pace.
//  - TickOneNewWindow scores the last window with every earlier one stored
//    (each iteration deletes the newest stored window first, untimed).
//  - TickNothingNew is a tick when every window is stored.
//  - ListWindowReports and GetMonitorStatus are what `detops monitor
//    report` and `detops monitor status` read.
// The stored windows these need, when no catch-up finished, are scored
// in-process and inserted the way the monitor stores them (EnsureWindows),
// and kept for the next run.
//
// Traffic is drawn as src/monitor/evaluator_test.cc draws it (copied, not
// included), with embeddings of the size the `n` model logs.

#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "monitor/evaluator.h"
#include "monitor/synthetic_traffic.h"
#include "registry/registry.h"

namespace detops {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The `n` model's embedding: its deepest backbone feature map c5 averaged
// over space, c5 having WidthsFor("n").c[4] = 160 channels (src/ml/model.cc).
constexpr int kDim = 160;
constexpr int64_t kStartMs = 1'700'000'000'000;
constexpr int64_t kStepMs = 100;  // 10 predictions a second

// ---- synthetic traffic (monitor/synthetic_traffic.h), at the n model's width ----

SyntheticTraffic Traffic(double brightness_shift_sd = 0) {
  SyntheticTraffic t;
  t.brightness_shift_sd = brightness_shift_sd;
  t.embedding_dim = kDim;
  return t;
}

PredictionRecord Draw(std::mt19937_64& rng, double brightness_shift_sd = 0) {
  return DrawSyntheticPrediction(rng, Traffic(brightness_shift_sd));
}

std::string ReferenceJson(bool with_embeddings = true, uint64_t seed = 99) {
  return SyntheticReferenceJson(Traffic(), seed, 1000, with_embeddings);
}

// ---- 1. one window ----

// range(0): window size; range(1): 0 = the default policy (MMD with 200
// permutations), 1 = MMD^2 without the permutation test
// (mmd_permutations 0), 2 = no embedding test (a reference without
// embeddings).
void BM_ScoreWindow(benchmark::State& state) {
  const int size = static_cast<int>(state.range(0));
  const int mode = static_cast<int>(state.range(1));
  const ReferenceProfile ref = ParseReferenceProfile(ReferenceJson(mode != 2)).value();
  MonitorPolicy policy = DefaultMonitorPolicy();
  if (mode == 1) policy.mmd_permutations = 0;
  std::mt19937_64 rng(1);
  WindowInput in;
  in.model_name = "cars";
  in.model_version = 1;
  in.reference = &ref;
  in.classes = {"dent", "scratch"};
  for (int i = 0; i < size; ++i) {
    StoredPrediction p;
    p.record = Draw(rng);
    p.record.time_ms = kStartMs + i * kStepMs;
    in.predictions.push_back(std::move(p));
  }
  uint64_t seed = 1;
  for (auto _ : state) {
    in.seed = seed++;
    WindowReport r = ScoreWindow(in, policy);
    benchmark::DoNotOptimize(r);
    const SignalValue* mmd = r.Find("embedding.mmd");
    if (!r.scored || !mmd || mmd->scored != (mode != 2)) state.SkipWithError("unexpected report");
  }
  state.SetLabel(mode == 0 ? "mmd 200 permutations" : mode == 1 ? "mmd2, no test" : "no embedding");
}
BENCHMARK(BM_ScoreWindow)
    ->ArgNames({"window", "mode"})
    ->Args({200, 0})
    ->Args({200, 1})
    ->Args({200, 2})
    ->Args({50, 0})
    ->Args({50, 2})
    ->Unit(benchmark::kMillisecond);

// ---- 2. one million logged predictions ----

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

int64_t Count(Workspace& ws, const std::string& sql) {
  auto rows = ws.db().Query(sql);
  return rows.ok() && !rows->empty() ? (*rows)[0].Int(0) : -1;
}

uintmax_t DbBytes(const fs::path& root) {
  uintmax_t total = 0;
  for (const char* f : {"detops.db", "detops.db-wal"}) {
    std::error_code ec;
    const uintmax_t s = fs::file_size(root / f, ec);
    if (!ec) total += s;
  }
  return total;
}

struct Million {
  fs::path dir;
  std::unique_ptr<Workspace> ws;
  int64_t last_ms = 0;  // the newest prediction's time

  int64_t rows = 1'000'000;
  int64_t NowMs() const { return last_ms + 5000; }
  int64_t Windows() { return Count(*ws, "SELECT COUNT(*) FROM monitor_windows"); }
};

Status Generate(Million& m) {
  const fs::path root = m.dir / "ws";
  std::printf("writing %lld predictions (embedding %d) to %s ...\n", static_cast<long long>(m.rows),
              kDim, root.c_str());
  std::fflush(stdout);
  const auto t0 = Clock::now();
  {
    SyntheticModel model;
    model.profile_json = ReferenceJson();
    model.imgsz = 320;
    ASSIGN_OR_RETURN(SyntheticWorkspace opened, OpenSyntheticWorkspace(m.dir, model));
    m.ws = std::move(opened.ws);
  }
  PredictionLogOptions lo;
  lo.buffer_max = 40'000;
  lo.flush_records = 2'000;
  ASSIGN_OR_RETURN(auto log, PredictionLog::Open(*m.ws, lo));
  std::mt19937_64 rng(7);
  for (int64_t i = 0; i < m.rows; ++i) {
    PredictionRecord r = Draw(rng);
    r.time_ms = kStartMs + i * kStepMs;
    if (!log->Append(std::move(r))) return Status::Internal("the prediction log dropped a row");
    if ((i + 1) % 20'000 == 0) {
      RETURN_IF_ERROR(log->Flush());
      if ((i + 1) % 200'000 == 0) {
        std::printf("  %lld rows, %.0f s\n", static_cast<long long>(i + 1), Seconds(t0));
        std::fflush(stdout);
      }
    }
  }
  RETURN_IF_ERROR(log->Flush());
  log.reset();
  const double secs = Seconds(t0);
  std::printf(
      "wrote %lld predictions in %.1f s (%.0f rows/s through PredictionLog); database %.2f GB\n",
      static_cast<long long>(m.rows), secs, m.rows / secs, DbBytes(root) / 1e9);
  std::fflush(stdout);
  return Status::Ok();
}

// The workspace, written on first use (or when it does not hold exactly
// `rows` predictions of cars@1).
Million& TheMillion() {
  static Million* m = [] {
    auto* m = new Million;
    const char* env = std::getenv("DETOPS_MONITOR_BENCH_DIR");
    m->dir = env && *env ? fs::path(env) : fs::path("/tmp/detops-monitor-1m");
    if (const char* rows = std::getenv("DETOPS_MONITOR_BENCH_ROWS"); rows && *rows) {
      m->rows = std::atoll(rows);
      if (m->rows < 200 || m->rows % 200 != 0) {
        std::fprintf(stderr, "monitor_bench: DETOPS_MONITOR_BENCH_ROWS: a multiple of 200\n");
        std::exit(2);
      }
    }
    if (fs::exists(m->dir / "ws" / "detops.db")) {
      auto ws = Workspace::Open({m->dir / "ws", false});
      if (ws.ok() &&
          Count(**ws, "SELECT COUNT(*) FROM predictions WHERE model_name = 'cars'") == m->rows) {
        m->ws = std::move(*ws);
        std::printf("reusing %s: %lld predictions, database %.2f GB, %lld stored windows\n",
                    m->dir.c_str(), static_cast<long long>(m->rows), DbBytes(m->dir / "ws") / 1e9,
                    static_cast<long long>(m->Windows()));
      }
    }
    if (!m->ws) {
      fs::remove_all(m->dir);
      fs::create_directories(m->dir);
      const Status s = Generate(*m);
      if (!s.ok()) {
        std::fprintf(stderr, "monitor_bench: %s\n", s.ToString().c_str());
        std::exit(1);
      }
    }
    m->last_ms = Count(*m->ws, "SELECT MAX(at_ms) FROM predictions");
    return m;
  }();
  return *m;
}

std::unique_ptr<Monitor> NewMonitor(Workspace& ws) {
  MonitorOptions o;
  o.policy = DefaultMonitorPolicy();
  o.model = "cars";
  o.notify = false;
  return Monitor::Open(ws, o).value();
}

void ClearWindows(Workspace& ws) {
  if (!ws.db().Exec("DELETE FROM monitor_windows").ok() ||
      !ws.db().Exec("DELETE FROM alerts").ok()) {
    std::fprintf(stderr, "monitor_bench: could not clear the stored windows\n");
    std::exit(1);
  }
}

// --catch-up: one Tick over the whole backlog (the child of CatchUp).
int CatchUpChild() {
  Million& m = TheMillion();
  auto monitor = NewMonitor(*m.ws);
  const auto t0 = Clock::now();
  auto r = monitor->Tick(m.NowMs());
  if (!r.ok()) {
    std::fprintf(stderr, "monitor_bench: catch-up: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf("catch-up: %zu windows in %.1f s, %zu alert changes\n", r->windows.size(),
              Seconds(t0), r->alerts.size());
  return 0;
}

struct CatchUpResult {
  int64_t windows = 0;  // stored when it finished or was stopped
  double seconds = 0;
  bool finished = false;
  bool failed = false;        // the child exited with an error
  double first_window_s = 0;  // until the first window was stored
};

// Scores the whole backlog from nothing with one Tick, in a child process
// that is killed after `budget_s`: the windows it committed by then tell
// how far it got.
CatchUpResult CatchUp(Million& m, double budget_s) {
  ClearWindows(*m.ws);
  std::fflush(stdout);
  const auto t0 = Clock::now();
  const pid_t child = ::fork();
  if (child < 0) {
    std::perror("fork");
    std::exit(1);
  }
  if (child == 0) {
    ::execl("/proc/self/exe", "monitor_bench", "--catch-up", static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  CatchUpResult r;
  for (;;) {
    int status = 0;
    if (::waitpid(child, &status, WNOHANG) == child) {
      r.finished = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      r.failed = !r.finished;
      break;
    }
    r.seconds = Seconds(t0);
    if (r.first_window_s == 0 && m.Windows() > 0) r.first_window_s = r.seconds;
    if (r.seconds > budget_s) {
      ::kill(child, SIGKILL);
      ::waitpid(child, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  r.seconds = Seconds(t0);
  r.windows = m.Windows();
  const double per_window = r.seconds / static_cast<double>(std::max<int64_t>(1, r.windows));
  std::printf("catch-up: %s after %.1f s with %lld of %lld windows stored (%.1f ms a window%s)\n",
              r.finished ? "finished"
              : r.failed ? "FAILED"
                         : "STOPPED",
              r.seconds, static_cast<long long>(r.windows), static_cast<long long>(m.rows / 200),
              1000 * per_window,
              r.finished || r.failed
                  ? ""
                  : (", at that pace the whole backlog takes " +
                     std::to_string(static_cast<int>(per_window * m.rows / 200 / 60)) + " min")
                        .c_str());
  std::fflush(stdout);
  return r;
}

// Every window of the log, stored as Monitor::ScoreAndAct stores them but
// scored in-process: the traffic is drawn again from Generate's seed (the
// same records; the ids are read back), so the stored reports are what a
// catch-up would have written, without its cost.
void EnsureWindows(Million& m) {
  const int64_t want = m.rows / 200;
  if (m.Windows() == want) return;
  Workspace& ws = *m.ws;
  ClearWindows(ws);
  const auto t0 = Clock::now();
  const std::string ref_json = ReferenceJson();
  const ReferenceProfile ref = ParseReferenceProfile(ref_json).value();
  const MonitorPolicy policy = DefaultMonitorPolicy();
  const std::string evaluated_at = "2026-12-07T00:00:00.000Z";
  std::mt19937_64 rng(7);  // Generate's
  Status st = Status::Ok();
  for (int64_t w = 0; w < want && st.ok(); w += 100) {
    std::vector<std::pair<WindowReport, std::string>> reports;
    for (int64_t k = w; k < std::min(want, w + 100); ++k) {
      WindowInput in;
      in.model_name = "cars";
      in.model_version = 1;
      in.reference = &ref;
      in.classes = {"dent", "scratch"};
      in.registered_metrics = {{"map50", 0.6}, {"f1", 0.6}};
      const int64_t first = kStartMs + k * 200 * kStepMs;
      in.seed = static_cast<uint64_t>(first) ^ 0x9e3779b97f4a7c15ull;
      auto ids =
          ws.db().Query("SELECT id FROM predictions WHERE at_ms >= ? AND at_ms <= ? ORDER BY at_ms",
                        {first, first + 199 * kStepMs});
      if (!ids.ok() || ids->size() != 200) {
        st = Status::Internal("the log is not as Generate wrote it");
        break;
      }
      for (int i = 0; i < 200; ++i) {
        StoredPrediction p;
        p.record = Draw(rng);
        p.record.id = (*ids)[i].Text(0);
        p.record.time_ms = first + i * kStepMs;
        in.predictions.push_back(std::move(p));
      }
      WindowReport r = ScoreWindow(in, policy);
      std::string json = WindowReportToJson(r).dump();
      reports.emplace_back(std::move(r), std::move(json));
    }
    st = ws.db().InTransaction([&]() -> Status {
      for (const auto& [r, json] : reports) {
        RETURN_IF_ERROR(ws.db().Exec(
            "INSERT INTO monitor_windows (model_name, model_version, start_ms, end_ms, last_id, "
            "n, level, report_json, evaluated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            {r.model_name, int64_t{r.model_version}, r.start_ms, r.end_ms, r.last_id, r.n,
             std::string(LevelName(r.level)), json, evaluated_at}));
      }
      return Status::Ok();
    });
  }
  if (!st.ok()) {
    std::fprintf(stderr, "monitor_bench: storing the windows: %s\n", st.ToString().c_str());
    std::exit(1);
  }
  std::printf("stored %lld windows (scored in-process, not by a catch-up) in %.1f s\n",
              static_cast<long long>(want), Seconds(t0));
  std::fflush(stdout);
}

std::string RowsLabel(const Million& m) { return "rows=" + std::to_string(m.rows); }

// (c) The whole backlog from nothing, within DETOPS_MONITOR_BENCH_CATCHUP_S
// seconds (default 300).
void BM_CatchUp(benchmark::State& state) {
  Million& m = TheMillion();
  const char* env = std::getenv("DETOPS_MONITOR_BENCH_CATCHUP_S");
  const double budget = env && *env ? std::atof(env) : 300.0;
  CatchUpResult r;
  for (auto _ : state) {
    r = CatchUp(m, budget);
    state.SetIterationTime(r.seconds);
    if (r.failed) state.SkipWithError("the catch-up failed");
  }
  state.counters["windows"] = static_cast<double>(r.windows);
  state.counters["finished"] = r.finished;
  state.counters["ms_per_window"] =
      1000 * r.seconds / static_cast<double>(std::max<int64_t>(1, r.windows));
  state.counters["first_window_s"] = r.first_window_s;
  state.SetLabel(RowsLabel(m));
}
BENCHMARK(BM_CatchUp)->Iterations(1)->UseManualTime()->Unit(benchmark::kSecond);

// (a) One new window after rows - 200 scored predictions.
void BM_TickOneNewWindow(benchmark::State& state) {
  Million& m = TheMillion();
  EnsureWindows(m);
  // The server's monitor lives on: its cache of the parsed reference is
  // warm (the first window of a fresh one parses it, ~6 ms).
  auto drop_newest = [&m] {
    return m.ws->db()
        .Exec("DELETE FROM monitor_windows WHERE id = (SELECT MAX(id) FROM monitor_windows)")
        .ok();
  };
  static std::unique_ptr<Monitor> monitor = [&] {
    auto fresh = NewMonitor(*m.ws);
    if (drop_newest()) (void)fresh->Tick(m.NowMs());  // untimed: warms the cache
    return fresh;
  }();
  for (auto _ : state) {
    state.PauseTiming();
    if (!drop_newest()) {
      state.SkipWithError("delete failed");
      break;
    }
    state.ResumeTiming();
    auto r = monitor->Tick(m.NowMs());
    if (!r.ok() || r->windows.size() != 1) {
      state.SkipWithError("expected one window");
      break;
    }
  }
  state.SetLabel(RowsLabel(m));
}
BENCHMARK(BM_TickOneNewWindow)->Iterations(1)->Repetitions(5)->Unit(benchmark::kMillisecond);

// A tick with nothing new to score (the server ticks every 30 s).
void BM_TickNothingNew(benchmark::State& state) {
  Million& m = TheMillion();
  EnsureWindows(m);
  auto monitor = NewMonitor(*m.ws);
  for (auto _ : state) {
    auto r = monitor->Tick(m.NowMs());
    if (!r.ok() || !r->windows.empty()) {
      state.SkipWithError("expected no window");
      break;
    }
  }
  state.SetLabel(RowsLabel(m));
}
BENCHMARK(BM_TickNothingNew)->Unit(benchmark::kMillisecond)->MinTime(2);

// (b) What `detops monitor report` reads: every stored window.
void BM_ListWindowReports(benchmark::State& state) {
  Million& m = TheMillion();
  EnsureWindows(m);
  size_t n = 0;
  for (auto _ : state) {
    auto r = ListWindowReports(*m.ws, "cars", 0, 0);
    if (!r.ok()) {
      state.SkipWithError("list failed");
      break;
    }
    n = r->size();
  }
  state.counters["windows"] = static_cast<double>(n);
  state.SetLabel(RowsLabel(m));
}
BENCHMARK(BM_ListWindowReports)->Unit(benchmark::kMillisecond)->MinTime(2);

// (b) What `detops monitor status` reads.
void BM_GetMonitorStatus(benchmark::State& state) {
  Million& m = TheMillion();
  EnsureWindows(m);
  for (auto _ : state) {
    auto r = GetMonitorStatus(*m.ws, "cars");
    if (!r.ok() || r->size() != 1 || !(*r)[0].last) {
      state.SkipWithError("status failed");
      break;
    }
  }
  state.SetLabel(RowsLabel(m));
}
BENCHMARK(BM_GetMonitorStatus)->Unit(benchmark::kMillisecond)->MinTime(2);

}  // namespace
}  // namespace detops

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--prepare") {
    detops::TheMillion();
    return 0;
  }
  if (argc == 2 && std::string(argv[1]) == "--catch-up") return detops::CatchUpChild();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
