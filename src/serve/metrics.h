#pragma once
// Prometheus metrics for the server: a registry of counter, gauge and
// histogram families that renders the text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// A family has a name, a help text and a fixed list of label names; its
// children, one per tuple of label values, are created on first use by
// With() and live as long as the registry. With() takes a lock, so hot paths
// look a child up once and keep the reference: updating a child (Inc,
// Set, Observe) is lock-free (relaxed atomics).
//
//   MetricsRegistry reg;  // the server owns one; there is no global registry
//   ASSIGN_OR_RETURN(auto requests,
//                    reg.AddCounter("detops_http_requests_total",
//                                   "HTTP requests by route and status", {"route", "status"}));
//   Counter& ok = requests->With({"/v1/predict", "200"});
//   ok.Inc();
//   std::string body = reg.Render();  // serve with kPrometheusContentType
//
// Registration errors are values: InvalidInput for a bad metric name, label
// name or bucket list; AlreadyExists when the name (or a sample name it
// renders, such as a histogram's `<name>_count`) is taken by a different
// metric. Registering the same name again with the same type, label names
// and buckets returns the existing family (the help text of the first
// registration is kept), so independent components may share a family.
//
// Thread-safety: every class here is thread-safe. Families and children are
// owned by the registry and never move or go away before it.

#include <atomic>
#include <cassert>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/core.h"

namespace detops {

// The Content-Type of Render()'s output.
inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// Label values of one child, in the order of its family's label names.
using LabelValues = std::vector<std::string>;

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidMetricName(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved by Prometheus).
bool IsValidLabelName(std::string_view name);

// Request latency buckets in seconds, 1 ms to 10 s in 1-2-5 steps:
// 0.001, 0.002, 0.005, 0.01, ..., 5, 10.
std::vector<double> LatencyBuckets();
// Powers of two from 1 up to the first >= max_batch_size (1, 2, 4, ..., 64
// for the default), for batch sizes.
std::vector<double> BatchSizeBuckets(size_t max_batch_size = 64);
// `count` bounds: start, start*factor, start*factor^2, ... (start > 0,
// factor > 1, count >= 1; asserted).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

// A value that only goes up (requests, errors, images).
class Counter {
 public:
  // `v` must be >= 0 (asserted; a negative or NaN `v` is ignored in release
  // builds). Integer increments sum exactly up to 2^53.
  void Inc(double v = 1) {
    assert(v >= 0 && "counters only go up");
    if (v >= 0) value_.fetch_add(v, std::memory_order_relaxed);
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A value that goes up and down (in-flight requests, loaded model size).
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Inc(double v = 1) { value_.fetch_add(v, std::memory_order_relaxed); }
  void Dec(double v = 1) { value_.fetch_sub(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Counts observations into buckets with fixed upper bounds (inclusive, as
// Prometheus' `le`) plus an implicit +Inf bucket, and keeps their sum and
// count. A NaN observation lands in the +Inf bucket only (and makes the sum
// NaN). Observe is a binary search and three relaxed atomic adds.
class Histogram {
 public:
  // `bounds` is the family's bucket list; it must outlive the histogram.
  explicit Histogram(const std::vector<double>* bounds);
  void Observe(double v);
  // Observations so far (the sum of all buckets).
  uint64_t count() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  // Cumulative counts, one per bound and a last one for +Inf (== count()).
  std::vector<uint64_t> CumulativeCounts() const;

 private:
  const std::vector<double>& bounds_;
  std::vector<std::atomic<uint64_t>> buckets_;  // per bucket, not cumulative; last is +Inf
  std::atomic<double> sum_{0};
};

enum class MetricType { kCounter, kGauge, kHistogram };
const char* MetricTypeName(MetricType type);  // "counter", "gauge", "histogram"

// What the families have in common. Use the typed families below.
class MetricFamily {
 public:
  virtual ~MetricFamily() = default;
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  MetricType type() const { return type_; }

 protected:
  MetricFamily(std::string name, std::string help, std::vector<std::string> labels, MetricType type)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(labels)),
        type_(type) {}
  // `# HELP` (when the help is not empty) and `# TYPE` lines.
  void RenderHeader(std::string* out) const;
  // `name{a="x",b="y"}` or `name{a="x",b="y",le="0.5"}`, without the value.
  void RenderSeries(std::string* out, std::string_view suffix, const LabelValues& values,
                    std::string_view le = {}) const;
  // Family-level rendering: nothing when the family has no children yet.
  virtual void Render(std::string* out) const = 0;
  friend class MetricsRegistry;

 private:
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const MetricType type_;
};

// With() returns the child for `values`, creating it on first use; the
// reference stays valid as long as the registry. `values` must have one
// entry per label name (asserted; in release builds missing values are
// empty and extra ones are dropped). A family without labels has its one
// child from the start (With({})), so it renders 0 before any update.
// Children render sorted by their label values.
class CounterFamily final : public MetricFamily {
 public:
  CounterFamily(std::string name, std::string help, std::vector<std::string> labels);
  Counter& With(LabelValues values);

 private:
  void Render(std::string* out) const override;
  mutable std::mutex mu_;  // guards children_ (the map, not the counters)
  std::map<LabelValues, std::unique_ptr<Counter>> children_;
};

class GaugeFamily final : public MetricFamily {
 public:
  GaugeFamily(std::string name, std::string help, std::vector<std::string> labels);
  Gauge& With(LabelValues values);
  // Makes the child for `values` take its value from `fn`, called at every
  // Render (queue depth, the serving model's version). `fn` runs on the
  // rendering thread with registry locks held: it must be thread-safe, must
  // not call into the registry, and what it captures must stay valid until
  // the registry goes away or the callback is replaced. Calling again
  // replaces the callback; nullptr removes it (the child then renders its
  // Set value). An exception from `fn` renders as NaN.
  void SetCallback(LabelValues values, std::function<double()> fn);

 private:
  void Render(std::string* out) const override;
  mutable std::mutex mu_;  // guards children_ and callbacks_
  std::map<LabelValues, std::unique_ptr<Gauge>> children_;
  std::map<LabelValues, std::function<double()>> callbacks_;
};

class HistogramFamily final : public MetricFamily {
 public:
  // `buckets` as validated by MetricsRegistry::AddHistogram.
  HistogramFamily(std::string name, std::string help, std::vector<std::string> labels,
                  std::vector<double> buckets);
  Histogram& With(LabelValues values);
  const std::vector<double>& buckets() const { return buckets_; }

 private:
  void Render(std::string* out) const override;
  const std::vector<double> buckets_;
  mutable std::mutex mu_;  // guards children_
  std::map<LabelValues, std::unique_ptr<Histogram>> children_;
};

// Owns the families and renders them. Thread-safe; not copyable.
class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The family, new or the one already registered under `name` with the same
  // type, label names (and buckets). Errors as in the file comment.
  Result<CounterFamily*> AddCounter(const std::string& name, const std::string& help,
                                    const std::vector<std::string>& label_names = {});
  Result<GaugeFamily*> AddGauge(const std::string& name, const std::string& help,
                                const std::vector<std::string>& label_names = {});
  // `buckets`: strictly increasing upper bounds, none NaN; a trailing +Inf is
  // dropped (the +Inf bucket is always there); may be empty. The label name
  // "le" is reserved.
  Result<HistogramFamily*> AddHistogram(const std::string& name, const std::string& help,
                                        const std::vector<std::string>& label_names,
                                        std::vector<double> buckets);

  // The exposition text: families in registration order (those without
  // children left out), each with `# HELP`, `# TYPE` and its samples;
  // histograms as cumulative `_bucket` lines ending in le="+Inf", then
  // `_sum` and `_count`. Values are a consistent-enough snapshot: each number
  // is read atomically, but updates racing with Render may show in one line
  // and not yet in another (a histogram's `_count` always equals its +Inf
  // bucket).
  std::string Render() const;

 private:
  // Validates the names; returns the existing matching family, or nullptr
  // when the name is free. `buckets` is null for counters and gauges. mu_ held.
  Result<MetricFamily*> Find(const std::string& name, const std::vector<std::string>& label_names,
                             MetricType type, const std::vector<double>* buckets) const;

  mutable std::mutex mu_;  // guards families_ (the list, not the families)
  std::vector<std::unique_ptr<MetricFamily>> families_;
};

}  // namespace detops
