// Scoring one window of the prediction log against the reference profile:
// input drift, embedding drift, prediction drift, service health, accuracy
// from feedback and the business KPIs. Pure: the monitor gathers the input.

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "monitor/evaluator.h"

namespace detops {
namespace {

constexpr size_t kExamples = 5;
// The score below which a detection counts as low-confidence, as in the
// reference profile (pipeline/model_profile.cc) and the server's option.
constexpr double kLowConfidence = 0.5;

const char* const kImageFeatures[] = {"brightness", "contrast", "sharpness", "mean_b",
                                      "mean_g",     "mean_r",   "width",     "height"};
// The per-feature tests of a window (8 image features, 4 prediction
// figures) share the policy's alpha (Bonferroni): a same-distribution
// window then alarms on one of them with probability <= alpha, and the
// embedding's permutation test adds at most alpha more.
constexpr int kFeatureTests = 12;

// Two-sided p-value of a standard normal z.
double NormalP(double z) { return std::erfc(std::abs(z) / std::sqrt(2.0)); }

// Upper tail of a chi-square with `df` degrees of freedom (Wilson-Hilferty:
// within ~0.01 of exact for df >= 1 in the tail that matters here).
double ChiSquareP(double x, int df) {
  if (df <= 0) return 1;
  const double k = df;
  const double z = (std::cbrt(x / k) - (1 - 2 / (9 * k))) / std::sqrt(2 / (9 * k));
  return 0.5 * std::erfc(z / std::sqrt(2.0));
}

double FeatureOf(const PredictionRecord& r, std::string_view feature) {
  const LiveImageProfile& p = r.profile;
  if (feature == "brightness") return p.brightness;
  if (feature == "contrast") return p.contrast;
  if (feature == "sharpness") return p.sharpness;
  if (feature == "mean_b") return p.mean_b;
  if (feature == "mean_g") return p.mean_g;
  if (feature == "mean_r") return p.mean_r;
  if (feature == "width") return r.width;
  return r.height;
}

double Mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / v.size();
}

// The signal with its policy thresholds and no figures yet.
SignalValue Start(const std::string& name, const MonitorPolicy& policy) {
  SignalValue s;
  s.signal = name;
  if (const SignalInfo* info = FindSignal(name)) s.statistic = info->statistic;
  auto it = policy.thresholds.find(name);
  if (it != policy.thresholds.end()) s.threshold = ThresholdOf(it->second, Level::kOk);
  return s;
}

void Unscored(SignalValue& s, std::string note) {
  s.scored = false;
  s.level = Level::kOk;
  s.note = std::move(note);
}

// Sets level and threshold from the value; a level above ok that the test
// (p_value, when there is one) does not support at `alpha` is held at ok
// with a note.
void Classify(SignalValue& s, const MonitorPolicy& policy, double alpha) {
  auto it = policy.thresholds.find(s.signal);
  if (it == policy.thresholds.end()) return;
  Level level = detops::Classify(it->second, s.value);
  if (level > Level::kOk && s.p_value >= 0 && s.p_value >= alpha) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "not significant (p = %.3g >= %.3g)", s.p_value, alpha);
    s.note = s.note.empty() ? std::string(buf) : s.note + "; " + buf;
    level = Level::kOk;
  }
  s.level = level;
  s.threshold = ThresholdOf(it->second, level);
}

// PSI of `live` against the reference sample, gated by the KS test at the
// per-feature share of alpha.
void CompareDistributions(const std::vector<double>& reference, int64_t reference_count,
                          const std::vector<double>& live, const MonitorPolicy& policy,
                          SignalValue& s) {
  s.reference = Mean(reference);
  s.value = Psi(reference, live);
  const KsResult ks = KsTwoSample(reference, live, reference_count);
  s.test_statistic = ks.statistic;
  s.p_value = ks.p_value;
  Classify(s, policy, policy.alpha / kFeatureTests);
}

// Ids of the predictions whose `key` is largest (or smallest).
std::vector<std::string> Extremes(const std::vector<StoredPrediction>& preds,
                                  const std::function<double(const PredictionRecord&)>& key,
                                  bool largest) {
  std::vector<size_t> order(preds.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t k = std::min(kExamples, order.size());
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](size_t a, size_t b) {
    const double ka = key(preds[a].record), kb = key(preds[b].record);
    return largest ? ka > kb : ka < kb;
  });
  std::vector<std::string> ids;
  for (size_t i = 0; i < k; ++i) ids.push_back(preds[order[i]].record.id);
  return ids;
}

void InputDrift(const WindowInput& in, const MonitorPolicy& policy, WindowReport& out) {
  for (const char* feature : kImageFeatures) {
    SignalValue s = Start(std::string("input.") + feature, policy);
    std::vector<double> live;
    live.reserve(in.predictions.size());
    for (const StoredPrediction& p : in.predictions) live.push_back(FeatureOf(p.record, feature));
    s.n = static_cast<int64_t>(live.size());
    s.live = Mean(live);
    auto ref = in.reference->image.find(feature);
    if (ref == in.reference->image.end() || ref->second.empty()) {
      Unscored(s, std::string("the reference profile has no ") + feature);
      out.signals.push_back(std::move(s));
      continue;
    }
    const std::vector<double>& reference = ref->second;
    const int64_t ref_n = in.reference->image_count.at(feature);
    if (ref_n < policy.min_samples) {
      s.note = "small reference (" + std::to_string(ref_n) + " images): little power";
    }
    CompareDistributions(reference, ref_n, live, policy, s);
    const bool lower = s.live < s.reference;
    s.examples = Extremes(
        in.predictions, [&](const PredictionRecord& r) { return FeatureOf(r, feature); }, !lower);
    out.signals.push_back(std::move(s));
  }
}

void EmbeddingDrift(const WindowInput& in, const MonitorPolicy& policy, WindowReport& out) {
  SignalValue s = Start("embedding.mmd", policy);
  std::vector<std::vector<float>> live;
  const size_t n = in.predictions.size();
  const size_t take = std::min<size_t>(n, std::max(2, policy.mmd_max_samples));
  for (size_t i = 0; i < take; ++i) {
    const auto& e = in.predictions[i * n / take].record.embedding;  // evenly spaced
    if (!e.empty()) live.push_back(e);
  }
  s.n = static_cast<int64_t>(live.size());
  const auto& ref = in.reference->embeddings;
  if (ref.size() < 2 || live.size() < 2) {
    Unscored(s, ref.size() < 2 ? "the reference profile has no embedding sample"
                               : "the window's predictions carry no embedding");
  } else if (!in.serving_precision.empty() && !in.reference->precision.empty() &&
             in.serving_precision != in.reference->precision) {
    Unscored(s, "the reference embeddings were measured in " + in.reference->precision +
                    ", this server runs " + in.serving_precision +
                    ": serve in that precision, or register again on this machine");
  } else if (ref[0].size() != live[0].size()) {
    Unscored(s, "embedding sizes differ (reference " + std::to_string(ref[0].size()) + ", live " +
                    std::to_string(live[0].size()) + ")");
  } else {
    const MmdResult m = MmdTest(ref, live, policy.mmd_permutations, in.seed, policy.alpha);
    s.value = m.mmd2;
    s.live = m.mmd2;
    s.test_statistic = m.threshold;
    s.p_value = m.p_value;
    Classify(s, policy, policy.alpha);
  }
  out.signals.push_back(std::move(s));
}

void PredictionDrift(const WindowInput& in, const MonitorPolicy& policy, WindowReport& out) {
  const ReferenceProfile& ref = *in.reference;
  std::vector<double> per_image, scores, low_share;
  std::map<std::string, int64_t> classes;
  for (const StoredPrediction& p : in.predictions) {
    const auto& dets = p.record.detections;
    per_image.push_back(static_cast<double>(dets.size()));
    int low = 0;
    for (const LoggedDetection& d : dets) {
      scores.push_back(d.score);
      if (d.score < kLowConfidence) ++low;
      ++classes[d.class_name];
    }
    low_share.push_back(dets.empty() ? 0.0 : static_cast<double>(low) / dets.size());
  }
  auto distribution = [&](const std::string& name, const std::vector<double>& reference,
                          int64_t ref_count, const std::vector<double>& live) {
    SignalValue s = Start(name, policy);
    s.n = static_cast<int64_t>(live.size());
    s.live = Mean(live);
    if (reference.empty() || live.empty()) {
      Unscored(s, reference.empty() ? "the reference profile has no " + name.substr(11)
                                    : "no detections in the window");
    } else {
      CompareDistributions(reference, ref_count, live, policy, s);
    }
    out.signals.push_back(std::move(s));
  };
  distribution("prediction.detections_per_image", ref.detections_per_image, ref.detections_count,
               per_image);
  out.signals.back().examples = Extremes(
      in.predictions,
      [](const PredictionRecord& r) { return static_cast<double>(r.detections.size()); },
      out.signals.back().live >= out.signals.back().reference);
  distribution("prediction.score", ref.score, ref.score_count, scores);

  SignalValue low = Start("prediction.low_confidence_share", policy);
  low.n = static_cast<int64_t>(low_share.size());
  low.live = Mean(low_share);
  low.reference = ref.low_confidence_mean;
  low.value = std::abs(low.live - low.reference);
  // z-test of the window's mean share against the reference mean.
  double var = 0;
  for (double x : low_share) var += (x - low.live) * (x - low.live);
  const double se =
      low_share.size() > 1 ? std::sqrt(var / (low_share.size() - 1) / low_share.size()) : 0.0;
  low.p_value = se > 0 ? NormalP(low.value / se) : (low.value > 0 ? 0.0 : 1.0);
  Classify(low, policy, policy.alpha / kFeatureTests);
  out.signals.push_back(std::move(low));

  SignalValue mix = Start("prediction.class_mix", policy);
  int64_t total = 0;
  for (const auto& [name, n] : classes) total += n;
  mix.n = total;
  if (ref.class_share.empty()) {
    Unscored(mix, "the reference profile has no class shares");
  } else if (total < policy.min_samples) {
    Unscored(mix, "too few detections (" + std::to_string(total) + " < " +
                      std::to_string(policy.min_samples) + ")");
  } else {
    mix.value = CategoricalPsi(ref.class_share, classes);
    // Chi-square goodness of fit of the counts to the reference shares.
    double chi2 = 0;
    int categories = 0;
    for (const auto& [name, share] : ref.class_share) {
      const double expected = std::max(share, 1e-4) * total;
      auto it = classes.find(name);
      const double observed = it == classes.end() ? 0.0 : static_cast<double>(it->second);
      chi2 += (observed - expected) * (observed - expected) / expected;
      ++categories;
    }
    for (const auto& [name, n] : classes) {
      if (!ref.class_share.count(name)) {
        chi2 += n * n / (1e-4 * total);  // a class the reference never predicted
        ++categories;
      }
    }
    mix.test_statistic = chi2;
    mix.p_value = ChiSquareP(chi2, categories - 1);
    Classify(mix, policy, policy.alpha / kFeatureTests);
  }
  out.signals.push_back(std::move(mix));
}

void ServiceHealth(const WindowInput& in, const MonitorPolicy& policy, WindowReport& out) {
  std::vector<double> latency;
  for (const StoredPrediction& p : in.predictions) latency.push_back(p.record.total_ms);
  out.latency_p50_ms = Quantile(latency, 0.5);
  out.latency_p95_ms = Quantile(latency, 0.95);
  out.latency_p99_ms = Quantile(latency, 0.99);

  SignalValue lat = Start("service.latency_p95_ms", policy);
  lat.n = static_cast<int64_t>(latency.size());
  lat.value = lat.live = out.latency_p95_ms;
  lat.reference = policy.slo_latency_p95_ms;
  Classify(lat, policy, policy.alpha);
  lat.examples = Extremes(
      in.predictions, [](const PredictionRecord& r) { return r.total_ms; }, true);
  out.signals.push_back(std::move(lat));

  const ServiceFigures& f = in.service;
  SignalValue err = Start("service.error_rate", policy);
  err.reference = policy.slo_error_rate;
  SignalValue drop = Start("service.log_drop_rate", policy);
  if (!f.known || f.requests == 0) {
    const std::string why =
        f.known ? "no requests counted in the window" : "no service samples around the window";
    Unscored(err, why);
    Unscored(drop, why);
  } else {
    err.n = f.requests;
    err.value = err.live = static_cast<double>(f.errors_5xx) / f.requests;
    const Interval ci = WilsonInterval(f.errors_5xx, f.requests);
    err.low = ci.low;
    err.high = ci.high;
    Classify(err, policy, policy.alpha);
    const int64_t logged = f.log_written + f.log_dropped;
    drop.n = logged;
    drop.value = drop.live = logged ? static_cast<double>(f.log_dropped) / logged : 0.0;
    Classify(drop, policy, policy.alpha);
  }
  out.signals.push_back(std::move(err));
  out.signals.push_back(std::move(drop));
}

void Accuracy(const WindowInput& in, const MonitorPolicy& policy, WindowReport& out) {
  const int64_t labels = static_cast<int64_t>(in.labelled.size());
  FeedbackAccuracy acc;
  if (labels >= policy.min_labels) acc = AccuracyFromFeedback(in.labelled, in.classes);
  for (const char* metric : {"map50", "f1"}) {
    SignalValue s = Start(std::string("accuracy.") + metric, policy);
    s.n = labels;
    auto reg = in.registered_metrics.find(metric);
    if (labels < policy.min_labels) {
      Unscored(s, "too few labels (" + std::to_string(labels) + " < " +
                      std::to_string(policy.min_labels) + ")");
    } else if (reg == in.registered_metrics.end()) {
      s.live = std::string(metric) == "map50" ? acc.map50 : acc.f1;
      Unscored(s, std::string("the version has no registered test ") + metric);
    } else {
      const bool map = std::string(metric) == "map50";
      s.live = map ? acc.map50 : acc.f1;
      s.reference = reg->second;
      s.value = s.reference - s.live;
      const Interval ci = map ? acc.map50_ci : Interval{-1, -1};
      s.low = ci.low;
      s.high = ci.high;
      Classify(s, policy, policy.alpha);
    }
    out.signals.push_back(std::move(s));
  }
}

Kpis BusinessKpis(const WindowInput& in, const MonitorPolicy& policy, int64_t span_ms) {
  Kpis k;
  for (const StoredPrediction& p : in.predictions) {
    ++k.inspections;
    bool uncertain = false;
    for (const LoggedDetection& d : p.record.detections) {
      if (d.score >= policy.uncertain && d.score < policy.confident) uncertain = true;
    }
    if (!uncertain) ++k.automated;
  }
  k.labelled = in.labelled_in_window;
  if (k.inspections > 0) {
    k.automation_rate = static_cast<double>(k.automated) / k.inspections;
    k.manual_review_rate = 1 - k.automation_rate;
    k.labelled_share = static_cast<double>(k.labelled) / k.inspections;
  }
  if (span_ms > 0) k.inspections_per_hour = k.inspections * 3.6e6 / span_ms;
  return k;
}

}  // namespace

const SignalValue* WindowReport::Find(const std::string& signal) const {
  for (const SignalValue& s : signals) {
    if (s.signal == signal) return &s;
  }
  return nullptr;
}

WindowReport ScoreWindow(const WindowInput& in, const MonitorPolicy& policy) {
  WindowReport out;
  out.model_name = in.model_name;
  out.model_version = in.model_version;
  out.n = static_cast<int64_t>(in.predictions.size());
  out.service = in.service;
  if (!in.predictions.empty()) {
    out.start_ms = in.predictions.front().record.time_ms;
    out.end_ms = in.predictions.back().record.time_ms;
    out.last_id = in.predictions.back().record.id;
  }
  if (out.n < policy.min_samples) {
    out.scored = false;
    out.note = "too few samples to score (" + std::to_string(out.n) + " < min_samples " +
               std::to_string(policy.min_samples) + ")";
    return out;
  }
  if (in.reference == nullptr) {
    out.scored = false;
    out.note = "the version has no reference profile";
    return out;
  }
  out.scored = true;
  InputDrift(in, policy, out);
  EmbeddingDrift(in, policy, out);
  PredictionDrift(in, policy, out);
  ServiceHealth(in, policy, out);
  Accuracy(in, policy, out);
  out.kpis = BusinessKpis(in, policy, out.end_ms - out.start_ms);
  SignalValue kpi = Start("kpi.automation_rate", policy);
  kpi.n = out.kpis.inspections;
  kpi.value = kpi.live = out.kpis.automation_rate;
  Classify(kpi, policy, policy.alpha);
  out.signals.push_back(std::move(kpi));
  for (const SignalValue& s : out.signals) out.level = std::max(out.level, s.level);
  return out;
}

}  // namespace detops
