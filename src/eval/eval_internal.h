#pragma once
// Internals of the eval module, shared by its .cc files. Not for other
// modules: include eval/eval.h.

#include <filesystem>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "eval/eval.h"

namespace detops::eval_internal {

// Object area range with inclusive bounds, as COCO's areaRng.
struct AreaRange {
  double lo = 0, hi = 0;
};
inline constexpr AreaRange kAreaAll{0, 1e10};
inline constexpr AreaRange kAreaSmall{0, 32.0 * 32.0};
inline constexpr AreaRange kAreaMedium{32.0 * 32.0, 96.0 * 96.0};
inline constexpr AreaRange kAreaLarge{96.0 * 96.0, 1e10};
inline constexpr AreaRange kAreaRanges[] = {kAreaAll, kAreaSmall, kAreaMedium, kAreaLarge};
inline constexpr int kNumAreas = 4;

// Box w*h in pixels, in double (COCO's bbox area).
double BoxArea(float x1, float y1, float x2, float y2);
// COCO's bbox IoU: intersection over union, or over the detection's area when
// the GT is ignored (iscrowd). 0 when the boxes do not overlap.
double DetectionIou(const EvalDetection& d, const EvalBox& g);
// Plain IoU of two boxes given as corners (for class-agnostic pairing).
double PlainIou(const EvalDetection& d, const EvalBox& g);

inline bool ValidClass(int class_id, int num_classes) {
  return class_id >= 0 && class_id < num_classes;
}

// The GT and detections of one class in one image.
struct Cell {
  std::vector<int> truth;       // indices into EvalImage::truth, input order
  std::vector<int> detections;  // indices into EvalImage::detections: score
                                // descending, ties in input order, at most
                                // max_detections
  std::vector<double> iou;      // detections.size() x truth.size(), row-major
};
// cells[image][class] for every image and class in [0, num_classes).
using Cells = std::vector<std::vector<Cell>>;
Cells BuildCells(const std::vector<EvalImage>& images, int num_classes, int max_detections);

// COCO's evaluateImg for one cell, one IoU threshold and one area range.
struct CellMatch {
  std::vector<int> det_truth;       // per cell detection: matched position in
                                    // Cell::truth, or -1
  std::vector<char> det_ignored;    // per cell detection: neither TP nor FP
  std::vector<char> truth_ignored;  // per cell GT: crowd or outside the range
};
CellMatch MatchCell(const EvalImage& image, const Cell& cell, double iou_threshold,
                    AreaRange range);

// COCO's accumulate over all images, for every area range, IoU threshold and
// class: precision[a][t][k] holds the interpolated precision at each recall
// threshold, or is empty where COCO writes -1 (no non-ignored GT).
struct CocoPrecision {
  std::vector<double> iou_thresholds;     // .50:.05:.95, as numpy's linspace
  std::vector<double> recall_thresholds;  // linspace(0, 1, pr_curve_points)
  std::vector<std::vector<std::vector<std::vector<double>>>> precision;
};
CocoPrecision AccumulateCoco(const std::vector<EvalImage>& images, const Cells& cells,
                             int num_classes, int recall_points);
// COCO's summarize: the mean of every defined precision sample for area `a`,
// over IoU index `t` (or all when -1) and class `k` (or all when -1); -1 when
// nothing is defined.
double MeanPrecision(const CocoPrecision& coco, int a, int t, int k);

// Fills per_class precision/recall/f1, the micro P/R/F1, best F1, miss and
// false-alarm rates of `report` (per_class already sized).
void FillOperatingPoint(const std::vector<EvalImage>& images, const Cells& cells,
                        const EvalOptions& options, EvalReport& report);

// The (nc+1)^2 confusion matrix documented in eval.h.
std::vector<std::vector<int>> BuildConfusion(const std::vector<EvalImage>& images,
                                             const Cells& cells, int num_classes,
                                             const EvalOptions& options);

// 2TP / (2TP + FP + FN) with FN = truth - TP; 0 when the denominator is 0.
double F1FromCounts(long tp, long fp, long truth);

// ---- drawing, shared by the plots (defined in plots.cc) ----

inline const cv::Scalar kBlack(0, 0, 0);
inline const cv::Scalar kWhite(255, 255, 255);
inline const cv::Scalar kGrid(225, 225, 225);
inline const cv::Scalar kAxis(90, 90, 90);

// Colour k of a qualitative palette (BGR), distinct on white; cycles.
cv::Scalar ClassColor(size_t k);
// The line chart's colour of series k: the palette reordered so that the
// first 12 are far apart (line_chart.cc).
cv::Scalar SeriesColor(size_t k);
// Anti-aliased Hershey simplex text, the baseline's left end at `at`.
void Text(cv::Mat& img, const std::string& s, cv::Point at, double scale = 0.5,
          cv::Scalar color = kBlack, int thickness = 1);
cv::Size TextSize(const std::string& s, double scale = 0.5, int thickness = 1);
// Text drawn bottom-to-top; `center` is the middle of the rotated text.
void TextVertical(cv::Mat& img, const std::string& s, cv::Point center, double scale = 0.5);
// printf's "%.*f".
std::string Fixed(double v, int digits = 3);
// Keeps at most `max_chars` characters, marking a cut with "..".
std::string Shorten(const std::string& s, size_t max_chars);
// Encodes `img` as PNG and writes it atomically; IOError naming `png`.
Status WritePng(const cv::Mat& img, const std::filesystem::path& png);

}  // namespace detops::eval_internal
