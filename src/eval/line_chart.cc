// Line charts drawn with OpenCV, in the look of plots.cc: the monitor's time
// series (drift scores, latency, KPIs) against thresholds.

#include <algorithm>
#include <climits>
#include <cmath>
#include <ctime>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "eval/eval.h"
#include "eval/eval_internal.h"

namespace detops {

namespace eval_internal {

cv::Scalar SeriesColor(size_t k) {
  // The palette's darker, well separated colours first: its neighbours are
  // close hues (built for boxes on photos), and thin lines on white need
  // contrast.
  static constexpr size_t kOrder[] = {13, 0, 7, 1, 14, 9, 18, 11, 2, 10, 15, 5};
  return k < std::size(kOrder) ? ClassColor(kOrder[k]) : ClassColor(k);
}

}  // namespace eval_internal

using namespace eval_internal;  // NOLINT: the drawing helpers

namespace {

constexpr int kWidth = 900, kHeight = 500;
constexpr int kTop = 50, kBottom = 58, kRightPad = 16;
constexpr int kLegendRow = 21;
constexpr double kTickScale = 0.42, kLabelScale = 0.5, kLegendScale = 0.42;
// Sub-pixel drawing: coordinates carry 4 fractional bits.
constexpr int kShift = 4;
constexpr double kSubpixel = 1 << kShift;
const cv::Scalar kRuleColor(60, 60, 60);
const cv::Scalar kMuted(130, 130, 130);

struct Axis {
  double lo = 0, hi = 1;
  std::vector<double> ticks;
  std::vector<std::string> labels;
};

bool Finite(double v) { return std::isfinite(v); }

// Multiples of `step` within [lo, hi] (a hair of slack for rounding); none
// when they would be absurdly many (a step far too fine for the range, or
// a range so far from zero that the steps vanish in rounding).
std::vector<double> TicksAt(double lo, double hi, double step) {
  const double eps = 1e-9;
  const double first = std::ceil(lo / step - eps), last = std::floor(hi / step + eps);
  const double count = last - first + 1;
  if (!(count >= 0 && count <= 1000)) return {};
  std::vector<double> ticks;
  for (int i = 0; i < static_cast<int>(count); ++i) ticks.push_back((first + i) * step);
  return ticks;
}

// Of `steps` (ascending), the one whose ticks in [lo, hi] number closest to
// five; a tie goes to the finer step.
double PickStep(double lo, double hi, const std::vector<double>& steps) {
  double best = steps.back();
  int best_miss = 1 << 30;
  for (double s : steps) {
    const int miss = std::abs(static_cast<int>(TicksAt(lo, hi, s).size()) - 5);
    if (miss < best_miss) best = s, best_miss = miss;
  }
  return best;
}

// 1-2-5 steps from well below to well above the span.
std::vector<double> DecimalSteps(double span) {
  std::vector<double> steps;
  const int e0 = static_cast<int>(std::floor(std::log10(span))) - 2;
  for (int e = e0; e <= e0 + 3; ++e) {
    for (double m : {1.0, 2.0, 5.0}) steps.push_back(m * std::pow(10.0, e));
  }
  return steps;
}

std::string DecimalLabel(double v, double step) {
  const int digits = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  if (std::abs(v) < step * 1e-6) v = 0;  // no "-0.0"
  return Fixed(v, digits);
}

std::tm Utc(double ms) {
  const std::time_t t = static_cast<std::time_t>(std::floor(ms / 1000));
  std::tm tm{};
  gmtime_r(&t, &tm);
  return tm;
}

std::string TimeLabel(double ms, const char* format) {
  const std::tm tm = Utc(ms);
  char buf[32];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

Axis MakeAxis(double lo, double hi, bool time_ms) {
  Axis a{lo, hi, {}, {}};
  if (!(std::isfinite(hi - lo) && hi > lo)) return a;  // no ticks on a degenerate range
  if (!time_ms) {
    const double step = PickStep(lo, hi, DecimalSteps(hi - lo));
    a.ticks = TicksAt(lo, hi, step);
    for (double t : a.ticks) a.labels.push_back(DecimalLabel(t, step));
    return a;
  }
  // Round clock times: seconds, minutes, hours, days (UTC midnight, as Unix
  // time has no leap seconds and days are multiples of 86400 s).
  std::vector<double> steps;
  for (double s : {1,   2,    5,    10,   15,    30,    60,    120,   300,    600,
                   900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800}) {
    steps.push_back(s * 1000);
  }
  if (hi - lo < 4000) steps = DecimalSteps(hi - lo);  // sub-second spans
  const double step = PickStep(lo, hi, steps);
  a.ticks = TicksAt(lo, hi, step);
  for (double t : a.ticks) {
    a.labels.push_back(TimeLabel(t, step >= 86400000 ? "%m-%d" : "%H:%M:%S"));
  }
  return a;
}

// [lo, hi] padded by `margin` of its span, a flat range opened up.
void Pad(double& lo, double& hi, double margin, double flat_pad) {
  if (hi <= lo) {
    lo -= flat_pad;
    hi += flat_pad;
    return;
  }
  const double m = (hi - lo) * margin;
  lo -= m;
  hi += m;
}

// Dashes along y = `y` from x0 to x1 (pixels).
void DashedLine(cv::Mat& img, int x0, int x1, int y, cv::Scalar color) {
  constexpr int kOn = 9, kOff = 5;
  for (int x = x0; x < x1; x += kOn + kOff) {
    cv::line(img, {x, y}, {std::min(x + kOn, x1), y}, color, 1, cv::LINE_AA);
  }
}

// Points are marked while few: a marker then says where the windows are; on
// a long series they would blur the line.
bool Marked(const LineChart::Series& s) { return std::min(s.x.size(), s.y.size()) <= 30; }

// Pixels of a series in `region`: the series are the only saturated colours
// (grid, rules, axes and text are grey).
int SeriesPixels(const cv::Mat& region) {
  int n = 0;
  for (int r = 0; r < region.rows; ++r) {
    for (int c = 0; c < region.cols; ++c) {
      const cv::Vec3b& p = region.at<cv::Vec3b>(r, c);
      n += std::max({p[0], p[1], p[2]}) - std::min({p[0], p[1], p[2]}) > 60;
    }
  }
  return n;
}

// Text with a white halo, legible over lines and grid.
void HaloText(cv::Mat& img, const std::string& s, cv::Point at, double scale, cv::Scalar color) {
  Text(img, s, at, scale, kWhite, 4);
  Text(img, s, at, scale, color, 1);
}

}  // namespace

Status WriteLineChart(const LineChart& chart, const std::filesystem::path& png) {
  // ---- the data's extent ----
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  size_t points = 0;
  for (const LineChart::Series& s : chart.series) {
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!Finite(s.x[i]) || !Finite(s.y[i])) continue;
      x_lo = std::min(x_lo, s.x[i]), x_hi = std::max(x_hi, s.x[i]);
      y_lo = std::min(y_lo, s.y[i]), y_hi = std::max(y_hi, s.y[i]);
      ++points;
    }
  }
  bool have_y = points > 0;
  for (const LineChart::Rule& r : chart.rules) {
    if (!Finite(r.y)) continue;
    y_lo = std::min(y_lo, r.y), y_hi = std::max(y_hi, r.y);
    have_y = true;
  }
  const bool fixed = chart.y_min < chart.y_max;
  if (!have_y) {
    y_lo = fixed ? chart.y_min : 0;
    y_hi = fixed ? chart.y_max : 1;
  }
  // The margin keeps lines off the frame; fixed bounds get none, and
  // non-negative data (scores, latencies, rates) does not dip below zero.
  const double data_lo = y_lo, data_hi = y_hi;
  if (fixed) y_lo = std::min(y_lo, chart.y_min), y_hi = std::max(y_hi, chart.y_max);
  Pad(y_lo, y_hi, 0.06, std::abs(y_lo) > 0 ? std::abs(y_lo) * 0.1 : 1);
  if (fixed && data_lo >= chart.y_min) y_lo = chart.y_min;
  if (fixed && data_hi <= chart.y_max) y_hi = chart.y_max;
  if (!fixed && data_lo >= 0 && y_lo < 0) y_lo = 0;

  Axis y_axis = MakeAxis(y_lo, y_hi, false);
  Axis x_axis;
  if (points > 0) {
    const double flat = chart.x_is_time_ms ? 60000 : (x_lo != 0 ? std::abs(x_lo) * 0.1 : 1);
    Pad(x_lo, x_hi, 0.02, flat);
    x_axis = MakeAxis(x_lo, x_hi, chart.x_is_time_ms);
  }

  // ---- layout: y labels and legend decide the plot's width ----
  int y_tick_w = 0;
  for (const std::string& l : y_axis.labels) {
    y_tick_w = std::max(y_tick_w, TextSize(l, kTickScale).width);
  }
  const int left = 34 + y_tick_w + 10;
  std::vector<std::string> names;
  int legend_w = 0;
  for (const LineChart::Series& s : chart.series) {
    names.push_back(Shorten(s.name, 34));
    legend_w = std::max(legend_w, TextSize(names.back(), kLegendScale).width + 40);
  }
  const int right = kWidth - kRightPad - (legend_w > 0 ? legend_w + 14 : 0);
  const int top = kTop, bottom = kHeight - kBottom;
  const cv::Rect plot(left, top, right - left, bottom - top);
  auto px = [&](double x) {
    return (plot.x + (x - x_axis.lo) / (x_axis.hi - x_axis.lo) * plot.width) * kSubpixel;
  };
  auto py = [&](double y) {
    return (plot.y + plot.height - (y - y_axis.lo) / (y_axis.hi - y_axis.lo) * plot.height) *
           kSubpixel;
  };
  auto at = [&](double x, double y) {
    return cv::Point(static_cast<int>(std::lround(px(x))), static_cast<int>(std::lround(py(y))));
  };
  auto row_of = [&](double y) { return static_cast<int>(std::lround(py(y) / kSubpixel)); };
  auto col_of = [&](double x) { return static_cast<int>(std::lround(px(x) / kSubpixel)); };

  cv::Mat img(kHeight, kWidth, CV_8UC3, kWhite);

  // ---- grid, ticks, frame, labels ----
  if (have_y) {
    for (size_t i = 0; i < y_axis.ticks.size(); ++i) {
      const int r = row_of(y_axis.ticks[i]);
      cv::line(img, {plot.x, r}, {plot.br().x, r}, kGrid, 1);
      cv::line(img, {plot.x - 5, r}, {plot.x, r}, kAxis, 1);
      const cv::Size s = TextSize(y_axis.labels[i], kTickScale);
      Text(img, y_axis.labels[i], {plot.x - 9 - s.width, r + s.height / 2}, kTickScale);
    }
  }
  for (size_t i = 0; i < x_axis.ticks.size(); ++i) {
    const int c = col_of(x_axis.ticks[i]);
    cv::line(img, {c, plot.y}, {c, plot.br().y}, kGrid, 1);
    cv::line(img, {c, plot.br().y}, {c, plot.br().y + 5}, kAxis, 1);
    const cv::Size s = TextSize(x_axis.labels[i], kTickScale);
    Text(img, x_axis.labels[i], {c - s.width / 2, plot.br().y + 10 + s.height}, kTickScale);
  }
  cv::rectangle(img, plot, kAxis, 1);

  std::string x_label = chart.x_label;
  if (chart.x_is_time_ms && points > 0) {
    const std::string first = TimeLabel(x_lo, "%Y-%m-%d"), last = TimeLabel(x_hi, "%Y-%m-%d");
    const std::string dates = first == last ? first : first + " to " + last;
    x_label += (x_label.empty() ? "" : " ") + std::string("(UTC, ") + dates + ")";
  }
  const cv::Size xl = TextSize(x_label, kLabelScale);
  Text(img, x_label, {plot.x + (plot.width - xl.width) / 2, kHeight - 12}, kLabelScale);
  TextVertical(img, chart.y_label, {16, plot.y + plot.height / 2}, kLabelScale);
  Text(img, chart.title, {plot.x, 30}, 0.62, kBlack, 1);

  // ---- rules: dashed, under the series ----
  struct Placed {
    const LineChart::Rule* rule;
    int row;
  };
  std::vector<Placed> rules;
  for (const LineChart::Rule& r : chart.rules) {
    if (!Finite(r.y)) continue;
    rules.push_back({&r, row_of(r.y)});
    DashedLine(img, plot.x + 1, plot.br().x - 1, rules.back().row, kRuleColor);
  }

  // ---- series: a NaN breaks the line; points are marked while few ----
  for (size_t k = 0; k < chart.series.size(); ++k) {
    const LineChart::Series& s = chart.series[k];
    const cv::Scalar color = SeriesColor(k);
    const size_t n = std::min(s.x.size(), s.y.size());
    const bool markers = Marked(s);
    std::vector<cv::Point> run;
    auto flush = [&] {
      if (run.size() > 1) cv::polylines(img, run, false, color, 2, cv::LINE_AA, kShift);
      // An isolated point has no line: it always gets its marker.
      if (markers || run.size() == 1) {
        for (const cv::Point& p : run) {
          cv::circle(img, p, 3 << kShift, color, -1, cv::LINE_AA, kShift);
        }
      }
      run.clear();
    };
    for (size_t i = 0; i < n; ++i) {
      if (Finite(s.x[i]) && Finite(s.y[i])) {
        run.push_back(at(s.x[i], s.y[i]));
      } else {
        flush();
      }
    }
    flush();
  }
  if (points == 0) {
    const cv::Size s = TextSize("no data", 0.8);
    Text(img, "no data",
         {plot.x + (plot.width - s.width) / 2, plot.y + (plot.height + s.height) / 2}, 0.8, kMuted,
         1);
  }

  // ---- rule labels, on top: beside the rule where they cover the fewest
  // series pixels (the right end first), clear of the other rules and
  // labels ----
  std::vector<cv::Rect> taken;
  for (const Placed& p : rules) taken.emplace_back(plot.x, p.row, plot.width, 1);
  for (size_t i = 0; i < rules.size(); ++i) {
    const Placed& p = rules[i];
    const cv::Size s = TextSize(p.rule->label, kTickScale);
    auto box_at = [&](cv::Point c) {
      return cv::Rect(c.x - 2, c.y - s.height - 2, s.width + 4, s.height + 4);
    };
    cv::Point chosen(plot.br().x - 6 - s.width, p.row - 5);
    int least = INT_MAX;
    for (int x : {plot.br().x - 6 - s.width, plot.x + (plot.width - s.width) / 2, plot.x + 6}) {
      for (int y : {p.row - 5, p.row + 5 + s.height}) {
        const cv::Rect box = box_at({x, y});
        if (box.y < plot.y || box.br().y > plot.br().y) continue;
        bool clear = true;
        for (size_t j = 0; j < taken.size(); ++j) {
          if (j != i && (taken[j] & box).area() > 0) clear = false;
        }
        if (!clear) continue;
        const int covered = SeriesPixels(img(box));
        if (covered < least) least = covered, chosen = {x, y};
      }
    }
    taken.push_back(box_at(chosen));
    HaloText(img, p.rule->label, chosen, kTickScale, kRuleColor);
  }

  // ---- legend, right of the plot ----
  const int legend_x = plot.br().x + 14;
  const int max_rows = plot.height / kLegendRow;
  int y = plot.y + 12;
  for (size_t k = 0; k < names.size(); ++k) {
    if (static_cast<int>(k) == max_rows - 1 && static_cast<int>(names.size()) > max_rows) {
      Text(img, "+" + std::to_string(names.size() - k) + " more", {legend_x + 32, y + 4},
           kLegendScale, kMuted);
      break;
    }
    const cv::Scalar color = SeriesColor(k);
    cv::line(img, {legend_x, y}, {legend_x + 24, y}, color, 2, cv::LINE_AA);
    if (Marked(chart.series[k])) cv::circle(img, {legend_x + 12, y}, 3, color, -1, cv::LINE_AA);
    Text(img, names[k], {legend_x + 32, y + 5}, kLegendScale);
    y += kLegendRow;
  }
  return WritePng(img, png);
}

}  // namespace detops
