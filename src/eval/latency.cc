#include <algorithm>
#include <cmath>
#include <numeric>

#include "eval/eval.h"

namespace detops {

namespace {

// numpy.percentile's default ("linear"): position q/100 * (n-1) between the
// sorted samples.
double Percentile(const std::vector<double>& sorted, double q) {
  double pos = q / 100.0 * static_cast<double>(sorted.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  double frac = pos - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

}  // namespace

LatencySummary SummarizeLatency(std::vector<double> per_image_ms) {
  LatencySummary s;
  if (per_image_ms.empty()) return s;
  std::sort(per_image_ms.begin(), per_image_ms.end());
  s.samples = static_cast<int>(per_image_ms.size());
  s.p50_ms = Percentile(per_image_ms, 50);
  s.p95_ms = Percentile(per_image_ms, 95);
  s.p99_ms = Percentile(per_image_ms, 99);
  s.mean_ms = std::accumulate(per_image_ms.begin(), per_image_ms.end(), 0.0) / s.samples;
  s.images_per_s = s.mean_ms > 0 ? 1000.0 / s.mean_ms : 0;
  return s;
}

}  // namespace detops
