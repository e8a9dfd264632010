// MetricLogger: a buffer swapped out by a background writer.

#include <chrono>

#include "track/track.h"

namespace detops {

MetricLogger::MetricLogger(Tracker& tracker, std::string run_id, MetricLoggerOptions options)
    : tracker_(tracker), run_id_(std::move(run_id)), options_(options) {
  buffer_.reserve(options_.flush_points);
  writer_ = std::thread([this] { WriterLoop(); });
}

MetricLogger::~MetricLogger() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  writer_.join();
}

void MetricLogger::Log(std::string_view key, double value, int64_t step) {
  int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  std::lock_guard lock(mu_);
  if (buffer_.size() >= options_.max_buffered_points) {
    dropped_.fetch_add(1);
    return;
  }
  buffer_.push_back({std::string(key), step, value, now_ms});
  ++logged_;
  if (buffer_.size() == options_.flush_points) wake_.notify_one();
}

Status MetricLogger::Flush() {
  std::unique_lock lock(mu_);
  const int64_t target = logged_;
  const int64_t failures = failures_;
  if (settled_ >= target) return Status::Ok();
  flush_requested_ = true;
  wake_.notify_one();
  progress_.wait(lock, [&] { return settled_ >= target || failures_ > failures; });
  return failures_ > failures ? last_error_ : Status::Ok();
}

void MetricLogger::WriterLoop() {
  const auto interval = std::chrono::milliseconds(options_.flush_interval_ms);
  std::vector<MetricPoint> batch;
  bool failed_last = false;
  std::unique_lock lock(mu_);
  while (true) {
    // After a failure, wait the full interval (or a Flush) before retrying,
    // even though the re-queued points exceed flush_points.
    wake_.wait_for(lock, interval, [&] {
      return stop_ || flush_requested_ || (!failed_last && buffer_.size() >= options_.flush_points);
    });
    flush_requested_ = false;
    if (buffer_.empty()) {
      if (stop_) break;
      continue;
    }
    batch.clear();
    batch.swap(buffer_);
    buffer_.reserve(options_.flush_points);
    lock.unlock();
    Status s = tracker_.LogMetrics(run_id_, batch);
    lock.lock();
    const auto n = static_cast<int64_t>(batch.size());
    failed_last = !s.ok();
    if (s.ok()) {
      settled_ += n;
    } else {
      ++failures_;
      last_error_ = s;
      if (s.code() == StatusCode::kNotFound || stop_) {
        // No such run, or the logger is going away: nothing will succeed.
        settled_ += n;
        dropped_.fetch_add(n);
      } else {
        // Put the points back in front of those logged meanwhile.
        batch.insert(batch.end(), std::make_move_iterator(buffer_.begin()),
                     std::make_move_iterator(buffer_.end()));
        buffer_.swap(batch);
        if (buffer_.size() > options_.max_buffered_points) {
          auto extra = static_cast<int64_t>(buffer_.size() - options_.max_buffered_points);
          buffer_.resize(options_.max_buffered_points);
          settled_ += extra;
          dropped_.fetch_add(extra);
        }
      }
    }
    progress_.notify_all();
  }
}

}  // namespace detops
