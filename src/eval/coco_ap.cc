// COCO's accumulate and summarize (pycocotools cocoeval.py), for bbox AP.
//
// For each class, area range and IoU threshold, the kept detections of all
// images are concatenated in image order and stably sorted by score (numpy's
// mergesort); ignored detections stay in the sequence but count as neither TP
// nor FP. Precision is tp / (tp + fp + eps) with numpy's spacing(1), made
// non-increasing from the right, and sampled at each recall threshold r at
// the first position whose recall >= r (searchsorted left); thresholds beyond
// the final recall sample 0.

#include <algorithm>
#include <cassert>
#include <cfloat>

#include "eval/eval_internal.h"

namespace detops::eval_internal {

namespace {

// numpy.linspace(start, stop, num): start + i * step, the last value exact.
std::vector<double> Linspace(double start, double stop, int num) {
  std::vector<double> v(static_cast<size_t>(num));
  const double step = (stop - start) / (num - 1);
  for (int i = 0; i < num; ++i) v[i] = i * step + start;
  v.back() = stop;
  return v;
}

struct Sample {
  float score;
  bool tp;
  bool fp;
};

// Interpolated precision at `recall_thresholds`, or empty when npig == 0.
std::vector<double> InterpolatedPrecision(std::vector<Sample> samples, long npig,
                                          const std::vector<double>& recall_thresholds) {
  if (npig == 0) return {};
  std::stable_sort(samples.begin(), samples.end(),
                   [](const Sample& a, const Sample& b) { return a.score > b.score; });
  const size_t nd = samples.size();
  std::vector<double> rc(nd), pr(nd);
  double tp = 0, fp = 0;
  for (size_t i = 0; i < nd; ++i) {
    tp += samples[i].tp;
    fp += samples[i].fp;
    rc[i] = tp / static_cast<double>(npig);
    pr[i] = tp / (fp + tp + DBL_EPSILON);
  }
  for (size_t i = nd; i-- > 1;) pr[i - 1] = std::max(pr[i - 1], pr[i]);
  std::vector<double> q(recall_thresholds.size(), 0.0);
  for (size_t r = 0; r < recall_thresholds.size(); ++r) {
    size_t at = std::lower_bound(rc.begin(), rc.end(), recall_thresholds[r]) - rc.begin();
    if (at >= nd) break;
    q[r] = pr[at];
  }
  return q;
}

}  // namespace

CocoPrecision AccumulateCoco(const std::vector<EvalImage>& images, const Cells& cells,
                             int num_classes, int recall_points) {
  assert(recall_points >= 2);
  CocoPrecision coco;
  coco.iou_thresholds = Linspace(0.5, 0.95, 10);
  coco.recall_thresholds = Linspace(0.0, 1.0, std::max(2, recall_points));
  const size_t nt = coco.iou_thresholds.size();
  coco.precision.assign(
      kNumAreas, std::vector<std::vector<std::vector<double>>>(
                     nt, std::vector<std::vector<double>>(static_cast<size_t>(num_classes))));
  std::vector<std::vector<Sample>> samples(nt);
  for (int k = 0; k < num_classes; ++k) {
    for (int a = 0; a < kNumAreas; ++a) {
      for (auto& s : samples) s.clear();
      long npig = 0;
      for (size_t i = 0; i < images.size(); ++i) {
        const Cell& cell = cells[i][k];
        if (cell.truth.empty() && cell.detections.empty()) continue;
        for (size_t t = 0; t < nt; ++t) {
          CellMatch m = MatchCell(images[i], cell, coco.iou_thresholds[t], kAreaRanges[a]);
          if (t == 0) npig += std::count(m.truth_ignored.begin(), m.truth_ignored.end(), 0);
          for (size_t d = 0; d < cell.detections.size(); ++d) {
            bool matched = m.det_truth[d] != -1;
            bool ignored = m.det_ignored[d];
            samples[t].push_back({images[i].detections[cell.detections[d]].score,
                                  matched && !ignored, !matched && !ignored});
          }
        }
      }
      for (size_t t = 0; t < nt; ++t) {
        coco.precision[a][t][k] =
            InterpolatedPrecision(std::move(samples[t]), npig, coco.recall_thresholds);
      }
    }
  }
  return coco;
}

double MeanPrecision(const CocoPrecision& coco, int a, int t, int k) {
  double sum = 0;
  long n = 0;
  const auto& by_t = coco.precision[a];
  for (size_t ti = 0; ti < by_t.size(); ++ti) {
    if (t != -1 && static_cast<int>(ti) != t) continue;
    for (size_t ki = 0; ki < by_t[ti].size(); ++ki) {
      if (k != -1 && static_cast<int>(ki) != k) continue;
      for (double p : by_t[ti][ki]) sum += p;
      n += static_cast<long>(by_t[ti][ki].size());
    }
  }
  return n == 0 ? -1 : sum / static_cast<double>(n);
}

}  // namespace detops::eval_internal
