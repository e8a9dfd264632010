#pragma once
// The detector network: a compact one-stage anchor-free detector in the
// YOLOX / YOLOv8 family (CSP backbone, PAN neck, decoupled heads at strides
// 8, 16 and 32). Each location predicts class logits and a box as a centre
// offset and log size in stride units, so thin scratches a few pixels high
// and potholes filling the frame are both representable. Internal to ml.

#include <torch/torch.h>

#include <string>
#include <vector>

#include "ml/ml.h"
#include "ml/tfjs_net.h"

namespace detops::ml {

struct NetConfig {
  NetConfig(std::string v = "n", int classes = 1, Json b = nullptr)
      : variant(std::move(v)), num_classes(classes), backbone(std::move(b)) {}
  std::string variant = "n";  // "n", "s", or a pretrained variant (pretrained.h)
  int num_classes = 1;
  // A pretrained variant's backbone (tfjs_net.h's spec): it replaces the
  // CSP backbone, its three outputs (strides 8, 16, 32) reduced by 1x1
  // convolutions to the neck's widths. Null for n and s.
  Json backbone;
};
NetConfig NetConfigFor(const ModelConfig& c);

// Raw head outputs for a batch, flattened over the three levels:
// logits [B, A, C], box [B, A, 4] = (dx, dy, log w, log h) in stride units.
struct HeadOutput {
  torch::Tensor logits;
  torch::Tensor box;
  // The deepest backbone features averaged over space, [B, C]: what an
  // image looks like to the model (monitoring compares their statistics).
  torch::Tensor embedding;
};

// Location centres and strides for an input of `size` x `size` (A rows):
// [A, 2] (x, y) in pixels and [A] strides.
struct Grid {
  torch::Tensor centers;
  torch::Tensor strides;
};
Grid MakeGrid(int size, torch::Device device);

// Decodes the box head to x1,y1,x2,y2 in input pixels: [B, A, 4].
torch::Tensor DecodeBoxes(const torch::Tensor& box, const Grid& grid);

// Conv2d + BatchNorm + SiLU. When `flops` is set, forward adds its
// multiply-accumulates x 2 per image to it (for EstimateFlops).
struct ConvBnImpl : torch::nn::Module {
  ConvBnImpl(int in, int out, int k = 1, int s = 1);
  torch::Tensor forward(torch::Tensor x);
  // Folds the batch norm (eval statistics) into the convolution's weight and
  // a bias: one kernel instead of two and one less pass over the feature map.
  // For inference only; the module's parameters are left as they were. The
  // fused weight and bias are stored in `dtype` (fp32, or bf16 for bf16
  // inference), and the forward pass then expects inputs of that type.
  void Fuse(torch::ScalarType dtype = torch::kFloat);
  void Unfuse();  // back to the module's own parameters
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  int64_t* flops = nullptr;
  torch::Tensor fused_weight, fused_bias;  // defined once fused
  int stride = 1, pad = 0;
};
TORCH_MODULE(ConvBn);

// CSP block with `n` residual bottlenecks (YOLOv8's C2f).
struct CspImpl : torch::nn::Module {
  CspImpl(int in, int out, int n, bool shortcut);
  torch::Tensor forward(torch::Tensor x);
  ConvBn cv1{nullptr}, cv2{nullptr};
  std::vector<std::pair<ConvBn, ConvBn>> blocks;
  bool shortcut;
};
TORCH_MODULE(Csp);

// Spatial pyramid pooling, fast (three chained 5x5 max-pools).
struct SppfImpl : torch::nn::Module {
  explicit SppfImpl(int c);
  torch::Tensor forward(torch::Tensor x);
  ConvBn cv1{nullptr}, cv2{nullptr};
};
TORCH_MODULE(Sppf);

struct DetectorNetImpl : torch::nn::Module {
  explicit DetectorNetImpl(const NetConfig& config);
  HeadOutput forward(torch::Tensor x);
  NetConfig config;
  torch::nn::Sequential stem{nullptr}, s1{nullptr}, s2{nullptr}, s3{nullptr}, s4{nullptr};
  TfjsNet backbone{nullptr};                           // pretrained variants only
  ConvBn lat3{nullptr}, lat4{nullptr}, lat5{nullptr};  // its outputs to the neck's widths
  Csp top4{nullptr}, top3{nullptr}, down4{nullptr}, down5{nullptr};
  ConvBn red3{nullptr}, red4{nullptr};
  torch::nn::ModuleList cls_heads{nullptr}, box_heads{nullptr};
  torch::nn::ModuleList cls_out{nullptr}, box_out{nullptr};
};
TORCH_MODULE(DetectorNet);

// Fuses every ConvBn of `net` (inference only; see ConvBnImpl::Fuse). The
// fused weights keep the layout of the convolutions' weights and are stored
// in `dtype`. With bf16 the network then runs in bf16 from its input to the
// two 1x1 output convolutions, which run in fp32 (as the returned logits,
// boxes and embedding are).
void FuseBatchNorm(DetectorNet& net, torch::ScalarType dtype = torch::kFloat);
void UnfuseBatchNorm(DetectorNet& net);

// The memory layout convolutions run fastest in on `device`. On the CPU that
// is channels-last (NHWC): oneDNN's kernels work in it natively, so NCHW
// tensors are reordered at every convolution, forward and backward; with
// weights and inputs in NHWC the n model trains ~1.35x more images per
// second (docs/BENCHMARKS.md). Elsewhere: the default (NCHW).
torch::MemoryFormat LayoutFor(torch::Device device);

// Puts the 4-d parameters of `net` in `layout` (values unchanged).
void ToLayout(DetectorNet& net, torch::MemoryFormat layout);

// The network's input from letterboxed images: BGR bytes [N, H, W, 3] ->
// RGB in [0, 1], [N, 3, H, W], on `device` in LayoutFor(device), as
// `dtype` (fp32, or bf16 on the CPU).
torch::Tensor InputFromBgr(const torch::Tensor& bgr, torch::Device device,
                           torch::ScalarType dtype = torch::kFloat);

// Number of parameters and multiply-accumulates x 2 (FLOPs) at `size`.
int64_t CountParameters(DetectorNet& net);
double EstimateFlops(DetectorNet& net, int size);

}  // namespace detops::ml
