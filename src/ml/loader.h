#pragma once
// Batches of augmented examples, built on the loader's worker threads,
// deterministic for (seed, epoch, step) whatever the thread count. Internal
// to ml.

#include <future>
#include <memory>
#include <mutex>
#include <opencv2/core.hpp>
#include <vector>

#include "core/core.h"
#include "core/parallel.h"
#include "ml/augment.h"

namespace detops::ml {

class Loader {
 public:
  // Decoded images are kept in memory (downscaled so the longest side is at
  // most imgsz, the scale every example is composed at, so that composing
  // needs no resize) while they fit in `cache_bytes`. `threads` workers
  // build batches (one pool for the loader's life); 0: batches are built on
  // the caller alone and BuildAsync is not available.
  Loader(const std::vector<TrainSample>& samples, AugmentOptions augment, int threads,
         uint64_t seed, size_t cache_bytes = size_t{3} << 30);

  // Sample order of an epoch (shuffled when `shuffle`).
  std::vector<size_t> Order(int epoch, bool shuffle) const;
  // Examples order[first .. first + count) of an epoch, built by the caller
  // and the workers. An error names what OpenCV refused.
  Result<std::vector<Example>> Build(int epoch, const std::vector<size_t>& order, size_t first,
                                     size_t count, bool mosaic);
  // The same as one task on the workers (the task building, the other
  // workers helping), so that the next batch is made while the caller
  // trains on this one. The task keeps its own copy of `order`; the loader
  // must outlive it (its destructor finishes queued tasks first).
  std::future<Result<std::vector<Example>>> BuildAsync(int epoch, std::vector<size_t> order,
                                                       size_t first, size_t count, bool mosaic);
  // The cached, decoded image i (empty when unreadable).
  cv::Mat Image(size_t i);
  size_t size() const { return samples_.size(); }

 private:
  const std::vector<TrainSample>& samples_;
  AugmentOptions augment_;
  uint64_t seed_;
  size_t cache_bytes_;
  std::mutex mu_;  // guards cache_ and cached_bytes_
  std::vector<cv::Mat> cache_;
  size_t cached_bytes_ = 0;
  // Last: destroyed first, finishing its tasks while the members they use live.
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace detops::ml
