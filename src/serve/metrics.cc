#include "serve/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

namespace detops {

static_assert(std::atomic<double>::is_always_lock_free, "metric updates must be lock-free");
static_assert(std::atomic<uint64_t>::is_always_lock_free, "metric updates must be lock-free");

namespace {

bool IsNameChar(char c, bool first, bool colon_ok) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (c == ':') return colon_ok;
  return !first && c >= '0' && c <= '9';
}

// Prometheus parses sample values and `le` with Go's ParseFloat: integers are
// written without exponent while they are exact, other finite values in the
// shortest form that reads back to the same double.
void AppendNumber(std::string* out, double v) {
  if (std::isnan(v)) {
    *out += "NaN";
  } else if (std::isinf(v)) {
    *out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    std::to_chars_result r;
    if (v == std::trunc(v) && std::fabs(v) <= 9007199254740992.0) {  // 2^53
      r = std::to_chars(buf, buf + sizeof(buf), static_cast<int64_t>(v));
    } else {
      r = std::to_chars(buf, buf + sizeof(buf), v);
    }
    out->append(buf, r.ptr);
  }
}

std::string FormatNumber(double v) {
  std::string s;
  AppendNumber(&s, v);
  return s;
}

// HELP escapes backslash and newline; label values also the double quote.
void AppendEscaped(std::string* out, std::string_view text, bool quote) {
  for (char c : text) {
    if (c == '\\') {
      *out += "\\\\";
    } else if (c == '\n') {
      *out += "\\n";
    } else if (c == '"' && quote) {
      *out += "\\\"";
    } else {
      *out += c;
    }
  }
}

// The child of `values` in `children`, created by `make` on first use.
template <typename M, typename Make>
M& GetOrCreate(std::mutex& mu, std::map<LabelValues, std::unique_ptr<M>>& children,
               size_t label_count, LabelValues values, Make make) {
  assert(values.size() == label_count && "one label value per label name");
  values.resize(label_count);
  std::lock_guard lock(mu);
  auto it = children.find(values);
  if (it == children.end()) it = children.emplace(std::move(values), make()).first;
  return *it->second;
}

// Sample names a family renders, which no other family may render.
std::vector<std::string> SampleNames(const std::string& name, MetricType type) {
  if (type != MetricType::kHistogram) return {name};
  return {name, name + "_bucket", name + "_sum", name + "_count"};
}

}  // namespace

bool IsValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsNameChar(name[i], i == 0, /*colon_ok=*/true)) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsNameChar(name[i], i == 0, /*colon_ok=*/false)) return false;
  }
  return true;
}

std::vector<double> LatencyBuckets() {
  return {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10};
}

std::vector<double> BatchSizeBuckets(size_t max_batch_size) {
  std::vector<double> buckets;
  for (size_t b = 1;; b *= 2) {
    buckets.push_back(static_cast<double>(b));
    if (b >= max_batch_size) break;
  }
  return buckets;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  assert(start > 0 && factor > 1 && count >= 1);
  std::vector<double> buckets;
  double b = start;
  for (int i = 0; i < count; ++i, b *= factor) buckets.push_back(b);
  return buckets;
}

const char* MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// ---- Histogram

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(*bounds), buckets_(bounds->size() + 1) {}

void Histogram::Observe(double v) {
  // First bound >= v (`le` is inclusive); NaN compares false everywhere, so
  // it is placed in the +Inf bucket explicitly.
  size_t i = std::isnan(v) ? bounds_.size()
                           : std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

uint64_t Histogram::count() const {
  uint64_t n = 0;
  for (const auto& b : buckets_) n += b.load(std::memory_order_relaxed);
  return n;
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> counts;
  counts.reserve(buckets_.size());
  uint64_t n = 0;
  for (const auto& b : buckets_) {
    n += b.load(std::memory_order_relaxed);
    counts.push_back(n);
  }
  return counts;
}

// ---- Families

void MetricFamily::RenderHeader(std::string* out) const {
  if (!help_.empty()) {
    *out += "# HELP ";
    *out += name_;
    *out += ' ';
    AppendEscaped(out, help_, /*quote=*/false);
    *out += '\n';
  }
  *out += "# TYPE ";
  *out += name_;
  *out += ' ';
  *out += MetricTypeName(type_);
  *out += '\n';
}

void MetricFamily::RenderSeries(std::string* out, std::string_view suffix,
                                const LabelValues& values, std::string_view le) const {
  *out += name_;
  *out += suffix;
  if (label_names_.empty() && le.empty()) return;
  *out += '{';
  for (size_t i = 0; i < label_names_.size(); ++i) {
    if (i > 0) *out += ',';
    *out += label_names_[i];
    *out += "=\"";
    AppendEscaped(out, values[i], /*quote=*/true);
    *out += '"';
  }
  if (!le.empty()) {
    if (!label_names_.empty()) *out += ',';
    *out += "le=\"";
    *out += le;
    *out += '"';
  }
  *out += '}';
}

CounterFamily::CounterFamily(std::string name, std::string help, std::vector<std::string> labels)
    : MetricFamily(std::move(name), std::move(help), std::move(labels), MetricType::kCounter) {
  if (label_names().empty()) With({});
}

Counter& CounterFamily::With(LabelValues values) {
  return GetOrCreate(mu_, children_, label_names().size(), std::move(values),
                     [] { return std::make_unique<Counter>(); });
}

void CounterFamily::Render(std::string* out) const {
  std::lock_guard lock(mu_);
  if (children_.empty()) return;
  RenderHeader(out);
  for (const auto& [values, counter] : children_) {
    RenderSeries(out, "", values);
    *out += ' ';
    AppendNumber(out, counter->value());
    *out += '\n';
  }
}

GaugeFamily::GaugeFamily(std::string name, std::string help, std::vector<std::string> labels)
    : MetricFamily(std::move(name), std::move(help), std::move(labels), MetricType::kGauge) {
  if (label_names().empty()) With({});
}

Gauge& GaugeFamily::With(LabelValues values) {
  return GetOrCreate(mu_, children_, label_names().size(), std::move(values),
                     [] { return std::make_unique<Gauge>(); });
}

void GaugeFamily::SetCallback(LabelValues values, std::function<double()> fn) {
  values.resize(label_names().size());
  With(values);  // so that the child renders even if nothing Sets it
  std::lock_guard lock(mu_);
  if (fn) {
    callbacks_[std::move(values)] = std::move(fn);
  } else {
    callbacks_.erase(values);
  }
}

void GaugeFamily::Render(std::string* out) const {
  std::lock_guard lock(mu_);
  if (children_.empty()) return;
  RenderHeader(out);
  for (const auto& [values, gauge] : children_) {
    double v = gauge->value();
    if (auto cb = callbacks_.find(values); cb != callbacks_.end()) {
      try {
        v = cb->second();
      } catch (...) {
        v = std::nan("");
      }
    }
    RenderSeries(out, "", values);
    *out += ' ';
    AppendNumber(out, v);
    *out += '\n';
  }
}

HistogramFamily::HistogramFamily(std::string name, std::string help,
                                 std::vector<std::string> labels, std::vector<double> buckets)
    : MetricFamily(std::move(name), std::move(help), std::move(labels), MetricType::kHistogram),
      buckets_(std::move(buckets)) {
  if (label_names().empty()) With({});
}

Histogram& HistogramFamily::With(LabelValues values) {
  return GetOrCreate(mu_, children_, label_names().size(), std::move(values),
                     [this] { return std::make_unique<Histogram>(&buckets_); });
}

void HistogramFamily::Render(std::string* out) const {
  std::lock_guard lock(mu_);
  if (children_.empty()) return;
  RenderHeader(out);
  std::vector<std::string> les;
  for (double b : buckets_) les.push_back(FormatNumber(b));
  les.push_back("+Inf");
  for (const auto& [values, histogram] : children_) {
    double sum = histogram->sum();
    std::vector<uint64_t> counts = histogram->CumulativeCounts();
    for (size_t i = 0; i < counts.size(); ++i) {
      RenderSeries(out, "_bucket", values, les[i]);
      *out += ' ';
      *out += std::to_string(counts[i]);
      *out += '\n';
    }
    RenderSeries(out, "_sum", values);
    *out += ' ';
    AppendNumber(out, sum);
    *out += '\n';
    RenderSeries(out, "_count", values);
    *out += ' ';
    *out += std::to_string(counts.back());
    *out += '\n';
  }
}

// ---- Registry

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

Result<MetricFamily*> MetricsRegistry::Find(const std::string& name,
                                            const std::vector<std::string>& label_names,
                                            MetricType type,
                                            const std::vector<double>* buckets) const {
  if (!IsValidMetricName(name)) {
    return Status::InvalidInput("metric name '" + name +
                                "' is not valid (expected [a-zA-Z_:][a-zA-Z0-9_:]*)");
  }
  std::set<std::string_view> seen;
  for (const std::string& label : label_names) {
    if (!IsValidLabelName(label)) {
      return Status::InvalidInput("metric " + name + ": label name '" + label +
                                  "' is not valid (expected [a-zA-Z_][a-zA-Z0-9_]*, not "
                                  "starting with __)");
    }
    if (type == MetricType::kHistogram && label == "le") {
      return Status::InvalidInput("metric " + name + ": label name 'le' is reserved for buckets");
    }
    if (!seen.insert(label).second) {
      return Status::InvalidInput("metric " + name + ": label name '" + label + "' repeated");
    }
  }
  std::vector<std::string> samples = SampleNames(name, type);
  for (const auto& family : families_) {
    if (family->name() == name) {
      bool same = family->type() == type && family->label_names() == label_names &&
                  (type != MetricType::kHistogram ||
                   static_cast<const HistogramFamily*>(family.get())->buckets() == *buckets);
      if (!same) {
        return Status::AlreadyExists("metric " + name + " is already registered as a " +
                                     MetricTypeName(family->type()) +
                                     " with other labels or buckets");
      }
      return family.get();
    }
    for (const std::string& taken : SampleNames(family->name(), family->type())) {
      if (std::find(samples.begin(), samples.end(), taken) != samples.end()) {
        return Status::AlreadyExists("metric " + name + " would render samples named " + taken +
                                     ", which " + MetricTypeName(family->type()) + " " +
                                     family->name() + " renders");
      }
    }
  }
  return nullptr;
}

Result<CounterFamily*> MetricsRegistry::AddCounter(const std::string& name, const std::string& help,
                                                   const std::vector<std::string>& label_names) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto existing, Find(name, label_names, MetricType::kCounter, nullptr));
  if (existing != nullptr) return static_cast<CounterFamily*>(existing);
  families_.push_back(std::make_unique<CounterFamily>(name, help, label_names));
  return static_cast<CounterFamily*>(families_.back().get());
}

Result<GaugeFamily*> MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                                               const std::vector<std::string>& label_names) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto existing, Find(name, label_names, MetricType::kGauge, nullptr));
  if (existing != nullptr) return static_cast<GaugeFamily*>(existing);
  families_.push_back(std::make_unique<GaugeFamily>(name, help, label_names));
  return static_cast<GaugeFamily*>(families_.back().get());
}

Result<HistogramFamily*> MetricsRegistry::AddHistogram(const std::string& name,
                                                       const std::string& help,
                                                       const std::vector<std::string>& label_names,
                                                       std::vector<double> buckets) {
  if (!buckets.empty() && std::isinf(buckets.back()) && buckets.back() > 0) buckets.pop_back();
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (std::isnan(buckets[i]) || (i > 0 && !(buckets[i - 1] < buckets[i]))) {
      return Status::InvalidInput("metric " + name + ": bucket " + std::to_string(i) + " is " +
                                  FormatNumber(buckets[i]) +
                                  "; bounds must be strictly increasing and not NaN");
    }
  }
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto existing, Find(name, label_names, MetricType::kHistogram, &buckets));
  if (existing != nullptr) return static_cast<HistogramFamily*>(existing);
  families_.push_back(
      std::make_unique<HistogramFamily>(name, help, label_names, std::move(buckets)));
  return static_cast<HistogramFamily*>(families_.back().get());
}

std::string MetricsRegistry::Render() const {
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& family : families_) family->Render(&out);
  return out;
}

}  // namespace detops
