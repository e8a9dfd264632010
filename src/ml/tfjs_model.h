#pragma once
// Reads a TensorFlow.js graph model (model.json + its weight shards) as it
// was exported: the nodes of the graph and every constant, dequantised to
// float32. TF.js's weights manifest lists each tensor's name, shape and
// dtype, with optional quantisation (float16, or uint8/uint16 with a scale
// and minimum), over the shards' raw little-endian bytes in order. No
// LibTorch here: tfjs_net.h builds the network from what this reads.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/core.h"
#include "core/json.h"

namespace detops::ml {

struct TfjsTensor {
  std::string dtype;  // "float32" or "int32" (after dequantisation)
  std::vector<int64_t> shape;
  std::vector<float> floats;  // float32 tensors
  std::vector<int32_t> ints;  // int32 tensors
  int64_t numel() const;
};

// One node of the graph, attributes decoded from the protobuf JSON form
// (lists of ints, base64 strings and booleans).
struct TfjsNode {
  std::string name, op;
  std::vector<std::string> inputs;  // "^name" control inputs dropped
  std::vector<int64_t> strides, dilations, ksize, explicit_paddings;
  std::string padding, data_format;
  std::vector<std::string> fused_ops;
  bool keep_dims = false, align_corners = false, half_pixel_centers = false;
  double epsilon = 0;
};

struct TfjsModel {
  std::filesystem::path json_path;
  std::string format, generated_by, converted_by;
  std::string input;  // the signature's input (a Placeholder)
  std::vector<TfjsNode> nodes;
  std::map<std::string, TfjsTensor> constants;
  std::vector<std::filesystem::path> shards;  // the weight files, in order
};

// Reads `json_path` and the shards it names (beside it). Errors name the
// file and what is wrong: not a graph model, a shard missing or of the
// wrong size, an unknown dtype or quantisation, a node naming an unknown
// input.
Result<TfjsModel> ReadTfjsModel(const std::filesystem::path& json_path);

// Decodes IEEE half-precision bits to float.
float HalfToFloat(uint16_t bits);

}  // namespace detops::ml
