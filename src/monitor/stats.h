#pragma once
// The statistics behind monitoring: drift tests between a reference sample
// and a live window, trend projection for predictive alerts, and intervals
// for accuracy measured on few labels. Pure functions, no I/O, no state.
//
// Conventions: a reference is given by its sorted sample (the order
// statistics a model version's reference profile keeps, possibly thinned
// to evenly spaced ones); a live window by its raw values in any order.
// Non-finite values are ignored everywhere.

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace detops {

// Population Stability Index of `live` against the reference:
//   PSI = sum_b (l_b - r_b) * ln(l_b / r_b)
// over up to `bins` bins whose edges are the reference's i/bins quantiles
// (equal reference mass per bin); tied edges (a lumpy reference such as
// detections per image) are merged, so such a reference gets fewer, wider
// bins. Bins are closed below ([e_i, e_i+1)), so on such a reference each
// value keeps its own bin and values above the largest share its bin.
// Values below the first edge / above the last fall in the outer bins.
// Shares are floored at 1e-4 so an empty bin stays finite. 0 when either
// side is empty. Conventional reading: < 0.1 no change, 0.1-0.25
// moderate, > 0.25 large; on a normal feature 0.1 is a shift of about 0.3
// standard deviations, 0.25 of 0.5. The bins' sampling noise adds about
// (bins - 1) * (1/n + 1/m): 0.05 for windows of 200, 0.2 for windows of 50
// (docs/monitoring-statistics.md).
double Psi(std::span<const double> reference_sorted, std::span<const double> live, int bins = 10);

// PSI over categories: `reference_share` maps category -> share (summing
// to ~1), `live_counts` category -> count. Categories present on either
// side count; shares floored at 1e-4. 0 when live is empty.
double CategoricalPsi(const std::map<std::string, double>& reference_share,
                      const std::map<std::string, int64_t>& live_counts);

struct KsResult {
  double statistic = 0;  // D = sup_x |F_ref(x) - F_live(x)|, in [0, 1]
  double p_value = 1;
};

// Two-sample Kolmogorov-Smirnov test. The p-value is the asymptotic
// Kolmogorov distribution at (sqrt(ne) + 0.12 + 0.11 / sqrt(ne)) * D with
// ne = n * m / (n + m) (Stephens' small-sample correction, as in Numerical
// Recipes' kstwo), where m is the live size and n is `n_reference`: the
// number of images the reference sample stands for (its sample may be a
// thinned set of order statistics); 0 means reference_sorted.size().
// {0, 1} when either side is empty.
KsResult KsTwoSample(std::span<const double> reference_sorted, std::span<const double> live,
                     int64_t n_reference = 0);

struct MmdResult {
  double mmd2 = 0;       // unbiased MMD^2 estimate (may be slightly negative)
  double p_value = 1;    // permutation p-value: (1 + #{perm >= observed}) / (1 + permutations)
  double threshold = 0;  // the (1 - alpha) quantile of the permutation null
  double bandwidth = 0;  // the RBF kernel's sigma (median heuristic)
  int permutations = 0;
};

// Maximum Mean Discrepancy two-sample test with an RBF kernel
// k(x, y) = exp(-|x - y|^2 / (2 sigma^2)) on vectors whose dimensions are
// first standardised by the reference's per-dimension mean and standard
// deviation (floored at a tenth of the median dimension's, so that nearly
// constant features do not turn rounding into drift), sigma the median
// pairwise distance of the
// pooled standardised sample. The null distribution comes from
// `permutations` random relabellings of the pooled sample (the kernel
// matrix is computed once; 200 + 200 vectors of dimension 128 with 200
// permutations take about 10 ms on one core); deterministic for a given
// `seed`. Vectors with a non-finite component are left out; vectors of
// differing length or fewer than 2 on a side give the default result;
// permutations <= 0 give mmd2 and bandwidth with p_value 1.
MmdResult MmdTest(const std::vector<std::vector<float>>& reference,
                  const std::vector<std::vector<float>>& live, int permutations = 200,
                  uint64_t seed = 1, double alpha = 0.05);

struct Trend {
  double slope = 0;      // per step (Theil-Sen: median of pairwise slopes)
  double intercept = 0;  // fitted value at step 0 (median of y_i - slope * i)
  double last = 0;       // fitted value at the last step
  int points = 0;
};

// Robust linear trend of y over steps 0..n-1 (Theil-Sen). n < 2 gives
// slope 0 and last = the only value (or 0).
Trend TheilSen(std::span<const double> y);

// Steps after the last one until the fitted line reaches `threshold`
// (rising): 0 when the fitted last value is already at or above it,
// +infinity when the slope is <= 0.
double StepsToCross(const Trend& trend, double threshold);

// Quantile q in [0, 1] with linear interpolation between order statistics
// (NumPy's default); NaN for an empty input.
double Quantile(std::vector<double> values, double q);

struct Interval {
  double low = 0, high = 0;
};

// Wilson score interval of a proportion (z = 1.96: 95 %); {0, 1} when n = 0.
Interval WilsonInterval(int64_t successes, int64_t n, double z = 1.96);

}  // namespace detops
