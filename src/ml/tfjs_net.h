#pragma once
// A network rebuilt from a TensorFlow.js graph (tfjs_model.h) in LibTorch:
// the sub-graph from the input to the requested nodes, its filters and
// biases trainable parameters, its ops run as LibTorch ops in NCHW with
// TensorFlow's semantics (SAME padding, asymmetric when the stride asks for
// it; legacy or half-pixel bilinear resizing; depthwise filters). This is
// how a pretrained backbone shipped as a TF.js package becomes the start of
// a detops model. Internal to ml.
//
// The spec (JSON) is all a weights file needs to rebuild the network
// without the package: the nodes, the small constants, and the parameters'
// names and shapes; the parameters' values are the module's state.

#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/core.h"
#include "core/json.h"
#include "ml/tfjs_model.h"

namespace detops::ml {

// The spec of the sub-graph of `model` that computes `outputs` from its
// input, and the parameters' values (filters in OIHW, depthwise filters as
// [C * multiplier, 1, H, W], biases) in the spec's order. `input_scale`
// multiplies the network's [0, 1] input first (255 for a graph trained on
// 0-255 pixels). Unsupported ops are refused, naming the node.
struct TfjsGraph {
  Json spec;
  std::vector<torch::Tensor> params;
};
Result<TfjsGraph> ExtractTfjsGraph(const TfjsModel& model, const std::vector<std::string>& outputs,
                                   double input_scale);

struct TfjsNetImpl : torch::nn::Module {
  // Parameters are created with the spec's shapes (zeros): load values with
  // Assign or from a weights file. Throws std::invalid_argument on a spec
  // it cannot run (CheckTfjsSpec first for an error message).
  explicit TfjsNetImpl(const Json& spec);
  // x: RGB in [0, 1], [N, 3, H, W]. One tensor per spec output, NCHW.
  std::vector<torch::Tensor> forward(torch::Tensor x);
  // Copies `values` (ExtractTfjsGraph's params) into the parameters.
  Status Assign(const std::vector<torch::Tensor>& values);
  // Inference in `dtype` (bf16 on the CPU): converted copies of the
  // parameters; kFloat drops them.
  void SetInferenceDtype(torch::ScalarType dtype);
  // Channels of each output at any input size (a probe at 64 px).
  std::vector<int64_t> OutputChannels();

  Json spec;
  int64_t* flops = nullptr;  // as ConvBnImpl::flops

 private:
  struct Ref {
    int node = -1, param = -1;
    torch::Tensor constant;  // NCHW-broadcastable
    std::vector<int64_t> ints;
  };
  struct Step {
    std::string op;
    std::vector<Ref> in;
    std::vector<int64_t> strides = {1, 1}, dilations = {1, 1}, ksize;
    std::string padding;
    std::vector<std::string> fused;
    bool keep_dims = false, align_corners = false, half_pixel_centers = false;
  };
  torch::Tensor Arg(const Ref& r, const std::vector<torch::Tensor>& values) const;
  torch::Tensor Conv(const Step& s, const std::vector<torch::Tensor>& v, bool depthwise);
  std::vector<Step> steps_;
  std::vector<int> outputs_;
  std::vector<torch::Tensor> params_, inference_params_;
  double input_scale_ = 1;
};
TORCH_MODULE(TfjsNet);

Status CheckTfjsSpec(const Json& spec);

}  // namespace detops::ml
