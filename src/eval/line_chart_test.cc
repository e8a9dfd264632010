#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <opencv2/imgcodecs.hpp>

#include "eval/eval.h"
#include "eval/eval_internal.h"
#include "testing/testutil.h"

namespace detops {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Pixels within `tolerance` of `color` in every channel (anti-aliasing
// blends a line's edges with the background; its core keeps the colour).
cv::Mat Near(const cv::Mat& img, cv::Scalar color, int tolerance = 40) {
  cv::Mat mask;
  cv::inRange(img, cv::Scalar(color[0] - tolerance, color[1] - tolerance, color[2] - tolerance),
              cv::Scalar(color[0] + tolerance, color[1] + tolerance, color[2] + tolerance), mask);
  return mask;
}

// Columns with at least one pixel set in rows [row0, row1) of `mask`.
std::vector<int> ColumnsSet(const cv::Mat& mask, int row0, int row1) {
  std::vector<int> cols;
  for (int c = 0; c < mask.cols; ++c) {
    if (cv::countNonZero(mask(cv::Range(row0, row1), cv::Range(c, c + 1))) > 0) cols.push_back(c);
  }
  return cols;
}

// The row where `mask` has the most pixels set.
int BusiestRow(const cv::Mat& mask) {
  int best = 0, best_count = -1;
  for (int r = 0; r < mask.rows; ++r) {
    const int n = cv::countNonZero(mask.row(r));
    if (n > best_count) best = r, best_count = n;
  }
  return best;
}

LineChart GapChart() {
  LineChart chart;
  chart.title = "A flat series with a gap";
  chart.x_label = "step";
  chart.y_label = "value";
  // Series 0 is flat at 2 with no value for x in (40, 60); series 1 spans
  // [0, 4] so that series 0 runs through the middle of the plot.
  LineChart::Series flat{"flat", {}, {}};
  LineChart::Series ramp{"ramp", {}, {}};
  for (int x = 0; x <= 100; x += 2) {
    flat.x.push_back(x);
    flat.y.push_back(x > 40 && x < 60 ? kNaN : 2.0);
    ramp.x.push_back(x);
    ramp.y.push_back(x * 0.04);
  }
  chart.series = {flat, ramp};
  chart.rules = {{"retrain 3.5", 3.5}, {"escalate 3.6", 3.6}};
  return chart;
}

TEST(LineChartTest, WritesAPngOfTheExpectedSize) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteLineChart(GapChart(), dir / "chart.png").ok());
  cv::Mat img = cv::imread((dir / "chart.png").string());
  ASSERT_FALSE(img.empty());
  EXPECT_EQ(img.cols, 900);
  EXPECT_EQ(img.rows, 500);
}

TEST(LineChartTest, SeriesShowInTheirColourAndANanBreaksTheLine) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteLineChart(GapChart(), dir / "chart.png").ok());
  cv::Mat img = cv::imread((dir / "chart.png").string());
  ASSERT_FALSE(img.empty());

  cv::Mat flat = Near(img, eval_internal::SeriesColor(0));
  ASSERT_GT(cv::countNonZero(flat), 200);  // ~650 px of line at 2 px width
  EXPECT_GT(cv::countNonZero(Near(img, eval_internal::SeriesColor(1))), 200);

  // Along the flat line's row, its colour forms two runs (x in [0, 40] and
  // [60, 100]) with nothing between them: the gap.
  const int row = BusiestRow(flat);
  std::vector<int> cols = ColumnsSet(flat, row - 3, row + 4);
  ASSERT_FALSE(cols.empty());
  const int first = cols.front(), last = cols.back();
  const double span = last - first;  // x from 0 to 100
  int widest_gap = 0, gap_start = 0;
  for (size_t i = 1; i < cols.size(); ++i) {
    if (cols[i] - cols[i - 1] > widest_gap)
      widest_gap = cols[i] - cols[i - 1], gap_start = cols[i - 1];
  }
  // The gap spans x from 40 to 60, less the markers' radius at both ends.
  EXPECT_GT(widest_gap, 0.15 * span);
  EXPECT_LT(widest_gap, 0.25 * span);
  EXPECT_NEAR(gap_start - first, 0.4 * span, 0.05 * span);
  // Nowhere in the image, in the gap's columns, is there the flat colour.
  const int gap_in = gap_start + 4, gap_out = gap_start + widest_gap - 4;
  EXPECT_EQ(cv::countNonZero(flat(cv::Range::all(), cv::Range(gap_in, gap_out))), 0);
}

TEST(LineChartTest, TimeAxisAndRulesDraw) {
  testing::TempDir dir;
  LineChart chart;
  chart.title = "p95 latency";
  chart.x_label = "window end";
  chart.y_label = "ms";
  chart.x_is_time_ms = true;
  LineChart::Series s{"p95", {}, {}};
  const double t0 = 1796000000000;  // 2026-11-30
  for (int i = 0; i < 30; ++i) {
    s.x.push_back(t0 + i * 60000.0);
    s.y.push_back(100 + 10 * std::sin(i));
  }
  chart.series = {s};
  chart.rules = {{"SLO 250 ms", 250}};
  ASSERT_TRUE(WriteLineChart(chart, dir / "time.png").ok());
  cv::Mat img = cv::imread((dir / "time.png").string());
  ASSERT_FALSE(img.empty());
  EXPECT_GT(cv::countNonZero(Near(img, eval_internal::SeriesColor(0))), 100);
}

TEST(LineChartTest, AChartWithoutPointsStillWritesAPng) {
  testing::TempDir dir;
  LineChart chart;
  chart.title = "nothing yet";
  chart.series = {{"a", {1, 2}, {kNaN, kNaN}}};
  ASSERT_TRUE(WriteLineChart(chart, dir / "empty.png").ok());
  cv::Mat img = cv::imread((dir / "empty.png").string());
  ASSERT_FALSE(img.empty());
  EXPECT_EQ(img.cols, 900);

  ASSERT_TRUE(WriteLineChart(LineChart{}, dir / "blank.png").ok());
  EXPECT_FALSE(cv::imread((dir / "blank.png").string()).empty());
}

TEST(LineChartTest, AnUnwritablePathIsAnErrorNamingIt) {
  testing::TempDir dir;
  testing::WriteText(dir / "file", "not a folder");
  const std::filesystem::path png = dir / "file" / "chart.png";
  Status st = WriteLineChart(GapChart(), png);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_NE(st.message().find(png.string()), std::string::npos) << st.message();
}

}  // namespace
}  // namespace detops
