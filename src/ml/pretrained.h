#pragma once
// Pretrained starting points installed from registry packages (npm, via
// the README's `npm ci`): which package ships which network, where it is
// installed, and its provenance (package, version, licence, file hashes),
// recorded with every model that starts from it. Internal to ml.

#include <filesystem>
#include <string>
#include <vector>

#include "core/core.h"
#include "core/json.h"
#include "ml/tfjs_net.h"

namespace detops::ml {

// A detops variant whose backbone comes from a package.
struct PretrainedVariant {
  std::string variant;      // the --model name
  std::string package;      // npm package
  std::string file;         // model.json inside the package
  std::string description;  // what the network is and what it was trained on
  // The nodes whose outputs feed the neck, at strides 8, 16 and 32.
  std::vector<std::string> taps;
  double input_scale = 1;  // the graph's pixels: 255 for 0-255 RGB
};

// The variants backed by a package ("mb3": MobileNetV3 + CenterNet, COCO).
const std::vector<PretrainedVariant>& PretrainedVariants();
const PretrainedVariant* FindPretrainedVariant(const std::string& variant);

// The node_modules folders searched: $DETOPS_PRETRAINED_DIR alone when it
// is set; else the source tree's node_modules (where `npm ci` installs it),
// then ./node_modules.
std::vector<std::filesystem::path> PretrainedSearchPath();

// Where the variant's package is installed (the folder holding its
// package.json). NotFound names the folders searched and the command that
// installs it.
Result<std::filesystem::path> PretrainedPackageRoot(const PretrainedVariant& v);

// The package's network, extracted up to the taps, and its provenance
// (JSON: package, version, licence, upstream, file names with SHA-256),
// which the spec also carries as "source". NotFound when the package is not
// installed, naming the folders searched and the command that installs it.
Result<TfjsGraph> LoadPretrainedBackbone(const PretrainedVariant& v);

}  // namespace detops::ml
