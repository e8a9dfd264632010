// How soon the monitor sees a lighting change, through the real
// Monitor::Tick on a temporary workspace (issue 22). Prints Markdown tables
// for docs/BENCHMARKS.md.
//
//   build/bench/monitor_delay [--seeds 20] [--stable-windows 15]
//
// Traffic is drawn as src/monitor/evaluator_test.cc draws it (copied, not
// included): brightness N(120, 25), colour means following it, 160-wide
// embeddings (the `n` model's), 0-3 detections. Predictions are logged
// through PredictionLog 100 ms apart and the monitor ticks after every 10
// (flushing the log first, as the server does), at a clock 2 s past the
// newest one, so each tick sees every prediction logged before it.
//
//  1. Step: 4-5 windows of normal traffic (the shift starts at a random
//     place in a window), then photos darker by 0.5, 1 or 2 reference
//     standard deviations of brightness. Reported: the predictions logged
//     after the shift until the first input.brightness alert at retrain or
//     above, and the level it had; with the default policy (windows of 200)
//     and with windows of 50.
//  2. Gradual: 4 windows of normal traffic, then the photos darken by 0.02,
//     0.04 or 0.08 sd per window of 200, continuously. Reported: windows
//     from the first predicted input.brightness alert to the window whose
//     threshold alert reaches retrain (0 when none fired before it).
//  3. Stable: runs of normal traffic; predicted and threshold alerts opened.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "monitor/evaluator.h"
#include "monitor/synthetic_traffic.h"
#include "registry/registry.h"

namespace detops {
namespace {

namespace fs = std::filesystem;

constexpr int kDim = 160;  // c5 of the `n` model: WidthsFor("n").c[4] in src/ml/model.cc
constexpr int kTickEvery = 10;

// ---- synthetic traffic (monitor/synthetic_traffic.h), at the n model's width ----

SyntheticTraffic Traffic(double brightness_shift_sd = 0) {
  SyntheticTraffic t;
  t.brightness_shift_sd = brightness_shift_sd;
  t.embedding_dim = kDim;
  return t;
}

PredictionRecord Draw(std::mt19937_64& rng, double brightness_shift_sd) {
  return DrawSyntheticPrediction(rng, Traffic(brightness_shift_sd));
}

std::string ReferenceJson(uint64_t seed = 99) { return SyntheticReferenceJson(Traffic(), seed); }

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "monitor_delay: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> r, const std::string& what) {
  if (!r.ok()) Die(what, r.status());
  return std::move(*r);
}

// A workspace with cars@1 in production, a prediction log and a monitor.
class Simulation {
 public:
  Simulation(const MonitorPolicy& policy, uint64_t seed) : rng_(seed) {
    char tmpl[] = "/tmp/detops-monitor-delay-XXXXXX";
    if (!::mkdtemp(tmpl)) Die("mkdtemp", Status::IOError(std::strerror(errno)));
    dir_ = tmpl;
    SyntheticModel model;
    model.profile_json = Reference();
    model.imgsz = 320;
    ws_ = Must(OpenSyntheticWorkspace(dir_, model), "workspace").ws;
    log_ = Must(PredictionLog::Open(*ws_), "prediction log");
    MonitorOptions o;
    o.policy = policy;
    o.model = "cars";
    o.notify = false;
    monitor_ = Must(Monitor::Open(*ws_, o), "monitor");
    // Runs start at different times, so the permutation seeds differ too.
    clock_ms_ = 1'700'000'000'000 + static_cast<int64_t>(seed) * 86'400'000;
  }
  ~Simulation() {
    log_.reset();
    monitor_.reset();
    ws_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Logs one prediction darker by `shift_sd`; every kTickEvery predictions
  // flushes the log and ticks, returning the tick's result (else nullopt).
  std::optional<TickResult> Predict(double shift_sd) {
    PredictionRecord r = Draw(rng_, shift_sd);
    r.time_ms = (clock_ms_ += 100);
    log_->Append(std::move(r));
    if (++logged_ % kTickEvery != 0) return std::nullopt;
    if (Status s = log_->Flush(); !s.ok()) Die("flush", s);
    TickResult t = Must(monitor_->Tick(clock_ms_ + 2000), "tick");
    windows_ += static_cast<int>(t.windows.size());
    return t;
  }
  int64_t logged() const { return logged_; }
  int windows() const { return windows_; }  // scored or recorded so far
  std::mt19937_64& rng() { return rng_; }

  static const std::string& Reference() {
    static const std::string ref = ReferenceJson();
    return ref;
  }

 private:
  fs::path dir_;
  std::unique_ptr<Workspace> ws_;
  std::unique_ptr<PredictionLog> log_;
  std::unique_ptr<Monitor> monitor_;
  std::mt19937_64 rng_;
  int64_t clock_ms_ = 0;
  int64_t logged_ = 0;
  int windows_ = 0;
};

bool IsBrightness(const Alert& a, const char* kind) {
  return a.signal == "input.brightness" && a.kind == kind;
}

double Median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// ---- 1. a step ----

struct StepRun {
  int64_t delay = -1;  // predictions after the shift; -1: not within the cap
  Level level = Level::kOk;
  int64_t first_any = -1;     // ... until the first brightness alert at any level
  bool false_before = false;  // a brightness alert before the shift
};

StepRun Step(int window, double shift_sd, uint64_t seed) {
  MonitorPolicy policy = DefaultMonitorPolicy();
  policy.window_size = window;
  Simulation sim(policy, seed);
  std::uniform_int_distribution<int> phase(0, window - 1);
  const int64_t k = 4 * window + phase(sim.rng());  // the first darker prediction
  const int64_t cap = k + 20 * window;
  StepRun run;
  while (sim.logged() < cap && run.delay < 0) {
    const bool shifted = sim.logged() >= k;
    auto t = sim.Predict(shifted ? -shift_sd : 0.0);
    if (!t) continue;
    for (const Alert& a : t->alerts) {
      if (!IsBrightness(a, kAlertThreshold) || a.state == kAlertResolved) continue;
      if (sim.logged() <= k) {
        run.false_before = true;
        continue;
      }
      if (run.first_any < 0) run.first_any = sim.logged() - k;
      if (a.level >= Level::kRetrain && run.delay < 0) {
        run.delay = sim.logged() - k;
        run.level = a.level;
      }
    }
  }
  return run;
}

// ---- 2. a gradual darkening ----

struct GradualRun {
  int predicted = -1;      // window index of the first predicted brightness alert
  int crossed = -1;        // window index whose threshold alert reached retrain
  int predicted_any = -1;  // ... of the first predicted alert on any signal
};

GradualRun Gradual(double sd_per_window, uint64_t seed) {
  const MonitorPolicy policy = DefaultMonitorPolicy();
  const int window = policy.window_size;
  Simulation sim(policy, seed);
  const int64_t start = 4 * window;
  const int64_t cap = start + 80 * window;
  GradualRun run;
  while (sim.logged() < cap && run.crossed < 0) {
    const int64_t i = sim.logged();
    const double shift = i < start ? 0.0 : sd_per_window * static_cast<double>(i - start) / window;
    auto t = sim.Predict(-shift);
    if (!t) continue;
    const int w = sim.windows() - 1;  // the newest window, counted from 0
    for (const Alert& a : t->alerts) {
      if (a.state == kAlertResolved) continue;
      if (IsBrightness(a, kAlertPredicted) && run.predicted < 0) run.predicted = w;
      if (a.kind == kAlertPredicted && run.predicted_any < 0) run.predicted_any = w;
      if (IsBrightness(a, kAlertThreshold) && a.level >= Level::kRetrain) run.crossed = w;
    }
  }
  return run;
}

// ---- 3. stable traffic ----

struct StableRun {
  int predicted = 0, threshold = 0;  // alerts opened
  std::vector<std::string> signals;
};

StableRun Stable(int windows, uint64_t seed) {
  const MonitorPolicy policy = DefaultMonitorPolicy();
  Simulation sim(policy, seed);
  StableRun run;
  std::set<int64_t> seen;
  while (sim.logged() < int64_t{windows} * policy.window_size) {
    auto t = sim.Predict(0.0);
    if (!t) continue;
    for (const Alert& a : t->alerts) {
      if (!seen.insert(a.id).second) continue;
      (a.kind == kAlertPredicted ? run.predicted : run.threshold) += 1;
      run.signals.push_back(a.kind + " " + a.signal);
    }
  }
  return run;
}

int Run(int seeds, int stable_windows) {
  std::printf("### Delay to the first input.brightness alert at retrain or above\n\n");
  std::printf("%d seeds each; ticks after every %d predictions.\n\n", seeds, kTickEvery);
  std::printf(
      "| window | darker by | median delay (predictions) | max | reached retrain | level at "
      "first alert | median to first alert (any level) | false alerts before the shift |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (int window : {200, 50}) {
    for (double shift : {0.5, 1.0, 2.0}) {
      std::vector<double> delays, any;
      int reached = 0, escalate = 0, retrain = 0, false_before = 0;
      int64_t max_delay = 0;
      for (int s = 0; s < seeds; ++s) {
        const StepRun r = Step(window, shift, 1000 + s);
        false_before += r.false_before;
        if (r.first_any >= 0) any.push_back(static_cast<double>(r.first_any));
        if (r.delay < 0) continue;
        ++reached;
        delays.push_back(static_cast<double>(r.delay));
        max_delay = std::max(max_delay, r.delay);
        (r.level == Level::kEscalate ? escalate : retrain) += 1;
      }
      std::printf("| %d | %.1f sd | %.0f | %lld | %d/%d | retrain %d, escalate %d | %.0f | %d |\n",
                  window, shift, Median(delays), static_cast<long long>(max_delay), reached, seeds,
                  retrain, escalate, Median(any), false_before);
      std::fflush(stdout);
    }
  }

  std::printf("\n### Lead time of the predicted alert on a gradual darkening (windows of 200)\n\n");
  std::printf(
      "| darkening per window | darker windows until retrain (median) | median lead (windows) "
      "| leads | predicted before crossing | median lead, first predicted alert on any signal "
      "|\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (double rate : {0.02, 0.04, 0.08}) {
    std::vector<double> leads, crossed, any_leads;
    std::vector<int> all;
    int before = 0, never = 0;
    for (int s = 0; s < seeds; ++s) {
      const GradualRun r = Gradual(rate, 2000 + s);
      if (r.crossed < 0) {
        ++never;
        continue;
      }
      crossed.push_back(r.crossed - 3);  // the first darker window is 1
      const int lead = r.predicted >= 0 && r.predicted < r.crossed ? r.crossed - r.predicted : 0;
      before += lead > 0;
      leads.push_back(lead);
      all.push_back(lead);
      any_leads.push_back(
          r.predicted_any >= 0 && r.predicted_any < r.crossed ? r.crossed - r.predicted_any : 0);
    }
    std::sort(all.begin(), all.end());
    std::string list;
    for (int l : all) list += (list.empty() ? "" : " ") + std::to_string(l);
    std::printf("| %.2f sd | %.0f | %.1f | %s | %d/%d%s | %.1f |\n", rate, Median(crossed),
                Median(leads), list.c_str(), before, seeds,
                never ? (" (" + std::to_string(never) + " never crossed)").c_str() : "",
                Median(any_leads));
    std::fflush(stdout);
  }

  std::printf("\n### Stable traffic (windows of 200)\n\n");
  int predicted = 0, threshold = 0;
  std::map<std::string, int> by;
  for (int s = 0; s < seeds; ++s) {
    const StableRun r = Stable(stable_windows, 3000 + s);
    predicted += r.predicted;
    threshold += r.threshold;
    for (const auto& x : r.signals) ++by[x];
  }
  std::printf("%d runs x %d windows = %d windows: %d predicted alerts, %d threshold alerts opened",
              seeds, stable_windows, seeds * stable_windows, predicted, threshold);
  for (const auto& [k, n] : by) std::printf("; %s %d", k.c_str(), n);
  std::printf("\n");
  return 0;
}

}  // namespace
}  // namespace detops

int main(int argc, char** argv) {
  int seeds = 20, stable_windows = 15;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seeds" && i + 1 < argc) {
      seeds = std::atoi(argv[++i]);
    } else if (a == "--stable-windows" && i + 1 < argc) {
      stable_windows = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: monitor_delay [--seeds N] [--stable-windows N]\n");
      return 2;
    }
  }
  if (seeds < 1 || stable_windows < 1) {
    std::fprintf(stderr, "monitor_delay: --seeds and --stable-windows must be at least 1\n");
    return 2;
  }
  return detops::Run(seeds, stable_windows);
}
