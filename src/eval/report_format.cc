// The report as JSON and as a human table.

#include <algorithm>
#include <cstdio>
#include <string>

#include "eval/eval.h"

namespace detops {

namespace {

// "0.812", or "-" for COCO's -1 (undefined).
std::string Metric(double v) {
  if (v < 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

std::string Format(const char* format, auto... args) {
  char buf[256];
  std::snprintf(buf, sizeof buf, format, args...);
  return buf;
}

}  // namespace

Json EvalReportToJson(const EvalReport& r) {
  Json per_class = Json::array();
  for (const ClassMetrics& c : r.per_class) {
    per_class.push_back({{"name", c.name},
                         {"ap", c.ap},
                         {"ap50", c.ap50},
                         {"ap75", c.ap75},
                         {"truth", c.truth},
                         {"precision", c.precision},
                         {"recall", c.recall},
                         {"f1", c.f1}});
  }
  Json curves = Json::array();
  for (const PrCurve& c : r.pr_curves) {
    curves.push_back({{"recall", c.recall}, {"precision", c.precision}});
  }
  return Json{{"map", r.map},
              {"map50", r.map50},
              {"map75", r.map75},
              {"map_small", r.map_small},
              {"map_medium", r.map_medium},
              {"map_large", r.map_large},
              {"precision", r.precision},
              {"recall", r.recall},
              {"f1", r.f1},
              {"best_f1", r.best_f1},
              {"best_f1_confidence", r.best_f1_confidence},
              {"miss_rate", r.miss_rate},
              {"false_alarm_rate", r.false_alarm_rate},
              {"images", r.images},
              {"images_without_damage", r.images_without_damage},
              {"truth_boxes", r.truth_boxes},
              {"detections", r.detections},
              {"class_names", r.class_names},
              {"per_class", per_class},
              {"confusion", r.confusion},
              {"pr_curves", curves}};
}

std::string EvalReportToTable(const EvalReport& r) {
  std::string out;
  out += Format("images %d (%d without damage)  truth boxes %d  detections %d\n", r.images,
                r.images_without_damage, r.truth_boxes, r.detections);
  out += "mAP50-95 " + Metric(r.map) + "  mAP50 " + Metric(r.map50) + "  mAP75 " + Metric(r.map75) +
         "  small " + Metric(r.map_small) + "  medium " + Metric(r.map_medium) + "  large " +
         Metric(r.map_large) + "\n";
  out += Format(
      "precision %.3f  recall %.3f  F1 %.3f  best F1 %.3f at confidence %.3f\n"
      "miss rate %.3f  false-alarm rate %.3f\n",
      r.precision, r.recall, r.f1, r.best_f1, r.best_f1_confidence, r.miss_rate,
      r.false_alarm_rate);
  size_t width = 5;  // "class"
  for (const ClassMetrics& c : r.per_class) width = std::max(width, c.name.size());
  const int w = static_cast<int>(width);
  out += Format("%-*s %6s %6s %6s %6s %6s %6s %6s\n", w, "class", "truth", "AP", "AP50", "AP75",
                "P", "R", "F1");
  for (const ClassMetrics& c : r.per_class) {
    out += Format("%-*s %6d %6s %6s %6s %6.3f %6.3f %6.3f\n", w, c.name.c_str(), c.truth,
                  Metric(c.ap).c_str(), Metric(c.ap50).c_str(), Metric(c.ap75).c_str(), c.precision,
                  c.recall, c.f1);
  }
  return out;
}

}  // namespace detops
