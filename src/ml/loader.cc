#include "ml/loader.h"

#include <algorithm>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

namespace detops::ml {

namespace {
uint64_t Mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

Loader::Loader(const std::vector<TrainSample>& samples, AugmentOptions augment, int threads,
               uint64_t seed, size_t cache_bytes)
    : samples_(samples),
      augment_(augment),
      seed_(seed),
      cache_bytes_(cache_bytes),
      cache_(samples.size()),
      pool_(threads > 0 ? std::make_unique<ThreadPool>(threads) : nullptr) {}

std::vector<size_t> Loader::Order(int epoch, bool shuffle) const {
  std::vector<size_t> order(samples_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (shuffle) {
    std::mt19937_64 rng(Mix(seed_ ^ Mix(static_cast<uint64_t>(epoch) + 1)));
    std::shuffle(order.begin(), order.end(), rng);
  }
  return order;
}

cv::Mat Loader::Image(size_t i) {
  {
    std::lock_guard lock(mu_);
    if (!cache_[i].empty()) return cache_[i];
  }
  cv::Mat img;
  try {
    img = cv::imread(samples_[i].path.string(), cv::IMREAD_COLOR);
  } catch (const cv::Exception&) {
    img.release();
  }
  if (img.empty()) return img;
  double limit = augment_.imgsz;
  double longest = std::max(img.cols, img.rows);
  if (longest > limit) {
    double k = limit / longest;
    cv::resize(img, img, {std::max(1, int(img.cols * k)), std::max(1, int(img.rows * k))}, 0, 0,
               cv::INTER_AREA);
  }
  std::lock_guard lock(mu_);
  size_t bytes = img.total() * img.elemSize();
  if (cached_bytes_ + bytes <= cache_bytes_ && cache_[i].empty()) {
    cache_[i] = img;
    cached_bytes_ += bytes;
  }
  return img;
}

Result<std::vector<Example>> Loader::Build(int epoch, const std::vector<size_t>& order,
                                           size_t first, size_t count, bool mosaic) {
  std::vector<Example> out(count);
  AugmentOptions o = augment_;
  if (!mosaic) o.mosaic = 0;
  ImageSource source = [this](size_t i) { return Image(i); };
  auto make = [&](size_t k) -> Status {
    const size_t pos = first + k;
    const uint64_t s = Mix(seed_ ^ Mix((static_cast<uint64_t>(epoch) << 32) ^ pos));
    try {
      out[k] = MakeExample(samples_, order[pos], source, o, s);
    } catch (const std::exception& e) {  // OpenCV's cv::Exception among them
      return Status::Internal(samples_[order[pos]].path.string() +
                              ": augmentation failed: " + e.what());
    }
    return Status::Ok();
  };
  ParallelForOptions po;
  po.threads = 1;
  po.pool = pool_.get();
  RETURN_IF_ERROR(ParallelFor(count, make, po));
  return out;
}

std::future<Result<std::vector<Example>>> Loader::BuildAsync(int epoch, std::vector<size_t> order,
                                                             size_t first, size_t count,
                                                             bool mosaic) {
  assert(pool_ && "BuildAsync needs a loader with workers");
  auto promise = std::make_shared<std::promise<Result<std::vector<Example>>>>();
  auto future = promise->get_future();
  pool_->Submit([this, promise, epoch, order = std::move(order), first, count, mosaic] {
    promise->set_value(Build(epoch, order, first, count, mosaic));
  });
  return future;
}

}  // namespace detops::ml
