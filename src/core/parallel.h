#pragma once
// One way to run work on several threads: a fixed pool of workers and a
// parallel loop over indices, with progress. Every module that fans work out
// uses these, so that no code starts a thread per item.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/status.h"

namespace detops {

// A fixed set of worker threads that run submitted tasks in FIFO order.
// Thread-safe. The destructor runs every task already submitted, then joins.
// A task must not throw (an escaping exception terminates the process, as in
// std::thread).
class ThreadPool {
 public:
  // `threads` workers; values below 1 mean 1.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Submit(std::function<void()> task);
  int size() const { return static_cast<int>(workers_.size()); }

 private:
  void Work();

  std::mutex mu_;  // guards queue_ and stopping_
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

struct ParallelForOptions {
  // Threads that run items, the caller included. 0: the hardware's count.
  // Ignored when `pool` is given (the pool's workers plus the caller run).
  int threads = 0;
  // Run on these workers instead of threads started for this call. The
  // caller always takes items too, so a loop nested in a pool task cannot
  // deadlock waiting for a worker.
  ThreadPool* pool = nullptr;
  // Called once per finished item, failed ones included, with done = 1..n in
  // order, never concurrently with itself. Not called for items skipped after
  // a failure.
  std::function<void(size_t done, size_t total)> progress;
};

// Runs fn(i) for every i in [0, n) and waits for all of them. When an item
// fails, no new item starts, and the failure with the lowest index among
// those that ran is returned; fn records per-item errors itself (and returns
// Ok) when every item must run regardless. Items run in no particular order.
Status ParallelFor(size_t n, const std::function<Status(size_t)>& fn,
                   const ParallelForOptions& options = {});

// The threads to use for `requested` (0 or less: the hardware's count).
int ResolveThreads(int requested);

}  // namespace detops
