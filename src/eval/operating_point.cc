// The operating point: precision, recall and F1 at a confidence, the best-F1
// confidence, miss and false-alarm rates. Matching is COCO's (evaluateImg at
// match_iou, area all). Because COCO matches in score order, the detections
// at or above any confidence match exactly as if the lower ones were absent,
// so one matching serves every threshold of the sweep.

#include <algorithm>

#include "eval/eval_internal.h"

namespace detops::eval_internal {

double F1FromCounts(long tp, long fp, long truth) {
  long denominator = tp + fp + truth;  // 2TP + FP + FN
  return denominator == 0 ? 0 : 2.0 * static_cast<double>(tp) / static_cast<double>(denominator);
}

namespace {

struct Outcome {
  float score;
  bool tp;  // else a false positive; ignored detections are left out
};

double Ratio(long num, long den) {
  return den == 0 ? 0 : static_cast<double>(num) / static_cast<double>(den);
}

}  // namespace

void FillOperatingPoint(const std::vector<EvalImage>& images, const Cells& cells,
                        const EvalOptions& options, EvalReport& report) {
  const size_t nc = report.per_class.size();
  const float conf = options.operating_confidence;
  std::vector<Outcome> outcomes;  // all classes, for the sweep
  std::vector<long> tp(nc, 0), fp(nc, 0), truth(nc, 0);
  long background_images = 0, false_alarm_images = 0;

  for (size_t i = 0; i < images.size(); ++i) {
    long image_truth = 0;
    bool alarm = false;
    for (size_t k = 0; k < nc; ++k) {
      const Cell& cell = cells[i][k];
      CellMatch m = MatchCell(images[i], cell, options.match_iou, kAreaAll);
      long n = std::count(m.truth_ignored.begin(), m.truth_ignored.end(), 0);
      truth[k] += n;
      image_truth += n;
      for (size_t d = 0; d < cell.detections.size(); ++d) {
        if (m.det_ignored[d]) continue;
        float score = images[i].detections[cell.detections[d]].score;
        bool is_tp = m.det_truth[d] != -1;
        outcomes.push_back({score, is_tp});
        if (score >= conf) {
          (is_tp ? tp[k] : fp[k]) += 1;
          alarm = true;
        }
      }
    }
    if (image_truth == 0) {
      ++background_images;
      if (alarm) ++false_alarm_images;
    }
  }

  long tp_all = 0, fp_all = 0, truth_all = 0;
  for (size_t k = 0; k < nc; ++k) {
    ClassMetrics& c = report.per_class[k];
    c.precision = Ratio(tp[k], tp[k] + fp[k]);
    c.recall = Ratio(tp[k], truth[k]);
    c.f1 = F1FromCounts(tp[k], fp[k], truth[k]);
    tp_all += tp[k];
    fp_all += fp[k];
    truth_all += truth[k];
  }
  report.precision = Ratio(tp_all, tp_all + fp_all);
  report.recall = Ratio(tp_all, truth_all);
  report.f1 = F1FromCounts(tp_all, fp_all, truth_all);
  report.miss_rate = Ratio(truth_all - tp_all, truth_all);
  report.false_alarm_rate = Ratio(false_alarm_images, background_images);

  // Sweep: every distinct score is a threshold (score >= it); F1 is evaluated
  // after the last detection of each score, ties to the higher threshold.
  std::stable_sort(outcomes.begin(), outcomes.end(),
                   [](const Outcome& a, const Outcome& b) { return a.score > b.score; });
  report.best_f1 = 0;
  report.best_f1_confidence = 0;
  long sweep_tp = 0, sweep_fp = 0;
  for (size_t j = 0; j < outcomes.size(); ++j) {
    (outcomes[j].tp ? sweep_tp : sweep_fp) += 1;
    if (j + 1 < outcomes.size() && outcomes[j + 1].score == outcomes[j].score) continue;
    double f1 = F1FromCounts(sweep_tp, sweep_fp, truth_all);
    if (f1 > report.best_f1) {
      report.best_f1 = f1;
      report.best_f1_confidence = outcomes[j].score;
    }
  }
}

}  // namespace detops::eval_internal
