#pragma once
// Training loss: task-aligned label assignment (TOOD / YOLOv8) and the
// losses over it.
// Internal to ml.

#include <torch/torch.h>

#include <vector>

#include "ml/model.h"

namespace detops::ml {

struct LossOutput {
  torch::Tensor total;  // scalar, differentiable
  double box = 0;       // 1 - GIoU over positives, per positive
  double cls = 0;       // quality focal loss against the soft targets, per positive
  int64_t positives = 0;
};

// `targets[b]` is [G, 5] = (class, x1, y1, x2, y2) in input pixels (G may be
// 0). Task-aligned assignment: candidates for a ground-truth box are
// locations inside it or within 2.5 strides of its centre (so thin
// scratches get candidates); each box takes the 10 with the highest
// score^0.5 * IoU^6, a location claimed twice goes to the box it overlaps
// most. Class targets are the alignment normalized so that each box's best
// positive gets its best IoU (quality-aware scores). Loss per positive:
// quality focal loss (GFL) on the scores plus box_weight x (1 - GIoU) on the
// boxes (2: GFL's balance). With inside_box_weight > 0, every other location
// inside a box also regresses it (the smallest box holding it, FCOS's rule),
// mean (1 - GIoU) over those locations times that weight: a location near
// one end of a long scratch then learns the whole scratch's box, and what it
// predicts at test time is a duplicate NMS removes, not a piece.
LossOutput ComputeLoss(const HeadOutput& out, const Grid& grid,
                       const std::vector<torch::Tensor>& targets, double box_weight = 2.0,
                       double inside_box_weight = 0.1);

// Pairwise IoU [N, M] and elementwise GIoU [N] of x1,y1,x2,y2 boxes.
torch::Tensor PairIoU(const torch::Tensor& a, const torch::Tensor& b);
torch::Tensor ElementGIoU(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace detops::ml
