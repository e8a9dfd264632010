#pragma once
// Batch norm in training mode followed by SiLU, as one CPU kernel with its
// gradient. Internal to ml.
//
// Every ConvBn of the detector ends in batch norm then SiLU. LibTorch runs
// them as two operators of two passes each way, with SiLU keeping its own
// copy of the batch-normalized map for the backward pass; on this machine
// they took 144 ms of a ~400 ms fp32 training step (docs/BENCHMARKS.md).
// Fused, the forward pass reads the convolution's output twice (statistics,
// then normalize + SiLU) and writes once; the backward pass recomputes the
// normalized values and SiLU's slope from the saved input instead of
// storing them.

#include <torch/torch.h>

namespace detops::ml {

// True when BnSiluTrain can take `x`: a CPU tensor of 4 dims in fp32 or
// bf16, dense in channels-last order, with more than one value per channel.
bool CanFuseBnSilu(const torch::Tensor& x);

// silu(batch_norm(x)) with `bn`'s weight and bias and the batch's
// statistics, updating `bn`'s running mean and (unbiased) variance with its
// momentum as LibTorch does. The result has x's type and layout;
// gradients flow to x, bn->weight and bn->bias. Math in fp32 (statistics
// summed in double across blocks), so bf16 inputs lose nothing more than
// the final rounding.
torch::Tensor BnSiluTrain(const torch::Tensor& x, torch::nn::BatchNorm2dImpl& bn);

}  // namespace detops::ml
