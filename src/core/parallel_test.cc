#include "core/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

namespace detops {
namespace {

ParallelForOptions Threads(int n) {
  ParallelForOptions o;
  o.threads = n;
  return o;
}

TEST(ParallelFor, RunsEveryItemOnceAndReportsProgressToTheTotal) {
  for (int threads : {1, 2, 4}) {
    std::vector<std::atomic<int>> runs(1000);
    std::vector<size_t> seen;
    ParallelForOptions o;
    o.threads = threads;
    o.progress = [&](size_t done, size_t total) {
      EXPECT_EQ(total, 1000u);
      seen.push_back(done);
    };
    ASSERT_TRUE(ParallelFor(
                    1000,
                    [&](size_t i) {
                      ++runs[i];
                      return Status::Ok();
                    },
                    o)
                    .ok());
    for (auto& r : runs) EXPECT_EQ(r.load(), 1);
    ASSERT_EQ(seen.size(), 1000u);
    for (size_t k = 0; k < seen.size(); ++k) EXPECT_EQ(seen[k], k + 1);
  }
}

TEST(ParallelFor, ItemsThatRecordTheirOwnErrorsStillCountTowardsProgress) {
  size_t last = 0;
  ParallelForOptions o;
  o.threads = 2;
  o.progress = [&](size_t done, size_t) { last = done; };
  std::vector<int> failed(50);
  ASSERT_TRUE(ParallelFor(
                  50,
                  [&](size_t i) {
                    failed[i] = i % 3 == 0;  // a per-item error, kept by the caller
                    return Status::Ok();
                  },
                  o)
                  .ok());
  EXPECT_EQ(last, 50u);
}

TEST(ParallelFor, StopsAtAFailureAndReturnsTheLowestFailedIndex) {
  std::atomic<int> ran{0};
  Status s = ParallelFor(
      10000,
      [&](size_t i) {
        ++ran;
        if (i == 7 || i == 9) return Status::InvalidInput("item " + std::to_string(i));
        return Status::Ok();
      },
      Threads(1));
  EXPECT_EQ(s.message(), "item 7");
  EXPECT_EQ(ran.load(), 8);  // one thread: in order, and nothing after the failure
  Status p = ParallelFor(
      10000, [&](size_t i) { return i >= 100 ? Status::IOError("late") : Status::Ok(); },
      Threads(2));
  EXPECT_FALSE(p.ok());
}

TEST(ParallelFor, RunsOnAGivenPoolAndNestsWithoutDeadlock) {
  ThreadPool pool(2);
  std::atomic<int> total{0};
  ParallelForOptions outer;
  outer.pool = &pool;
  ASSERT_TRUE(ParallelFor(
                  8,
                  [&](size_t) {
                    ParallelForOptions inner;
                    inner.pool = &pool;  // every worker may be busy in the outer loop
                    return ParallelFor(
                        100,
                        [&](size_t) {
                          ++total;
                          return Status::Ok();
                        },
                        inner);
                  },
                  outer)
                  .ok());
  EXPECT_EQ(total.load(), 800);
}

TEST(ThreadPool, RunsEverySubmittedTaskBeforeItIsDestroyed) {
  std::atomic<int> ran{0};
  std::set<std::thread::id> ids;
  std::mutex mu;
  {
    ThreadPool pool(3);
    EXPECT_EQ(pool.size(), 3);
    for (int i = 0; i < 100; ++i)
      pool.Submit([&] {
        ++ran;
        std::lock_guard lock(mu);
        ids.insert(std::this_thread::get_id());
      });
  }
  EXPECT_EQ(ran.load(), 100);
  EXPECT_LE(ids.size(), 3u);  // its workers, no thread per task
  EXPECT_EQ(ids.count(std::this_thread::get_id()), 0u);
}

}  // namespace
}  // namespace detops
