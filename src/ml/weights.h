#pragma once
// Weights and checkpoints on disk (LibTorch archives, written atomically).
// Internal to ml.

#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "core/core.h"
#include "ml/ml.h"
#include "ml/model.h"

namespace detops::ml {

// Flat "p/<name>" and "b/<name>" entries for parameters and buffers.
void WriteState(torch::serialize::OutputArchive& archive, const std::string& prefix,
                DetectorNet& net);
// Copies every entry whose name and shape match; returns how many tensors
// were loaded and how many were skipped (shape or name mismatch).
std::pair<int, int> ReadState(torch::serialize::InputArchive& archive, const std::string& prefix,
                              DetectorNet& net);

Json ConfigToJson(const ModelConfig& c);
Result<ModelConfig> ConfigFromJson(const Json& j);

// Weights file: config + net state. Written to a temp file, then renamed.
Status SaveWeights(const std::filesystem::path& path, const ModelConfig& config, DetectorNet& net);
// Reads the config of a weights file or a checkpoint.
Result<ModelConfig> ReadConfig(const std::filesystem::path& path);
// Loads matching tensors (by name and shape) of a weights file or a
// checkpoint (its EMA weights) into `net`.
Result<std::pair<int, int>> LoadWeightsInto(const std::filesystem::path& path, DetectorNet& net);

// Saves `archive` to `path` atomically.
Status SaveArchive(torch::serialize::OutputArchive& archive, const std::filesystem::path& path);
Result<std::unique_ptr<torch::serialize::InputArchive>> OpenArchive(
    const std::filesystem::path& path);

}  // namespace detops::ml
