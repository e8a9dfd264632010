// Evaluate(): puts the COCO AP, the operating point and the confusion matrix
// together into one report.

#include <algorithm>

#include "eval/eval.h"
#include "eval/eval_internal.h"

namespace detops {

using namespace eval_internal;  // NOLINT: this file is the module's front

EvalReport Evaluate(const std::vector<EvalImage>& images,
                    const std::vector<std::string>& class_names, const EvalOptions& options) {
  const int nc = static_cast<int>(class_names.size());
  EvalReport report;
  report.class_names = class_names;
  report.images = static_cast<int>(images.size());
  for (const EvalImage& image : images) {
    int truth = static_cast<int>(
        std::count_if(image.truth.begin(), image.truth.end(),
                      [&](const EvalBox& b) { return !b.ignore && ValidClass(b.class_id, nc); }));
    report.truth_boxes += truth;
    if (truth == 0) ++report.images_without_damage;
    report.detections += static_cast<int>(image.detections.size());
  }

  const Cells cells = BuildCells(images, nc, options.max_detections);
  const CocoPrecision coco = AccumulateCoco(images, cells, nc, options.pr_curve_points);
  constexpr int kAll = 0, kSmall = 1, kMedium = 2, kLarge = 3;
  constexpr int kIou50 = 0, kIou75 = 5;  // indices into COCO's .50:.05:.95
  report.map = MeanPrecision(coco, kAll, -1, -1);
  report.map50 = MeanPrecision(coco, kAll, kIou50, -1);
  report.map75 = MeanPrecision(coco, kAll, kIou75, -1);
  report.map_small = MeanPrecision(coco, kSmall, -1, -1);
  report.map_medium = MeanPrecision(coco, kMedium, -1, -1);
  report.map_large = MeanPrecision(coco, kLarge, -1, -1);

  report.per_class.resize(class_names.size());
  report.pr_curves.resize(class_names.size());
  for (int k = 0; k < nc; ++k) {
    ClassMetrics& c = report.per_class[k];
    c.name = class_names[k];
    c.ap = MeanPrecision(coco, kAll, -1, k);
    c.ap50 = MeanPrecision(coco, kAll, kIou50, k);
    c.ap75 = MeanPrecision(coco, kAll, kIou75, k);
    const std::vector<double>& q = coco.precision[kAll][kIou50][k];
    if (!q.empty()) report.pr_curves[k] = {coco.recall_thresholds, q};
  }
  for (const EvalImage& image : images) {
    for (const EvalBox& b : image.truth) {
      if (!b.ignore && ValidClass(b.class_id, nc)) ++report.per_class[b.class_id].truth;
    }
  }
  FillOperatingPoint(images, cells, options, report);
  report.confusion = BuildConfusion(images, cells, nc, options);
  return report;
}

}  // namespace detops
