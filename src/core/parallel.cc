#include "core/parallel.h"

#include <algorithm>
#include <atomic>
#include <memory>

namespace detops {

ThreadPool::ThreadPool(int threads) {
  for (int t = 0; t < std::max(1, threads); ++t) workers_.emplace_back([this] { Work(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::Submit(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void ThreadPool::Work() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to run
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

int ResolveThreads(int requested) {
  if (requested > 0) return requested;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

namespace {

// What the caller and its helpers share; helpers hold it by shared_ptr, so
// a helper that starts after the loop has returned finds nothing to do.
struct LoopState {
  size_t n = 0;
  std::function<Status(size_t)> fn;
  std::function<void(size_t, size_t)> progress;
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;  // guards done, error, error_index, running and calls to progress
  std::condition_variable idle;
  size_t done = 0;
  Status error;
  size_t error_index = 0;
  int running = 0;        // helpers inside Drain
  bool finished = false;  // the caller has returned: late helpers do nothing

  void Drain() {
    for (size_t i; !failed && (i = next++) < n;) {
      Status s = fn(i);
      std::lock_guard lock(mu);
      if (!s.ok()) {
        if (!failed.exchange(true) || i < error_index) {
          error = std::move(s);
          error_index = i;
        }
      }
      ++done;
      if (progress && !failed) progress(done, n);
    }
  }
};

}  // namespace

Status ParallelFor(size_t n, const std::function<Status(size_t)>& fn,
                   const ParallelForOptions& options) {
  if (n == 0) return Status::Ok();
  auto state = std::make_shared<LoopState>();
  state->n = n;
  state->fn = fn;
  state->progress = options.progress;
  std::unique_ptr<ThreadPool> own;
  ThreadPool* pool = options.pool;
  size_t helpers = 0;
  if (pool) {
    helpers = std::min<size_t>(pool->size(), n - 1);
  } else {
    helpers = std::min<size_t>(ResolveThreads(options.threads) - 1, n - 1);
    if (helpers > 0) {
      own = std::make_unique<ThreadPool>(static_cast<int>(helpers));
      pool = own.get();
    }
  }
  for (size_t h = 0; h < helpers; ++h) {
    pool->Submit([state] {
      {
        std::lock_guard lock(state->mu);
        if (state->finished) return;
        ++state->running;
      }
      state->Drain();
      std::lock_guard lock(state->mu);
      if (--state->running == 0) state->idle.notify_all();
    });
  }
  state->Drain();
  {
    // Every index is taken: wait only for helpers that started. One still
    // queued (its pool busy, perhaps with this very caller) never runs fn.
    std::unique_lock lock(state->mu);
    state->idle.wait(lock, [&] { return state->running == 0; });
    state->finished = true;
  }
  return state->failed ? state->error : Status::Ok();
}

}  // namespace detops
