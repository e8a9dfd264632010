#pragma once
// Public header of the eval module: detection metrics computed exactly as
// pycocotools' COCOeval (bbox) does, the operating-point KPIs an inspection
// business tracks (precision/recall/F1 at a confidence, best-F1 confidence,
// miss rate, image-level false-alarm rate), a confusion matrix, PR curves and
// their plots, and a latency summary shared with serving.
//
// Everything here is a pure function of its inputs; thread-compatible.
//
// COCO conventions followed (see coco_ap.cc for the details):
//  - IoU over continuous pixel coordinates, no +1; an ignored ("crowd") GT is
//    compared by intersection over the detection's area, as COCO's iscrowd,
//    and may absorb any number of detections.
//  - Per image and class, detections are stably sorted by score (ties keep
//    input order, as numpy's mergesort) and the first max_detections are
//    kept: COCO's maxDets applies per image *per category*. Every metric in
//    the report (AP, operating point, confusion matrix) sees only the kept
//    detections.
//  - Greedy matching in score order to the best-IoU unmatched GT at IoU >= t;
//    regular GT first, ignored GT only when no regular GT matches (the
//    detection is then ignored: neither TP nor FP).
//  - Area ranges all / small [0, 32²] / medium [32², 96²] / large [96², 1e10],
//    bounds inclusive; area = box w*h in pixels for GT and detections. GT
//    outside the range is ignored, and so are unmatched detections outside it.
//  - 101 recall thresholds, precision made non-increasing from the right and
//    sampled with searchsorted(left); AP is the mean of the samples; -1 for a
//    class without (non-ignored) GT, left out of every mean.

#include <filesystem>
#include <string>
#include <vector>

#include "core/core.h"

namespace detops {

// A ground-truth box in pixels. Class ids lie in [0, class_names.size()).
struct EvalBox {
  int class_id = 0;
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  // Crowd/difficult GT (COCO iscrowd): detections on it are neither TP nor FP;
  // it never counts as a miss.
  bool ignore = false;
};

struct EvalDetection {
  int class_id = 0;
  float score = 0;
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // pixels
};

// One image: its ground truth and the model's detections on it. An image with
// no (non-ignored) truth is an image "without damage".
struct EvalImage {
  std::vector<EvalBox> truth;
  std::vector<EvalDetection> detections;
};

struct EvalOptions {
  // Per image *and class*, highest scores kept (COCO maxDets = 100).
  int max_detections = 100;
  // Detections with score >= this count for P/R/F1, miss and false-alarm
  // rates and the confusion matrix.
  float operating_confidence = 0.25f;
  // A detection matches a GT at IoU >= this for P/R/F1, misses, false alarms
  // and the confusion matrix (AP always uses COCO's .50:.05:.95).
  float match_iou = 0.5f;
  // Recall thresholds, evenly spaced over [0, 1], used for AP and PR curves
  // (COCO: 101). At least 2.
  int pr_curve_points = 101;
};

// Per class. AP values are -1 when the class has no non-ignored GT.
struct ClassMetrics {
  std::string name;
  double ap = -1, ap50 = -1, ap75 = -1;  // area all, maxDets = max_detections
  int truth = 0;                         // non-ignored GT boxes
  // At operating_confidence and match_iou; 0 where undefined (no detections,
  // no GT).
  double precision = 0, recall = 0, f1 = 0;
};

// Interpolated precision (COCO's `precision[0, :, k, 0, -1]`) at each recall
// threshold, IoU .50. Both empty for a class without non-ignored GT.
struct PrCurve {
  std::vector<double> recall;
  std::vector<double> precision;
};

struct EvalReport {
  // COCO summary stats 1-6; -1 when undefined (no class with GT in range).
  double map = -1, map50 = -1, map75 = -1, map_small = -1, map_medium = -1, map_large = -1;
  std::vector<ClassMetrics> per_class;
  // At operating_confidence and match_iou, micro-averaged over classes
  // (counts summed); 0 where undefined.
  double precision = 0, recall = 0, f1 = 0;
  // Exact sweep over every detection score as the confidence threshold
  // (micro F1, score >= threshold): the highest F1, and the highest threshold
  // that reaches it. Setting operating_confidence to best_f1_confidence gives
  // f1 == best_f1. Both 0 when no threshold gives a true positive.
  double best_f1 = 0, best_f1_confidence = 0;
  // Non-ignored GT boxes not matched at the operating point / all non-ignored
  // GT boxes (= 1 - recall); 0 when there is no GT.
  double miss_rate = 0;
  // Images without damage (no non-ignored GT) with >= 1 non-ignored
  // detection at the operating point / images without damage; 0 if none.
  double false_alarm_rate = 0;
  int images = 0;
  int images_without_damage = 0;
  int truth_boxes = 0;  // non-ignored GT boxes
  int detections = 0;   // detections given, before max_detections
  // (nc+1) x (nc+1) counts, indexed confusion[predicted][true], as Ultralytics:
  //  - rows 0..nc-1: predicted class; row nc: "background" = a GT no
  //    detection matched (a miss, counted in its true class's column);
  //  - cols 0..nc-1: true class; col nc: "background" = a detection that
  //    matched no GT (a false positive, counted in its predicted class's row).
  // Cell [nc][nc] is always 0. Built at the operating point: detections with
  // score >= operating_confidence and non-ignored GT are paired one-to-one
  // regardless of class, greedily by IoU (highest first) at IoU >= match_iou,
  // so a right box with the wrong class lands off the diagonal. Unmatched
  // detections on an ignored GT of their class are not counted.
  std::vector<std::vector<int>> confusion;
  std::vector<PrCurve> pr_curves;  // per class
  std::vector<std::string> class_names;
};

// Evaluates detections against ground truth. Class ids outside
// [0, class_names.size()) are a programmer error: asserted in debug builds,
// skipped otherwise.
EvalReport Evaluate(const std::vector<EvalImage>& images,
                    const std::vector<std::string>& class_names, const EvalOptions& options = {});

// All fields of the report; undefined metrics stay -1, as in the report.
Json EvalReportToJson(const EvalReport& report);
// A human table: the overall lines, then one row per class ("-" for -1).
std::string EvalReportToTable(const EvalReport& report);

// PR curves at IoU .50, one coloured line per class with GT plus their mean,
// legend with AP50; PNG, written atomically. IOError on failure.
Status WritePrCurvePlot(const EvalReport& report, const std::filesystem::path& png);
// The confusion matrix as a heat map normalized per true class (column),
// with the counts written in the cells; PNG, written atomically.
Status WriteConfusionMatrixPlot(const EvalReport& report, const std::filesystem::path& png);

// Latency of a run of per-image timings. Percentiles interpolate linearly
// between order statistics (numpy's default); images_per_s = 1000 / mean_ms
// (sequential processing). All zeros for no samples.
struct LatencySummary {
  double p50_ms = 0, p95_ms = 0, p99_ms = 0, mean_ms = 0, images_per_s = 0;
  int samples = 0;
};
LatencySummary SummarizeLatency(std::vector<double> per_image_ms);

// ---- line charts (the monitor's time series) ----

// Series of (x, y) points drawn as lines, with horizontal reference rules
// (thresholds, SLOs). A NaN x or y is a gap: the line breaks there.
struct LineChart {
  std::string title, x_label, y_label;
  struct Series {
    std::string name;          // the legend's entry
    std::vector<double> x, y;  // same size
  };
  std::vector<Series> series;  // up to 12 get distinct colours
  struct Rule {
    std::string label;  // drawn on the rule ("retrain 0.25", "SLO 250 ms")
    double y = 0;       // not finite: left out
  };
  std::vector<Rule> rules;
  // x is Unix time in milliseconds: ticks fall on round UTC times, labelled
  // HH:MM:SS, and the x label gets the UTC date(s).
  bool x_is_time_ms = false;
  // When y_min < y_max the y axis spans at least [y_min, y_max], with no
  // margin beyond them (a share keeps 0 and 1 at the axis' ends); points or
  // rules outside widen it. Equal (the default): the data alone decide.
  double y_min = 0, y_max = 0;
};
// Draws `chart` (about 900 x 500 pixels): ticks at 1-2-5 steps, the y range
// covering every point and rule with a margin, a legend and the title; a
// chart without points says "no data". PNG, written atomically; IOError
// naming `png` on failure.
Status WriteLineChart(const LineChart& chart, const std::filesystem::path& png);

}  // namespace detops
