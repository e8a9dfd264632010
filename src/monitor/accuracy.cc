// Accuracy from feedback: the logged detections of labelled predictions
// scored against the boxes people sent back, with the eval module, so the
// figures mean what `detops eval` means by them.

#include <algorithm>
#include <random>

#include "eval/eval.h"
#include "monitor/evaluator.h"
#include "monitor/stats.h"

namespace detops {
namespace {

constexpr int kBootstrapResamples = 200;

std::vector<EvalImage> ToEvalImages(const std::vector<LabelledPrediction>& labelled,
                                    const std::vector<std::string>& classes) {
  auto id_of = [&](const std::string& name) {
    auto it = std::find(classes.begin(), classes.end(), name);
    return it == classes.end() ? -1 : static_cast<int>(it - classes.begin());
  };
  std::vector<EvalImage> images;
  images.reserve(labelled.size());
  for (const LabelledPrediction& l : labelled) {
    EvalImage img;
    for (const FeedbackBox& b : l.truth) {
      const int id = id_of(b.class_name);
      if (id < 0) continue;
      img.truth.push_back({id, static_cast<float>(b.x1), static_cast<float>(b.y1),
                           static_cast<float>(b.x2), static_cast<float>(b.y2), false});
    }
    for (const LoggedDetection& d : l.prediction.record.detections) {
      int id = id_of(d.class_name);
      if (id < 0 && d.class_id >= 0 && d.class_id < static_cast<int>(classes.size()))
        id = d.class_id;
      if (id < 0) continue;
      img.detections.push_back({id, static_cast<float>(d.score), static_cast<float>(d.x1),
                                static_cast<float>(d.y1), static_cast<float>(d.x2),
                                static_cast<float>(d.y2)});
    }
    images.push_back(std::move(img));
  }
  return images;
}

}  // namespace

FeedbackAccuracy AccuracyFromFeedback(const std::vector<LabelledPrediction>& labelled,
                                      const std::vector<std::string>& classes,
                                      double operating_confidence) {
  FeedbackAccuracy acc;
  acc.labels = static_cast<int64_t>(labelled.size());
  if (labelled.empty() || classes.empty()) return acc;
  const std::vector<EvalImage> images = ToEvalImages(labelled, classes);
  EvalOptions options;
  options.operating_confidence = static_cast<float>(operating_confidence);
  const EvalReport r = Evaluate(images, classes, options);
  acc.truth_boxes = r.truth_boxes;
  acc.precision = r.precision;
  acc.recall = r.recall;
  acc.f1 = r.f1;
  acc.map50 = r.map50;
  acc.map = r.map;
  // Wilson intervals need the counts behind the micro-averaged figures.
  const int64_t tp = std::llround(r.recall * r.truth_boxes);
  acc.recall_ci = WilsonInterval(tp, r.truth_boxes);
  const int64_t predicted = r.precision > 0 ? std::llround(tp / r.precision) : 0;
  acc.precision_ci = WilsonInterval(tp, predicted);
  // mAP50 is not a proportion: a percentile bootstrap over images.
  std::mt19937_64 rng(12345);
  std::uniform_int_distribution<size_t> pick(0, images.size() - 1);
  std::vector<double> maps;
  std::vector<EvalImage> sample(images.size());
  for (int b = 0; b < kBootstrapResamples && images.size() > 1; ++b) {
    for (EvalImage& s : sample) s = images[pick(rng)];
    const double m = Evaluate(sample, classes, options).map50;
    if (m >= 0) maps.push_back(m);
  }
  acc.map50_ci = maps.empty() ? Interval{acc.map50, acc.map50}
                              : Interval{Quantile(maps, 0.025), Quantile(maps, 0.975)};
  return acc;
}

Interval Map50DifferenceInterval(const std::vector<LabelledPrediction>& a,
                                 const std::vector<std::string>& a_classes,
                                 const std::vector<LabelledPrediction>& b,
                                 const std::vector<std::string>& b_classes, bool paired,
                                 double tail) {
  const std::vector<EvalImage> ia = ToEvalImages(a, a_classes), ib = ToEvalImages(b, b_classes);
  if (ia.empty() || ib.empty()) return {};
  std::mt19937_64 rng(ia.size() * 1'000'003 + ib.size());
  auto draw = [&rng](size_t n) {
    std::uniform_int_distribution<size_t> pick(0, n - 1);
    std::vector<size_t> out(n);
    for (size_t& k : out) k = pick(rng);
    return out;
  };
  EvalOptions options;
  auto map50 = [&options](const std::vector<EvalImage>& from, const std::vector<size_t>& picks,
                          const std::vector<std::string>& classes) {
    std::vector<EvalImage> sample;
    sample.reserve(picks.size());
    for (size_t k : picks) sample.push_back(from[k]);
    return std::max(0.0, Evaluate(sample, classes, options).map50);
  };
  std::vector<double> differences;
  differences.reserve(kBootstrapResamples);
  for (int i = 0; i < kBootstrapResamples; ++i) {
    const std::vector<size_t> pa = draw(ia.size());
    const std::vector<size_t> pb = paired && ib.size() == ia.size() ? pa : draw(ib.size());
    differences.push_back(map50(ia, pa, a_classes) - map50(ib, pb, b_classes));
  }
  return {Quantile(differences, tail), Quantile(differences, 1 - tail)};
}

}  // namespace detops
