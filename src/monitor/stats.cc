// Drift statistics (docs/monitoring-statistics.md says why these tests and
// what their false-alarm rates measure).

#include "monitor/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>

namespace detops {
namespace {

constexpr double kShareFloor = 1e-4;

std::vector<double> Finite(std::span<const double> v) {
  std::vector<double> out;
  out.reserve(v.size());
  for (double x : v) {
    if (std::isfinite(x)) out.push_back(x);
  }
  return out;
}

// The reference's finite values, sorted (a caller's unsorted reference is
// sorted rather than trusted, the check is cheap).
std::vector<double> SortedReference(std::span<const double> reference_sorted) {
  std::vector<double> r = Finite(reference_sorted);
  if (!std::is_sorted(r.begin(), r.end())) std::sort(r.begin(), r.end());
  return r;
}

// NumPy's default ("linear") quantile of a sorted, non-empty sample.
double QuantileSorted(std::span<const double> sorted, double q) {
  const double pos = std::clamp(q, 0.0, 1.0) * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

// Bin i is [edges[i-1], edges[i]): left-closed, so on a lumpy reference
// (detections per image: 0, 1, 2) each value keeps its own bin and the
// largest one's bin also takes the larger values the reference never saw,
// instead of leaving them a bin with no reference mass.
std::vector<double> BinShares(std::span<const double> values, const std::vector<double>& edges) {
  std::vector<double> counts(edges.size() + 1, 0);
  for (double x : values) {
    counts[std::upper_bound(edges.begin(), edges.end(), x) - edges.begin()] += 1;
  }
  for (double& c : counts) c = std::max(c / static_cast<double>(values.size()), kShareFloor);
  return counts;
}

double PsiOfShares(double live, double reference) {
  return (live - reference) * std::log(live / reference);
}

// Q_KS(lambda) = 2 sum_{j>=1} (-1)^(j-1) exp(-2 j^2 lambda^2), the
// Kolmogorov distribution's upper tail. That series converges slowly for
// small lambda, where the equivalent Jacobi theta form
// 1 - sqrt(2 pi) / lambda * sum_{j>=1} exp(-(2j-1)^2 pi^2 / (8 lambda^2))
// needs only a few terms; 1.18 is where both need about as many.
double KolmogorovQ(double lambda) {
  if (!(lambda > 0)) return 1;
  if (lambda < 1.18) {
    const double y = -std::numbers::pi * std::numbers::pi / (8 * lambda * lambda);
    double sum = 0;
    for (int j = 1; j <= 8; ++j) sum += std::exp((2 * j - 1) * (2 * j - 1) * y);
    return std::clamp(1 - std::sqrt(2 * std::numbers::pi) / lambda * sum, 0.0, 1.0);
  }
  double sum = 0, sign = 1;
  for (int j = 1; j <= 100; ++j) {
    const double term = std::exp(-2.0 * j * j * lambda * lambda);
    sum += sign * term;
    if (term < 1e-18) break;
    sign = -sign;
  }
  return std::clamp(2 * sum, 0.0, 1.0);
}

// D = sup |F_a - F_b| of two sorted samples; ties step both sides at once.
double KsStatistic(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = static_cast<double>(a.size()), m = static_cast<double>(b.size());
  size_t i = 0, j = 0;
  double d = 0;
  while (i < a.size() && j < b.size()) {
    const double x = std::min(a[i], b[j]);
    while (i < a.size() && a[i] == x) ++i;
    while (j < b.size() && b[j] == x) ++j;
    d = std::max(d, std::abs(static_cast<double>(i) / n - static_cast<double>(j) / m));
  }
  return d;  // once one side is exhausted the gap only shrinks
}

// ---- MMD ----

// The pooled sample as one row-major block, reference rows first, each
// dimension standardised by the reference's mean and standard deviation.
struct Pooled {
  std::vector<float> x;
  size_t n = 0, m = 0, dim = 0;
  size_t rows() const { return n + m; }
  const float* row(size_t i) const { return x.data() + i * dim; }
};

bool AllFinite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float f) { return std::isfinite(f); });
}

// Vectors with a non-finite component are left out; a differing length
// makes the pooled sample empty.
Pooled Pool(const std::vector<std::vector<float>>& reference,
            const std::vector<std::vector<float>>& live) {
  Pooled p;
  if (reference.empty()) return p;
  p.dim = reference[0].size();
  for (const auto* side : {&reference, &live}) {
    for (const auto& v : *side) {
      if (v.size() != p.dim) return {};
      if (!AllFinite(v)) continue;
      p.x.insert(p.x.end(), v.begin(), v.end());
      ++(side == &reference ? p.n : p.m);
    }
  }
  if (p.dim == 0 || p.n < 2 || p.m < 2) return {};
  std::vector<double> means(p.dim), sds(p.dim);
  for (size_t k = 0; k < p.dim; ++k) {
    double sum = 0, sq = 0;
    for (size_t i = 0; i < p.n; ++i) sum += p.x[i * p.dim + k];
    means[k] = sum / static_cast<double>(p.n);
    for (size_t i = 0; i < p.n; ++i)
      sq += (p.x[i * p.dim + k] - means[k]) * (p.x[i * p.dim + k] - means[k]);
    sds[k] = std::sqrt(sq / static_cast<double>(p.n - 1));
  }
  // A network's embedding has near-constant features (channels a short
  // training left dead): divided by their own tiny spread, the rounding of
  // another precision (bf16 serving against an fp32 reference) or of the
  // log would look like a huge shift. Their spread is floored at a tenth of
  // the median feature's.
  std::vector<double> sorted = sds;
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
  const double floor = std::max(0.1 * sorted[sorted.size() / 2], 1e-6);
  for (size_t k = 0; k < p.dim; ++k) {
    const double sd = std::max(sds[k], floor);
    for (size_t i = 0; i < p.rows(); ++i) {
      p.x[i * p.dim + k] = static_cast<float>((p.x[i * p.dim + k] - means[k]) / sd);
    }
  }
  return p;
}

// Eight independent partial sums let the compiler keep the loop pipelined
// without reassociating floating point itself.
float SquaredDistance(const float* a, const float* b, size_t dim) {
  float acc[8] = {};
  size_t k = 0;
  for (; k + 8 <= dim; k += 8) {
    for (int l = 0; l < 8; ++l) acc[l] += (a[k + l] - b[k + l]) * (a[k + l] - b[k + l]);
  }
  for (; k < dim; ++k) acc[0] += (a[k] - b[k]) * (a[k] - b[k]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// The upper triangle (i < j) of the pooled kernel matrix, row by row, and
// each row's sum. Permutations only relabel rows, so this is all they need.
struct Kernel {
  std::vector<double> k;         // row i holds j = i+1 .. N-1
  std::vector<double> row_sums;  // sum over j > i
  std::vector<size_t> row_start;
  double sigma = 0;
};

Kernel BuildKernel(const Pooled& p) {
  const size_t rows = p.rows();
  Kernel kern;
  kern.k.reserve(rows * (rows - 1) / 2);
  kern.row_start.resize(rows);
  for (size_t i = 0; i < rows; ++i) {
    kern.row_start[i] = kern.k.size();
    for (size_t j = i + 1; j < rows; ++j) {
      kern.k.push_back(SquaredDistance(p.row(i), p.row(j), p.dim));
    }
  }
  // Median heuristic: sigma = median pairwise distance (the median of the
  // squared distances, rooted; the same order statistic).
  std::vector<double> d2 = kern.k;
  auto mid = d2.begin() + static_cast<std::ptrdiff_t>(d2.size() / 2);
  std::nth_element(d2.begin(), mid, d2.end());
  kern.sigma = *mid > 0 ? std::sqrt(*mid) : 1.0;  // identical points: any sigma gives 0
  const double scale = -1 / (2 * kern.sigma * kern.sigma);
  for (double& v : kern.k) v = std::exp(v * scale);
  kern.row_sums.assign(rows, 0);
  for (size_t i = 0; i < rows; ++i) {
    const double* row = kern.k.data() + kern.row_start[i];
    for (size_t j = 0; j < rows - i - 1; ++j) kern.row_sums[i] += row[j];
  }
  return kern;
}

// Unbiased MMD^2 of the labelling `in_x` (1 for the first sample, 0 for the
// second). One masked row sum per row gives the within-X sum; the row's
// total splits the rest between X-Y and Y-Y pairs.
double Mmd2(const Kernel& kern, const std::vector<double>& in_x, size_t n, size_t m) {
  const size_t rows = in_x.size();
  double xx = 0, yy = 0, xy = 0;
  for (size_t i = 0; i + 1 < rows; ++i) {
    const double* row = kern.k.data() + kern.row_start[i];
    const double* label = in_x.data() + i + 1;
    const size_t len = rows - i - 1;
    double acc[4] = {};
    size_t j = 0;
    for (; j + 4 <= len; j += 4) {
      for (int l = 0; l < 4; ++l) acc[l] += row[j + l] * label[j + l];
    }
    for (; j < len; ++j) acc[0] += row[j] * label[j];
    const double with_x = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    if (in_x[i] != 0) {
      xx += with_x;
      xy += kern.row_sums[i] - with_x;
    } else {
      xy += with_x;
      yy += kern.row_sums[i] - with_x;
    }
  }
  const double dn = static_cast<double>(n), dm = static_cast<double>(m);
  return 2 * xx / (dn * (dn - 1)) + 2 * yy / (dm * (dm - 1)) - 2 * xy / (dn * dm);
}

// Uniform in [0, bound) without modulo bias; std::uniform_int_distribution
// would do, but its output differs between standard libraries and the
// p-value is promised to be reproducible for a seed.
uint64_t Below(std::mt19937_64& rng, uint64_t bound) {
  const uint64_t reject_below = (0 - bound) % bound;
  for (;;) {
    const uint64_t r = rng();
    if (r >= reject_below) return r % bound;
  }
}

}  // namespace

double Psi(std::span<const double> reference_sorted, std::span<const double> live, int bins) {
  const std::vector<double> ref = SortedReference(reference_sorted);
  const std::vector<double> now = Finite(live);
  if (ref.empty() || now.empty()) return 0;
  bins = std::max(bins, 1);
  std::vector<double> edges;
  for (int i = 1; i < bins; ++i) {
    const double e = QuantileSorted(ref, static_cast<double>(i) / bins);
    if (edges.empty() || e > edges.back()) edges.push_back(e);  // tied edges merge
  }
  const std::vector<double> r = BinShares(ref, edges), l = BinShares(now, edges);
  double psi = 0;
  for (size_t b = 0; b < r.size(); ++b) psi += PsiOfShares(l[b], r[b]);
  return psi;
}

double CategoricalPsi(const std::map<std::string, double>& reference_share,
                      const std::map<std::string, int64_t>& live_counts) {
  double total = 0;
  for (const auto& [name, count] : live_counts)
    total += static_cast<double>(std::max<int64_t>(count, 0));
  if (total <= 0) return 0;
  auto live_share = [&](const std::string& name) {
    auto it = live_counts.find(name);
    const double c =
        it == live_counts.end() ? 0 : static_cast<double>(std::max<int64_t>(it->second, 0));
    return std::max(c / total, kShareFloor);
  };
  auto ref_share = [&](const std::string& name) {
    auto it = reference_share.find(name);
    const double s = it == reference_share.end() || !std::isfinite(it->second) ? 0 : it->second;
    return std::max(s, kShareFloor);
  };
  double psi = 0;
  for (const auto& [name, share] : reference_share)
    psi += PsiOfShares(live_share(name), ref_share(name));
  for (const auto& [name, count] : live_counts) {
    if (!reference_share.contains(name)) psi += PsiOfShares(live_share(name), ref_share(name));
  }
  return psi;
}

KsResult KsTwoSample(std::span<const double> reference_sorted, std::span<const double> live,
                     int64_t n_reference) {
  const std::vector<double> ref = SortedReference(reference_sorted);
  std::vector<double> now = Finite(live);
  if (ref.empty() || now.empty()) return {};
  std::sort(now.begin(), now.end());
  KsResult r;
  r.statistic = KsStatistic(ref, now);
  const double n =
      n_reference > 0 ? static_cast<double>(n_reference) : static_cast<double>(ref.size());
  const double m = static_cast<double>(now.size());
  const double root = std::sqrt(n * m / (n + m));
  r.p_value = KolmogorovQ((root + 0.12 + 0.11 / root) * r.statistic);
  return r;
}

MmdResult MmdTest(const std::vector<std::vector<float>>& reference,
                  const std::vector<std::vector<float>>& live, int permutations, uint64_t seed,
                  double alpha) {
  const Pooled pooled = Pool(reference, live);
  if (pooled.rows() == 0) return {};
  const Kernel kern = BuildKernel(pooled);
  std::vector<double> in_x(pooled.rows(), 0);
  std::fill(in_x.begin(), in_x.begin() + static_cast<std::ptrdiff_t>(pooled.n), 1.0);

  MmdResult r;
  r.bandwidth = kern.sigma;
  r.mmd2 = Mmd2(kern, in_x, pooled.n, pooled.m);
  r.permutations = std::max(permutations, 0);
  if (r.permutations == 0) return r;

  std::mt19937_64 rng(seed);
  std::vector<double> null(static_cast<size_t>(r.permutations));
  // A relative tolerance counts a relabelling that reproduces the observed
  // split as reaching it despite a different summation's rounding.
  const double reach = r.mmd2 - 1e-12 * std::max(1.0, std::abs(r.mmd2));
  int at_least = 0;
  for (double& stat : null) {
    // Shuffling the previous labelling is as uniform as shuffling the first.
    for (size_t i = in_x.size() - 1; i > 0; --i) std::swap(in_x[i], in_x[Below(rng, i + 1)]);
    stat = Mmd2(kern, in_x, pooled.n, pooled.m);
    if (stat >= reach) ++at_least;
  }
  r.p_value = (1.0 + at_least) / (1.0 + r.permutations);
  std::sort(null.begin(), null.end());
  r.threshold = QuantileSorted(null, 1 - std::clamp(alpha, 0.0, 1.0));
  return r;
}

Trend TheilSen(std::span<const double> y) {
  std::vector<double> steps, values;
  for (size_t i = 0; i < y.size(); ++i) {
    if (!std::isfinite(y[i])) continue;  // a missing step keeps its place
    steps.push_back(static_cast<double>(i));
    values.push_back(y[i]);
  }
  Trend t;
  t.points = static_cast<int>(values.size());
  if (values.empty()) return t;
  if (values.size() == 1) {
    t.intercept = t.last = values[0];
    return t;
  }
  std::vector<double> slopes;
  slopes.reserve(values.size() * (values.size() - 1) / 2);
  for (size_t i = 0; i < values.size(); ++i) {
    for (size_t j = i + 1; j < values.size(); ++j) {
      slopes.push_back((values[j] - values[i]) / (steps[j] - steps[i]));
    }
  }
  t.slope = Quantile(std::move(slopes), 0.5);
  for (size_t i = 0; i < values.size(); ++i) values[i] -= t.slope * steps[i];
  t.intercept = Quantile(std::move(values), 0.5);
  t.last = t.intercept + t.slope * static_cast<double>(y.size() - 1);
  return t;
}

double StepsToCross(const Trend& trend, double threshold) {
  if (trend.last >= threshold) return 0;
  if (!(trend.slope > 0)) return std::numeric_limits<double>::infinity();
  return (threshold - trend.last) / trend.slope;
}

double Quantile(std::vector<double> values, double q) {
  std::erase_if(values, [](double v) { return !std::isfinite(v); });
  if (values.empty() || std::isnan(q)) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  return QuantileSorted(values, q);
}

Interval WilsonInterval(int64_t successes, int64_t n, double z) {
  if (n <= 0) return {0, 1};
  const double dn = static_cast<double>(n);
  const double p = static_cast<double>(std::clamp<int64_t>(successes, 0, n)) / dn;
  const double z2 = z * z;
  const double denom = 1 + z2 / dn;
  const double center = (p + z2 / (2 * dn)) / denom;
  const double half = z / denom * std::sqrt(p * (1 - p) / dn + z2 / (4 * dn * dn));
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

}  // namespace detops
