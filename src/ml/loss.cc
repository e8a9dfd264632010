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
  torch::Tensor target;   // [P] soft class target (normalized alignment)
};

constexpr int kTopK = 10;       // positives per ground-truth box
constexpr double kAlpha = 0.5;  // alignment = score^alpha * IoU^beta
constexpr double kBeta = 6.0;
constexpr double kCenterRadius = 2.5;  // in strides

// Which locations lie inside which ground-truth box: [G, A].
torch::Tensor InsideBoxes(const Grid& grid, const torch::Tensor& gt) {
  torch::Tensor ax = grid.centers.select(1, 0).unsqueeze(0);  // [1, A]
  torch::Tensor ay = grid.centers.select(1, 1).unsqueeze(0);
  return (ax > gt.select(1, 1).unsqueeze(1)) & (ax < gt.select(1, 3).unsqueeze(1)) &
         (ay > gt.select(1, 2).unsqueeze(1)) & (ay < gt.select(1, 4).unsqueeze(1));
}

// Task-aligned assignment (TOOD, as in YOLOv8), with YOLOX's centre
// sampling added to the candidates so that boxes thinner than a stride
// (scratches) still get positives. `in_box` is InsideBoxes(grid, gt).
Assignment TaskAligned(const torch::Tensor& logits, const torch::Tensor& boxes, const Grid& grid,
                       const torch::Tensor& gt, const torch::Tensor& in_box) {
  torch::NoGradGuard no_grad;
  torch::Tensor ax = grid.centers.select(1, 0).unsqueeze(0);  // [1, A]
  torch::Tensor ay = grid.centers.select(1, 1).unsqueeze(0);
  torch::Tensor cx = ((gt.select(1, 1) + gt.select(1, 3)) / 2).unsqueeze(1);  // [G, 1]
  torch::Tensor cy = ((gt.select(1, 2) + gt.select(1, 4)) / 2).unsqueeze(1);
  torch::Tensor r = grid.strides.unsqueeze(0) * kCenterRadius;
  torch::Tensor in_ctr = ((ax - cx).abs() < r) & ((ay - cy).abs() < r);
  torch::Tensor own = in_box | in_ctr;  // [G, A]
  torch::Tensor cand = own.any(0).nonzero().squeeze(1);
  if (cand.numel() == 0) return {};
  own = own.index_select(1, cand);                                              // [G, Ac]
  torch::Tensor iou = PairIoU(gt.slice(1, 1, 5), boxes.index_select(0, cand));  // [G, Ac]
  torch::Tensor probs = torch::sigmoid(logits.index_select(0, cand)).t();       // [C, Ac]
  torch::Tensor p = probs.index_select(0, gt.select(1, 0).to(torch::kLong));    // [G, Ac]
  torch::Tensor align = p.pow(kAlpha) * iou.pow(kBeta) * own.to(torch::kFloat);
  // Ties at zero (early training) go to locations inside the box.
  torch::Tensor rank = align + 1e-9 * (in_box.index_select(1, cand) & own).to(torch::kFloat);
  const int64_t k = std::min<int64_t>(kTopK, cand.size(0));
  torch::Tensor top = std::get<1>(rank.topk(k, 1));  // [G, k]
  torch::Tensor matching = torch::zeros_like(align).scatter_(1, top, 1.0) * own.to(torch::kFloat);
  // A location claimed by several boxes goes to the box it overlaps most
  // among those whose candidate region holds it (YOLOv8's rule; a box far
  // away cannot take it).
  torch::Tensor multi = (matching.sum(0) > 1).nonzero().squeeze(1);
  if (multi.numel() > 0) {
    torch::Tensor near = own.index_select(1, multi).to(torch::kFloat);
    torch::Tensor best = (iou.index_select(1, multi) * near - (1 - near)).argmax(0);
    torch::Tensor one = torch::zeros({gt.size(0), multi.size(0)}, align.options());
    one.scatter_(0, best.unsqueeze(0), 1.0);
    matching.index_copy_(1, multi, one);
  }
  torch::Tensor fg = (matching.sum(0) > 0).nonzero().squeeze(1);
  if (fg.numel() == 0) return {};
  torch::Tensor matched = matching.index_select(1, fg).argmax(0);  // [P]
  // Soft targets: alignment scaled so each box's best positive gets that
  // box's best IoU among its positives.
  torch::Tensor a_pos = align * matching, iou_pos = iou * matching;
  torch::Tensor norm = iou_pos.amax(1) / (a_pos.amax(1) + 1e-9);  // [G]
  torch::Tensor target = (a_pos.index_select(1, fg).gather(0, matched.unsqueeze(0)).squeeze(0) *
                          norm.index_select(0, matched));
  return {cand.index_select(0, fg), matched, target};
}

// Every location inside a ground-truth box that is not a positive, with the
// box it regresses (the smallest one holding it, as in FCOS): [N] locations
// and [N] rows of `gt`. `inside` is InsideBoxes(grid, gt).
std::pair<torch::Tensor, torch::Tensor> InsideNotPositive(const torch::Tensor& gt,
                                                          const torch::Tensor& inside,
                                                          const torch::Tensor& positives) {
  torch::NoGradGuard no_grad;
  torch::Tensor area = ((gt.select(1, 3) - gt.select(1, 1)) * (gt.select(1, 4) - gt.select(1, 2)))
                           .unsqueeze(1)
                           .expand_as(inside);
  auto [smallest, owner] = torch::where(inside, area, torch::full_like(area, 1e30)).min(0);
  torch::Tensor keep = smallest < 1e29;
  if (positives.defined() && positives.numel() > 0) keep.index_fill_(0, positives, false);
  torch::Tensor loc = keep.nonzero().squeeze(1);
  return {loc, owner.index_select(0, loc)};
}

}  // namespace

LossOutput ComputeLoss(const HeadOutput& out, const Grid& grid,
                       const std::vector<torch::Tensor>& targets, double box_weight,
                       double inside_box_weight) {
  const int64_t b = out.logits.size(0);
  torch::Tensor decoded = DecodeBoxes(out.box, grid);
  torch::Tensor cls_target = torch::zeros_like(out.logits);
  torch::Tensor box_loss = torch::zeros({}, out.logits.options());
  torch::Tensor inside_loss = torch::zeros({}, out.logits.options());
  int64_t positives = 0, inside = 0;
  for (int64_t i = 0; i < b; ++i) {
    const torch::Tensor& gt = targets[i];
    if (gt.size(0) == 0) continue;
    const torch::Tensor in_box = InsideBoxes(grid, gt);
    Assignment a = TaskAligned(out.logits[i].detach(), decoded[i].detach(), grid, gt, in_box);
    if (inside_box_weight > 0) {
      auto [loc, owner] = InsideNotPositive(gt, in_box, a.anchors);
      if (loc.numel() > 0) {
        inside += loc.numel();
        inside_loss = inside_loss + (1.0 - ElementGIoU(decoded[i].index_select(0, loc),
                                                       gt.slice(1, 1, 5).index_select(0, owner)))
                                        .sum();
      }
    }
    if (!a.anchors.defined() || a.anchors.numel() == 0) continue;
    positives += a.anchors.size(0);
    torch::Tensor classes = gt.select(1, 0).to(torch::kLong).index_select(0, a.gt);
    cls_target[i].index_put_({a.anchors, classes}, a.target);
    torch::Tensor pred = decoded[i].index_select(0, a.anchors);
    torch::Tensor truth = gt.slice(1, 1, 5).index_select(0, a.gt);
    box_loss = box_loss + (1.0 - ElementGIoU(pred, truth)).sum();
  }
  // Quality focal loss (GFL): BCE against the soft targets, scaled by
  // |target - score|^2 so that the thousands of easy background locations do
  // not drown a few small objects; both terms per positive.
  torch::Tensor score = torch::sigmoid(out.logits);
  torch::Tensor cls_loss = (torch::binary_cross_entropy_with_logits(out.logits, cls_target, {}, {},
                                                                    torch::Reduction::None) *
                            (cls_target - score).abs().pow(2))
                               .sum();
  const double norm = static_cast<double>(std::max<int64_t>(positives, 1));
  cls_loss = cls_loss / norm;
  box_loss = box_loss / norm;
  LossOutput r;
  r.total = cls_loss + box_weight * box_loss;
  if (inside > 0) r.total = r.total + inside_box_weight * inside_loss / static_cast<double>(inside);
  r.box = box_loss.item<double>();
  r.cls = cls_loss.item<double>();
  r.positives = positives;
  return r;
}

}  // namespace detops::ml
