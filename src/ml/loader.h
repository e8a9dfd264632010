#pragma once
// Batches of augmented examples, built on worker threads, deterministic for
// (seed, epoch, step) whatever the thread count. Internal to ml.

#include <mutex>
#include <opencv2/core.hpp>
#include <vector>

#include "ml/augment.h"

namespace detops::ml {

class Loader {
 public:
  // Decoded images are kept in memory (downscaled so the longest side is at
  // most imgsz, the scale every example is composed at, so that composing
  // needs no resize) while they fit in `cache_bytes`.
  Loader(const std::vector<TrainSample>& samples, AugmentOptions augment, int threads,
         uint64_t seed, size_t cache_bytes = size_t{3} << 30);

  // Sample order of an epoch (shuffled when `shuffle`).
  std::vector<size_t> Order(int epoch, bool shuffle) const;
  // Examples order[first .. first + count) of an epoch.
  std::vector<Example> Build(int epoch, const std::vector<size_t>& order, size_t first,
                             size_t count, bool mosaic);
  // The cached, decoded image i (empty when unreadable).
  cv::Mat Image(size_t i);
  size_t size() const { return samples_.size(); }

 private:
  const std::vector<TrainSample>& samples_;
  AugmentOptions augment_;
  int threads_;
  uint64_t seed_;
  size_t cache_bytes_;
  std::mutex mu_;  // guards cache_ and cached_bytes_
  std::vector<cv::Mat> cache_;
  size_t cached_bytes_ = 0;
};

}  // namespace detops::ml
