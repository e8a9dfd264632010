#pragma once
// Letterbox -> forward -> decode -> class-wise NMS -> original pixels.
// Internal to ml; used by Detector and by validation during training.

#include <torch/torch.h>

#include <vector>

#include "ml/ml.h"
#include "ml/model.h"

namespace detops::ml {

// Runs `net` (in eval mode) on BGR images. When `embeddings` is set it
// receives each image's embedding (HeadOutput::embedding). `dtype` is the
// network's input type: bf16 when FuseBatchNorm stored bf16 weights.
// Thread-compatible.
std::vector<std::vector<Detection>> Infer(DetectorNet& net, const ModelConfig& config,
                                          torch::Device device, const Grid& grid,
                                          const std::vector<cv::Mat>& images,
                                          const PredictOptions& options,
                                          std::vector<std::vector<float>>* embeddings = nullptr,
                                          torch::ScalarType dtype = torch::kFloat);

// Greedy NMS over boxes [N, 4] sorted by descending score; returns the kept
// rows in order. With `max_counted` >= 0 it stops once that many kept rows
// count (those with `counts[row]` set; every row when `counts` is null):
// greedy NMS never revisits a kept row, so the rows kept by then are the
// first ones a full pass keeps, and a detector's 100 detections out of
// 3,000 candidates do not cost a full O(n^2) pass.
std::vector<int64_t> Nms(const float* boxes, int64_t n, float iou_threshold,
                         int64_t max_counted = -1, const std::vector<char>* counts = nullptr);

}  // namespace detops::ml
