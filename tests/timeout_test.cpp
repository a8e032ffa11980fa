// Per-attempt timeouts and total deadlines (TaskOptions::timeout / deadline), and stop tokens: requested
// when a limit expires or the run is cancelled, from another thread or from inside a task. A timed-out
// attempt fails with TimeoutError and is retried per policy; no worker waits on a timer.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dagsched/dagsched.hpp"
#include "test_util.hpp"

namespace {

using dagsched::ResultSet;
using dagsched::RunHandle;
using dagsched::Status;
using dagsched::TaskContext;
using dagsched::TaskOptions;
using dagsched::TaskScheduler;
using dagsched::TimeoutError;
using dagsched_test::DescribeError;
using dagsched_test::ErrorIs;
using dagsched_test::Flag;
using dagsched_test::kGenerousTimeout;
using dagsched_test::Scaled;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

// Limits are checked from a time taken before run(): the engine starts an attempt's clock before calling the
// body (and may start its timer thread in between, slow under sanitizers), so time measured from inside
// the body can be much shorter than the limit. Measured from before run(), a correct engine always waited
// at least the limit; the slack only covers clock granularity.
constexpr double kLowerBoundSlack = 0.99;

TaskOptions Limits(nanoseconds timeout, nanoseconds deadline = 0ns, int retries = 0) {
  TaskOptions o;
  o.timeout = timeout;
  o.deadline = deadline;
  o.retries = retries;
  return o;
}

// Polls the stop token until it is requested, for at most kGenerousTimeout. Returns whether it was.
bool WaitForStop(const TaskContext& ctx) {
  const auto give_up = Clock::now() + kGenerousTimeout;
  while (!ctx.stop_requested()) {
    if (Clock::now() > give_up) {
      return false;
    }
    std::this_thread::sleep_for(200us);
  }
  return true;
}

// The TimeoutError in `error`, or null.
const TimeoutError* AsTimeout(const std::exception_ptr& error, std::exception_ptr& keep) {
  keep = error;
  if (!error) {
    return nullptr;
  }
  try {
    std::rethrow_exception(error);
  } catch (const TimeoutError& e) {
    return &e;  // the exception object lives as long as `keep`
  } catch (...) {
    return nullptr;
  }
}

class Timeout : public testing::TestWithParam<std::size_t> {
 protected:
  [[nodiscard]] std::size_t workers() const { return GetParam(); }
};

TEST_P(Timeout, ExpiryRequestsStopAndFailsWithTimeoutError) {
  TaskScheduler s(workers());
  std::atomic<bool> saw_stop{false};
  Clock::time_point stopped;
  s.add_task(
      "slow",
      [&](TaskContext& ctx) {
        saw_stop = WaitForStop(ctx);
        stopped = Clock::now();
        return 1;  // returning after the timeout does not make it a success
      },
      {}, Limits(50ms));
  s.add_task("after", [] {}, {"slow"});
  const auto before = Clock::now();
  const ResultSet r = s.run();
  EXPECT_TRUE(saw_stop.load());
  EXPECT_GE(stopped - before, Scaled(50ms, kLowerBoundSlack));
  const dagsched::TaskResult& t = r.at("slow");
  EXPECT_EQ(t.status, Status::failed);
  EXPECT_EQ(t.attempts, 1);
  EXPECT_FALSE(t.result.has_value());
  std::exception_ptr keep;
  const TimeoutError* e = AsTimeout(t.error, keep);
  ASSERT_NE(e, nullptr) << DescribeError(t.error);
  EXPECT_EQ(e->task_id(), "slow");
  EXPECT_EQ(e->attempt(), 1);
  EXPECT_EQ(e->limit(), 50ms);
  EXPECT_FALSE(e->deadline());
  EXPECT_FALSE(e->cause()) << "it returned normally";
  EXPECT_TRUE(ErrorIs<std::runtime_error>(t.error));  // TimeoutError is a runtime_error
  EXPECT_EQ(r.at("after").status, Status::skipped);
}

TEST_P(Timeout, CauseHoldsWhatTheAttemptThrewAfterTheStop) {
  TaskScheduler s(workers());
  s.add_task(
      "slow",
      [](TaskContext& ctx) -> int {
        if (WaitForStop(ctx)) {
          throw std::runtime_error("stopped early");
        }
        return 0;
      },
      {}, Limits(30ms));
  const ResultSet r = s.run();
  std::exception_ptr keep;
  const TimeoutError* e = AsTimeout(r.at("slow").error, keep);
  ASSERT_NE(e, nullptr) << DescribeError(r.at("slow").error);
  EXPECT_EQ(DescribeError(e->cause()), "stopped early");
  EXPECT_EQ(e->attempt(), 1);
}

TEST_P(Timeout, StopCallbackRunsOnExpiry) {
  TaskScheduler s(workers());
  s.add_task(
      "cb",
      [](TaskContext& ctx) {
        Flag stopped;
        const std::stop_callback callback(ctx.stop_token(), [&stopped] { stopped.set(); });
        EXPECT_TRUE(stopped.wait_for(kGenerousTimeout));
      },
      {}, Limits(20ms));
  const ResultSet r = s.run();
  EXPECT_EQ(r.at("cb").status, Status::failed);
  EXPECT_TRUE(ErrorIs<TimeoutError>(r.at("cb").error));
}

TEST_P(Timeout, TimedOutAttemptIsRetried) {
  TaskScheduler s(workers());
  std::mutex m;
  std::vector<std::string> last_errors;
  s.add_task(
      "flaky",
      [&](TaskContext& ctx) -> int {
        {
          std::exception_ptr keep;
          const TimeoutError* prev = AsTimeout(ctx.last_error(), keep);
          std::lock_guard<std::mutex> lock(m);
          last_errors.push_back(prev == nullptr ? DescribeError(ctx.last_error())
                                                : "timeout of attempt " + std::to_string(prev->attempt()));
        }
        if (ctx.attempt() == 1) {
          EXPECT_TRUE(WaitForStop(ctx));
          return -1;
        }
        EXPECT_FALSE(ctx.stop_requested()) << "each attempt gets a fresh stop token";
        return ctx.attempt();
      },
      {}, Limits(100ms, 0ns, 2));  // generous: attempt 2 must return within it
  const ResultSet r = s.run();
  EXPECT_EQ(r.at("flaky").status, Status::success) << DescribeError(r.at("flaky").error);
  EXPECT_EQ(r.at("flaky").attempts, 2);
  EXPECT_EQ(r.at("flaky").value<int>(), 2);
  EXPECT_EQ(last_errors, (std::vector<std::string>{"<null>", "timeout of attempt 1"}));
}

TEST_P(Timeout, EveryAttemptTimingOutFailsWithTheLastTimeout) {
  TaskScheduler s(workers());
  std::atomic<int> calls{0};
  s.add_task(
      "hopeless",
      [&](TaskContext& ctx) {
        ++calls;
        EXPECT_TRUE(WaitForStop(ctx));
      },
      {}, Limits(20ms, 0ns, 2));
  const ResultSet r = s.run();
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(r.at("hopeless").status, Status::failed);
  EXPECT_EQ(r.at("hopeless").attempts, 3);
  std::exception_ptr keep;
  const TimeoutError* e = AsTimeout(r.at("hopeless").error, keep);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->attempt(), 3);
  EXPECT_FALSE(e->deadline());
}

// A body that ignores its stop token still ends failed with TimeoutError once it returns.
TEST_P(Timeout, IgnoringTheStopTokenStillTimesOut) {
  TaskScheduler s(workers());
  std::atomic<int> calls_a{0};
  std::atomic<int> calls_b{0};
  s.add_task(
      "sleeper",
      [&]() -> int {
        ++calls_a;
        std::this_thread::sleep_for(300ms);
        return 5;
      },
      {}, Limits(100ms, 0ns, 1));
  s.add_task(
      "sleeps_once",
      [&]() -> int {
        if (++calls_b == 1) {
          std::this_thread::sleep_for(300ms);
        }
        return 6;
      },
      {}, Limits(100ms, 0ns, 1));
  const ResultSet r = s.run();
  EXPECT_EQ(r.at("sleeper").status, Status::failed);
  EXPECT_EQ(r.at("sleeper").attempts, 2);
  EXPECT_EQ(calls_a.load(), 2);
  std::exception_ptr keep;
  const TimeoutError* e = AsTimeout(r.at("sleeper").error, keep);
  ASSERT_NE(e, nullptr) << DescribeError(r.at("sleeper").error);
  EXPECT_EQ(e->attempt(), 2);
  EXPECT_EQ(e->limit(), 100ms);
  EXPECT_FALSE(e->cause());
  EXPECT_EQ(r.at("sleeps_once").status, Status::success);
  EXPECT_EQ(r.at("sleeps_once").attempts, 2);
  EXPECT_EQ(r.at("sleeps_once").value<int>(), 6);
}

TEST_P(Timeout, FastAttemptsAreUnaffectedAndTheRunDoesNotWaitForTheTimer) {
  TaskScheduler s(workers());
  for (int i = 0; i < 50; ++i) {
    s.add_task(
        "t" + std::to_string(i),
        [i](TaskContext& ctx) {
          EXPECT_FALSE(ctx.stop_requested());
          return i;
        },
        {}, Limits(60s, 120s));
  }
  const auto start = Clock::now();
  const ResultSet r = s.run();
  EXPECT_TRUE(r.all_succeeded());
  EXPECT_LT(Clock::now() - start, 30s) << "run() waited for a timer of a task that had already finished";
}

TEST_P(Timeout, ManyTasksTimeOutTogether) {
  TaskScheduler s(workers());
  constexpr int kTasks = 16;
  for (int i = 0; i < kTasks; ++i) {
    s.add_task(
        "t" + std::to_string(i), [](TaskContext& ctx) { EXPECT_TRUE(WaitForStop(ctx)); }, {}, Limits(20ms));
  }
  const ResultSet r = s.run();
  EXPECT_EQ(r.count(Status::failed), static_cast<std::size_t>(kTasks));
  for (const auto& [id, t] : r) {
    std::exception_ptr keep;
    const TimeoutError* e = AsTimeout(t.error, keep);
    ASSERT_NE(e, nullptr) << id;
    EXPECT_EQ(e->task_id(), id);
  }
}

// The deadline bounds all attempts together: once it passes, the running attempt is stopped and no
// further attempt starts, whatever retries are left.
TEST_P(Timeout, DeadlineStopsTheRunningAttemptAndEndsTheRetries) {
  TaskScheduler s(workers());
  std::atomic<int> calls{0};
  Clock::time_point stopped{};
  // A deadline far beyond the two quick failures, so that attempt 3 starts well before it even on a loaded
  // machine.
  TaskOptions o = Limits(0ns, 500ms, 10);
  o.retry.delay = 10ms;
  s.add_task(
      "t",
      [&](TaskContext& ctx) -> int {
        const int attempt = ++calls;
        if (attempt < 3) {
          throw std::runtime_error("quick failure");
        }
        EXPECT_TRUE(WaitForStop(ctx));
        stopped = Clock::now();
        throw std::runtime_error("stopped by the deadline");
      },
      {}, o);
  const auto before = Clock::now();
  const ResultSet r = s.run();
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(r.at("t").status, Status::failed);
  EXPECT_EQ(r.at("t").attempts, 3);
  EXPECT_GE(stopped - before, Scaled(500ms, kLowerBoundSlack));
  std::exception_ptr keep;
  const TimeoutError* e = AsTimeout(r.at("t").error, keep);
  ASSERT_NE(e, nullptr) << DescribeError(r.at("t").error);
  EXPECT_TRUE(e->deadline());
  EXPECT_EQ(e->limit(), 500ms);
  EXPECT_EQ(e->attempt(), 3);
  EXPECT_EQ(DescribeError(e->cause()), "stopped by the deadline");
}

TEST_P(Timeout, DeadlineEndsAnAttemptBeforeItsOwnTimeout) {
  // Attempt 1 times out after 100 ms and is retried at once; attempt 2's own timeout (>= 200 ms) would come
  // after the 150 ms deadline, which ends it. (On a loaded machine attempt 1 may only return after the
  // deadline: then no attempt 2 starts, and the deadline still ends the task.)
  TaskScheduler s(workers());
  std::atomic<int> calls{0};
  const auto start = Clock::now();
  s.add_task(
      "t",
      [&](TaskContext& ctx) {
        ++calls;
        EXPECT_TRUE(WaitForStop(ctx));
      },
      {}, Limits(100ms, 150ms, 1'000));
  const ResultSet r = s.run();
  EXPECT_GE(Clock::now() - start, Scaled(150ms, kLowerBoundSlack));
  EXPECT_EQ(r.at("t").status, Status::failed);
  EXPECT_GE(calls.load(), 1);
  EXPECT_LE(calls.load(), 2);
  EXPECT_EQ(r.at("t").attempts, calls.load());
  std::exception_ptr keep;
  const TimeoutError* e = AsTimeout(r.at("t").error, keep);
  ASSERT_NE(e, nullptr) << DescribeError(r.at("t").error);
  EXPECT_TRUE(e->deadline()) << "the deadline ended the task";
  EXPECT_EQ(e->limit(), 150ms);
  EXPECT_EQ(e->attempt(), calls.load());
  if (calls.load() == 2) {
    EXPECT_FALSE(e->cause()) << "attempt 2 returned normally once stopped";
  }
}

// A retry whose wait would end after the deadline never starts.
TEST_P(Timeout, NoAttemptStartsAfterTheDeadline) {
  TaskScheduler s(workers());
  std::atomic<int> calls{0};
  TaskOptions o = Limits(0ns, 100ms, 5);
  o.retry.delay = 10s;
  s.add_task(
      "t",
      [&]() -> int {
        ++calls;
        throw std::runtime_error("fails");
      },
      {}, o);
  RunHandle h = s.start();
  ASSERT_TRUE(h.wait_for(kGenerousTimeout)) << "the task waited out its 10 s retry delay past its deadline";
  const ResultSet r = h.wait();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(r.at("t").status, Status::failed);
  EXPECT_EQ(r.at("t").attempts, 1);
  // Either the attempt's own error (no time left for a retry) or the deadline's TimeoutError.
  std::exception_ptr keep;
  const TimeoutError* e = AsTimeout(r.at("t").error, keep);
  if (e != nullptr) {
    EXPECT_TRUE(e->deadline());
  } else {
    EXPECT_EQ(DescribeError(r.at("t").error), "fails");
  }
}

INSTANTIATE_TEST_SUITE_P(Workers, Timeout, testing::ValuesIn(dagsched_test::kWorkerCounts),
                         dagsched_test::WorkerCountName);

// No worker waits on a timer: with one worker, an independent task runs while a timed-out task waits
// for its delayed retry.
TEST(TimeoutOneWorker, OtherTasksRunWhileATimedOutTaskWaitsForItsRetry) {
  TaskScheduler s(1);
  std::mutex m;
  std::vector<std::string> log;
  const auto note = [&](std::string what) {
    std::lock_guard<std::mutex> lock(m);
    log.push_back(std::move(what));
  };
  TaskOptions o = Limits(100ms, 0ns, 1);  // attempt 2 returns at once, well within it
  o.retry.delay = 200ms;
  s.add_task(
      "A",
      [&](TaskContext& ctx) {
        note("A" + std::to_string(ctx.attempt()) + " start");
        if (ctx.attempt() == 1) {
          EXPECT_TRUE(WaitForStop(ctx));
        }
      },
      {}, o);
  s.add_task("B", [&] { note("B"); });
  const ResultSet r = s.run();
  EXPECT_EQ(r.at("A").status, Status::success) << DescribeError(r.at("A").error);
  EXPECT_EQ(r.at("A").attempts, 2);
  EXPECT_EQ(r.at("B").status, Status::success);
  EXPECT_EQ(log, (std::vector<std::string>{"A1 start", "B", "A2 start"}));
}

// ---------------------------------------------------------------------------------------------------------
// Cancellation and stop tokens.

TEST(CancelStop, CancelFromAnotherThreadRequestsStopOfRunningAttempts) {
  TaskScheduler s(4);
  dagsched_test::Rendezvous all_started(4);  // 3 tasks + this thread
  std::atomic<int> stopped{0};
  for (int i = 0; i < 3; ++i) {
    s.add_task("poller" + std::to_string(i), [&](TaskContext& ctx) {
      EXPECT_TRUE(all_started.arrive_and_wait_for(kGenerousTimeout));
      if (WaitForStop(ctx)) {
        ++stopped;
      }
      return 1;
    });
    s.add_task("after" + std::to_string(i), [] {}, {"poller" + std::to_string(i)});
  }
  RunHandle h = s.start();
  ASSERT_TRUE(all_started.arrive_and_wait_for(kGenerousTimeout));
  h.cancel();
  ASSERT_TRUE(h.wait_for(kGenerousTimeout));
  const ResultSet r = h.wait();
  EXPECT_EQ(stopped.load(), 3);
  for (int i = 0; i < 3; ++i) {
    // A running attempt finishes: it returned normally, so it succeeded; its dependents never start.
    EXPECT_EQ(r.at("poller" + std::to_string(i)).status, Status::success);
    EXPECT_EQ(r.at("after" + std::to_string(i)).status, Status::cancelled);
  }
}

TEST(CancelStop, CancelFromInsideATaskStopsTheOthersAndItself) {
  TaskScheduler s(2);
  std::optional<RunHandle> handle;
  Flag handle_ready;
  Flag poller_started;
  std::atomic<bool> poller_saw_stop{false};
  std::atomic<bool> canceller_saw_stop{false};
  s.add_task("poller", [&](TaskContext& ctx) {
    poller_started.set();
    poller_saw_stop = WaitForStop(ctx);
  });
  s.add_task("canceller", [&](TaskContext& ctx) {
    EXPECT_TRUE(handle_ready.wait_for(kGenerousTimeout));
    EXPECT_TRUE(poller_started.wait_for(kGenerousTimeout));
    handle->cancel();
    canceller_saw_stop = ctx.stop_requested();
  });
  s.add_task("after", [] {}, {"canceller"});
  handle.emplace(s.start());
  handle_ready.set();
  ASSERT_TRUE(handle->wait_for(kGenerousTimeout));
  const ResultSet r = handle->wait();
  EXPECT_TRUE(poller_saw_stop.load());
  EXPECT_TRUE(canceller_saw_stop.load());
  EXPECT_EQ(r.at("after").status, Status::cancelled);
}

TEST(CancelStop, CancelDuringATimedAttemptEndsItWithoutRetry) {
  TaskScheduler s(2);
  Flag started;
  std::atomic<int> calls{0};
  TaskOptions o = Limits(60s, 0ns, 5);
  s.add_task(
      "t",
      [&](TaskContext& ctx) -> int {
        ++calls;
        started.set();
        EXPECT_TRUE(WaitForStop(ctx));
        throw std::runtime_error("stopped");
      },
      {}, o);
  RunHandle h = s.start();
  ASSERT_TRUE(started.wait_for(kGenerousTimeout));
  h.cancel();
  ASSERT_TRUE(h.wait_for(kGenerousTimeout));
  const ResultSet r = h.wait();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(r.at("t").attempts, 1);
  // Threw with retries left in a cancelled run: not retried.
  EXPECT_EQ(r.at("t").status, Status::cancelled);
  EXPECT_EQ(DescribeError(r.at("t").error), "stopped");
  EXPECT_FALSE(ErrorIs<TimeoutError>(r.at("t").error)) << "the timeout never expired";
}

// A cancel that lands while a failure's skip cascade runs: descendants of the failure stay skipped (a
// failure decides them), the independent chain is a prefix of successes then cancellations.
TEST(CancelStop, CancelDuringASkipCascade) {
  for (std::size_t workers : {1u, 2u, 4u}) {
    SCOPED_TRACE("workers " + std::to_string(workers));
    TaskScheduler s(workers);
    Flag failed;
    constexpr int kChain = 20'000;
    s.add_task("bad", [&]() -> int {
      failed.set();
      throw std::runtime_error("bad");
    });
    std::string prev = "bad";
    for (int i = 0; i < kChain; ++i) {
      std::string id = "s" + std::to_string(i);
      s.add_task(id, [] {}, {prev});
      prev = std::move(id);
    }
    std::string prev_ok;
    for (int i = 0; i < kChain; ++i) {
      std::string id = "ok" + std::to_string(i);
      if (prev_ok.empty()) {
        s.add_task(id, [] { std::this_thread::sleep_for(1us); });
      } else {
        s.add_task(id, [] { std::this_thread::sleep_for(1us); }, {prev_ok});
      }
      prev_ok = std::move(id);
    }
    s.add_task("join", [] {}, {prev, prev_ok});
    RunHandle h = s.start();
    ASSERT_TRUE(failed.wait_for(kGenerousTimeout));
    h.cancel();
    ASSERT_TRUE(h.wait_for(kGenerousTimeout));
    const ResultSet r = h.wait();
    EXPECT_EQ(r.at("bad").status, Status::failed);
    for (int i = 0; i < kChain; ++i) {
      const dagsched::TaskResult& t = r.at("s" + std::to_string(i));
      ASSERT_EQ(t.status, Status::skipped) << i;
      ASSERT_EQ(t.skip_causes().size(), 1u) << i;
      ASSERT_EQ(t.skip_causes()[0], "bad") << i;
    }
    bool seen_cancelled = false;
    for (int i = 0; i < kChain; ++i) {
      const Status st = r.at("ok" + std::to_string(i)).status;
      ASSERT_TRUE(st == Status::success || st == Status::cancelled) << i;
      if (seen_cancelled) {
        ASSERT_EQ(st, Status::cancelled) << "a task ran after its dependency was cancelled, at " << i;
      }
      seen_cancelled = seen_cancelled || st == Status::cancelled;
    }
    EXPECT_EQ(r.at("join").status, Status::skipped);
    EXPECT_EQ(r.count(Status::skipped), static_cast<std::size_t>(kChain) + 1);
  }
}

}  // namespace
