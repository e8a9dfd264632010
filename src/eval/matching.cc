// Per-image matching, as pycocotools' computeIoU + evaluateImg (bbox).

#include <algorithm>
#include <cassert>
#include <numeric>

#include "eval/eval_internal.h"

namespace detops::eval_internal {

double BoxArea(float x1, float y1, float x2, float y2) {
  return (static_cast<double>(x2) - x1) * (static_cast<double>(y2) - y1);
}

namespace {

// Intersection area of two corner boxes, 0 when they do not overlap (COCO's
// bbIou skips a pair as soon as the width or height is <= 0).
double Intersection(const EvalDetection& d, const EvalBox& g) {
  double w = std::min<double>(d.x2, g.x2) - std::max<double>(d.x1, g.x1);
  if (w <= 0) return 0;
  double h = std::min<double>(d.y2, g.y2) - std::max<double>(d.y1, g.y1);
  if (h <= 0) return 0;
  return w * h;
}

}  // namespace

double PlainIou(const EvalDetection& d, const EvalBox& g) {
  double i = Intersection(d, g);
  if (i <= 0) return 0;
  return i / (BoxArea(d.x1, d.y1, d.x2, d.y2) + BoxArea(g.x1, g.y1, g.x2, g.y2) - i);
}

double DetectionIou(const EvalDetection& d, const EvalBox& g) {
  if (!g.ignore) return PlainIou(d, g);
  double i = Intersection(d, g);
  if (i <= 0) return 0;
  return i / BoxArea(d.x1, d.y1, d.x2, d.y2);
}

Cells BuildCells(const std::vector<EvalImage>& images, int num_classes, int max_detections) {
  Cells cells(images.size(), std::vector<Cell>(static_cast<size_t>(num_classes)));
  for (size_t i = 0; i < images.size(); ++i) {
    const EvalImage& image = images[i];
    std::vector<Cell>& row = cells[i];
    for (size_t g = 0; g < image.truth.size(); ++g) {
      int c = image.truth[g].class_id;
      assert(ValidClass(c, num_classes) && "EvalBox class_id out of range");
      if (ValidClass(c, num_classes)) row[c].truth.push_back(static_cast<int>(g));
    }
    for (size_t d = 0; d < image.detections.size(); ++d) {
      int c = image.detections[d].class_id;
      assert(ValidClass(c, num_classes) && "EvalDetection class_id out of range");
      if (ValidClass(c, num_classes)) row[c].detections.push_back(static_cast<int>(d));
    }
    for (Cell& cell : row) {
      // numpy's argsort(-score, kind='mergesort'): stable, highest first.
      std::stable_sort(cell.detections.begin(), cell.detections.end(), [&](int a, int b) {
        return image.detections[a].score > image.detections[b].score;
      });
      if (static_cast<int>(cell.detections.size()) > max_detections) {
        cell.detections.resize(static_cast<size_t>(std::max(0, max_detections)));
      }
      const size_t nt = cell.truth.size();
      cell.iou.assign(cell.detections.size() * nt, 0.0);
      for (size_t d = 0; d < cell.detections.size(); ++d) {
        for (size_t g = 0; g < nt; ++g) {
          cell.iou[d * nt + g] =
              DetectionIou(image.detections[cell.detections[d]], image.truth[cell.truth[g]]);
        }
      }
    }
  }
  return cells;
}

CellMatch MatchCell(const EvalImage& image, const Cell& cell, double iou_threshold,
                    AreaRange range) {
  const size_t nt = cell.truth.size();
  const size_t nd = cell.detections.size();
  CellMatch m;
  m.det_truth.assign(nd, -1);
  m.det_ignored.assign(nd, 0);
  m.truth_ignored.assign(nt, 0);
  std::vector<char> crowd(nt, 0);
  for (size_t g = 0; g < nt; ++g) {
    const EvalBox& b = image.truth[cell.truth[g]];
    double area = BoxArea(b.x1, b.y1, b.x2, b.y2);
    crowd[g] = b.ignore;
    m.truth_ignored[g] = b.ignore || area < range.lo || area > range.hi;
  }
  // COCO visits regular GT first, ignored GT last (stable), so that a
  // detection prefers any regular match to an ignored one.
  std::vector<int> order(nt);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return m.truth_ignored[a] < m.truth_ignored[b]; });

  std::vector<char> truth_taken(nt, 0);
  for (size_t d = 0; d < nd; ++d) {
    double best = std::min(iou_threshold, 1 - 1e-10);
    int match = -1;
    for (int g : order) {
      if (truth_taken[g] && !crowd[g]) continue;
      if (match > -1 && !m.truth_ignored[match] && m.truth_ignored[g]) break;
      double iou = cell.iou[d * nt + g];
      // `<`, not `<=`: a later GT with an equal IoU takes over, as in COCO.
      if (iou < best) continue;
      best = iou;
      match = g;
    }
    if (match == -1) continue;
    m.det_ignored[d] = m.truth_ignored[match];
    m.det_truth[d] = match;
    truth_taken[match] = 1;
  }
  for (size_t d = 0; d < nd; ++d) {
    if (m.det_truth[d] != -1) continue;
    const EvalDetection& e = image.detections[cell.detections[d]];
    double area = BoxArea(e.x1, e.y1, e.x2, e.y2);
    if (area < range.lo || area > range.hi) m.det_ignored[d] = 1;
  }
  return m;
}

}  // namespace detops::eval_internal
