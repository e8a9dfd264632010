// A training recipe from YAML: the same keys a run records as its params
// (`epochs`, `lr`, `augment: {mosaic: 0.5}`), each checked against the type
// of its default so that a typo or a wrong type names the file, line and key.

#include <yaml-cpp/yaml.h>

#include "pipeline/pipeline.h"
#include "pipeline/train_options.h"

namespace detops {
namespace {

std::string Where(const std::filesystem::path& file, const YAML::Node& n) {
  return file.string() + ":" + std::to_string(n.Mark().line + 1);
}

// Aliases: the CLI's flag names where they differ from the recorded keys.
std::string Canonical(const std::string& key) {
  if (key == "model") return "variant";
  if (key == "minutes") return "max_minutes";
  return key;
}

Status Merge(const std::filesystem::path& file, const YAML::Node& node, Json& into,
             const std::string& prefix) {
  if (!node.IsMap()) {
    return Status::InvalidInput(Where(file, node) + ": " +
                                (prefix.empty() ? std::string("the recipe") : prefix) +
                                " must be a mapping of key: value");
  }
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {  // as<std::string>() would throw: "[a]: 1", "? {a: 1}"
      return Status::InvalidInput(Where(file, kv.first) + ": keys must be names, not " +
                                  (kv.first.IsMap() ? "mappings" : "lists or null"));
    }
    const std::string key = Canonical(kv.first.as<std::string>());
    const std::string name = prefix.empty() ? key : prefix + "." + key;
    const YAML::Node& v = kv.second;
    if (key == "init_weights") {
      return Status::InvalidInput(Where(file, kv.first) +
                                  ": init_weights is not part of a recipe; use --init RUN_OR_FILE");
    }
    if (!into.contains(key)) {
      std::string known;
      for (const auto& [k, _] : into.items()) known += (known.empty() ? "" : ", ") + k;
      return Status::InvalidInput(Where(file, kv.first) + ": unknown key '" + name +
                                  "' (known: " + known + ")");
    }
    Json& slot = into[key];
    if (slot.is_object()) {
      RETURN_IF_ERROR(Merge(file, v, slot, name));
      continue;
    }
    if (!v.IsScalar()) {
      return Status::InvalidInput(Where(file, v) + ": " + name + " must be a single value");
    }
    const std::string text = v.Scalar();
    try {
      if (slot.is_string()) {
        slot = text;
      } else if (slot.is_number_unsigned() || slot.is_number_integer()) {
        size_t used = 0;
        long long n = std::stoll(text, &used);
        if (used != text.size() || (slot.is_number_unsigned() && n < 0)) throw std::exception();
        slot = n;
      } else if (slot.is_number()) {
        size_t used = 0;
        double d = std::stod(text, &used);
        if (used != text.size()) throw std::exception();
        slot = d;
      }
    } catch (const std::exception&) {
      return Status::InvalidInput(Where(file, v) + ": " + name + ": expected " +
                                  (slot.is_number_float() ? "a number" : "an integer") + ", got '" +
                                  text + "'");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<TrainOptions> LoadTrainConfig(const std::filesystem::path& file, const TrainOptions& base) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file.string());
  } catch (const YAML::BadFile&) {
    return Status::NotFound(file.string() + ": cannot read the training recipe");
  } catch (const YAML::Exception& e) {
    return Status::InvalidInput(file.string() + ":" + std::to_string(e.mark.line + 1) +
                                ": not valid YAML: " + e.msg);
  }
  if (root.IsNull()) return base;  // an empty recipe changes nothing
  Json j = TrainOptionsToJson(base);
  RETURN_IF_ERROR(Merge(file, root, j, ""));
  return TrainOptionsFromJson(j);
}

}  // namespace detops
