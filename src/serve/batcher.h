#pragma once
// Dynamic batching for the serving path (HTTP -> routes -> queue -> batcher
// -> runner), in the manner of Triton's dynamic batch scheduler: requests
// queue FIFO; a worker takes up to batch_max_size of them as one batch, at
// once when that many are queued, else when the oldest has waited
// batch_max_delay_us; the runner gets the batch and returns one result per
// request, which goes back to that request's caller through a future.
//
//   Batcher<Image, Detections> batcher(options, [&](std::vector<Image>& batch) {
//     return detector.Run(batch);  // one Result<Detections> per image, same order
//   });
//   ASSIGN_OR_RETURN(auto future, batcher.Submit(std::move(image)));
//   Result<Detections> detections = future.get();
//
// Back-pressure: the queue holds at most queue_max requests; Submit refuses
// more with Unavailable (HTTP 503) instead of blocking, so a slow runner
// shows up as fast refusals, not as a growing backlog.

#include <algorithm>
#include <cassert>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/core.h"

namespace detops {

struct BatcherOptions {
  size_t batch_max_size = 8;          // most requests in one batch (>= 1)
  int64_t batch_max_delay_us = 2000;  // how long the oldest queued request waits for others
  size_t queue_max = 256;             // queued requests beyond this are refused (>= 1)
  int workers = 1;                    // runner threads (>= 1); batches run concurrently
  // Of `workers`, how many run on threads the owner lends by calling Work()
  // (0..workers). LibTorch 1.13's multi-threaded kernels run ~1.8x slower
  // on any thread but the process's first one (docs/BENCHMARKS.md), so a
  // server lends its main thread.
  int lent_workers = 0;
};

// What a worker reports after each batch (for metrics).
struct BatchInfo {
  size_t size = 0;
  // Per request, in batch order: from Submit to the batch being taken.
  std::vector<std::chrono::microseconds> queue_waits;
  std::chrono::microseconds run_time{0};  // run_batch, wall time
  bool failed = false;                    // run_batch threw or returned a wrong count
};

// Thread-safe. Requests are taken FIFO; with workers > 1 batches may finish
// out of order, but every result reaches its own caller.
template <typename Req, typename Resp>
class Batcher {
 public:
  // Gets 1..batch_max_size requests in arrival order (it may move from them)
  // and returns one Result per request, in the same order. If it throws, or
  // returns another number of results, every request of that batch gets
  // Internal naming the cause; the batcher keeps serving. Called from the
  // worker threads, concurrently when workers > 1.
  using RunBatch = std::function<std::vector<Result<Resp>>(std::vector<Req>&)>;
  // Called by a worker after each batch's results were delivered;
  // concurrently when workers > 1. Exceptions from it are ignored.
  using Observer = std::function<void(const BatchInfo&)>;

  // Starts the workers. Option values out of range are programmer errors
  // (asserted; raised to the minimum in release builds).
  Batcher(BatcherOptions options, RunBatch run_batch, Observer observer = nullptr)
      : options_(Sanitize(options)),
        run_batch_(std::move(run_batch)),
        observer_(std::move(observer)) {
    for (int i = options_.lent_workers; i < options_.workers; ++i) {
      workers_.emplace_back([this] { WorkerLoop(); });
    }
  }

  // Runs a lent worker on the calling thread until Shutdown has drained the
  // queue. Call it at most lent_workers times (concurrently).
  void Work() {
    {
      std::lock_guard lock(mu_);
      ++lent_running_;
    }
    WorkerLoop();
    {
      std::lock_guard lock(mu_);
      --lent_running_;
    }
    lent_done_.notify_all();
  }
  ~Batcher() { Shutdown(); }
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues a request; never waits for the runner. The future always gets a
  // value (never an exception). Unavailable "queue full: N requests waiting"
  // when queue_max requests are queued, "shutting down" once Shutdown began.
  Result<std::future<Result<Resp>>> Submit(Req req) {
    std::future<Result<Resp>> future;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return Status::Unavailable("shutting down");
      if (queue_.size() >= options_.queue_max) {
        return Status::Unavailable("queue full: " + std::to_string(queue_.size()) +
                                   " requests waiting");
      }
      queue_.push_back(Pending{std::move(req), {}, Clock::now()});
      future = queue_.back().promise.get_future();
      // A worker needs waking when the queue starts (to time the oldest
      // request's delay) and when a full batch is ready; in between, the
      // worker timing the delay picks the newcomers up.
      if (queue_.size() == 1 || queue_.size() >= options_.batch_max_size) wake_.notify_one();
    }
    return future;
  }

  // Queues several requests at once, in order, so that a worker sees them
  // together (one batch when they fit, where Submit calls from several
  // threads race the workers' wake-ups). With chunk_size > 0 they are split
  // into chunks of that many that no batch straddles, so idle workers share
  // them (a request of 8 images on 2 workers: two batches of 4 side by side);
  // single Submits still join any batch. One answer per request, as Submit
  // would give: those beyond queue_max are refused, the others queued.
  std::vector<Result<std::future<Result<Resp>>>> SubmitAll(std::vector<Req> reqs,
                                                           size_t chunk_size = 0) {
    std::vector<Result<std::future<Result<Resp>>>> out;
    out.reserve(reqs.size());
    {
      std::lock_guard lock(mu_);
      const size_t before = queue_.size();
      for (Req& req : reqs) {
        if (stopping_) {
          out.emplace_back(Status::Unavailable("shutting down"));
        } else if (queue_.size() >= options_.queue_max) {
          out.emplace_back(Status::Unavailable("queue full: " + std::to_string(queue_.size()) +
                                               " requests waiting"));
        } else {
          const size_t k = out.size();
          if (chunk_size > 0 && k % chunk_size == 0) ++last_chunk_;
          queue_.push_back(Pending{std::move(req), {}, Clock::now(), chunk_size ? last_chunk_ : 0});
          out.emplace_back(queue_.back().promise.get_future());
        }
      }
      // As in Submit: wake a worker when the queue started or a batch filled.
      const size_t after = queue_.size();
      if (after > before && (before == 0 || after >= options_.batch_max_size)) {
        wake_.notify_one();
      }
    }
    return out;
  }

  // Stops accepting requests, lets the workers run everything already queued
  // (without waiting out batch delays) and joins them. Idempotent; concurrent
  // callers all return once the workers are gone. Must not be called from
  // run_batch or the observer.
  void Shutdown() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    std::call_once(joined_, [this] {
      for (std::thread& t : workers_) t.join();
    });
    // Lent workers drain what is left, then return from Work().
    std::unique_lock lock(mu_);
    lent_done_.wait(lock, [this] { return lent_running_ == 0; });
    // Only lent workers, none of them ever started: nobody will run these.
    for (Pending& p : queue_) p.promise.set_value(Status::Unavailable("shutting down"));
    queue_.clear();
  }

  // Requests queued and not yet taken by a worker.
  size_t queue_depth() const {
    std::lock_guard lock(mu_);
    return queue_.size();
  }

  const BatcherOptions& options() const { return options_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Pending {
    Req req;
    std::promise<Result<Resp>> promise;
    Clock::time_point queued;
    uint64_t chunk = 0;  // SubmitAll's chunk; 0: joins any batch
  };

  static BatcherOptions Sanitize(BatcherOptions o) {
    assert(o.batch_max_size >= 1 && o.queue_max >= 1 && o.workers >= 1 &&
           o.batch_max_delay_us >= 0);
    o.batch_max_size = std::max<size_t>(o.batch_max_size, 1);
    o.queue_max = std::max<size_t>(o.queue_max, 1);
    o.workers = std::max(o.workers, 1);
    o.lent_workers = std::clamp(o.lent_workers, 0, o.workers);
    o.batch_max_delay_us = std::max<int64_t>(o.batch_max_delay_us, 0);
    return o;
  }

  void WorkerLoop() {
    const auto delay = std::chrono::microseconds(options_.batch_max_delay_us);
    std::unique_lock lock(mu_);
    for (;;) {
      if (queue_.empty()) {
        if (stopping_) return;
        wake_.wait(lock);
        continue;
      }
      // Wait for more only while the batch is not full, we are not draining
      // and the oldest request's delay (counted from its Submit) runs. Every
      // wakeup re-checks: another worker may have taken the queue meanwhile.
      const Clock::time_point deadline = queue_.front().queued + delay;
      if (queue_.size() < options_.batch_max_size && !stopping_ && Clock::now() < deadline) {
        wake_.wait_until(lock, deadline);
        continue;
      }
      size_t n = std::min(queue_.size(), options_.batch_max_size);
      for (size_t i = 1; i < n; ++i) {
        const uint64_t a = queue_[i - 1].chunk, b = queue_[i].chunk;
        if (a != 0 && b != 0 && a != b) n = i;  // the next chunk is another worker's
      }
      std::vector<Pending> batch;
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      // Leftovers must not wait for this batch to finish if a worker is idle.
      if (!queue_.empty()) wake_.notify_one();
      lock.unlock();
      Run(batch);
      lock.lock();
    }
  }

  void Run(std::vector<Pending>& batch) {
    const Clock::time_point taken = Clock::now();
    BatchInfo info;
    info.size = batch.size();
    std::vector<Req> reqs;
    reqs.reserve(batch.size());
    for (Pending& p : batch) {
      info.queue_waits.push_back(
          std::chrono::duration_cast<std::chrono::microseconds>(taken - p.queued));
      reqs.push_back(std::move(p.req));
    }
    std::string error;
    std::vector<Result<Resp>> results;
    try {
      results = run_batch_(reqs);
      if (results.size() != batch.size()) {
        error = "batch runner returned " + std::to_string(results.size()) +
                " results for a batch of " + std::to_string(batch.size());
      }
    } catch (const std::exception& e) {
      error = std::string("batch runner failed: ") + e.what();
    } catch (...) {
      error = "batch runner failed: unknown exception";
    }
    info.run_time = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - taken);
    info.failed = !error.empty();
    // Observe before answering: a client that reads /metrics right after
    // its response must find its batch counted.
    if (observer_) {
      try {
        observer_(info);
      } catch (...) {
      }
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i].promise.set_value(info.failed ? Result<Resp>(Status::Internal(error))
                                             : std::move(results[i]));
    }
  }

  const BatcherOptions options_;
  const RunBatch run_batch_;
  const Observer observer_;
  mutable std::mutex mu_;              // guards queue_, stopping_ and last_chunk_
  std::condition_variable wake_;       // workers: requests queued, batch full, stopping
  std::condition_variable lent_done_;  // Shutdown: a lent worker returned
  uint64_t last_chunk_ = 0;            // SubmitAll's chunk ids
  int lent_running_ = 0;               // lent workers inside Work()
  std::deque<Pending> queue_;          // FIFO
  bool stopping_ = false;
  std::once_flag joined_;
  std::vector<std::thread> workers_;  // last: started once everything above exists
};

}  // namespace detops
