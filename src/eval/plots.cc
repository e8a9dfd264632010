// PR-curve and confusion-matrix plots drawn with OpenCV (no plotting library).

#include <algorithm>
#include <cstdio>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "eval/eval.h"
#include "eval/eval_internal.h"

namespace detops {

namespace eval_internal {

namespace {
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
// A qualitative palette (BGR), distinct on white.
const cv::Scalar kPalette[] = {{56, 56, 255},   {31, 112, 255},  {29, 178, 255}, {49, 210, 207},
                               {10, 249, 72},   {23, 204, 146},  {134, 219, 61}, {52, 147, 26},
                               {187, 212, 0},   {168, 153, 44},  {255, 194, 0},  {147, 69, 52},
                               {255, 115, 100}, {236, 24, 0},    {255, 56, 132}, {133, 0, 82},
                               {255, 56, 203},  {200, 149, 255}, {199, 55, 255}};

}  // namespace

cv::Scalar ClassColor(size_t k) { return kPalette[k % std::size(kPalette)]; }

void Text(cv::Mat& img, const std::string& s, cv::Point at, double scale, cv::Scalar color,
          int thickness) {
  cv::putText(img, s, at, kFont, scale, color, thickness, cv::LINE_AA);
}

cv::Size TextSize(const std::string& s, double scale, int thickness) {
  int baseline = 0;
  return cv::getTextSize(s, kFont, scale, thickness, &baseline);
}

void TextVertical(cv::Mat& img, const std::string& s, cv::Point center, double scale) {
  cv::Size size = TextSize(s, scale);
  cv::Mat patch(size.height + 8, size.width + 4, CV_8UC3, kWhite);
  Text(patch, s, {2, size.height + 2}, scale);
  cv::rotate(patch, patch, cv::ROTATE_90_COUNTERCLOCKWISE);
  cv::Rect dst(center.x - patch.cols / 2, center.y - patch.rows / 2, patch.cols, patch.rows);
  cv::Rect clipped = dst & cv::Rect(0, 0, img.cols, img.rows);
  if (clipped.area() == 0) return;
  patch(cv::Rect(clipped.x - dst.x, clipped.y - dst.y, clipped.width, clipped.height))
      .copyTo(img(clipped));
}

std::string Fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string Shorten(const std::string& s, size_t max_chars) {
  if (s.size() <= max_chars) return s;
  return s.substr(0, max_chars > 2 ? max_chars - 2 : 0) + "..";
}

Status WritePng(const cv::Mat& img, const std::filesystem::path& png) {
  std::vector<uchar> bytes;
  try {
    if (!cv::imencode(".png", img, bytes)) {
      return Status::IOError(png.string() + ": PNG encoding failed");
    }
  } catch (const cv::Exception& e) {
    return Status::IOError(png.string() + ": PNG encoding failed: " + e.what());
  }
  return WriteFileAtomic(
      png, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace eval_internal

using namespace eval_internal;  // NOLINT: the drawing helpers

Status WritePrCurvePlot(const EvalReport& report, const std::filesystem::path& png) {
  constexpr int kLeft = 80, kTop = 50, kSide = 520, kLegendX = kLeft + kSide + 30;
  constexpr int kLegendRow = 22;
  cv::Mat img(kTop + kSide + 70, kLegendX + 270, CV_8UC3, kWhite);
  auto at = [&](double recall, double precision) {
    return cv::Point(kLeft + static_cast<int>(std::lround(recall * kSide)),
                     kTop + static_cast<int>(std::lround((1 - precision) * kSide)));
  };

  for (int i = 0; i <= 10; ++i) {
    double v = i / 10.0;
    cv::line(img, at(v, 0), at(v, 1), kGrid, 1);
    cv::line(img, at(0, v), at(1, v), kGrid, 1);
    if (i % 2 == 0) {
      std::string label = Fixed(v, 1);
      cv::Size s = TextSize(label, 0.45);
      Text(img, label, at(v, 0) + cv::Point(-s.width / 2, s.height + 10), 0.45);
      Text(img, label, at(0, v) + cv::Point(-s.width - 10, s.height / 2), 0.45);
    }
  }
  cv::rectangle(img, at(0, 1), at(1, 0), kAxis, 1);
  Text(img, "Recall", {kLeft + kSide / 2 - 25, kTop + kSide + 50}, 0.55);
  TextVertical(img, "Precision", {22, kTop + kSide / 2}, 0.55);
  Text(img, "Precision-recall, IoU 0.50 (COCO 101-point)", {kLeft, kTop - 18}, 0.6);

  // Per-class curves, then their mean (over classes with GT) on top.
  std::vector<double> mean;
  int curves = 0;
  for (size_t k = 0; k < report.pr_curves.size(); ++k) {
    const PrCurve& c = report.pr_curves[k];
    if (c.precision.empty()) continue;
    std::vector<cv::Point> pts;
    for (size_t i = 0; i < c.recall.size(); ++i) pts.push_back(at(c.recall[i], c.precision[i]));
    cv::polylines(img, pts, false, ClassColor(k), 2, cv::LINE_AA);
    if (mean.empty()) mean.assign(c.precision.size(), 0.0);
    for (size_t i = 0; i < mean.size() && i < c.precision.size(); ++i) mean[i] += c.precision[i];
    ++curves;
  }
  const cv::Scalar kMeanColor(160, 60, 20);
  if (curves > 0) {
    std::vector<cv::Point> pts;
    const std::vector<double>& recall =
        std::find_if(report.pr_curves.begin(), report.pr_curves.end(), [](const PrCurve& c) {
          return !c.precision.empty();
        })->recall;
    for (size_t i = 0; i < mean.size(); ++i) pts.push_back(at(recall[i], mean[i] / curves));
    cv::polylines(img, pts, false, kMeanColor, 4, cv::LINE_AA);
  } else {
    Text(img, "no class has ground truth", {kLeft + 140, kTop + kSide / 2}, 0.6, kAxis);
  }

  // Legend: the mean first, then one row per class with its AP50.
  int y = kTop + 10;
  auto legend_row = [&](const std::string& label, cv::Scalar color, int thickness) {
    cv::line(img, {kLegendX, y - 5}, {kLegendX + 24, y - 5}, color, thickness, cv::LINE_AA);
    Text(img, label, {kLegendX + 32, y}, 0.45);
    y += kLegendRow;
  };
  legend_row(
      "all classes " + (report.map50 < 0 ? std::string("-") : Fixed(report.map50)) + " mAP50",
      kMeanColor, 4);
  const int max_rows = (kSide - 10) / kLegendRow - 1;
  int rows = 0, left_out = 0;
  for (size_t k = 0; k < report.pr_curves.size(); ++k) {
    if (report.pr_curves[k].precision.empty()) continue;
    if (rows == max_rows - 1 && curves > max_rows) {
      ++left_out;
      continue;
    }
    std::string name = k < report.class_names.size() ? report.class_names[k] : std::to_string(k);
    double ap50 = k < report.per_class.size() ? report.per_class[k].ap50 : -1;
    legend_row(Shorten(name, 20) + " " + (ap50 < 0 ? std::string("-") : Fixed(ap50)), ClassColor(k),
               2);
    ++rows;
  }
  if (left_out > 0) Text(img, "+" + std::to_string(left_out) + " more", {kLegendX + 32, y}, 0.45);
  return WritePng(img, png);
}

Status WriteConfusionMatrixPlot(const EvalReport& report, const std::filesystem::path& png) {
  const size_t n = report.confusion.size();
  if (n == 0) return Status::InvalidInput(png.string() + ": the report has no confusion matrix");
  std::vector<std::string> labels;
  for (size_t k = 0; k + 1 < n; ++k) {
    labels.push_back(
        Shorten(k < report.class_names.size() ? report.class_names[k] : std::to_string(k), 16));
  }
  labels.push_back("background");
  int label_px = 0;
  for (const std::string& l : labels) label_px = std::max(label_px, TextSize(l, 0.45).width);

  const int cell = std::clamp(560 / static_cast<int>(n), 28, 90);
  const int left = label_px + 50, top = 60, side = cell * static_cast<int>(n);
  cv::Mat img(top + side + label_px + 60, left + side + 40, CV_8UC3, kWhite);
  Text(img, "Confusion matrix (colour: share of each true class)", {20, 30}, 0.6);

  std::vector<double> column_sum(n, 0);
  for (size_t r = 0; r < n; ++r) {
    for (size_t c = 0; c < n && c < report.confusion[r].size(); ++c) {
      column_sum[c] += report.confusion[r][c];
    }
  }
  const cv::Scalar kLow(255, 255, 255), kHigh(107, 48, 8);  // white to dark blue
  const double count_scale = cell >= 50 ? 0.5 : 0.38;
  for (size_t r = 0; r < n; ++r) {
    for (size_t c = 0; c < n; ++c) {
      int count = c < report.confusion[r].size() ? report.confusion[r][c] : 0;
      double share = column_sum[c] > 0 ? count / column_sum[c] : 0;
      cv::Scalar color = kLow * (1 - share) + kHigh * share;
      cv::Rect box(left + static_cast<int>(c) * cell, top + static_cast<int>(r) * cell, cell, cell);
      cv::rectangle(img, box, color, cv::FILLED);
      cv::rectangle(img, box, kGrid, 1);
      if (count == 0) continue;
      std::string s = std::to_string(count);
      cv::Size ts = TextSize(s, count_scale);
      Text(img, s, {box.x + (cell - ts.width) / 2, box.y + (cell + ts.height) / 2}, count_scale,
           share > 0.5 ? kWhite : kBlack);
    }
  }
  cv::rectangle(img, {left, top}, {left + side, top + side}, kAxis, 1);
  for (size_t i = 0; i < n; ++i) {
    cv::Size ts = TextSize(labels[i], 0.45);
    int mid = static_cast<int>(i) * cell + cell / 2;
    Text(img, labels[i], {left - ts.width - 8, top + mid + ts.height / 2}, 0.45);
    TextVertical(img, labels[i], {left + mid, top + side + 8 + ts.width / 2}, 0.45);
  }
  Text(img, "True", {left + side / 2 - 18, top + side + label_px + 40}, 0.55);
  TextVertical(img, "Predicted", {16, top + side / 2}, 0.55);
  return WritePng(img, png);
}

}  // namespace detops
