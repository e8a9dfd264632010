#pragma once
// Training loss: SimOTA label assignment (YOLOX) and the losses over it.
// Internal to ml.

#include <torch/torch.h>

#include <vector>

#include "ml/model.h"

namespace detops::ml {

struct LossOutput {
  torch::Tensor total;  // scalar, differentiable
  double box = 0;       // 1 - GIoU over positives, per positive
  double cls = 0;       // BCE against IoU-soft targets, per positive
  int64_t positives = 0;
};

// `targets[b]` is [G, 5] = (class, x1, y1, x2, y2) in input pixels (G may be
// 0). Candidates for a ground-truth box are locations inside it or within
// 2.5 strides of its centre (so thin scratches get candidates); each box
// takes its dynamic-k lowest-cost candidates (cost = class BCE + 3 * -log
// IoU), a location claimed twice goes to the cheaper box. Classification
// targets are the IoU of the matched prediction (quality-aware scores).
LossOutput ComputeLoss(const HeadOutput& out, const Grid& grid,
                       const std::vector<torch::Tensor>& targets, int num_classes);

// Pairwise IoU [N, M] and elementwise GIoU [N] of x1,y1,x2,y2 boxes.
torch::Tensor PairIoU(const torch::Tensor& a, const torch::Tensor& b);
torch::Tensor ElementGIoU(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace detops::ml
