#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "monitor/evaluator.h"
#include "testing/testutil.h"

namespace detops {
namespace {

const char* const kCharts[] = {"drift.png", "embedding.png", "latency.png", "kpi.png"};

SignalValue Signal(const std::string& name, const std::string& statistic, double value,
                   bool scored = true) {
  SignalValue s;
  s.signal = name;
  s.statistic = statistic;
  s.value = value;
  s.live = value;
  s.scored = scored;
  return s;
}

// Eight windows 15 minutes apart: brightness drifts upward, the fourth
// window has too few samples, accuracy is scored once labels arrive.
std::vector<WindowReport> Windows() {
  std::vector<WindowReport> out;
  const int64_t t0 = 1796000000000;  // 2026-11-30
  for (int i = 0; i < 8; ++i) {
    WindowReport w;
    w.model_name = "road";
    w.model_version = 2;
    w.start_ms = t0 + i * 900000;
    w.end_ms = w.start_ms + 880000;
    w.n = i == 3 ? 12 : 200;
    w.scored = i != 3;
    if (w.scored) {
      w.signals = {Signal("input.brightness", "psi", 0.03 + 0.04 * i),
                   Signal("input.contrast", "psi", 0.05 + 0.01 * std::sin(i)),
                   Signal("embedding.mmd", "mmd2", 0.004 * i),
                   Signal("prediction.score", "psi", 0.08),
                   Signal("prediction.low_confidence_share", "abs_change", 0.02 * i),
                   Signal("prediction.class_mix", "psi", 0, /*scored=*/false)};
      SignalValue map50 = Signal("accuracy.map50", "drop", 0.1, /*scored=*/i >= 4);
      map50.live = 0.62 - 0.02 * i;
      map50.reference = 0.72;
      w.signals.push_back(map50);
      w.kpis.automation_rate = 0.8 - 0.03 * i;
      w.kpis.manual_review_rate = 1 - w.kpis.automation_rate;
      w.kpis.labelled_share = 0.05 * i;
      w.latency_p50_ms = 40 + i;
      w.latency_p95_ms = 120 + 15 * i;
      w.latency_p99_ms = 180 + 20 * i;
    }
    out.push_back(w);
  }
  return out;
}

void ExpectCharts(const std::filesystem::path& dir) {
  for (const char* file : kCharts) {
    SCOPED_TRACE(file);
    ASSERT_TRUE(std::filesystem::exists(dir / file));
    cv::Mat img = cv::imread((dir / file).string());
    ASSERT_FALSE(img.empty());
    EXPECT_EQ(img.cols, 900);
    EXPECT_EQ(img.rows, 500);
  }
}

TEST(MonitorPlotsTest, WritesTheFourChartsIntoANewFolder) {
  testing::TempDir tmp;
  const std::filesystem::path dir = tmp / "plots" / "road";  // created
  Status s = WriteMonitorPlots(Windows(), DefaultMonitorPolicy(), dir);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectCharts(dir);
}

TEST(MonitorPlotsTest, NoWindowsStillWritesTheCharts) {
  testing::TempDir tmp;
  Status s = WriteMonitorPlots({}, DefaultMonitorPolicy(), tmp.path());
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectCharts(tmp.path());
}

TEST(MonitorPlotsTest, APolicyWithoutThresholdsFallsBackToTheDefaults) {
  testing::TempDir tmp;
  Status s = WriteMonitorPlots(Windows(), MonitorPolicy{}, tmp.path());
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectCharts(tmp.path());
}

TEST(MonitorPlotsTest, AnUnwritableFolderIsAnErrorNamingIt) {
  testing::TempDir tmp;
  testing::WriteText(tmp / "file", "not a folder");
  const std::filesystem::path dir = tmp / "file" / "plots";
  Status s = WriteMonitorPlots(Windows(), DefaultMonitorPolicy(), dir);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kIOError);
  EXPECT_NE(s.message().find(dir.string()), std::string::npos) << s.message();
}

TEST(MonitorPlotsTest, AChartThatCannotBeWrittenIsNamed) {
  testing::TempDir tmp;
  std::filesystem::create_directories(tmp / "latency.png");  // a folder where the file goes
  Status s = WriteMonitorPlots(Windows(), DefaultMonitorPolicy(), tmp.path());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find((tmp / "latency.png").string()), std::string::npos) << s.message();
}

}  // namespace
}  // namespace detops
