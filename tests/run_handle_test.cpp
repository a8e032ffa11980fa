// start(), RunHandle and cancellation: waiting with and without a timeout, cancelling before, during and
// between attempts, the difference between `cancelled` and `skipped`, and handles destroyed early.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dagsched/dagsched.hpp"
#include "test_util.hpp"

namespace {

using dagsched::RunHandle;
using dagsched::Status;
using dagsched::TaskScheduler;
using dagsched_test::Flag;
using dagsched_test::kGenerousTimeout;
using namespace std::chrono_literals;

TEST(RunHandle, StartThenWaitMatchesRun) {
  TaskScheduler s(2);
  s.add_task("a", [] { return 1; });
  s.add_task("b", [] { return 2; }, {"a"});
  RunHandle h = s.start();
  ASSERT_TRUE(h.valid());
  const dagsched::ResultSet r = h.wait();
  EXPECT_FALSE(h.valid());
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r.at("a").value<int>(), 1);
  EXPECT_EQ(r.at("b").value<int>(), 2);
}

TEST(RunHandle, WaitForAndDoneFollowTheRun) {
  TaskScheduler s(2);
  Flag release;
  s.add_task("blocked", [&] { ASSERT_TRUE(release.wait_for(kGenerousTimeout)); });
  RunHandle h = s.start();
  EXPECT_FALSE(h.wait_for(20ms));
  EXPECT_FALSE(h.done());
  release.set();
  EXPECT_TRUE(h.wait_for(kGenerousTimeout));
  EXPECT_TRUE(h.done());
  EXPECT_EQ(h.wait().at("blocked").status, Status::success);
}

TEST(RunHandle, EmptySchedulerIsDoneAtOnce) {
  TaskScheduler s(2);
  RunHandle h = s.start();
  EXPECT_TRUE(h.done());
  EXPECT_TRUE(h.wait_for(0ms));
  EXPECT_EQ(h.wait().size(), 0u);
}

TEST(RunHandle, WaitTwiceOrOnAnEmptyHandleIsALogicError) {
  TaskScheduler s(1);
  s.add_task("a", [] {});
  RunHandle h = s.start();
  static_cast<void>(h.wait());
  EXPECT_THROW(static_cast<void>(h.wait()), std::logic_error);
  RunHandle empty;
  EXPECT_FALSE(empty.valid());
  EXPECT_THROW(static_cast<void>(empty.wait()), std::logic_error);
  empty.cancel();  // a no-op, not a crash
  EXPECT_FALSE(empty.done());
}

TEST(RunHandle, SchedulerIsBusyUntilTheResultsAreTaken) {
  TaskScheduler s(2);
  Flag release;
  s.add_task("blocked", [&] { ASSERT_TRUE(release.wait_for(kGenerousTimeout)); });
  RunHandle h = s.start();
  EXPECT_THROW(s.add_task("late", [] {}), std::logic_error);
  EXPECT_THROW(static_cast<void>(s.run()), std::logic_error);
  EXPECT_THROW(static_cast<void>(s.start()), std::logic_error);
  release.set();
  static_cast<void>(h.wait());
  s.add_task("late", [] {});
  EXPECT_EQ(s.run().size(), 2u);
}

TEST(Cancel, TasksThatNeverStartedEndCancelled) {
  TaskScheduler s(2);
  Flag started;
  Flag release;
  std::atomic<int> later_calls{0};
  auto head = s.add_task("head", [&] {
    started.set();
    ASSERT_TRUE(release.wait_for(kGenerousTimeout));
  });
  std::vector<dagsched::TaskHandle> chain{head};
  for (int i = 1; i < 100; ++i) {
    chain.push_back(s.add_task("t" + std::to_string(i), [&] { ++later_calls; }, {chain.back()}));
  }
  RunHandle h = s.start();
  ASSERT_TRUE(started.wait_for(kGenerousTimeout));
  h.cancel();
  h.cancel();  // idempotent
  release.set();
  const dagsched::ResultSet r = h.wait();
  EXPECT_EQ(r.at("head").status, Status::success);  // it was running: it finishes its attempt
  EXPECT_EQ(later_calls.load(), 0);
  EXPECT_EQ(r.count(Status::cancelled), 99u);
  for (int i = 1; i < 100; ++i) {
    const dagsched::TaskResult& t = r.at("t" + std::to_string(i));
    EXPECT_EQ(t.status, Status::cancelled);
    EXPECT_EQ(t.attempts, 0);
    EXPECT_FALSE(t.error);
    EXPECT_FALSE(t.result.has_value());
  }
  // The scheduler is reusable and the next run is complete.
  release.set();
  const dagsched::ResultSet again = s.run();
  EXPECT_TRUE(again.all_succeeded());
  EXPECT_EQ(later_calls.load(), 99);
}

TEST(Cancel, BetweenAttemptsStopsRetryingAndKeepsTheLastError) {
  TaskScheduler s(2);
  Flag second_attempt;
  Flag release;
  std::atomic<int> calls{0};
  s.add_task(
      "flaky",
      [&]() -> int {
        const int attempt = ++calls;
        if (attempt == 2) {
          second_attempt.set();
          EXPECT_TRUE(release.wait_for(kGenerousTimeout));
        }
        throw std::runtime_error("attempt " + std::to_string(attempt));
      },
      {}, /*retries=*/5);
  s.add_task("child", [] {}, {"flaky"});
  RunHandle h = s.start();
  ASSERT_TRUE(second_attempt.wait_for(kGenerousTimeout));
  h.cancel();
  release.set();
  const dagsched::ResultSet r = h.wait();
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(r.at("flaky").status, Status::cancelled);
  EXPECT_EQ(r.at("flaky").attempts, 2);
  EXPECT_EQ(dagsched_test::DescribeError(r.at("flaky").error), "attempt 2");
  EXPECT_EQ(r.at("child").status, Status::cancelled);
  EXPECT_EQ(r.at("child").attempts, 0);
}

TEST(Cancel, FailuresStillSkipWhileTheRestIsCancelled) {
  // One worker makes the order deterministic: "bad" fails, its dependent is skipped, then "slow" runs
  // and the run is cancelled while it does.
  TaskScheduler s(1);
  Flag started;
  Flag release;
  s.add_task("bad", []() -> int { throw std::runtime_error("bad"); });
  s.add_task("after_bad", [] {}, {"bad"});
  s.add_task("slow", [&] {
    started.set();
    ASSERT_TRUE(release.wait_for(kGenerousTimeout));
  });
  s.add_task("after_slow", [] {}, {"slow"});
  s.add_task("joins_both", [] {}, {"after_bad", "after_slow"});
  RunHandle h = s.start();
  ASSERT_TRUE(started.wait_for(kGenerousTimeout));
  h.cancel();
  release.set();
  const dagsched::ResultSet r = h.wait();
  EXPECT_EQ(r.at("bad").status, Status::failed);
  EXPECT_EQ(r.at("after_bad").status, Status::skipped);
  EXPECT_EQ(r.at("slow").status, Status::success);
  EXPECT_EQ(r.at("after_slow").status, Status::cancelled);
  EXPECT_EQ(r.at("joins_both").status, Status::skipped);  // a dependency failed: that decides it
}

TEST(Cancel, FromInsideATask) {
  TaskScheduler s(2);
  std::optional<RunHandle> handle;
  Flag handle_ready;
  std::atomic<int> after_calls{0};
  s.add_task("canceller", [&] {
    ASSERT_TRUE(handle_ready.wait_for(kGenerousTimeout));
    handle->cancel();
  });
  s.add_task("after", [&] { ++after_calls; }, {"canceller"});
  handle.emplace(s.start());
  handle_ready.set();
  const dagsched::ResultSet r = handle->wait();
  EXPECT_EQ(r.at("canceller").status, Status::success);
  EXPECT_EQ(r.at("after").status, Status::cancelled);
  EXPECT_EQ(after_calls.load(), 0);
}

TEST(RunHandle, WaitFromOneOfItsOwnTasksIsALogicErrorNotADeadlock) {
  TaskScheduler s(2);
  std::optional<RunHandle> handle;
  Flag handle_ready;
  s.add_task("waits_for_itself", [&] {
    EXPECT_TRUE(handle_ready.wait_for(kGenerousTimeout));
    static_cast<void>(handle->wait());  // throws: the task fails instead of hanging the run
  });
  handle.emplace(s.start());
  handle_ready.set();
  const dagsched::ResultSet r = handle->wait();
  EXPECT_EQ(r.at("waits_for_itself").status, Status::failed);
  EXPECT_TRUE(dagsched_test::ErrorIs<std::logic_error>(r.at("waits_for_itself").error));
}

TEST(Cancel, DestroyingAnUnwaitedHandleCancelsAndWaits) {
  TaskScheduler s(2);
  Flag started;
  std::atomic<int> after_calls{0};
  s.add_task("slow", [&] {
    started.set();
    std::this_thread::sleep_for(50ms);
  });
  s.add_task("after", [&] { ++after_calls; }, {"slow"});
  {
    RunHandle h = s.start();
    ASSERT_TRUE(started.wait_for(kGenerousTimeout));
  }  // cancels, then waits for "slow" to return
  EXPECT_EQ(after_calls.load(), 0);
  EXPECT_EQ(s.run().count(Status::success), 2u);  // the scheduler is free again
  EXPECT_EQ(after_calls.load(), 1);
}

// An exception that holds a share of something, to see that the result slot keeping it released it.
struct Holding : std::runtime_error {
  explicit Holding(std::shared_ptr<int> p) : std::runtime_error("holding"), held(std::move(p)) {}
  std::shared_ptr<int> held;
};

// A scheduler destroyed while a run it started is still going (its handle left alive, never used again)
// cancels the run and waits for it; the results that run left in its slots, a value and an error, must
// then be released with the scheduler like those of a run that was waited for.
TEST(Cancel, DestroyingTheSchedulerUnderALiveRunReleasesItsResults) {
  auto token = std::make_shared<int>(7);
  // The handle lives in storage that is never destroyed: it must not be used once the scheduler is gone.
  alignas(RunHandle) unsigned char storage[sizeof(RunHandle)];
  {
    Flag waiting;  // before the scheduler, which outlives the run's use of it
    TaskScheduler s(2);
    s.add_task("value", [token] { return token; });
    s.add_task("fails", [token]() -> int { throw Holding(token); });
    s.add_task("skipped", [] {}, {"fails"});
    s.add_task("waits", [&waiting](dagsched::TaskContext& ctx) {
      waiting.set();
      for (int i = 0; i < 100000 && !ctx.stop_token().stop_requested(); ++i) {
        std::this_thread::sleep_for(1ms);
      }
    });
    RunHandle* handle = ::new (static_cast<void*>(storage)) RunHandle(s.start());
    ASSERT_TRUE(waiting.wait_for(kGenerousTimeout));
    for (int i = 0; i < 100000 && handle->progress().finished < 3; ++i) {
      std::this_thread::sleep_for(1ms);
    }
    ASSERT_EQ(handle->progress().finished, 3u) << "value, fails and skipped should have finished";
  }  // cancels "waits", waits for it, and releases every result slot
  EXPECT_EQ(token.use_count(), 1) << "a result of the abandoned run outlived the scheduler";
}

TEST(Cancel, MovedHandlesOwnTheRunOnce) {
  TaskScheduler s(2);
  s.add_task("a", [] { return 7; });
  RunHandle h1 = s.start();
  RunHandle h2 = std::move(h1);
  EXPECT_FALSE(h1.valid());  // NOLINT(bugprone-use-after-move): testing the moved-from state
  ASSERT_TRUE(h2.valid());
  RunHandle h3;
  h3 = std::move(h2);
  EXPECT_EQ(h3.wait().at("a").value<int>(), 7);
}

TEST(Cancel, AfterTheRunEndedChangesNothing) {
  TaskScheduler s(2);
  s.add_task("a", [] { return 1; });
  RunHandle h = s.start();
  ASSERT_TRUE(h.wait_for(kGenerousTimeout));
  h.cancel();
  EXPECT_EQ(h.wait().at("a").status, Status::success);
}

TEST(Cancel, StatusNamesCancelled) { EXPECT_EQ(dagsched::to_string(Status::cancelled), "cancelled"); }

}  // namespace
