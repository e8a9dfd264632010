#pragma once
// Device selection. Internal to ml.

#include <torch/torch.h>

#include <string>

#include "core/core.h"

namespace detops::ml {

// "cpu" or "cuda"; Unavailable when CUDA is asked for and absent.
Result<torch::Device> ParseDevice(const std::string& name);

}  // namespace detops::ml
