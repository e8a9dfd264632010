// The step table and what the steps share.

#include "orchestrate/steps.h"

#include <cstdlib>
#include <sstream>

#include "orchestrate/pipeline_spec.h"
#include "orchestrate/steps_internal.h"

namespace detops {

std::string StepContext::Get(const std::string& key, const std::string& fallback) const {
  auto it = with.find(key);
  return it == with.end() || it->second.empty() ? fallback : it->second;
}

Result<std::string> StepContext::Require(const std::string& key) const {
  auto it = with.find(key);
  if (it == with.end() || it->second.empty()) {
    return Status::InvalidInput("step " + step_id + ": input '" + key + "' is empty");
  }
  return it->second;
}

Result<double> StepContext::Number(const std::string& key, double fallback) const {
  auto it = with.find(key);
  if (it == with.end() || it->second.empty()) return fallback;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  if (end == it->second.c_str() || *end != '\0') {
    return Status::InvalidInput("step " + step_id + ": input '" + key +
                                "' must be a number; got '" + it->second + "'");
  }
  return v;
}

bool StepContext::Flag(const std::string& key, bool fallback) const {
  auto it = with.find(key);
  if (it == with.end() || it->second.empty()) return fallback;
  return Truthy(it->second);
}

std::vector<std::string> CommaList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::map<std::string, double> AugmentForSignals(const std::vector<std::string>& signals) {
  // What each input signal means for the photos, and the augmentation that
  // shows the model more of it (ml/augment.h's knobs).
  static const std::map<std::string, std::pair<std::string, double>> kShift = {
      {"input.brightness", {"dark", 0.3}},
      {"input.contrast", {"haze", 0.4}},
      {"input.sharpness", {"blur", 0.4}},
  };
  std::map<std::string, double> out;
  for (const std::string& s : signals) {
    if (auto it = kShift.find(s); it != kShift.end()) {
      out[it->second.first] = std::max(out[it->second.first], it->second.second);
    }
  }
  return out;
}

const std::vector<StepType>& BuiltinSteps() {
  static const std::vector<StepType> steps = [] {
    std::vector<StepType> v;
    v.push_back(ImportStep());
    v.push_back(ValidateStep());
    v.push_back(FeedbackExportStep());
    v.push_back(TrainStep());
    v.push_back(EvaluateStep());
    v.push_back(RegisterStep());
    v.push_back(PromoteStep());
    v.push_back(ShellStep());
    return v;
  }();
  return steps;
}

const StepType* FindStepType(const std::string& name) {
  for (const StepType& t : BuiltinSteps()) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace detops
