// The monitoring policy: the signal catalogue, levels, and the YAML reader.

#include "monitor/policy.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <variant>

namespace detops {
namespace {

constexpr double kOff = std::numeric_limits<double>::infinity();

// Which share of the latency SLO, and of the error-rate SLO, warns: a look
// is due before the objective is broken; breaking it escalates.
constexpr double kLatencyWarnShare = 0.8;
constexpr double kErrorWarnShare = 0.5;

const char* const kFamilies[] = {"input",    "embedding", "prediction", "service",
                                 "accuracy", "kpi",       "data"};

Thresholds Levels(double warn, double retrain, double escalate, bool lower_is_worse = false) {
  return {warn, retrain, escalate, lower_is_worse};
}

Thresholds LatencyThresholds(double slo_ms) {
  return Levels(kLatencyWarnShare * slo_ms, kOff, slo_ms);
}
Thresholds ErrorRateThresholds(double slo_rate) {
  return Levels(kErrorWarnShare * slo_rate, kOff, slo_rate);
}

std::vector<SignalInfo> BuildSignals() {
  const Thresholds psi = Levels(0.1, 0.25, 2.0);
  const Thresholds drop = Levels(0.05, 0.1, 0.2);
  const MonitorPolicy defaults;
  std::vector<SignalInfo> s;
  auto input = [&](const char* what, const char* description) {
    s.push_back({std::string("input.") + what, "psi", description, psi});
  };
  input("brightness", "mean luma of the input images (PSI against the reference profile)");
  input("contrast", "standard deviation of luma of the input images (PSI)");
  input("sharpness", "variance of the Laplacian of the input images (PSI)");
  input("mean_b", "mean blue channel of the input images (PSI)");
  input("mean_g", "mean green channel of the input images (PSI)");
  input("mean_r", "mean red channel of the input images (PSI)");
  input("width", "width of the input images in pixels (PSI)");
  input("height", "height of the input images in pixels (PSI)");
  // Measured (docs/monitoring-statistics.md): warn sits above the p99 of
  // same-distribution windows; retrain and escalate are the MMD^2 of a 0.5
  // and a 1.5 standard-deviation shift of every feature, where PSI reaches
  // its own retrain (0.25) and escalate (2.0) on a normal feature.
  s.push_back({"embedding.mmd", "mmd2",
               "the model's image embeddings (unbiased MMD^2 against the reference embeddings)",
               Levels(0.01, 0.07, 0.45)});
  s.push_back({"prediction.detections_per_image", "psi", "detections per image (PSI)", psi});
  s.push_back({"prediction.score", "psi", "confidence scores of the detections (PSI)", psi});
  s.push_back({"prediction.low_confidence_share", "abs_change",
               "share of low-confidence detections (absolute change from the reference)",
               Levels(0.1, 0.2, 0.4)});
  s.push_back(
      {"prediction.class_mix", "psi", "share of each predicted class (categorical PSI)", psi});
  s.push_back({"service.latency_p95_ms", "p95_ms",
               "95th percentile of request latency in ms (derived from slo.latency_p95_ms)",
               LatencyThresholds(defaults.slo_latency_p95_ms)});
  s.push_back({"service.error_rate", "rate", "5xx answers / requests (derived from slo.error_rate)",
               ErrorRateThresholds(defaults.slo_error_rate)});
  s.push_back({"service.log_drop_rate", "rate",
               "prediction records the log dropped / records (the store fell behind)",
               Levels(0.001, kOff, 0.05)});
  s.push_back({"accuracy.map50", "drop",
               "registered test mAP50 minus the mAP50 on labelled feedback", drop});
  s.push_back(
      {"accuracy.f1", "drop", "registered test F1 minus the F1 on labelled feedback", drop});
  // A business figure: off until the owner of the KPI sets its floor.
  s.push_back({"kpi.automation_rate", "rate",
               "share of inspections settled without a person (every detection >= kpi.confident)",
               Levels(kOff, kOff, kOff, true)});
  // Observed by the controller when a batch from the inbox fails
  // validation (orchestrate/), not scored per window: nothing was trained,
  // a person should look at the data.
  s.push_back({"data.validation", "failed_expectations",
               "error-level expectations that a batch of new labelled data failed",
               Levels(1, kOff, kOff)});
  return s;
}

std::string Num(double v) {
  if (std::isinf(v)) return "off";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// ---- the YAML reader ----

class Reader {
 public:
  explicit Reader(const std::string& source) : source_(source) {}

  Status Error(const YAML::Node& n, const std::string& what) const { return Error(n.Mark(), what); }
  Status Error(const YAML::Mark& mark, const std::string& what) const {
    return Status::InvalidInput(source_ + ":" + std::to_string(mark.line + 1) + ": " + what);
  }

  Result<double> Number(const YAML::Node& v, const std::string& key, double min, double max) const {
    ASSIGN_OR_RETURN(std::string text, Text(v, key, "a number"));
    double d = 0;
    try {
      size_t used = 0;
      d = std::stod(text, &used);
      if (used != text.size() || !std::isfinite(d)) throw std::exception();
    } catch (const std::exception&) {
      return Error(v, key + ": expected a number, got '" + text + "'");
    }
    if (d < 0) return Error(v, key + " must not be negative, got " + text);
    if (d < min) return Error(v, key + " must be at least " + Num(min) + ", got " + text);
    if (d > max) return Error(v, key + " must be at most " + Num(max) + ", got " + text);
    return d;
  }

  Result<int> Int(const YAML::Node& v, const std::string& key, int min) const {
    ASSIGN_OR_RETURN(std::string text, Text(v, key, "an integer"));
    long long n = 0;
    try {
      size_t used = 0;
      n = std::stoll(text, &used);
      if (used != text.size()) throw std::exception();
    } catch (const std::exception&) {
      return Error(v, key + ": expected an integer, got '" + text + "'");
    }
    if (n < min) {
      return Error(v, key + " must be at least " + std::to_string(min) + ", got " + text);
    }
    if (n > std::numeric_limits<int>::max()) return Error(v, key + " is too large: " + text);
    return static_cast<int>(n);
  }

  Result<bool> Bool(const YAML::Node& v, const std::string& key) const {
    bool b = false;
    if (!v.IsScalar() || !YAML::convert<bool>::decode(v, b)) {
      return Error(v, key + ": expected true or false");
    }
    return b;
  }

  Result<std::string> Text(const YAML::Node& v, const std::string& key,
                           const std::string& expected) const {
    if (v.IsNull()) return Error(v, key + ": expected " + expected + ", got nothing");
    if (!v.IsScalar()) return Error(v, key + ": expected " + expected + ", got a collection");
    return v.Scalar();
  }

 private:
  const std::string& source_;
};

// One key of a section and where its value goes.
struct Field {
  const char* key;
  std::variant<int*, double*, bool*, std::string*> target;
  double min = 0;  // the smallest value allowed (ints and numbers)
  double max = std::numeric_limits<double>::max();
};

std::string KeyList(const std::vector<Field>& fields) {
  std::string s;
  for (const Field& f : fields) s += (s.empty() ? "" : ", ") + std::string(f.key);
  return s;
}

Status ReadField(const Reader& r, const YAML::Node& v, const std::string& key, const Field& f) {
  return std::visit(
      [&](auto* target) -> Status {
        using T = std::remove_pointer_t<decltype(target)>;
        if constexpr (std::is_same_v<T, int>) {
          ASSIGN_OR_RETURN(*target, r.Int(v, key, static_cast<int>(f.min)));
        } else if constexpr (std::is_same_v<T, double>) {
          ASSIGN_OR_RETURN(*target, r.Number(v, key, f.min, f.max));
        } else if constexpr (std::is_same_v<T, bool>) {
          ASSIGN_OR_RETURN(*target, r.Bool(v, key));
        } else {
          ASSIGN_OR_RETURN(*target, r.Text(v, key, "text"));
        }
        return Status::Ok();
      },
      f.target);
}

// Reads a mapping of `fields` found under `section`.
Status ReadSection(const Reader& r, const YAML::Node& node, const std::string& section,
                   const std::vector<Field>& fields) {
  if (!node.IsMap()) {
    return r.Error(node, section + " must be a mapping (keys: " + KeyList(fields) + ")");
  }
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    auto f =
        std::find_if(fields.begin(), fields.end(), [&](const Field& x) { return key == x.key; });
    if (f == fields.end()) {
      return r.Error(kv.first,
                     "unknown key '" + section + "." + key + "' (known: " + KeyList(fields) + ")");
    }
    RETURN_IF_ERROR(ReadField(r, kv.second, section + "." + key, *f));
  }
  return Status::Ok();
}

// ---- thresholds ----

bool IsFamily(const std::string& key) {
  return std::find(std::begin(kFamilies), std::end(kFamilies), key) != std::end(kFamilies);
}

std::string KnownSignalKeys() {
  std::string s;
  for (const char* f : kFamilies) s += (s.empty() ? "" : ", ") + std::string(f);
  for (const SignalInfo& info : MonitorSignals()) s += ", " + info.name;
  return s;
}

// Applies one `{warn: .., retrain: .., escalate: ..}` entry to the signals
// it names (one, or a family).
Status ApplyThresholds(const Reader& r, const YAML::Node& entry, const std::string& key,
                       const std::vector<std::string>& signals, MonitorPolicy& policy) {
  const std::string where = "thresholds." + key;
  if (!entry.IsMap()) {
    return r.Error(entry, where + " must be a mapping (keys: warn, retrain, escalate)");
  }
  for (const auto& kv : entry) {
    const std::string level = kv.first.as<std::string>();
    const std::string field = where + "." + level;
    if (level == "lower_is_worse") {
      // Accepted so that MonitorPolicyToJson reads back, but a signal's
      // direction is what its statistic means: it cannot change.
      ASSIGN_OR_RETURN(bool lower, r.Bool(kv.second, field));
      for (const std::string& s : signals) {
        if (lower != policy.thresholds[s].lower_is_worse) {
          return r.Error(kv.second, field + ": " + s + " is worse when " +
                                        (lower ? "higher" : "lower") +
                                        "; a signal's direction cannot change");
        }
      }
      continue;
    }
    double Thresholds::*slot = level == "warn"       ? &Thresholds::warn
                               : level == "retrain"  ? &Thresholds::retrain
                               : level == "escalate" ? &Thresholds::escalate
                                                     : nullptr;
    if (!slot) {
      return r.Error(kv.first, "unknown key '" + field + "' (known: warn, retrain, escalate)");
    }
    double value = kOff;
    if (!(kv.second.IsScalar() && kv.second.Scalar() == "off")) {
      ASSIGN_OR_RETURN(value, r.Number(kv.second, field, 0, std::numeric_limits<double>::max()));
    }
    for (const std::string& s : signals) policy.thresholds[s].*slot = value;
  }
  return Status::Ok();
}

// "" when the levels are in order (off levels are skipped), else why not.
std::string OrderProblem(const Thresholds& t) {
  const std::pair<const char*, double> levels[] = {
      {"warn", t.warn}, {"retrain", t.retrain}, {"escalate", t.escalate}};
  const std::pair<const char*, double>* last = nullptr;
  for (const auto& level : levels) {
    if (std::isinf(level.second)) continue;
    if (last && (t.lower_is_worse ? level.second > last->second : level.second < last->second)) {
      return std::string(last->first) + " (" + Num(last->second) + ") must not be " +
             (t.lower_is_worse ? "below " : "above ") + level.first + " (" + Num(level.second) +
             ")" + (t.lower_is_worse ? " when lower is worse" : "");
    }
    last = &level;
  }
  return "";
}

// Families first, then exact names, whatever their order in the file, so
// that `input.brightness` refines `input` however the file is written.
Status ReadThresholds(const Reader& r, const YAML::Node& node, MonitorPolicy& policy) {
  if (!node.IsMap()) {
    return r.Error(node, "thresholds must be a mapping of signal: {warn, retrain, escalate}");
  }
  // Signal -> where the entry that set it last is (a Mark, not a Node:
  // assigning a Node to another rebinds what the tree holds).
  std::map<std::string, YAML::Mark> last_entry;
  for (bool families : {true, false}) {
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      if (IsFamily(key) != families) continue;
      std::vector<std::string> signals;
      if (families) {
        for (const SignalInfo& s : MonitorSignals()) {
          if (s.name.rfind(key + ".", 0) == 0) signals.push_back(s.name);
        }
      } else if (FindSignal(key)) {
        signals.push_back(key);
      } else {
        return r.Error(kv.first, "thresholds: unknown signal '" + key +
                                     "' (known: " + KnownSignalKeys() + ")");
      }
      RETURN_IF_ERROR(ApplyThresholds(r, kv.second, key, signals, policy));
      for (const std::string& s : signals) last_entry[s] = kv.second.Mark();
    }
  }
  for (const auto& [signal, entry] : last_entry) {
    std::string problem = OrderProblem(policy.thresholds[signal]);
    if (!problem.empty()) return r.Error(entry, "thresholds." + signal + ": " + problem);
  }
  return Status::Ok();
}

// ---- the whole policy ----

Status ReadPolicy(const Reader& r, const YAML::Node& root, MonitorPolicy& p) {
  const std::map<std::string, std::vector<Field>> sections = {
      {"window",
       {{"size", &p.window_size, 1},
        {"min_samples", &p.min_samples, 1},
        {"seconds", &p.window_seconds, 1}}},
      {"embedding",
       {{"permutations", &p.mmd_permutations, 1}, {"max_samples", &p.mmd_max_samples, 2}}},
      {"slo", {{"latency_p95_ms", &p.slo_latency_p95_ms}, {"error_rate", &p.slo_error_rate, 0, 1}}},
      {"accuracy", {{"min_labels", &p.min_labels, 1}}},
      {"kpi", {{"confident", &p.confident, 0, 1}, {"uncertain", &p.uncertain, 0, 1}}},
      {"predictive",
       {{"enabled", &p.predict},
        {"windows", &p.trend_windows, 2},
        {"horizon", &p.horizon_windows, 1},
        {"min_windows", &p.min_trend_windows, 2}}},
      {"actions",
       {{"rollback", &p.auto_rollback},
        {"rollback_slo_windows", &p.rollback_slo_windows, 1},
        {"rollback_accuracy_drop", &p.rollback_accuracy_drop, 0, 1},
        {"rollback_after_promotion_hours", &p.rollback_after_promotion_hours},
        {"freeze_on_escalate", &p.freeze_on_escalate}}},
      {"notify",
       {{"webhook", &p.webhook},
        {"command", &p.command},
        {"retries", &p.notify_retries, 0},
        {"backoff_ms", &p.notify_backoff_ms, 0},
        {"timeout_ms", &p.notify_timeout_ms, 1}}},
  };
  const std::vector<Field> scalars = {{"alpha", &p.alpha},
                                      {"resolve_after_ok_windows", &p.resolve_after_ok_windows, 1}};
  auto known = [&] {
    std::string s = "thresholds";
    for (const auto& [name, fields] : sections) s += ", " + name;
    return s + ", " + KeyList(scalars);
  };
  std::optional<YAML::Node> thresholds;
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    auto scalar =
        std::find_if(scalars.begin(), scalars.end(), [&](const Field& f) { return key == f.key; });
    if (key == "thresholds") {
      thresholds.emplace(kv.second);  // read last: the service levels derive from slo
    } else if (auto s = sections.find(key); s != sections.end()) {
      RETURN_IF_ERROR(ReadSection(r, kv.second, key, s->second));
    } else if (scalar != scalars.end()) {
      RETURN_IF_ERROR(ReadField(r, kv.second, key, *scalar));
    } else {
      return r.Error(kv.first, "unknown key '" + key + "' (known: " + known() + ")");
    }
  }
  if (root["alpha"] && !(p.alpha > 0 && p.alpha < 1)) {
    return r.Error(root["alpha"], "alpha must lie strictly between 0 and 1, got " + Num(p.alpha));
  }
  if (p.uncertain > p.confident) {
    return r.Error(root["kpi"], "kpi.uncertain (" + Num(p.uncertain) +
                                    ") must not be above kpi.confident (" + Num(p.confident) + ")");
  }
  if (p.min_trend_windows > p.trend_windows) {
    return r.Error(root["predictive"], "predictive.min_windows (" +
                                           std::to_string(p.min_trend_windows) +
                                           ") must not exceed predictive.windows (" +
                                           std::to_string(p.trend_windows) + ")");
  }
  if (!p.webhook.empty() && p.webhook.rfind("http://", 0) != 0 &&
      p.webhook.rfind("https://", 0) != 0) {
    return r.Error(root["notify"]["webhook"],
                   "notify.webhook must start with http:// or https://, got '" + p.webhook + "'");
  }
  p.thresholds["service.latency_p95_ms"] = LatencyThresholds(p.slo_latency_p95_ms);
  p.thresholds["service.error_rate"] = ErrorRateThresholds(p.slo_error_rate);
  if (thresholds) RETURN_IF_ERROR(ReadThresholds(r, *thresholds, p));
  return Status::Ok();
}

Json ThresholdsToJson(const Thresholds& t) {
  auto level = [](double v) { return std::isinf(v) ? Json("off") : Json(v); };
  return {{"warn", level(t.warn)},
          {"retrain", level(t.retrain)},
          {"escalate", level(t.escalate)},
          {"lower_is_worse", t.lower_is_worse}};
}

}  // namespace

const char* LevelName(Level level) {
  switch (level) {
    case Level::kOk:
      return "ok";
    case Level::kWarn:
      return "warn";
    case Level::kRetrain:
      return "retrain";
    case Level::kEscalate:
      return "escalate";
  }
  return "ok";
}

std::optional<Level> ParseLevel(std::string_view name) {
  for (Level l : {Level::kOk, Level::kWarn, Level::kRetrain, Level::kEscalate}) {
    if (name == LevelName(l)) return l;
  }
  return std::nullopt;
}

Level Classify(const Thresholds& t, double value) {
  if (std::isnan(value)) return Level::kOk;
  auto reached = [&](double threshold) {
    if (std::isinf(threshold)) return false;  // off, whichever the direction
    return t.lower_is_worse ? value <= threshold : value >= threshold;
  };
  if (reached(t.escalate)) return Level::kEscalate;
  if (reached(t.retrain)) return Level::kRetrain;
  if (reached(t.warn)) return Level::kWarn;
  return Level::kOk;
}

double ThresholdOf(const Thresholds& t, Level level) {
  switch (level) {
    case Level::kRetrain:
      return t.retrain;
    case Level::kEscalate:
      return t.escalate;
    default:
      return t.warn;
  }
}

const std::vector<SignalInfo>& MonitorSignals() {
  static const std::vector<SignalInfo> signals = BuildSignals();
  return signals;
}

const SignalInfo* FindSignal(std::string_view name) {
  for (const SignalInfo& s : MonitorSignals()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

MonitorPolicy DefaultMonitorPolicy() {
  MonitorPolicy p;
  for (const SignalInfo& s : MonitorSignals()) p.thresholds[s.name] = s.defaults;
  return p;
}

Result<MonitorPolicy> ParseMonitorPolicy(std::string_view yaml, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return Status::InvalidInput(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  MonitorPolicy policy = DefaultMonitorPolicy();
  if (root.IsNull()) return policy;
  const Reader r(source);
  if (!root.IsMap()) return r.Error(root, "a monitoring policy must be a mapping");
  try {
    RETURN_IF_ERROR(ReadPolicy(r, root, policy));
  } catch (const YAML::Exception& e) {
    return Status::InvalidInput(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return policy;
}

Result<MonitorPolicy> LoadMonitorPolicy(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    return Status::NotFound("monitoring policy " + file.string() + ": no such file");
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in || std::filesystem::is_directory(file, ec)) {
    return Status::IOError("monitoring policy " + file.string() + ": cannot be read");
  }
  return ParseMonitorPolicy(text.str(), file.string());
}

Json MonitorPolicyToJson(const MonitorPolicy& p) {
  Json thresholds = Json::object();
  for (const auto& [name, t] : p.thresholds) thresholds[name] = ThresholdsToJson(t);
  return {
      {"window",
       {{"size", p.window_size}, {"min_samples", p.min_samples}, {"seconds", p.window_seconds}}},
      {"alpha", p.alpha},
      {"embedding", {{"permutations", p.mmd_permutations}, {"max_samples", p.mmd_max_samples}}},
      {"thresholds", thresholds},
      {"slo", {{"latency_p95_ms", p.slo_latency_p95_ms}, {"error_rate", p.slo_error_rate}}},
      {"accuracy", {{"min_labels", p.min_labels}}},
      {"kpi", {{"confident", p.confident}, {"uncertain", p.uncertain}}},
      {"predictive",
       {{"enabled", p.predict},
        {"windows", p.trend_windows},
        {"horizon", p.horizon_windows},
        {"min_windows", p.min_trend_windows}}},
      {"resolve_after_ok_windows", p.resolve_after_ok_windows},
      {"actions",
       {{"rollback", p.auto_rollback},
        {"rollback_slo_windows", p.rollback_slo_windows},
        {"rollback_accuracy_drop", p.rollback_accuracy_drop},
        {"rollback_after_promotion_hours", p.rollback_after_promotion_hours},
        {"freeze_on_escalate", p.freeze_on_escalate}}},
      {"notify",
       {{"webhook", p.webhook},
        {"command", p.command},
        {"retries", p.notify_retries},
        {"backoff_ms", p.notify_backoff_ms},
        {"timeout_ms", p.notify_timeout_ms}}},
  };
}

}  // namespace detops
