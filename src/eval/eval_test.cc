#include "eval/eval.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <opencv2/imgcodecs.hpp>
#include <random>

#include "testing/testutil.h"

namespace detops {
namespace {

// ---------------------------------------------------------------------------
// Helpers: boxes in pixels as (x1, y1, x2, y2).

EvalBox Gt(int c, float x1, float y1, float x2, float y2) { return {c, x1, y1, x2, y2, false}; }
EvalBox Crowd(int c, float x1, float y1, float x2, float y2) { return {c, x1, y1, x2, y2, true}; }
EvalDetection Det(int c, float score, float x1, float y1, float x2, float y2) {
  return {c, score, x1, y1, x2, y2};
}

constexpr double kUnchecked = std::numeric_limits<double>::quiet_NaN();
constexpr double kEps = 1e-9;

// What a golden case expects; NaN fields are not checked. -1 is COCO's
// "undefined".
struct Expected {
  double map = kUnchecked, map50 = kUnchecked, map75 = kUnchecked;
  double map_small = kUnchecked, map_medium = kUnchecked, map_large = kUnchecked;
  double precision = kUnchecked, recall = kUnchecked, f1 = kUnchecked;
  double best_f1 = kUnchecked, best_f1_confidence = kUnchecked;
  double miss_rate = kUnchecked, false_alarm_rate = kUnchecked;
};

struct GoldenCase {
  std::string name;
  std::vector<std::string> classes;
  std::vector<EvalImage> images;
  Expected expect;
  EvalOptions options = {};
};

// G: a 100x100 box, area 10000 (COCO "large").
#define G 0, 0, 100, 100

// Golden cases, with the hand computation in the comments. AP sums run over
// COCO's 101 recall thresholds r = 0, .01, ..., 1; "1" for a precision means
// 1 / (1 + eps) in COCO (tp / (tp + fp + spacing(1))), within 1e-9 of 1.
const GoldenCase kGolden[] = {
    {.name = "perfect",
     .classes = {"scratch", "dent"},
     .images = {{{Gt(0, G), Gt(1, 200, 200, 260, 240)},
                 {Det(0, .9f, G), Det(1, .8f, 200, 200, 260, 240)}},
                {{Gt(0, 10, 10, 50, 50)}, {Det(0, .7f, 10, 10, 50, 50)}}},
     // No GT is small (< 32²); dent has no large GT (-1, left out).
     .expect = {.map = 1,
                .map50 = 1,
                .map75 = 1,
                .map_small = -1,
                .map_medium = 1,
                .map_large = 1,
                .precision = 1,
                .recall = 1,
                .f1 = 1,
                .best_f1 = 1,
                .best_f1_confidence = .7f,
                .miss_rate = 0,
                .false_alarm_rate = 0}},

    {.name = "all_missed",
     .classes = {"dent"},
     .images = {{{Gt(0, G)}, {Det(0, .9f, 200, 200, 300, 300)}}, {{Gt(0, 0, 0, 50, 50)}, {}}},
     // Medium: the large false positive is outside the range, ignored; AP 0.
     .expect = {.map = 0,
                .map50 = 0,
                .map75 = 0,
                .map_small = -1,
                .map_medium = 0,
                .map_large = 0,
                .precision = 0,
                .recall = 0,
                .f1 = 0,
                .best_f1 = 0,
                .best_f1_confidence = 0,
                .miss_rate = 1,
                .false_alarm_rate = 0}},

    {.name = "nothing_at_all",
     .classes = {"dent", "scratch"},
     .images = {{}, {}},
     .expect = {.map = -1,
                .map50 = -1,
                .map75 = -1,
                .map_small = -1,
                .map_medium = -1,
                .map_large = -1,
                .precision = 0,
                .recall = 0,
                .f1 = 0,
                .best_f1 = 0,
                .best_f1_confidence = 0,
                .miss_rate = 0,
                .false_alarm_rate = 0}},

    // A (score .9, IoU .62) is matched first and takes the GT at IoU .50-.60,
    // so the better B (score .8, IoU .97) is a duplicate: FP. From IoU .65 on
    // A fails, B is the TP.
    //   t = .50,.55,.60: TP, FP -> AP 1
    //   t = .65 ... .95: FP, TP -> rc [0, 1], pr [0, .5] -> envelope .5 -> AP .5
    //   mAP = (3 * 1 + 7 * .5) / 10 = .65.
    // Large: A (area 6200, medium) unmatched is outside the range: ignored,
    // so B alone is a TP at every IoU -> 1. Medium: the GT is large -> -1.
    {.name = "duplicate_detection",
     .classes = {"dent"},
     .images = {{{Gt(0, G)}, {Det(0, .9f, 0, 0, 62, 100), Det(0, .8f, 0, 0, 100, 97)}}},
     .expect = {.map = .65,
                .map50 = 1,
                .map75 = .5,
                .map_small = -1,
                .map_medium = -1,
                .map_large = 1,
                .precision = .5,
                .recall = 1,
                .f1 = 2.0 / 3,
                .best_f1 = 1,
                .best_f1_confidence = .9f,
                .miss_rate = 0}},

    // Equal scores keep image order (numpy mergesort): FP (image 1) before TP
    // (image 2). npig 2: rc [0, .5], pr [0, .5] -> envelope .5 at r <= .5
    // (51 thresholds), 0 above: AP = 51 * .5 / 101.
    {.name = "score_tie_fp_first",
     .classes = {"dent"},
     .images = {{{Gt(0, G)}, {Det(0, .5f, 200, 200, 300, 300)}}, {{Gt(0, G)}, {Det(0, .5f, G)}}},
     .expect = {.map = 25.5 / 101,
                .map50 = 25.5 / 101,
                .map75 = 25.5 / 101,
                .map_large = 25.5 / 101,
                .precision = .5,
                .recall = .5,
                .f1 = .5,
                .best_f1 = .5,
                .best_f1_confidence = .5f,
                .miss_rate = .5}},
    // The same images swapped: TP first. rc [.5, .5], pr [1, .5] -> 1 at
    // r <= .5: AP = 51 / 101.
    {.name = "score_tie_tp_first",
     .classes = {"dent"},
     .images = {{{Gt(0, G)}, {Det(0, .5f, G)}}, {{Gt(0, G)}, {Det(0, .5f, 200, 200, 300, 300)}}},
     .expect = {.map = 51.0 / 101, .map50 = 51.0 / 101, .map75 = 51.0 / 101}},

    // Images 2-4 have no damage. Image 2 fires at .8 (a false alarm), image 3
    // only at .1 (below the operating confidence .25), image 4 not at all:
    // false-alarm rate 1/3. AP: TP, FP, FP -> 1. Large: the medium-sized
    // false positives are outside the range, ignored.
    {.name = "false_alarms",
     .classes = {"pothole"},
     .images = {{{Gt(0, G)}, {Det(0, .9f, G)}},
                {{}, {Det(0, .8f, 10, 10, 60, 60)}},
                {{}, {Det(0, .1f, 10, 10, 60, 60)}},
                {}},
     .expect = {.map = 1,
                .map50 = 1,
                .map75 = 1,
                .map_small = -1,
                .map_medium = -1,
                .map_large = 1,
                .precision = .5,
                .recall = 1,
                .f1 = 2.0 / 3,
                .best_f1 = 1,
                .best_f1_confidence = .9f,
                .miss_rate = 0,
                .false_alarm_rate = 1.0 / 3}},

    // IoU exactly .6 (6000 / 10000). COCO's thresholds are
    // linspace(.5, .95, 10), whose third value is the same double as .6, and
    // a match needs IoU >= t: TP at .50, .55, .60, FP at .65 ... .95.
    // mAP = 3 / 10; AP50 1; AP75 0. Large: unmatched, the detection (area
    // 6000) is outside the range and ignored -> AP 0 there too.
    {.name = "iou_crosses_thresholds",
     .classes = {"dent"},
     .images = {{{Gt(0, G)}, {Det(0, .9f, 0, 0, 100, 60)}}},
     .expect = {.map = .3,
                .map50 = 1,
                .map75 = 0,
                .map_small = -1,
                .map_medium = -1,
                .map_large = .3,
                .precision = 1,
                .recall = 1,
                .f1 = 1,
                .miss_rate = 0}},

    // A crowd region (ignored GT) absorbs any number of detections, compared
    // by intersection over the detection's area; they are neither TP nor FP.
    // Image 1 by score: crowd (.95), crowd (.93), TP (.9), FP (.6) -> AP 1
    // (it would be 1/3 if the crowd detections were false positives).
    // Image 2 holds only a crowd region: no damage, and its detection is not
    // a false alarm.
    {.name = "crowd_regions",
     .classes = {"dent"},
     .images = {{{Gt(0, G), Crowd(0, 200, 0, 400, 200)},
                 {Det(0, .95f, 220, 20, 300, 100), Det(0, .93f, 250, 50, 350, 150), Det(0, .9f, G),
                  Det(0, .6f, 500, 500, 600, 600)}},
                {{Crowd(0, 0, 0, 300, 300)}, {Det(0, .8f, 10, 10, 110, 110)}}},
     .expect = {.map = 1,
                .map50 = 1,
                .map75 = 1,
                .map_small = -1,
                .map_medium = -1,
                .map_large = 1,
                .precision = .5,
                .recall = 1,
                .f1 = 2.0 / 3,
                .best_f1 = 1,
                .best_f1_confidence = .9f,
                .miss_rate = 0,
                .false_alarm_rate = 0}},

    // One small (20x20), one medium (50x50) and one large (100x100) GT.
    // All: TP (.9), FP (.8), TP (.7), npig 3: rc [1/3, 1/3, 2/3],
    //   pr [1, .5, 2/3] -> envelope [1, 2/3, 2/3]; r <= 1/3: 34 thresholds
    //   at 1; 1/3 < r <= 2/3: 33 at 2/3 -> AP = (34 + 22) / 101 = 56/101.
    // Small: the small TP; the others match ignored GT or are medium-sized
    //   and unmatched -> ignored -> 1.
    // Medium: the FP (medium-sized) only; the TPs match ignored GT -> 0.
    // Large: the large TP; the FP is outside the range -> 1.
    // Best F1: .9 -> 2/4, .8 -> 2/5, .7 -> 4/6.
    {.name = "area_ranges",
     .classes = {"dent"},
     .images = {{{Gt(0, 0, 0, 20, 20)}, {Det(0, .9f, 0, 0, 20, 20)}},
                {{Gt(0, 0, 0, 50, 50)}, {Det(0, .8f, 200, 200, 250, 250)}},
                {{Gt(0, G)}, {Det(0, .7f, G)}}},
     .expect = {.map = 56.0 / 101,
                .map50 = 56.0 / 101,
                .map75 = 56.0 / 101,
                .map_small = 1,
                .map_medium = 0,
                .map_large = 1,
                .precision = 2.0 / 3,
                .recall = 2.0 / 3,
                .f1 = 2.0 / 3,
                .best_f1 = 2.0 / 3,
                .best_f1_confidence = .7f,
                .miss_rate = 1.0 / 3}},

    // Area 32² = 1024 lies in both small and medium (bounds inclusive).
    {.name = "area_on_the_boundary",
     .classes = {"dent"},
     .images = {{{Gt(0, 0, 0, 32, 32)}, {Det(0, .9f, 0, 0, 32, 32)}}},
     .expect = {.map = 1, .map_small = 1, .map_medium = 1, .map_large = -1}},

    // 2 GT, 3 detections by score: TP (.9), FP (.8), TP (.7).
    //   rc [.5, .5, 1], pr [1, .5, 2/3] -> envelope [1, 2/3, 2/3]
    //   r <= .5: 51 thresholds at 1; r > .5: 50 at 2/3
    //   AP = (51 + 50 * 2/3) / 101 = 253/303 = 0.834983...
    // Operating point (.25): P 2/3, R 1, F1 4/5. Best F1 .8 at .7.
    {.name = "hand_computed_ap",
     .classes = {"dent"},
     .images = {{{Gt(0, G), Gt(0, 200, 200, 300, 300)},
                 {Det(0, .9f, G), Det(0, .8f, 400, 400, 500, 500),
                  Det(0, .7f, 200, 200, 300, 300)}}},
     .expect = {.map = 253.0 / 303,
                .map50 = 253.0 / 303,
                .map75 = 253.0 / 303,
                .map_large = 253.0 / 303,
                .precision = 2.0 / 3,
                .recall = 1,
                .f1 = .8,
                .best_f1 = .8,
                .best_f1_confidence = .7f,
                .miss_rate = 0}},

    // 7 of 10 GT found, all at precision 1. COCO's recall thresholds are
    // linspace(0, 1, 101), whose 71st value is 70 * .01 = 0.7000000000000001:
    // recall 7/10 = 0.7 does not reach it. AP = 70/101 (not 71/101).
    {.name = "recall_threshold_rounding",
     .classes = {"dent"},
     .images = {{{Gt(0, 0, 0, 10, 10), Gt(0, 20, 0, 30, 10), Gt(0, 40, 0, 50, 10),
                  Gt(0, 60, 0, 70, 10), Gt(0, 80, 0, 90, 10), Gt(0, 100, 0, 110, 10),
                  Gt(0, 120, 0, 130, 10), Gt(0, 140, 0, 150, 10), Gt(0, 160, 0, 170, 10),
                  Gt(0, 180, 0, 190, 10)},
                 {Det(0, .9f, 0, 0, 10, 10), Det(0, .9f, 20, 0, 30, 10), Det(0, .9f, 40, 0, 50, 10),
                  Det(0, .9f, 60, 0, 70, 10), Det(0, .9f, 80, 0, 90, 10),
                  Det(0, .9f, 100, 0, 110, 10), Det(0, .9f, 120, 0, 130, 10)}}},
     .expect = {.map = 70.0 / 101,
                .map50 = 70.0 / 101,
                .map_small = 70.0 / 101,
                .recall = .7,
                .miss_rate = .3}},

    // The right box with the wrong class: scratch is missed (AP 0), dent has
    // no GT (-1, left out of the mean).
    {.name = "wrong_class",
     .classes = {"scratch", "dent"},
     .images = {{{Gt(0, G)}, {Det(1, .9f, G)}}},
     .expect = {.map = 0, .map50 = 0, .precision = 0, .recall = 0, .miss_rate = 1}},

    // maxDets 2 keeps the two false positives (.9, .8) and drops the TP (.7).
    {.name = "max_detections_truncates",
     .classes = {"dent"},
     .images = {{{Gt(0, G)},
                 {Det(0, .9f, 300, 300, 400, 400), Det(0, .8f, 500, 500, 600, 600),
                  Det(0, .7f, G)}}},
     .expect = {.map = 0, .map50 = 0, .precision = 0, .recall = 0, .miss_rate = 1},
     .options = {.max_detections = 2}},
    // Without the limit: FP, FP, TP -> rc [0, 0, 1], pr [0, 0, 1/3] -> 1/3.
    {.name = "max_detections_default",
     .classes = {"dent"},
     .images = {{{Gt(0, G)},
                 {Det(0, .9f, 300, 300, 400, 400), Det(0, .8f, 500, 500, 600, 600),
                  Det(0, .7f, G)}}},
     .expect = {.map = 1.0 / 3, .map50 = 1.0 / 3}},
    // COCO's maxDets applies per image and class: one each is enough here.
    {.name = "max_detections_per_class",
     .classes = {"scratch", "dent"},
     .images = {{{Gt(0, G), Gt(1, 200, 200, 300, 300)},
                 {Det(0, .9f, G), Det(1, .8f, 200, 200, 300, 300)}}},
     .expect = {.map = 1, .precision = 1, .recall = 1},
     .options = {.max_detections = 1}},

    // Operating point at .85 and IoU .7: the .9 detection (IoU .8) is a TP,
    // the .8 one is below the confidence; the .95 one has IoU .6 < .7: FP.
    {.name = "operating_point_options",
     .classes = {"dent"},
     .images = {{{Gt(0, G), Gt(0, 200, 200, 300, 300)},
                 {Det(0, .95f, 200, 200, 300, 260), Det(0, .9f, 0, 0, 100, 80),
                  Det(0, .8f, 200, 200, 300, 300)}}},
     .expect = {.precision = .5, .recall = .5, .f1 = .5, .miss_rate = .5},
     .options = {.operating_confidence = .85f, .match_iou = .7f}},
};

#undef G

void ExpectMetric(const char* what, double actual, double expected) {
  if (std::isnan(expected)) return;
  EXPECT_NEAR(actual, expected, kEps) << what;
}

class GoldenTest : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenTest, MatchesHandComputation) {
  const GoldenCase& c = GetParam();
  EvalReport r = Evaluate(c.images, c.classes, c.options);
  const Expected& e = c.expect;
  ExpectMetric("map", r.map, e.map);
  ExpectMetric("map50", r.map50, e.map50);
  ExpectMetric("map75", r.map75, e.map75);
  ExpectMetric("map_small", r.map_small, e.map_small);
  ExpectMetric("map_medium", r.map_medium, e.map_medium);
  ExpectMetric("map_large", r.map_large, e.map_large);
  ExpectMetric("precision", r.precision, e.precision);
  ExpectMetric("recall", r.recall, e.recall);
  ExpectMetric("f1", r.f1, e.f1);
  ExpectMetric("best_f1", r.best_f1, e.best_f1);
  ExpectMetric("best_f1_confidence", r.best_f1_confidence, e.best_f1_confidence);
  ExpectMetric("miss_rate", r.miss_rate, e.miss_rate);
  ExpectMetric("false_alarm_rate", r.false_alarm_rate, e.false_alarm_rate);
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenTest, ::testing::ValuesIn(kGolden),
                         [](const ::testing::TestParamInfo<GoldenCase>& info) {
                           return info.param.name;
                         });

// ---------------------------------------------------------------------------

TEST(EvalTest, CountsAndPerClass) {
  std::vector<EvalImage> images = {
      {{Gt(0, 0, 0, 100, 100), Gt(1, 200, 200, 300, 300), Crowd(1, 400, 400, 500, 500)},
       {Det(0, .9f, 0, 0, 100, 100)}},
      {{}, {Det(1, .4f, 0, 0, 10, 10), Det(1, .3f, 0, 0, 10, 10)}},
      {{Crowd(0, 0, 0, 10, 10)}, {}},
  };
  EvalReport r = Evaluate(images, {"scratch", "dent"});
  EXPECT_EQ(r.images, 3);
  EXPECT_EQ(r.images_without_damage, 2);
  EXPECT_EQ(r.truth_boxes, 2);
  EXPECT_EQ(r.detections, 3);
  ASSERT_EQ(r.per_class.size(), 2u);
  EXPECT_EQ(r.per_class[0].name, "scratch");
  EXPECT_EQ(r.per_class[0].truth, 1);
  EXPECT_NEAR(r.per_class[0].ap, 1, kEps);
  EXPECT_NEAR(r.per_class[0].ap50, 1, kEps);
  EXPECT_NEAR(r.per_class[0].precision, 1, kEps);
  EXPECT_EQ(r.per_class[1].truth, 1);
  EXPECT_NEAR(r.per_class[1].ap, 0, kEps);
  EXPECT_NEAR(r.per_class[1].precision, 0, kEps);
  EXPECT_NEAR(r.per_class[1].recall, 0, kEps);
  EXPECT_NEAR(r.map, .5, kEps);
  EXPECT_NEAR(r.false_alarm_rate, .5, kEps);
  EXPECT_EQ(r.class_names, (std::vector<std::string>{"scratch", "dent"}));
}

TEST(EvalTest, ClassWithoutTruthIsUndefined) {
  EvalReport r =
      Evaluate({{{Gt(0, 0, 0, 100, 100)}, {Det(0, .9f, 0, 0, 100, 100)}}}, {"scratch", "dent"});
  EXPECT_NEAR(r.per_class[0].ap, 1, kEps);
  EXPECT_EQ(r.per_class[1].ap, -1);
  EXPECT_EQ(r.per_class[1].ap50, -1);
  EXPECT_EQ(r.per_class[1].ap75, -1);
  EXPECT_NEAR(r.map, 1, kEps);  // the undefined class is left out of the mean
  EXPECT_FALSE(r.pr_curves[0].precision.empty());
  EXPECT_TRUE(r.pr_curves[1].precision.empty());
  EXPECT_TRUE(r.pr_curves[1].recall.empty());
}

TEST(EvalTest, PrCurveHas101InterpolatedPoints) {
  // The hand_computed_ap case: 1 up to recall .5, then 2/3, at IoU .5.
  std::vector<EvalImage> images = {{{Gt(0, 0, 0, 100, 100), Gt(0, 200, 200, 300, 300)},
                                    {Det(0, .9f, 0, 0, 100, 100), Det(0, .8f, 400, 400, 500, 500),
                                     Det(0, .7f, 200, 200, 300, 300)}}};
  EvalReport r = Evaluate(images, {"dent"});
  ASSERT_EQ(r.pr_curves.size(), 1u);
  const PrCurve& c = r.pr_curves[0];
  ASSERT_EQ(c.recall.size(), 101u);
  ASSERT_EQ(c.precision.size(), 101u);
  for (int i = 0; i <= 100; ++i) {
    EXPECT_NEAR(c.recall[i], i / 100.0, 1e-12);
    EXPECT_NEAR(c.precision[i], i <= 50 ? 1.0 : 2.0 / 3, kEps) << i;
  }
}

TEST(EvalTest, ConfusionMatrixOrientation) {
  // confusion[predicted][true]; index 2 is background.
  std::vector<EvalImage> images = {
      {{Gt(0, 0, 0, 100, 100), Gt(1, 200, 200, 300, 300), Gt(0, 600, 0, 700, 100)},
       {
           Det(1, .9f, 0, 0, 100, 100),      // dent on a scratch: [dent][scratch]
           Det(1, .8f, 200, 200, 300, 300),  // dent on a dent: [dent][dent]
           Det(0, .7f, 400, 400, 500, 500),  // scratch on nothing: [scratch][background]
           Det(0, .1f, 600, 0, 700, 100),    // below the operating confidence: not counted
       }},  // the scratch at x 600 is missed: [background][scratch]
      {{Crowd(0, 0, 0, 100, 100)}, {Det(0, .9f, 0, 0, 100, 100)}},  // on a crowd: not counted
  };
  EvalReport r = Evaluate(images, {"scratch", "dent"});
  std::vector<std::vector<int>> expected = {{0, 0, 1}, {1, 1, 0}, {1, 0, 0}};
  EXPECT_EQ(r.confusion, expected);
}

TEST(EvalTest, ConfusionPairsByHighestIou) {
  // Two detections overlap one GT: the higher IoU pairs even though it has
  // the lower score; the other becomes a background false positive.
  std::vector<EvalImage> images = {
      {{Gt(0, 0, 0, 100, 100)}, {Det(1, .9f, 0, 0, 100, 70), Det(0, .5f, 0, 0, 100, 95)}}};
  EvalReport r = Evaluate(images, {"scratch", "dent"});
  std::vector<std::vector<int>> expected = {{1, 0, 0}, {0, 0, 1}, {0, 0, 0}};
  EXPECT_EQ(r.confusion, expected);
  EXPECT_EQ(Evaluate({}, {}).confusion, (std::vector<std::vector<int>>{{0}}));
}

// ---------------------------------------------------------------------------
// Randomized: AP50 of one class against a straightforward reference.

double Iou(const EvalBox& g, const EvalDetection& d) {
  double iw = std::min(g.x2, d.x2) - std::max(g.x1, d.x1);
  double ih = std::min(g.y2, d.y2) - std::max(g.y1, d.y1);
  if (iw <= 0 || ih <= 0) return 0;
  double inter = iw * ih;
  double ga = (double{g.x2} - g.x1) * (g.y2 - g.y1), da = (double{d.x2} - d.x1) * (d.y2 - d.y1);
  return inter / (ga + da - inter);
}

// AP at IoU .5: greedy matching per image in score order to the best unused
// GT, then for each of the 101 recall levels the best precision reached at
// any recall >= that level.
double ReferenceAp50(const std::vector<EvalImage>& images) {
  struct Hit {
    double score;
    bool tp;
  };
  std::vector<Hit> hits;
  int truth = 0;
  for (const EvalImage& image : images) {
    truth += static_cast<int>(image.truth.size());
    std::vector<EvalDetection> dets = image.detections;
    std::stable_sort(dets.begin(), dets.end(),
                     [](const auto& a, const auto& b) { return a.score > b.score; });
    std::vector<bool> used(image.truth.size(), false);
    for (const EvalDetection& d : dets) {
      int best = -1;
      double best_iou = 0.5;
      for (size_t g = 0; g < image.truth.size(); ++g) {
        double iou = Iou(image.truth[g], d);
        if (!used[g] && iou >= best_iou) best_iou = iou, best = static_cast<int>(g);
      }
      if (best >= 0) used[best] = true;
      hits.push_back({d.score, best >= 0});
    }
  }
  if (truth == 0) return -1;
  std::stable_sort(hits.begin(), hits.end(),
                   [](const Hit& a, const Hit& b) { return a.score > b.score; });
  std::vector<double> precision, recall;
  int tp = 0;
  for (size_t i = 0; i < hits.size(); ++i) {
    tp += hits[i].tp;
    precision.push_back(tp / (i + 1.0));
    recall.push_back(tp / static_cast<double>(truth));
  }
  double sum = 0;
  for (int r = 0; r <= 100; ++r) {
    double best = 0;
    for (size_t i = 0; i < hits.size(); ++i) {
      // COCO's thresholds are linspace(0, 1, 101): r * .01, not r / 100
      // (70 * .01 > .7; see the golden case recall_threshold_rounding).
      if (recall[i] >= r * 0.01) best = std::max(best, precision[i]);
    }
    sum += best;
  }
  return sum / 101;
}

TEST(EvalTest, RandomizedAp50MatchesReference) {
  std::mt19937 rng(7);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<EvalImage> images(static_cast<size_t>(uniform(1, 6)));
    for (EvalImage& image : images) {
      int n = uniform(0, 5);
      for (int i = 0; i < n; ++i) {
        float x = static_cast<float>(uniform(0, 300)), y = static_cast<float>(uniform(0, 300));
        float w = static_cast<float>(uniform(20, 120)), h = static_cast<float>(uniform(20, 120));
        image.truth.push_back(Gt(0, x, y, x + w, y + h));
      }
      int m = uniform(0, 7);
      for (int i = 0; i < m; ++i) {
        float score = static_cast<float>(uniform(1, 10)) / 10;  // many ties
        if (!image.truth.empty() && uniform(0, 3) > 0) {
          // Near a GT: jittered, sometimes enough to fail IoU .5.
          const EvalBox& g = image.truth[static_cast<size_t>(uniform(0, n - 1))];
          float j = static_cast<float>(uniform(0, 30));
          image.detections.push_back(Det(0, score, g.x1 + j, g.y1 - j / 2, g.x2 + j / 3, g.y2));
        } else {
          float x = static_cast<float>(uniform(0, 300)), y = static_cast<float>(uniform(0, 300));
          image.detections.push_back(Det(0, score, x, y, x + 60, y + 60));
        }
      }
    }
    EvalReport r = Evaluate(images, {"dent"});
    ASSERT_NEAR(r.map50, ReferenceAp50(images), kEps) << "trial " << trial;
  }
}

TEST(EvalTest, BestF1ConfidenceReproducesBestF1) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> unit(0, 1);
  std::vector<EvalImage> images(30);
  for (EvalImage& image : images) {
    for (int c = 0; c < 2; ++c) {
      if (unit(rng) < .6f) {
        image.truth.push_back(Gt(c, 100.f * c, 0, 100.f * c + 80, 80));
        if (unit(rng) < .8f)
          image.detections.push_back(Det(c, unit(rng), 100.f * c, 0, 100.f * c + 78, 80));
      }
      if (unit(rng) < .5f) image.detections.push_back(Det(c, unit(rng) * .7f, 300, 300, 360, 360));
    }
  }
  EvalReport sweep = Evaluate(images, {"scratch", "dent"});
  ASSERT_GT(sweep.best_f1, 0);
  EvalOptions at_best;
  at_best.operating_confidence = static_cast<float>(sweep.best_f1_confidence);
  EvalReport r = Evaluate(images, {"scratch", "dent"}, at_best);
  EXPECT_EQ(r.f1, sweep.best_f1);
  // No confidence does better.
  for (float conf = 0; conf <= 1; conf += 0.01f) {
    EvalOptions o;
    o.operating_confidence = conf;
    EXPECT_LE(Evaluate(images, {"scratch", "dent"}, o).f1, sweep.best_f1) << conf;
  }
}

// ---------------------------------------------------------------------------

TEST(EvalTest, JsonAndTable) {
  std::vector<EvalImage> images = {{{Gt(0, 0, 0, 100, 100)}, {Det(0, .9f, 0, 0, 100, 100)}}};
  EvalReport r = Evaluate(images, {"scratch", "dent"});
  Json j = EvalReportToJson(r);
  EXPECT_NEAR(j["map"].get<double>(), 1, kEps);
  EXPECT_EQ(j["map_small"].get<double>(), -1);
  EXPECT_EQ(j["per_class"][1]["name"], "dent");
  EXPECT_EQ(j["per_class"][1]["ap"].get<double>(), -1);
  EXPECT_EQ(j["confusion"].size(), 3u);
  EXPECT_EQ(j["pr_curves"][0]["precision"].size(), 101u);
  EXPECT_EQ(j["images"], 1);
  std::string table = EvalReportToTable(r);
  EXPECT_NE(table.find("mAP50-95 1.000"), std::string::npos) << table;
  EXPECT_NE(table.find("small -"), std::string::npos) << table;
  EXPECT_NE(table.find("scratch"), std::string::npos) << table;
  EXPECT_NE(table.find("dent"), std::string::npos) << table;
}

TEST(EvalTest, PlotsAreWritten) {
  testing::TempDir dir;
  std::vector<EvalImage> images = {
      {{Gt(0, 0, 0, 100, 100), Gt(1, 200, 200, 300, 300)},
       {Det(0, .9f, 0, 0, 100, 100), Det(0, .6f, 200, 200, 300, 300), Det(1, .5f, 0, 0, 90, 90)}}};
  EvalReport r = Evaluate(images, {"scratch", "dent"});
  ASSERT_TRUE(WritePrCurvePlot(r, dir / "pr.png").ok());
  ASSERT_TRUE(WriteConfusionMatrixPlot(r, dir / "confusion.png").ok());
  cv::Mat pr = cv::imread((dir / "pr.png").string());
  cv::Mat cm = cv::imread((dir / "confusion.png").string());
  EXPECT_GT(pr.cols, 400);
  EXPECT_GT(cm.cols, 200);
  // An empty report still plots (no curves), and a bad path is an error.
  ASSERT_TRUE(WritePrCurvePlot(Evaluate({}, {"dent"}), dir / "empty.png").ok());
  EXPECT_FALSE(WritePrCurvePlot(r, dir / "pr.png" / "x.png").ok());
}

TEST(EvalTest, LatencyPercentilesInterpolateLinearly) {
  std::vector<double> ms;
  for (int i = 100; i >= 1; --i) ms.push_back(i);  // unsorted on purpose
  LatencySummary s = SummarizeLatency(ms);
  EXPECT_EQ(s.samples, 100);
  // numpy.percentile([1..100], q): position q/100 * 99.
  EXPECT_NEAR(s.p50_ms, 50.5, kEps);
  EXPECT_NEAR(s.p95_ms, 95.05, kEps);
  EXPECT_NEAR(s.p99_ms, 99.01, kEps);
  EXPECT_NEAR(s.mean_ms, 50.5, kEps);
  EXPECT_NEAR(s.images_per_s, 1000 / 50.5, kEps);

  LatencySummary one = SummarizeLatency({8});
  EXPECT_EQ(one.p50_ms, 8);
  EXPECT_EQ(one.p99_ms, 8);
  EXPECT_NEAR(one.images_per_s, 125, kEps);
  LatencySummary none = SummarizeLatency({});
  EXPECT_EQ(none.samples, 0);
  EXPECT_EQ(none.p95_ms, 0);
  EXPECT_EQ(none.images_per_s, 0);
}

}  // namespace
}  // namespace detops
