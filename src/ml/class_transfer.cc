#include "ml/class_transfer.h"

#include <algorithm>

#include "ml/weights.h"

namespace detops {
namespace {

std::string List(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return "{" + out + "}";
}

int IndexOf(const std::vector<std::string>& names, const std::string& name) {
  auto it = std::find(names.begin(), names.end(), name);
  return it == names.end() ? -1 : static_cast<int>(it - names.begin());
}

}  // namespace

int ClassTransferPlan::Kept() const {
  return static_cast<int>(
      std::count_if(source.begin(), source.end(), [](int s) { return s >= 0; }));
}

bool ClassTransferPlan::Identity() const {
  if (classes.size() != init_classes.size()) return false;
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] != static_cast<int>(i)) return false;
  }
  return true;
}

Result<ClassTransferPlan> PlanClassTransfer(const std::filesystem::path& init_weights,
                                            const std::vector<std::string>& classes,
                                            const std::map<std::string, std::string>& class_map) {
  ASSIGN_OR_RETURN(ModelConfig init, ml::ReadConfig(init_weights));
  ClassTransferPlan plan;
  plan.init_classes = init.classes;
  plan.classes = classes;
  auto sets = [&] {
    return " (the data's classes: " + List(classes) + "; the init model's: " + List(init.classes) +
           ")";
  };
  for (const auto& [to, from] : class_map) {
    if (IndexOf(classes, to) < 0) {
      return Status::InvalidInput("init class map: '" + to + "' is not a class of the data" +
                                  sets());
    }
    if (IndexOf(init.classes, from) < 0) {
      return Status::InvalidInput("init class map: '" + from + "' (for '" + to +
                                  "') is not a class of the init model" + sets());
    }
  }
  for (const std::string& c : classes) {
    auto it = class_map.find(c);
    plan.source.push_back(IndexOf(init.classes, it == class_map.end() ? c : it->second));
  }
  return plan;
}

std::string DescribeClassTransfer(const ClassTransferPlan& plan, const std::string& init) {
  std::string kept;
  for (size_t i = 0; i < plan.classes.size(); ++i) {
    if (plan.source[i] < 0) continue;
    kept += (kept.empty() ? "" : ", ") + plan.classes[i] + "<-" + plan.init_classes[plan.source[i]];
  }
  const int n = static_cast<int>(plan.classes.size());
  return std::to_string(plan.Kept()) + " of " + std::to_string(n) + " classes kept from " + init +
         (kept.empty() ? "" : " (" + kept + ")") + "; " + std::to_string(n - plan.Kept()) +
         " fresh";
}

namespace ml {

Result<std::pair<int, int>> LoadWeightsForClasses(const std::filesystem::path& path,
                                                  DetectorNet& net, const ClassTransferPlan& plan) {
  if (plan.Identity()) return LoadWeightsInto(path, net);
  if (plan.classes.size() != static_cast<size_t>(net->config.num_classes) ||
      plan.source.size() != plan.classes.size()) {
    return Status::Internal("class transfer plan for " + std::to_string(plan.classes.size()) +
                            " classes, network with " + std::to_string(net->config.num_classes));
  }
  torch::NoGradGuard no_grad;
  // The class outputs as initialised, before the load may overwrite them
  // (with the same class count their shapes match, whatever the classes).
  std::vector<std::pair<std::string, torch::Tensor>> fresh;
  for (const auto& p : net->cls_out->named_parameters()) {
    fresh.emplace_back("cls_out." + p.key(), p.value().clone());
  }
  ASSIGN_OR_RETURN(auto counts, LoadWeightsInto(path, net));
  ASSIGN_OR_RETURN(auto archive, OpenArchive(path));
  c10::IValue kind;
  const std::string prefix = archive->try_read("checkpoint", kind) ? "ema/" : "";
  auto params = net->named_parameters();
  const int64_t init_n = static_cast<int64_t>(plan.init_classes.size());
  for (auto& [name, initial] : fresh) {
    torch::Tensor& dst = params[name];
    dst.copy_(initial);
    torch::Tensor src;
    const bool found = archive->try_read(prefix + "p/" + name, src);
    // LoadWeightsInto counted it loaded when the shapes matched.
    const bool counted = found && src.sizes() == dst.sizes();
    const bool fits = found && src.dim() == dst.dim() && src.size(0) == init_n &&
                      src.sizes().slice(1) == dst.sizes().slice(1);
    if (fits) {
      for (size_t i = 0; i < plan.source.size(); ++i) {
        if (plan.source[i] >= 0) dst[static_cast<int64_t>(i)].copy_(src[plan.source[i]]);
      }
    }
    if (fits != counted) {
      counts.first += fits ? 1 : -1;
      counts.second += fits ? -1 : 1;
    }
  }
  return counts;
}

}  // namespace ml
}  // namespace detops
