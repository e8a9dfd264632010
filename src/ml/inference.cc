#include "ml/inference.h"

#include <algorithm>
#include <numeric>

#include "ml/augment.h"

namespace detops::ml {

std::vector<int64_t> Nms(const float* b, int64_t n, float iou_threshold, int64_t max_counted,
                         const std::vector<char>* counts) {
  std::vector<int64_t> keep;
  std::vector<char> removed(static_cast<size_t>(n), 0);
  int64_t counted = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (max_counted >= 0 && counted >= max_counted) break;
    if (removed[i]) continue;
    keep.push_back(i);
    if (!counts || (*counts)[i]) ++counted;
    const float* a = b + 4 * i;
    float area_a = std::max(0.f, a[2] - a[0]) * std::max(0.f, a[3] - a[1]);
    for (int64_t j = i + 1; j < n; ++j) {
      if (removed[j]) continue;
      const float* c = b + 4 * j;
      float w = std::min(a[2], c[2]) - std::max(a[0], c[0]);
      float h = std::min(a[3], c[3]) - std::max(a[1], c[1]);
      if (w <= 0 || h <= 0) continue;
      float inter = w * h;
      float area_c = std::max(0.f, c[2] - c[0]) * std::max(0.f, c[3] - c[1]);
      if (inter / (area_a + area_c - inter + 1e-9f) > iou_threshold) removed[j] = 1;
    }
  }
  return keep;
}

std::vector<std::vector<Detection>> Infer(DetectorNet& net, const ModelConfig& config,
                                          torch::Device device, const Grid& grid,
                                          const std::vector<cv::Mat>& images,
                                          const PredictOptions& options,
                                          std::vector<std::vector<float>>* embeddings,
                                          torch::ScalarType dtype) {
  const int s = config.imgsz;
  const int64_t n = static_cast<int64_t>(images.size());
  std::vector<std::vector<Detection>> out(images.size());
  if (n == 0) return out;
  std::vector<Letterbox> geo(images.size());
  torch::Tensor batch = torch::empty({n, s, s, 3}, torch::kUInt8);
  for (int64_t i = 0; i < n; ++i) {
    cv::Mat lb = LetterboxImage(images[i], s, &geo[i]);
    std::memcpy(batch[i].data_ptr(), lb.data, static_cast<size_t>(s) * s * 3);
  }
  torch::NoGradGuard no_grad;
  HeadOutput head = net->forward(InputFromBgr(batch, device, dtype));
  if (embeddings) {
    torch::Tensor e = head.embedding.to(torch::kCPU).contiguous();
    embeddings->assign(images.size(), {});
    for (int64_t i = 0; i < n; ++i) {
      const float* p = e[i].data_ptr<float>();
      (*embeddings)[i].assign(p, p + e.size(1));
    }
  }
  torch::Tensor scores = torch::sigmoid(head.logits).to(torch::kCPU);  // [B, A, C]
  torch::Tensor boxes = DecodeBoxes(head.box, grid).to(torch::kCPU);   // [B, A, 4]
  for (int64_t i = 0; i < n; ++i) {
    // Every (location, class) above the threshold: several labels per box.
    torch::Tensor mask = scores[i] > options.conf;
    torch::Tensor idx = mask.nonzero();  // [K, 2]
    if (idx.size(0) == 0) continue;
    torch::Tensor sc = scores[i].index({idx.select(1, 0), idx.select(1, 1)});
    const int64_t pre = std::min<int64_t>(sc.size(0), 3000);
    auto [top, order] = sc.topk(pre);
    torch::Tensor loc = idx.select(1, 0).index_select(0, order);
    torch::Tensor cls = idx.select(1, 1).index_select(0, order);
    torch::Tensor bx = boxes[i].index_select(0, loc).contiguous();
    // Class-wise NMS in one pass: boxes of different classes never overlap
    // after an offset per class.
    torch::Tensor shifted = (bx + cls.unsqueeze(1).to(torch::kFloat) * (4.0 * s)).contiguous();
    auto ba = bx.accessor<float, 2>();
    auto ta = top.accessor<float, 1>();
    auto ca = cls.accessor<int64_t, 1>();
    const Letterbox& g = geo[i];
    const float w = static_cast<float>(images[i].cols), h = static_cast<float>(images[i].rows);
    // Every candidate in original pixels; those under a pixel wide or high
    // are dropped, but still suppress their neighbours as before.
    std::vector<Detection> cand(static_cast<size_t>(pre));
    std::vector<char> usable(cand.size());
    for (int64_t k = 0; k < pre; ++k) {
      Detection& d = cand[k];
      d.class_id = static_cast<int>(ca[k]);
      d.score = ta[k];
      auto px = [&](float v, double pad, float lim) {
        return std::clamp(static_cast<float>((v - pad) / g.scale), 0.f, lim);
      };
      d.x1 = px(ba[k][0], g.pad_x, w);
      d.y1 = px(ba[k][1], g.pad_y, h);
      d.x2 = px(ba[k][2], g.pad_x, w);
      d.y2 = px(ba[k][3], g.pad_y, h);
      usable[k] = d.x2 - d.x1 >= 1 && d.y2 - d.y1 >= 1;
    }
    for (int64_t k : Nms(shifted.data_ptr<float>(), pre, options.iou, options.max_det, &usable)) {
      if (static_cast<int>(out[i].size()) >= options.max_det) break;
      if (!usable[k]) continue;
      Detection& d = cand[k];
      d.class_name =
          d.class_id < static_cast<int>(config.classes.size()) ? config.classes[d.class_id] : "";
      out[i].push_back(std::move(d));
    }
  }
  return out;
}

}  // namespace detops::ml
