#include "serve/batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

namespace detops {
namespace {

using std::chrono::milliseconds;
using IntBatcher = Batcher<int, int>;
using IntFuture = std::future<Result<int>>;

int F(int x) { return 3 * x + 1; }

// Runs F on every item.
std::vector<Result<int>> RunF(std::vector<int>& batch) {
  std::vector<Result<int>> out;
  for (int x : batch) out.emplace_back(F(x));
  return out;
}

// Batch sizes seen by a runner, thread-safe.
class SizeLog {
 public:
  void Add(size_t n) {
    std::lock_guard lock(mu_);
    sizes_.push_back(n);
  }
  std::vector<size_t> sizes() const {
    std::lock_guard lock(mu_);
    return sizes_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<size_t> sizes_;
};

// Holds the runner inside its first batch until Release(), so the queue
// behind it fills deterministically.
class Gate {
 public:
  // Call from the runner: the first call blocks until Release().
  void PassFirst() {
    if (first_.exchange(false)) {
      entered_.set_value();
      released_.wait();
    }
  }
  void WaitEntered() { entered_future_.wait(); }
  void Release() { release_.set_value(); }

 private:
  std::atomic<bool> first_{true};
  std::promise<void> entered_;
  std::future<void> entered_future_ = entered_.get_future();
  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
};

// Polls (the test, not the batcher) until `cond` holds or 30 s passed.
template <typename Cond>
bool Eventually(Cond cond) {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!cond()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

IntFuture MustSubmit(IntBatcher& b, int x) {
  auto r = b.Submit(x);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

TEST(BatcherTest, ResultsReachTheirCallersUnderConcurrency) {
  SizeLog log;
  BatcherOptions options;
  options.batch_max_size = 8;
  options.batch_max_delay_us = 500;
  options.queue_max = 10000;
  options.workers = 2;
  IntBatcher batcher(options, [&](std::vector<int>& batch) {
    log.Add(batch.size());
    return RunF(batch);
  });
  constexpr int kThreads = 8, kPerThread = 200;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::pair<int, IntFuture>> futures;
      for (int i = 0; i < kPerThread; ++i) {
        int x = t * kPerThread + i;
        futures.emplace_back(x, MustSubmit(batcher, x));
        if (i % 4 == 3) {  // mix waiting callers with fire-and-collect ones
          Result<int> r = futures.back().second.get();
          futures.pop_back();
          if (!r.ok() || *r != F(x)) ++wrong;
        }
      }
      for (auto& [x, f] : futures) {
        Result<int> r = f.get();
        if (!r.ok() || *r != F(x)) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  size_t total = 0;
  for (size_t n : log.sizes()) {
    EXPECT_GE(n, 1u);
    EXPECT_LE(n, 8u);
    total += n;
  }
  EXPECT_EQ(total, size_t{kThreads * kPerThread});
  EXPECT_EQ(batcher.queue_depth(), 0u);
}

TEST(BatcherTest, SlowRunnerWithConcurrentSubmittersBatches) {
  Gate gate;
  SizeLog log;
  BatcherOptions options;
  options.batch_max_size = 8;
  options.batch_max_delay_us = 1000;
  IntBatcher batcher(options, [&](std::vector<int>& batch) {
    log.Add(batch.size());
    gate.PassFirst();  // the runner is slow: busy until every submitter is done
    return RunF(batch);
  });
  IntFuture first = MustSubmit(batcher, -1);
  gate.WaitEntered();
  constexpr int kThreads = 8, kPerThread = 10;
  std::vector<std::vector<IntFuture>> futures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) futures[t].push_back(MustSubmit(batcher, t * 100 + i));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(batcher.queue_depth(), size_t{kThreads * kPerThread});
  gate.Release();
  EXPECT_EQ(*first.get(), F(-1));
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) EXPECT_EQ(*futures[t][i].get(), F(t * 100 + i));
  }
  // 80 queued behind the first: ten full batches, taken without waiting.
  EXPECT_EQ(log.sizes(), (std::vector<size_t>{1, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8}));
}

TEST(BatcherTest, MaxSizeOneRunsEveryRequestAlone) {
  SizeLog log;
  BatcherOptions options;
  options.batch_max_size = 1;
  options.batch_max_delay_us = 10000;  // irrelevant: a batch of one is always full
  IntBatcher batcher(options, [&](std::vector<int>& batch) {
    log.Add(batch.size());
    return RunF(batch);
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<IntFuture> futures;
      for (int i = 0; i < 50; ++i) futures.push_back(MustSubmit(batcher, t * 50 + i));
      for (int i = 0; i < 50; ++i) EXPECT_EQ(*futures[i].get(), F(t * 50 + i));
    });
  }
  for (auto& t : threads) t.join();
  std::vector<size_t> sizes = log.sizes();
  EXPECT_EQ(sizes.size(), 200u);
  for (size_t n : sizes) EXPECT_EQ(n, 1u);
}

// A batcher (batch_max_size 2, queue_max 4) whose one worker holds request
// 0 inside the runner until gate.Release(): the queue behind it is empty.
struct HeldBatcher {
  HeldBatcher() {
    first = MustSubmit(batcher, 0);
    gate.WaitEntered();
  }
  static BatcherOptions Options() {
    BatcherOptions options;
    options.batch_max_size = 2;
    options.queue_max = 4;
    return options;
  }
  Gate gate;
  IntBatcher batcher{Options(), [this](std::vector<int>& batch) {
                       gate.PassFirst();
                       return RunF(batch);
                     }};
  IntFuture first;
};

TEST(BatcherTest, FullQueueRefusesAtOnce) {
  HeldBatcher held;
  IntBatcher& batcher = held.batcher;
  Gate& gate = held.gate;
  IntFuture& first = held.first;
  std::vector<IntFuture> queued;
  for (int x = 1; x <= 4; ++x) queued.push_back(MustSubmit(batcher, x));
  EXPECT_EQ(batcher.queue_depth(), 4u);
  auto refused = batcher.Submit(5);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(refused.status().message(), "queue full: 4 requests waiting");
  gate.Release();
  EXPECT_EQ(*first.get(), F(0));
  for (int x = 1; x <= 4; ++x) EXPECT_EQ(*queued[x - 1].get(), F(x));
  EXPECT_EQ(*MustSubmit(batcher, 6).get(), F(6));  // room again
}

// The batch sizes the runner sees when 50 requests of 8 images are queued
// with SubmitAll (chunk_size as given) on 2 idle workers with no delay.
std::vector<size_t> BatchSizesOfSubmitAll(size_t chunk_size) {
  SizeLog log;
  BatcherOptions options;
  options.batch_max_size = 8;
  options.batch_max_delay_us = 0;
  options.workers = 2;
  IntBatcher batcher(options, [&](std::vector<int>& batch) {
    log.Add(batch.size());
    return RunF(batch);
  });
  for (int round = 0; round < 50; ++round) {
    auto futures = batcher.SubmitAll({0, 1, 2, 3, 4, 5, 6, 7}, chunk_size);
    EXPECT_EQ(futures.size(), 8u);
    for (int x = 0; x < 8; ++x) {
      EXPECT_TRUE(futures[x].ok()) << futures[x].status().ToString();
      if (futures[x].ok()) {
        EXPECT_EQ(*futures[x]->get(), F(x));
      }
    }
  }
  batcher.Shutdown();
  return log.sizes();
}

// A batch request's images queue in one step: with no delay and idle
// workers, the runner still sees them as one batch, every time.
TEST(BatcherTest, SubmitAllIsSeenAsOneBatch) {
  EXPECT_EQ(BatchSizesOfSubmitAll(0), std::vector<size_t>(50, 8));
}

// In chunks, no batch straddles two, so two workers run them side by side.
TEST(BatcherTest, SubmitAllInChunksGivesEachChunkItsOwnBatch) {
  EXPECT_EQ(BatchSizesOfSubmitAll(4), std::vector<size_t>(100, 4));
}

TEST(BatcherTest, SubmitAllQueuesWhatFitsAndRefusesTheRest) {
  HeldBatcher held;
  IntBatcher& batcher = held.batcher;
  Gate& gate = held.gate;
  IntFuture& first = held.first;
  auto futures = batcher.SubmitAll({1, 2, 3, 4, 5, 6});
  ASSERT_EQ(futures.size(), 6u);
  for (int i = 4; i < 6; ++i) {
    ASSERT_FALSE(futures[i].ok());
    EXPECT_EQ(futures[i].status().message(), "queue full: 4 requests waiting");
  }
  gate.Release();
  EXPECT_EQ(*first.get(), F(0));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(*futures[i]->get(), F(i + 1));
  batcher.Shutdown();
  auto late = batcher.SubmitAll({7});
  ASSERT_FALSE(late[0].ok());
  EXPECT_EQ(late[0].status().message(), "shutting down");
}

TEST(BatcherTest, ShutdownDrainsTheQueueAndRefusesLaterRequests) {
  Gate gate;
  BatcherOptions options;
  options.batch_max_size = 4;
  options.batch_max_delay_us = 60'000'000;  // draining must not wait this out
  options.queue_max = 1'000'000;
  IntBatcher batcher(options, [&](std::vector<int>& batch) {
    gate.PassFirst();
    return RunF(batch);
  });
  std::vector<std::pair<int, IntFuture>> accepted;
  accepted.emplace_back(0, MustSubmit(batcher, 0));
  for (int x = 1; x < 4; ++x) accepted.emplace_back(x, MustSubmit(batcher, x));  // fills a batch
  gate.WaitEntered();
  for (int x = 4; x < 7; ++x) accepted.emplace_back(x, MustSubmit(batcher, x));  // half a batch
  std::thread stopper([&] { batcher.Shutdown(); });  // blocks until drained
  // Until Shutdown has begun, Submit still accepts; afterwards it refuses.
  int x = 7;
  Status refusal;
  ASSERT_TRUE(Eventually([&] {
    auto r = batcher.Submit(x);
    if (r.ok()) {
      accepted.emplace_back(x++, std::move(r).value());
      return false;
    }
    refusal = r.status();
    return true;
  }));
  EXPECT_EQ(refusal.code(), StatusCode::kUnavailable);
  EXPECT_EQ(refusal.message(), "shutting down");
  gate.Release();
  stopper.join();
  for (auto& [v, f] : accepted) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready) << v;
    Result<int> r = f.get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, F(v));
  }
  EXPECT_EQ(batcher.queue_depth(), 0u);
  batcher.Shutdown();  // idempotent
  EXPECT_EQ(batcher.Submit(100).status().message(), "shutting down");
}

TEST(BatcherTest, ThrowingRunnerFailsOnlyItsBatch) {
  Gate gate;
  BatcherOptions options;
  options.batch_max_size = 4;
  IntBatcher batcher(options, [&](std::vector<int>& batch) {
    gate.PassFirst();
    for (int x : batch) {
      if (x == 13) throw std::runtime_error("bad input 13");
    }
    return RunF(batch);
  });
  IntFuture first = MustSubmit(batcher, 0);
  gate.WaitEntered();
  std::vector<IntFuture> bad, good;
  for (int x : {11, 12, 13, 14}) bad.push_back(MustSubmit(batcher, x));
  for (int x : {21, 22, 23, 24}) good.push_back(MustSubmit(batcher, x));
  gate.Release();
  EXPECT_EQ(*first.get(), F(0));
  for (auto& f : bad) {
    Result<int> r = f.get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInternal);
    EXPECT_EQ(r.status().message(), "batch runner failed: bad input 13");
  }
  for (size_t i = 0; i < good.size(); ++i) EXPECT_EQ(*good[i].get(), F(21 + int(i)));
  EXPECT_EQ(*MustSubmit(batcher, 5).get(), F(5));  // still serving
}

TEST(BatcherTest, WrongResultCountIsInternal) {
  Batcher<int, int> batcher({}, [](std::vector<int>&) { return std::vector<Result<int>>{}; });
  Result<int> r = MustSubmit(batcher, 1).get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_EQ(r.status().message(), "batch runner returned 0 results for a batch of 1");
}

TEST(BatcherTest, PerRequestErrorsPassThrough) {
  Batcher<int, int> batcher({}, [](std::vector<int>& batch) {
    std::vector<Result<int>> out;
    for (int x : batch) {
      out.push_back(x < 0 ? Result<int>(Status::InvalidInput("negative")) : Result<int>(x));
    }
    return out;
  });
  Result<int> bad = MustSubmit(batcher, -1).get();
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(*MustSubmit(batcher, 2).get(), 2);
}

TEST(BatcherTest, DelayCountsFromTheOldestRequestsSubmit) {
  std::mutex mu;
  std::vector<BatchInfo> infos;
  BatcherOptions options;
  options.batch_max_size = 8;
  options.batch_max_delay_us = 300'000;
  IntBatcher batcher(options, RunF, [&](const BatchInfo& info) {
    std::lock_guard lock(mu);
    infos.push_back(info);
  });
  IntFuture a = MustSubmit(batcher, 1);
  std::this_thread::sleep_for(milliseconds(20));
  IntFuture b = MustSubmit(batcher, 2);
  EXPECT_EQ(*a.get(), F(1));
  EXPECT_EQ(*b.get(), F(2));
  batcher.Shutdown();  // the observer has run for every batch
  std::lock_guard lock(mu);
  ASSERT_EQ(infos.size(), 1u);  // b joined a's batch, 20 ms into a 300 ms window
  const BatchInfo& info = infos[0];
  EXPECT_EQ(info.size, 2u);
  EXPECT_FALSE(info.failed);
  ASSERT_EQ(info.queue_waits.size(), 2u);
  // The batch was taken when a's delay ran out: a waited all of it, b less
  // (the delay is not restarted by later requests).
  EXPECT_GE(info.queue_waits[0], milliseconds(300));
  EXPECT_LT(info.queue_waits[1], info.queue_waits[0]);
}

TEST(BatcherTest, FullBatchDoesNotWaitForTheDelay) {
  SizeLog log;
  BatcherOptions options;
  options.batch_max_size = 4;
  options.batch_max_delay_us = 60'000'000;
  IntBatcher batcher(options, [&](std::vector<int>& batch) {
    log.Add(batch.size());
    return RunF(batch);
  });
  std::vector<IntFuture> futures;
  for (int x = 0; x < 4; ++x) futures.push_back(MustSubmit(batcher, x));
  for (int x = 0; x < 4; ++x) {
    ASSERT_EQ(futures[x].wait_for(std::chrono::seconds(30)), std::future_status::ready);
    EXPECT_EQ(*futures[x].get(), F(x));
  }
  EXPECT_EQ(log.sizes(), (std::vector<size_t>{4}));
}

TEST(BatcherTest, ZeroDelayTakesWhateverIsQueued) {
  BatcherOptions options;
  options.batch_max_delay_us = 0;
  IntBatcher batcher(options, RunF);
  IntFuture f = MustSubmit(batcher, 7);
  ASSERT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(*f.get(), F(7));
}

TEST(BatcherTest, MoveOnlyRequestsAndResponses) {
  Batcher<std::unique_ptr<int>, std::unique_ptr<int>> batcher(
      {}, [](std::vector<std::unique_ptr<int>>& batch) {
        std::vector<Result<std::unique_ptr<int>>> out;
        for (auto& p : batch) out.emplace_back(std::make_unique<int>(*p * 2));
        return out;
      });
  auto f = batcher.Submit(std::make_unique<int>(21));
  ASSERT_TRUE(f.ok());
  Result<std::unique_ptr<int>> r = f->get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, 42);
}

TEST(BatcherTest, LentWorkerRunsOnTheCallersThreadAndDrainsOnShutdown) {
  BatcherOptions o;
  o.workers = 1;
  o.lent_workers = 1;
  o.batch_max_delay_us = 0;
  std::thread::id ran_on;
  IntBatcher b(o, [&](std::vector<int>& xs) {
    ran_on = std::this_thread::get_id();
    return RunF(xs);
  });
  std::vector<IntFuture> futures;
  for (int i = 0; i < 20; ++i) {
    auto r = b.Submit(i);
    ASSERT_TRUE(r.ok());
    futures.push_back(std::move(*r));
  }
  std::thread stopper([&] {
    futures[19].wait();  // everything queued was taken by the lent worker
    b.Shutdown();
  });
  b.Work();  // returns once Shutdown has drained the queue
  stopper.join();
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(*futures[i].get(), F(i));
  EXPECT_EQ(b.Submit(1).status().code(), StatusCode::kUnavailable);
}

TEST(BatcherTest, QueuedRequestsFailCleanlyWhenNoLentWorkerEverRan) {
  BatcherOptions o;
  o.workers = 1;
  o.lent_workers = 1;
  IntBatcher b(o, [](std::vector<int>& xs) { return std::vector<Result<int>>(xs.size(), 0); });
  auto r = b.Submit(7);
  ASSERT_TRUE(r.ok());
  IntFuture f = std::move(*r);
  b.Shutdown();
  EXPECT_EQ(f.get().status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace detops
