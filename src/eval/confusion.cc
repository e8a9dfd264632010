// The class-confusion matrix, in Ultralytics' orientation
// (matrix[predicted][true], background last). Unlike AP, pairing ignores the
// class so that a right box with the wrong class shows up off the diagonal.
// Pairs are made one-to-one, greedily from the highest IoU; equal IoUs go to
// the earlier GT, then the earlier (higher-scoring) detection.

#include <algorithm>

#include "eval/eval_internal.h"

namespace detops::eval_internal {

namespace {

struct Pair {
  double iou;
  int truth;      // index into EvalImage::truth
  int detection;  // index into EvalImage::detections
};

}  // namespace

std::vector<std::vector<int>> BuildConfusion(const std::vector<EvalImage>& images,
                                             const Cells& cells, int num_classes,
                                             const EvalOptions& options) {
  const int background = num_classes;
  std::vector<std::vector<int>> matrix(num_classes + 1, std::vector<int>(num_classes + 1, 0));
  for (size_t i = 0; i < images.size(); ++i) {
    const EvalImage& image = images[i];
    // The kept detections at the operating point, class by class in score order.
    std::vector<int> dets;
    for (const Cell& cell : cells[i]) {
      for (int d : cell.detections) {
        if (image.detections[d].score >= options.operating_confidence) dets.push_back(d);
      }
    }
    std::vector<int> truth;
    for (size_t g = 0; g < image.truth.size(); ++g) {
      const EvalBox& b = image.truth[g];
      if (!b.ignore && ValidClass(b.class_id, num_classes)) truth.push_back(static_cast<int>(g));
    }

    std::vector<Pair> pairs;
    for (int g : truth) {
      for (int d : dets) {
        double iou = PlainIou(image.detections[d], image.truth[g]);
        if (iou >= options.match_iou) pairs.push_back({iou, g, d});
      }
    }
    std::stable_sort(pairs.begin(), pairs.end(),
                     [](const Pair& a, const Pair& b) { return a.iou > b.iou; });
    std::vector<char> truth_used(image.truth.size(), 0);
    std::vector<char> det_used(image.detections.size(), 0);
    for (const Pair& p : pairs) {
      if (truth_used[p.truth] || det_used[p.detection]) continue;
      truth_used[p.truth] = det_used[p.detection] = 1;
      ++matrix[image.detections[p.detection].class_id][image.truth[p.truth].class_id];
    }
    for (int g : truth) {
      if (!truth_used[g]) ++matrix[background][image.truth[g].class_id];
    }
    for (int d : dets) {
      if (det_used[d]) continue;
      const EvalDetection& e = image.detections[d];
      bool on_ignored = std::any_of(image.truth.begin(), image.truth.end(), [&](const EvalBox& b) {
        return b.ignore && b.class_id == e.class_id && DetectionIou(e, b) >= options.match_iou;
      });
      if (!on_ignored) ++matrix[e.class_id][background];
    }
  }
  return matrix;
}

}  // namespace detops::eval_internal
