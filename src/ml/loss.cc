#include "ml/loss.h"

#include <algorithm>

namespace detops::ml {

torch::Tensor PairIoU(const torch::Tensor& a, const torch::Tensor& b) {
  auto area = [](const torch::Tensor& t) {
    return (t.select(1, 2) - t.select(1, 0)).clamp_min(0) *
           (t.select(1, 3) - t.select(1, 1)).clamp_min(0);
  };
  torch::Tensor lt = torch::max(a.unsqueeze(1).slice(2, 0, 2), b.unsqueeze(0).slice(2, 0, 2));
  torch::Tensor rb = torch::min(a.unsqueeze(1).slice(2, 2, 4), b.unsqueeze(0).slice(2, 2, 4));
  torch::Tensor wh = (rb - lt).clamp_min(0);
  torch::Tensor inter = wh.select(2, 0) * wh.select(2, 1);
  return inter / (area(a).unsqueeze(1) + area(b).unsqueeze(0) - inter + 1e-9);
}

torch::Tensor ElementGIoU(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor lt = torch::max(a.slice(1, 0, 2), b.slice(1, 0, 2));
  torch::Tensor rb = torch::min(a.slice(1, 2, 4), b.slice(1, 2, 4));
  torch::Tensor wh = (rb - lt).clamp_min(0);
  torch::Tensor inter = wh.select(1, 0) * wh.select(1, 1);
  auto area = [](const torch::Tensor& t) {
    return (t.select(1, 2) - t.select(1, 0)).clamp_min(0) *
           (t.select(1, 3) - t.select(1, 1)).clamp_min(0);
  };
  torch::Tensor uni = area(a) + area(b) - inter + 1e-9;
  torch::Tensor clt = torch::min(a.slice(1, 0, 2), b.slice(1, 0, 2));
  torch::Tensor crb = torch::max(a.slice(1, 2, 4), b.slice(1, 2, 4));
  torch::Tensor cwh = (crb - clt).clamp_min(0);
  torch::Tensor hull = cwh.select(1, 0) * cwh.select(1, 1) + 1e-9;
  return inter / uni - (hull - uni) / hull;
}

namespace {

struct Assignment {
  torch::Tensor anchors;  // [P] indices of positive locations
  torch::Tensor gt;       // [P] matched ground-truth row
  torch::Tensor iou;      // [P] IoU of the prediction with it
};

Assignment SimOta(const torch::Tensor& logits, const torch::Tensor& boxes, const Grid& grid,
                  const torch::Tensor& gt) {
  torch::NoGradGuard no_grad;
  const int64_t g = gt.size(0);
  torch::Tensor ax = grid.centers.select(1, 0).unsqueeze(0);  // [1, A]
  torch::Tensor ay = grid.centers.select(1, 1).unsqueeze(0);
  torch::Tensor gx1 = gt.select(1, 1).unsqueeze(1), gy1 = gt.select(1, 2).unsqueeze(1);
  torch::Tensor gx2 = gt.select(1, 3).unsqueeze(1), gy2 = gt.select(1, 4).unsqueeze(1);
  torch::Tensor in_box = (ax > gx1) & (ax < gx2) & (ay > gy1) & (ay < gy2);  // [G, A]
  torch::Tensor r = grid.strides.unsqueeze(0) * 2.5;
  torch::Tensor in_ctr = ((ax - (gx1 + gx2) / 2).abs() < r) & ((ay - (gy1 + gy2) / 2).abs() < r);
  torch::Tensor cand = (in_box | in_ctr).any(0).nonzero().squeeze(1);
  if (cand.numel() == 0) return {};
  torch::Tensor iou = PairIoU(gt.slice(1, 1, 5), boxes.index_select(0, cand));  // [G, Ac]
  torch::Tensor probs = torch::sigmoid(logits.index_select(0, cand)).t();       // [C, Ac]
  torch::Tensor p = probs.index_select(0, gt.select(1, 0).to(torch::kLong));    // [G, Ac]
  torch::Tensor both = (in_box & in_ctr).index_select(1, cand);
  torch::Tensor cost =
      -torch::log(p + 1e-8) + 3.0 * -torch::log(iou + 1e-8) + 1e5 * (~both).to(torch::kFloat);
  const int64_t ac = cand.size(0);
  torch::Tensor topk_iou = std::get<0>(iou.topk(std::min<int64_t>(10, ac), 1));
  torch::Tensor dynamic_k = topk_iou.sum(1).to(torch::kLong).clamp_min(1);
  torch::Tensor matching = torch::zeros_like(cost);
  auto k_acc = dynamic_k.accessor<int64_t, 1>();
  for (int64_t i = 0; i < g; ++i) {
    int64_t k = std::min<int64_t>(k_acc[i], ac);
    torch::Tensor idx = std::get<1>(cost[i].topk(k, 0, /*largest=*/false));
    matching[i].index_fill_(0, idx, 1.0);
  }
  torch::Tensor claims = matching.sum(0);
  torch::Tensor multi = (claims > 1).nonzero().squeeze(1);
  if (multi.numel() > 0) {
    torch::Tensor best = cost.index_select(1, multi).argmin(0);
    torch::Tensor fixed = torch::zeros({g, multi.size(0)}, cost.options());
    fixed.scatter_(0, best.unsqueeze(0), 1.0);
    matching.index_copy_(1, multi, fixed);
  }
  torch::Tensor fg = (matching.sum(0) > 0).nonzero().squeeze(1);
  torch::Tensor matched = matching.index_select(1, fg).argmax(0);
  torch::Tensor fg_iou = iou.index_select(1, fg).gather(0, matched.unsqueeze(0)).squeeze(0);
  return {cand.index_select(0, fg), matched, fg_iou};
}

}  // namespace

LossOutput ComputeLoss(const HeadOutput& out, const Grid& grid,
                       const std::vector<torch::Tensor>& targets, int num_classes) {
  const int64_t b = out.logits.size(0);
  torch::Tensor decoded = DecodeBoxes(out.box, grid);
  torch::Tensor cls_target = torch::zeros_like(out.logits);
  torch::Tensor box_loss = torch::zeros({}, out.logits.options());
  int64_t positives = 0;
  for (int64_t i = 0; i < b; ++i) {
    const torch::Tensor& gt = targets[i];
    if (gt.size(0) == 0) continue;
    Assignment a = SimOta(out.logits[i].detach(), decoded[i].detach(), grid, gt);
    if (!a.anchors.defined() || a.anchors.numel() == 0) continue;
    positives += a.anchors.size(0);
    torch::Tensor classes = gt.select(1, 0).to(torch::kLong).index_select(0, a.gt);
    cls_target[i].index_put_({a.anchors, classes}, a.iou.clamp_min(0.01));
    torch::Tensor pred = decoded[i].index_select(0, a.anchors);
    torch::Tensor truth = gt.slice(1, 1, 5).index_select(0, a.gt);
    box_loss = box_loss + (1.0 - ElementGIoU(pred, truth)).sum();
  }
  (void)num_classes;
  double norm = std::max<int64_t>(positives, 1);
  torch::Tensor cls_loss = torch::binary_cross_entropy_with_logits(out.logits, cls_target, {}, {},
                                                                   torch::Reduction::Sum) /
                           norm;
  box_loss = box_loss / norm;
  LossOutput r;
  r.total = cls_loss + 5.0 * box_loss;
  r.box = box_loss.item<double>();
  r.cls = cls_loss.item<double>();
  r.positives = positives;
  return r;
}

}  // namespace detops::ml
