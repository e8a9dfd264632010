#pragma once
// AdamW over all of a network's parameters in one pass, with gradient
// clipping and the EMA of the weights folded into the same pass. Internal
// to ml.
//
// torch::optim::AdamW updates parameter by parameter, about ten operators
// each, and every operator is a pass over memory: 12 ms of a 140 ms training
// step of the n model here (batch 8, 2 threads), the EMA 3 ms and gradient
// clipping 2 more. Here the weights, their gradients, the two moments and
// the EMA's weights each live in one flat buffer (the modules' tensors
// become views into them, values and layouts kept), and one vectorized
// pass reads and writes each once.

#include <torch/torch.h>

#include <vector>

#include "core/status.h"
#include "ml/model.h"

namespace detops::ml {

class FusedAdamW {
 public:
  // Takes over the parameters and buffers of `net` and of `ema` (the same
  // architecture). Weight decay (decoupled, as AdamW) applies to parameters
  // of more than one dimension: convolution weights, not biases or norms.
  FusedAdamW(DetectorNet& net, DetectorNet& ema, double weight_decay, double beta1 = 0.9,
             double beta2 = 0.999, double eps = 1e-8);

  void ZeroGrad();
  // The gradients' global L2 norm; above `max_norm` they are scaled down to
  // it in the next Step (as torch::nn::utils::clip_grad_norm_ does).
  double ClipGradNorm(double max_norm);
  // One AdamW step at rate `lr`; then ema = d * ema + (1 - d) * weights,
  // and the EMA takes the network's buffers (batch-norm statistics).
  void Step(double lr, double ema_decay);

  // The step count and both moments, for checkpoints.
  void Save(torch::serialize::OutputArchive& archive) const;
  // Reads what Save wrote, or torch::optim::AdamW's per-parameter state
  // (checkpoints written before this optimizer).
  Status Load(torch::serialize::InputArchive& archive);

  int64_t steps() const { return step_; }

  // Step with LibTorch operators on the flat buffers instead of the CPU
  // kernel: what tensors on other devices (CUDA) take; for tests on the CPU.
  void UseTensorOps() { cpu_kernel_ = false; }

 private:
  std::vector<torch::Tensor> params_;  // flat order: decayed first
  int64_t decayed_ = 0;                // elements of the decayed parameters
  torch::Tensor weights_, grads_, exp_avg_, exp_avg_sq_, ema_weights_;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> buffers_;  // (net, ema), flat per type
  double weight_decay_, beta1_, beta2_, eps_;
  double grad_scale_ = 1;
  int64_t step_ = 0;
  bool cpu_kernel_ = true;  // the vectorized pass; set in the constructor
};

}  // namespace detops::ml
