#pragma once
// bfloat16 on the CPU: mixed-precision training, and inference with bf16
// weights and activations. Internal to ml.
//
// Under LibTorch's CPU autocast the convolutions run in bf16 through oneDNN
// (2.7x faster backward on an AVX512-BF16 CPU) and batch norm follows, but
// LibTorch 1.13's bf16 SiLU is a slow path (its backward takes twice the
// fp32 time), so SiLU on bf16 tensors is our own kernel.

#include <torch/torch.h>

namespace detops::ml {

// True when the CPU computes bf16 dot products natively (AVX512-BF16),
// which is when oneDNN's bf16 convolutions beat fp32.
bool CpuHasNativeBf16();

// SiLU of a dense bf16 CPU tensor, with its gradient; math in fp32, results
// rounded to nearest even. Other tensors go to torch::silu.
torch::Tensor Silu(const torch::Tensor& x);

// SiLU in place, for inference (records no gradient). Dense CPU tensors in
// bf16 or fp32 run our kernel; others go to torch::silu_.
void SiluInPlace(torch::Tensor& x);

}  // namespace detops::ml
