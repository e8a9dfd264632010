#include "serve/jobs.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

namespace detops::serve {
namespace {

using std::chrono::milliseconds;

// A job function that reports `step`, then blocks until Release(). Declare
// it before the runner: the runner's destructor waits for the job.
class Held {
 public:
  JobRunner::Run Job(const std::string& step = "working") {
    return [this, step](const JobRunner::Progress& progress) {
      progress(step);
      started_.set_value();
      release_.wait();
      return JobOutcome{Status::Ok(), Json{{"done", true}}};
    };
  }
  void WaitStarted() { started_future_.wait(); }
  void Release() { release_promise_.set_value(); }

 private:
  std::promise<void> started_;
  std::future<void> started_future_ = started_.get_future();
  std::promise<void> release_promise_;
  std::shared_future<void> release_ = release_promise_.get_future().share();
};

bool Finished(const JobSnapshot& j) { return j.finished(); }

JobSnapshot WaitDone(JobRunner& runner, const std::string& id) {
  return runner.WaitFor(id, Finished, std::chrono::seconds(30));
}

TEST(JobRunnerTest, RunsAJobToSucceededWithItsResultAndTimes) {
  JobRunner runner;
  auto s = runner.Submit("promote", "cars@2 -> production", "token a", [](const auto& progress) {
    progress("evaluating cars@1");
    return JobOutcome{Status::Ok(), Json{{"applied", true}}};
  });
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->ahead, 0u);
  EXPECT_EQ(s->id.size(), 16u);
  JobSnapshot j = WaitDone(runner, s->id);
  EXPECT_EQ(j.state, JobState::kSucceeded);
  EXPECT_EQ(j.result["applied"], true);
  EXPECT_EQ(j.progress, "evaluating cars@1");
  EXPECT_EQ(j.subject, "cars@2 -> production");
  EXPECT_EQ(j.actor, "token a");
  EXPECT_GT(j.created_ms, 0);
  EXPECT_GE(j.started_ms, j.created_ms);
  EXPECT_GE(j.finished_ms, j.started_ms);
}

TEST(JobRunnerTest, AFailureKeepsItsErrorAndItsResult) {
  JobRunner runner;
  auto s = runner.Submit("promote", "x", "", [](const auto&) {
    return JobOutcome{Status::AlreadyExists("a gate failed"), Json{{"gates", "table"}}};
  });
  ASSERT_TRUE(s.ok());
  JobSnapshot j = WaitDone(runner, s->id);
  EXPECT_EQ(j.state, JobState::kFailed);
  EXPECT_EQ(j.error.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(j.result["gates"], "table");
}

TEST(JobRunnerTest, AnExceptionFailsTheJobNotTheProcess) {
  JobRunner runner;
  auto s = runner.Submit("promote", "x", "",
                         [](const auto&) -> JobOutcome { throw std::runtime_error("boom"); });
  ASSERT_TRUE(s.ok());
  JobSnapshot j = WaitDone(runner, s->id);
  EXPECT_EQ(j.state, JobState::kFailed);
  EXPECT_EQ(j.error.code(), StatusCode::kInternal);
  EXPECT_NE(j.error.message().find("boom"), std::string::npos);
}

// One worker: a second job waits, in order, and sees how many are ahead.
TEST(JobRunnerTest, RunsOneJobAtATimeInOrder) {
  Held held;
  JobRunner runner;
  std::atomic<int> running{0}, most{0};
  std::vector<int> order;
  std::mutex mu;
  auto s1 = runner.Submit("promote", "first", "", held.Job());
  ASSERT_TRUE(s1.ok());
  held.WaitStarted();
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto s = runner.Submit("promote", "n", "", [&, i](const auto&) {
      most = std::max(most.load(), ++running);
      {
        std::lock_guard lock(mu);
        order.push_back(i);
      }
      --running;
      return JobOutcome{};
    });
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->ahead, static_cast<size_t>(i + 1));
    ids.push_back(s->id);
  }
  EXPECT_EQ(runner.Get(ids[0])->state, JobState::kQueued);
  EXPECT_EQ(runner.Get(s1->id)->state, JobState::kRunning);
  EXPECT_EQ(runner.Get(s1->id)->progress, "working");
  held.Release();
  for (const auto& id : ids) EXPECT_EQ(WaitDone(runner, id).state, JobState::kSucceeded);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(most.load(), 1);
}

TEST(JobRunnerTest, AFullQueueRefusesWithUnavailable) {
  Held held;
  JobRunnerOptions options;
  options.queue_max = 2;
  JobRunner runner(options);
  ASSERT_TRUE(runner.Submit("promote", "running", "", held.Job()).ok());
  held.WaitStarted();
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(
        runner.Submit("promote", "queued", "", [](const auto&) { return JobOutcome{}; }).ok());
  }
  auto refused = runner.Submit("promote", "one too many", "", [](const auto&) {
    ADD_FAILURE() << "a refused job ran";
    return JobOutcome{};
  });
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("2 jobs are queued"), std::string::npos);
  held.Release();
}

// Stopping settles every job: the running one finishes, queued ones fail
// with the reason, and later submissions are refused.
TEST(JobRunnerTest, ShutdownFinishesTheRunningJobAndFailsTheQueuedOnes) {
  Held held;
  std::vector<JobSnapshot> observed;
  std::mutex mu;
  JobRunner runner({}, [&](const JobSnapshot& j) {
    std::lock_guard lock(mu);
    observed.push_back(j);
  });
  auto running = runner.Submit("promote", "running", "", held.Job());
  auto queued = runner.Submit("promote", "queued", "", [](const auto&) {
    ADD_FAILURE() << "a queued job ran after shutdown";
    return JobOutcome{};
  });
  ASSERT_TRUE(running.ok() && queued.ok());
  held.WaitStarted();
  std::thread stopper([&] { runner.Shutdown(); });
  // The queued job is settled at once, while the running one still runs.
  JobSnapshot q = WaitDone(runner, queued->id);
  EXPECT_EQ(q.state, JobState::kFailed);
  EXPECT_EQ(q.error.message(), "the server stopped before the job started");
  EXPECT_EQ(runner.Get(running->id)->state, JobState::kRunning);
  held.Release();
  stopper.join();
  EXPECT_EQ(runner.Get(running->id)->state, JobState::kSucceeded);
  auto late = runner.Submit("promote", "late", "", [](const auto&) { return JobOutcome{}; });
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), StatusCode::kUnavailable);
  std::lock_guard lock(mu);
  ASSERT_EQ(observed.size(), 2u);
  std::set<std::string> ids = {observed[0].id, observed[1].id};
  EXPECT_EQ(ids, (std::set<std::string>{running->id, queued->id}));
}

TEST(JobRunnerTest, WaitForReturnsAtTheFirstProgressReport) {
  Held held;
  Held second;
  JobRunner runner;
  auto s = runner.Submit("promote", "x", "", held.Job("evaluating cars@1"));
  ASSERT_TRUE(s.ok());
  JobSnapshot j = runner.WaitFor(
      s->id, [](const JobSnapshot& j) { return j.finished() || !j.progress.empty(); },
      std::chrono::seconds(30));
  EXPECT_EQ(j.state, JobState::kRunning);
  EXPECT_EQ(j.progress, "evaluating cars@1");
  held.Release();
  // And a timeout bounds the wait.
  auto s2 = runner.Submit("promote", "y", "", second.Job());
  second.WaitStarted();
  const auto t0 = std::chrono::steady_clock::now();
  JobSnapshot w = runner.WaitFor(s2->id, Finished, milliseconds(50));
  EXPECT_EQ(w.state, JobState::kRunning);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  second.Release();
}

TEST(JobRunnerTest, ForgetsTheOldestFinishedJobsBeyondTheLimit) {
  JobRunnerOptions options;
  options.keep_finished = 2;
  JobRunner runner(options);
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    auto s = runner.Submit("promote", "n", "", [](const auto&) { return JobOutcome{}; });
    ASSERT_TRUE(s.ok());
    ids.push_back(s->id);
    WaitDone(runner, s->id);
  }
  EXPECT_FALSE(runner.Get(ids[0]));
  EXPECT_FALSE(runner.Get(ids[1]));
  EXPECT_TRUE(runner.Get(ids[2]));
  EXPECT_TRUE(runner.Get(ids[3]));
  EXPECT_FALSE(runner.Get("0123456789abcdef"));
}

}  // namespace
}  // namespace detops::serve
