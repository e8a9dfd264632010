// The controller's YAML file:
//   model: cars
//   pipeline: retrain          # a file or a built-in name
//   params: {minutes: 2, rollout: canary}
//   drift: true
//   decay: true
//   cooldown_seconds: 3600
//   inbox: true
//   inbox_quiet_seconds: 30
//   schedule: "0 3 * * 0"      # cron, UTC
//   monitor: true
//   monitor_policy: monitor.yaml
//   tick_seconds: 2

#include <yaml-cpp/yaml.h>

#include "core/fs.h"
#include "orchestrate/controller.h"
#include "orchestrate/cron.h"

namespace detops {
namespace {

struct Reader {
  std::string label;
  Status Error(const YAML::Node& n, const std::string& what) const {
    return Status::InvalidInput(label + ":" + std::to_string(n.Mark().line + 1) + ": " + what);
  }
  Result<std::string> Text(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) return Error(n, key + " must be a single value");
    return n.Scalar();
  }
  Result<bool> Bool(const YAML::Node& n, const std::string& key) const {
    bool v = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
      return Error(n, key + " must be true or false");
    }
    return v;
  }
  Result<double> Number(const YAML::Node& n, const std::string& key) const {
    double v = 0;
    if (!n.IsScalar() || !YAML::convert<double>::decode(n, v) || v < 0) {
      return Error(n, key + " must be a number >= 0");
    }
    return v;
  }
};

}  // namespace

Result<ControllerConfig> ParseControllerConfig(const std::string& yaml, const std::string& label,
                                               const std::string& default_model) {
  Reader r{label};
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return Status::InvalidInput(label + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root.IsMap()) return r.Error(root, "the controller file must be a mapping");
  ControllerConfig c;
  c.model = default_model;
  for (const auto& kv : root) {
    if (!kv.first.IsScalar()) return r.Error(kv.first, "keys must be names");
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    if (key == "model") {
      ASSIGN_OR_RETURN(c.model, r.Text(v, key));
    } else if (key == "pipeline") {
      ASSIGN_OR_RETURN(c.pipeline, r.Text(v, key));
    } else if (key == "params") {
      if (!v.IsMap()) return r.Error(v, "params must be a mapping of name: value");
      for (const auto& p : v) {
        if (!p.first.IsScalar()) return r.Error(p.first, "params: keys must be names");
        ASSIGN_OR_RETURN(c.params[p.first.Scalar()],
                         r.Text(p.second, "params." + p.first.Scalar()));
      }
    } else if (key == "drift") {
      ASSIGN_OR_RETURN(c.drift, r.Bool(v, key));
    } else if (key == "decay") {
      ASSIGN_OR_RETURN(c.decay, r.Bool(v, key));
    } else if (key == "cooldown_seconds") {
      ASSIGN_OR_RETURN(c.cooldown_seconds, r.Number(v, key));
    } else if (key == "inbox") {
      ASSIGN_OR_RETURN(c.inbox, r.Bool(v, key));
    } else if (key == "inbox_quiet_seconds") {
      ASSIGN_OR_RETURN(c.inbox_quiet_seconds, r.Number(v, key));
    } else if (key == "schedule") {
      ASSIGN_OR_RETURN(c.schedule, r.Text(v, key));
      auto cron = CronSchedule::Parse(c.schedule);
      if (!cron.ok()) return r.Error(v, "schedule: " + cron.status().message());
    } else if (key == "monitor") {
      ASSIGN_OR_RETURN(c.monitor, r.Bool(v, key));
    } else if (key == "monitor_policy") {
      ASSIGN_OR_RETURN(c.monitor_policy, r.Text(v, key));
    } else if (key == "tick_seconds") {
      ASSIGN_OR_RETURN(c.tick_seconds, r.Number(v, key));
      if (c.tick_seconds < 0.1) return r.Error(v, "tick_seconds must be at least 0.1");
    } else {
      return r.Error(kv.first,
                     "unknown key '" + key +
                         "' (known: model, pipeline, params, drift, decay, cooldown_seconds, "
                         "inbox, inbox_quiet_seconds, schedule, monitor, monitor_policy, "
                         "tick_seconds)");
    }
  }
  if (c.model.empty()) return r.Error(root, "model is required");
  return c;
}

Result<ControllerConfig> LoadControllerConfig(const std::filesystem::path& file,
                                              const std::string& default_model) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(file));
  return ParseControllerConfig(text, file.string(), default_model);
}

}  // namespace detops
