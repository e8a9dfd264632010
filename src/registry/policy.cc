// Promotion policies (YAML) and the gate check: pure functions.

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "registry/registry.h"

namespace detops {
namespace {

std::string Where(const std::string& source, const YAML::Node& n) {
  return source + ":" + std::to_string(n.Mark().line + 1);
}

std::string Fixed(double v, int digits) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(digits);
  out << v;
  return out.str();
}

Result<double> Number(const std::string& source, const YAML::Node& v, const std::string& key) {
  if (!v.IsScalar())
    return Status::InvalidInput(Where(source, v) + ": " + key + " must be a number");
  const std::string text = v.Scalar();
  try {
    size_t used = 0;
    double d = std::stod(text, &used);
    if (used != text.size() || !std::isfinite(d)) throw std::exception();
    if (d < 0) {
      return Status::InvalidInput(Where(source, v) + ": " + key + " must not be negative, got " +
                                  text);
    }
    return d;
  } catch (const std::exception&) {
    return Status::InvalidInput(Where(source, v) + ": " + key + ": expected a number, got '" +
                                text + "'");
  }
}

Status ReadMetricMap(const std::string& source, const YAML::Node& node, const std::string& key,
                     std::map<std::string, double>& out) {
  if (!node.IsMap()) {
    return Status::InvalidInput(Where(source, node) + ": " + key +
                                " must be a mapping of metric: number");
  }
  out.clear();  // a map given replaces the default one
  for (const auto& kv : node) {
    std::string metric = kv.first.as<std::string>();
    if (metric.rfind("test/", 0) == 0) metric = metric.substr(5);
    ASSIGN_OR_RETURN(out[metric], Number(source, kv.second, key + "." + metric));
  }
  return Status::Ok();
}

// Applies the keys of `node` to `into`; `targets` allows the per-target
// sections (only at the top level).
Status ReadTarget(const std::string& source, const YAML::Node& node, bool targets,
                  PromotionPolicy& policy, TargetPolicy* only) {
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    auto each = [&](auto&& apply) -> Status {
      if (only) return apply(*only);
      RETURN_IF_ERROR(apply(policy.staging));
      return apply(policy.production);
    };
    if (targets && (key == kStaging || key == kProduction)) {
      if (!v.IsMap()) {
        return Status::InvalidInput(Where(source, v) + ": " + key + " must be a mapping");
      }
      continue;  // applied after the shared keys
    }
    if (key == "floors" || key == "max_regression") {
      RETURN_IF_ERROR(each([&](TargetPolicy& t) {
        return ReadMetricMap(source, v, key, key == "floors" ? t.floors : t.max_regression);
      }));
    } else if (key == "max_latency_p95_ms") {
      ASSIGN_OR_RETURN(double ms, Number(source, v, key));
      RETURN_IF_ERROR(each([&](TargetPolicy& t) {
        t.max_latency_p95_ms = ms;
        return Status::Ok();
      }));
    } else if (key == "require_validation") {
      bool b = false;
      if (!v.IsScalar() || !YAML::convert<bool>::decode(v, b)) {
        return Status::InvalidInput(Where(source, v) + ": " + key + ": expected true or false");
      }
      RETURN_IF_ERROR(each([&](TargetPolicy& t) {
        t.require_validation = b;
        return Status::Ok();
      }));
    } else {
      return Status::InvalidInput(Where(source, kv.first) + ": unknown key '" + key +
                                  "' (known: floors, max_regression, max_latency_p95_ms, "
                                  "require_validation" +
                                  (targets ? ", staging, production)" : ")"));
    }
  }
  return Status::Ok();
}

}  // namespace

bool IsKnownAlias(std::string_view alias) { return alias == kStaging || alias == kProduction; }

PromotionPolicy DefaultPromotionPolicy() {
  PromotionPolicy p;
  p.staging.floors = {{"map50", 0.10}};
  p.staging.max_latency_p95_ms = 250;
  p.production.floors = {{"map50", 0.25}, {"recall", 0.25}};
  p.production.max_regression = {{"map50", 0.01}, {"map", 0.01}};
  p.production.max_latency_p95_ms = 250;
  return p;
}

Result<PromotionPolicy> ParsePromotionPolicy(std::string_view yaml, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return Status::InvalidInput(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  PromotionPolicy policy = DefaultPromotionPolicy();
  if (root.IsNull()) return policy;
  if (!root.IsMap()) {
    return Status::InvalidInput(Where(source, root) + ": a policy must be a mapping");
  }
  try {
    RETURN_IF_ERROR(ReadTarget(source, root, true, policy, nullptr));
    for (const char* target : {kStaging, kProduction}) {
      if (root[target]) {
        TargetPolicy& t = target == std::string(kStaging) ? policy.staging : policy.production;
        RETURN_IF_ERROR(ReadTarget(source, root[target], false, policy, &t));
      }
    }
  } catch (const YAML::Exception& e) {
    return Status::InvalidInput(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return policy;
}

Result<PromotionPolicy> LoadPromotionPolicy(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return Status::NotFound("policy file " + file.string() + " cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  return ParsePromotionPolicy(text.str(), file.string());
}

bool GateReport::passed() const {
  for (const GateCheck& c : checks) {
    if (!c.passed) return false;
  }
  return true;
}

GateReport CheckGates(const TargetPolicy& policy, const GateInputs& in) {
  GateReport r;
  for (const auto& [metric, floor] : policy.floors) {
    GateCheck c{"floor " + metric, ">= " + Fixed(floor, 3), "missing", false, -floor};
    if (auto it = in.candidate.find(metric); it != in.candidate.end()) {
      c.actual = Fixed(it->second, 3);
      c.margin = it->second - floor;
      c.passed = c.margin >= 0;
    }
    r.checks.push_back(c);
  }
  if (in.production) {
    for (const auto& [metric, tolerance] : policy.max_regression) {
      GateCheck c{"regression " + metric, "", "missing", false, 0};
      auto cand = in.candidate.find(metric);
      auto prod = in.production->find(metric);
      if (prod == in.production->end()) {
        // Nothing to regress from: production never measured it.
        c.required = "no drop > " + Fixed(tolerance, 3) + " vs " + in.production_ref;
        c.actual = "production lacks it";
        c.passed = true;
      } else {
        c.required = ">= " + Fixed(prod->second - tolerance, 3) + " (" + in.production_ref + " " +
                     Fixed(prod->second, 3) + " - " + Fixed(tolerance, 3) + ")";
        if (cand != in.candidate.end()) {
          c.actual = Fixed(cand->second, 3);
          c.margin = cand->second - (prod->second - tolerance);
          c.passed = c.margin >= 0;
        } else {
          c.margin = -(prod->second - tolerance);
        }
      }
      r.checks.push_back(c);
    }
  }
  if (policy.max_latency_p95_ms > 0) {
    GateCheck c{"latency p95", "<= " + Fixed(policy.max_latency_p95_ms, 1) + " ms", "missing",
                false, -policy.max_latency_p95_ms};
    if (auto it = in.candidate.find("latency_p95_ms"); it != in.candidate.end()) {
      c.actual = Fixed(it->second, 1) + " ms";
      c.margin = policy.max_latency_p95_ms - it->second;
      c.passed = c.margin >= 0;
    }
    r.checks.push_back(c);
  }
  if (policy.require_validation) {
    // Warnings are findings to read, not a failed expectation.
    GateCheck c{"dataset validation", "passed (warnings allowed)",
                in.dataset_validation.empty() ? "unknown" : in.dataset_validation, false, 0};
    c.passed = in.dataset_validation == "passed" || in.dataset_validation == "warnings";
    r.checks.push_back(c);
  }
  return r;
}

Json GateReportToJson(const GateReport& report) {
  Json checks = Json::array();
  for (const GateCheck& c : report.checks) {
    checks.push_back({{"gate", c.gate},
                      {"required", c.required},
                      {"actual", c.actual},
                      {"passed", c.passed},
                      {"margin", c.margin}});
  }
  return {{"passed", report.passed()}, {"checks", checks}};
}

GateReport GateReportFromJson(const Json& j) {
  GateReport r;
  if (!j.is_object() || !j.contains("checks")) return r;
  for (const Json& c : j.at("checks")) {
    r.checks.push_back({c.value("gate", ""), c.value("required", ""), c.value("actual", ""),
                        c.value("passed", false), c.value("margin", 0.0)});
  }
  return r;
}

}  // namespace detops
