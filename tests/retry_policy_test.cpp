// RetryPolicy and TaskOptions::retries: the wait before each retry (growth, cap, jitter, seeding), delayed
// retries that hold no worker, errors that are not retried (PermanentError, retry_if, only<E...>()), option
// validation, cancellation of a task waiting for its retry, a million retries, and TaskOptions{} giving the
// spec's results.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dagsched/dagsched.hpp"
#include "test_util.hpp"

namespace {

using dagsched::PermanentError;
using dagsched::RetryPolicy;
using dagsched::RunHandle;
using dagsched::RunOptions;
using dagsched::Status;
using dagsched::TaskContext;
using dagsched::TaskOptions;
using dagsched::TaskScheduler;
using dagsched_test::DescribeError;
using dagsched_test::ErrorIs;
using dagsched_test::Flag;
using dagsched_test::kGenerousTimeout;
using dagsched_test::Scaled;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

// Whether this build runs under ThreadSanitizer or AddressSanitizer (there is no project macro for it).
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

RunOptions Seeded(std::uint64_t seed, std::shared_ptr<dagsched::Observer> observer = nullptr) {
  RunOptions o;
  o.seed = seed;
  o.observer = std::move(observer);
  return o;
}

// A timed wait really waited about `expected`: timers may round, never fire much early.
constexpr double kLowerBoundSlack = 0.95;

// Records the retry waits the engine chose, keyed by task id, in order.
class RetryRecorder : public dagsched::Observer {
 public:
  void on_retry_scheduled(const dagsched::TaskEvent& event, nanoseconds delay) override {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_delays[event.id].push_back(delay);
    m_scheduled.set();
  }
  [[nodiscard]] std::map<std::string, std::vector<nanoseconds>> delays() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_delays;
  }
  [[nodiscard]] const Flag& scheduled() const { return m_scheduled; }

 private:
  mutable std::mutex m_mutex;
  std::map<std::string, std::vector<nanoseconds>> m_delays;
  Flag m_scheduled;
};

// A mutex-protected log of named moments, with their times.
class Log {
 public:
  void add(std::string what) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_entries.emplace_back(std::move(what), Clock::now());
  }
  [[nodiscard]] std::vector<std::pair<std::string, Clock::time_point>> entries() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_entries;
  }
  // Position of the first entry named `what`, or -1.
  [[nodiscard]] long index_of(const std::string& what) const {
    std::lock_guard<std::mutex> lock(m_mutex);
    for (std::size_t i = 0; i < m_entries.size(); ++i) {
      if (m_entries[i].first == what) {
        return static_cast<long>(i);
      }
    }
    return -1;
  }
  [[nodiscard]] Clock::time_point time_of(const std::string& what) const {
    std::lock_guard<std::mutex> lock(m_mutex);
    for (const auto& [name, time] : m_entries) {
      if (name == what) {
        return time;
      }
    }
    return {};
  }

 private:
  mutable std::mutex m_mutex;
  std::vector<std::pair<std::string, Clock::time_point>> m_entries;
};

// ---------------------------------------------------------------------------------------------------------
// RetryPolicy::delay_before: pure arithmetic.

TEST(RetryPolicyDelay, DefaultsRetryAtOnce) {
  const RetryPolicy p;
  EXPECT_EQ(p.delay, 0ns);
  EXPECT_EQ(p.backoff, 1.0);
  EXPECT_EQ(p.max_delay, nanoseconds::max());
  EXPECT_EQ(p.jitter, 0.0);
  EXPECT_FALSE(p.retry_if);
  EXPECT_EQ(p.delay_before(1, 0.0), 0ns);
  EXPECT_EQ(p.delay_before(1'000'000, 0.5), 0ns);
  EXPECT_EQ(p.delay_before(std::numeric_limits<std::uint64_t>::max(), 0.99), 0ns);
}

TEST(RetryPolicyDelay, GrowsGeometricallyUpToMaxDelay) {
  RetryPolicy p;
  p.delay = 10ms;
  p.backoff = 2.0;
  p.max_delay = 100ms;
  const auto near = [](nanoseconds actual, nanoseconds expected) { return std::chrono::abs(actual - expected) <= 1ns; };
  EXPECT_PRED2(near, p.delay_before(1, 0.0), 10ms);
  EXPECT_PRED2(near, p.delay_before(2, 0.0), 20ms);
  EXPECT_PRED2(near, p.delay_before(3, 0.0), 40ms);
  EXPECT_PRED2(near, p.delay_before(4, 0.0), 80ms);
  EXPECT_PRED2(near, p.delay_before(5, 0.0), 100ms);
  EXPECT_PRED2(near, p.delay_before(6, 0.0), 100ms);
  // Without jitter the draw does not matter.
  EXPECT_PRED2(near, p.delay_before(3, 0.999), 40ms);
}

TEST(RetryPolicyDelay, ConstantWithBackoffOne) {
  RetryPolicy p;
  p.delay = 7ms;
  for (std::uint64_t k : {1ULL, 2ULL, 10ULL, 1'000'000ULL, ~0ULL}) {
    EXPECT_EQ(p.delay_before(k, 0.3), 7ms) << "retry " << k;
  }
}

TEST(RetryPolicyDelay, SaturatesAtMaxDelayForHugeRetryCounts) {
  RetryPolicy p;
  p.delay = 1ms;
  p.backoff = 2.0;
  p.max_delay = 1s;
  EXPECT_EQ(p.delay_before(1'000'000, 0.5), 1s);
  EXPECT_EQ(p.delay_before(64, 0.5), 1s);
  EXPECT_EQ(p.delay_before(1025, 0.0), 1s);  // 2^1024 overflows a double to inf
  EXPECT_EQ(p.delay_before(std::numeric_limits<std::uint64_t>::max(), 0.5), 1s);
  p.backoff = 1e308;  // huge factors too
  EXPECT_EQ(p.delay_before(3, 0.0), 1s);
}

TEST(RetryPolicyDelay, DefaultMaxDelayNeverOverflowsOrGoesNegative) {
  RetryPolicy p;
  p.delay = 1ns;
  p.backoff = 2.0;  // max_delay stays nanoseconds::max()
  nanoseconds previous = 0ns;
  for (std::uint64_t k = 1; k <= 200; ++k) {
    const nanoseconds d = p.delay_before(k, 0.0);
    ASSERT_GE(d, 0ns) << "retry " << k;
    ASSERT_GE(d, previous) << "retry " << k << ": the wait must not shrink as retries grow";
    ASSERT_LE(d, nanoseconds::max());
    previous = d;
  }
  for (std::uint64_t k : {1'000'000ULL, (1ULL << 40), ~0ULL}) {
    const nanoseconds d = p.delay_before(k, 0.0);
    EXPECT_GE(d, previous) << "retry " << k;
    EXPECT_GE(d, 0ns) << "retry " << k;
  }
  // Already at the largest representable wait.
  p.delay = nanoseconds::max();
  EXPECT_GE(p.delay_before(1, 0.0), 0ns);
  EXPECT_GE(p.delay_before(2, 0.0), 0ns);
  EXPECT_GE(p.delay_before(1'000'000, 0.0), 0ns);
  p.backoff = 1.0;
  EXPECT_EQ(p.delay_before(1'000'000, 0.0), nanoseconds::max());
}

TEST(RetryPolicyDelay, JitterShortensByUpToItsFraction) {
  RetryPolicy p;
  p.delay = 100ms;
  p.jitter = 0.5;
  for (double unit : {0.0, 0.25, 0.5, 0.75, 0.999999}) {
    const nanoseconds d = p.delay_before(1, unit);
    EXPECT_GE(d, 50ms - 1ns) << "unit " << unit;
    EXPECT_LE(d, 100ms) << "unit " << unit;
  }
  // The draw matters: not every unit gives the same wait.
  EXPECT_NE(p.delay_before(1, 0.0), p.delay_before(1, 0.9));

  p.jitter = 1.0;
  for (double unit : {0.0, 0.5, 0.999999}) {
    const nanoseconds d = p.delay_before(1, unit);
    EXPECT_GE(d, 0ns) << "unit " << unit;
    EXPECT_LE(d, 100ms) << "unit " << unit;
  }
  // Jitter applies after the cap.
  p.jitter = 0.5;
  p.backoff = 2.0;
  p.max_delay = 150ms;
  for (double unit : {0.0, 0.5, 0.999999}) {
    const nanoseconds d = p.delay_before(1'000'000, unit);
    EXPECT_GE(d, 75ms - 1ns) << "unit " << unit;
    EXPECT_LE(d, 150ms) << "unit " << unit;
  }
}

TEST(RetryPolicyOnly, MatchesListedTypesAndTheirSubclasses) {
  const auto retry_if = RetryPolicy::only<std::runtime_error, std::bad_alloc>();
  EXPECT_TRUE(retry_if(std::make_exception_ptr(std::runtime_error("x"))));
  EXPECT_TRUE(retry_if(std::make_exception_ptr(std::range_error("derived"))));
  EXPECT_TRUE(retry_if(std::make_exception_ptr(std::bad_alloc())));
  EXPECT_FALSE(retry_if(std::make_exception_ptr(std::logic_error("x"))));
  EXPECT_FALSE(retry_if(std::make_exception_ptr(42)));
}

// ---------------------------------------------------------------------------------------------------------
// TaskOptions{} is the spec.

TEST(TaskOptionsDefaults, AreTheSpecsBehaviour) {
  const TaskOptions o;
  EXPECT_EQ(o.retries, 0);
  EXPECT_EQ(o.retry.delay, 0ns);
  EXPECT_EQ(o.retry.backoff, 1.0);
  EXPECT_EQ(o.retry.max_delay, nanoseconds::max());
  EXPECT_EQ(o.retry.jitter, 0.0);
  EXPECT_FALSE(o.retry.retry_if);
  EXPECT_EQ(o.timeout, 0ns);
  EXPECT_EQ(o.deadline, 0ns);
  EXPECT_EQ(o.trigger, dagsched::TriggerRule::all_success);
}

TEST(TaskOptionsDefaults, SpecFailureExampleGivesTheSpecsResults) {
  using namespace std::string_literals;
  std::atomic<int> b_calls{0};
  std::atomic<int> d_calls{0};
  TaskScheduler s(4);
  s.add_task(
      "A", [] { return "result_A"s; }, {}, TaskOptions{});
  s.add_task(
      "B",
      [&]() -> std::string {
        ++b_calls;
        throw std::invalid_argument("B broke");
      },
      {"A"}, TaskOptions{.retries = 2});
  s.add_task(
      "C", [] { return "result_C"s; }, {"A"}, TaskOptions{});
  s.add_task(
      "D",
      [&] {
        ++d_calls;
        return "result_D"s;
      },
      {"B", "C"}, TaskOptions{});
  s.add_task(
      "E", [] { return "result_E"s; }, {}, TaskOptions{});
  const dagsched::ResultSet r = s.run();
  ASSERT_EQ(r.size(), 5u);
  for (const char* id : {"A", "C", "E"}) {
    SCOPED_TRACE(id);
    EXPECT_EQ(r.at(id).status, Status::success);
    EXPECT_EQ(r.at(id).attempts, 1);
    EXPECT_EQ(r.at(id).value<std::string>(), "result_"s + id);
    EXPECT_FALSE(r.at(id).error);
    EXPECT_TRUE(r.at(id).skip_causes().empty());
  }
  EXPECT_EQ(r.at("B").status, Status::failed);
  EXPECT_EQ(r.at("B").attempts, 3);
  EXPECT_TRUE(ErrorIs<std::invalid_argument>(r.at("B").error));
  EXPECT_EQ(DescribeError(r.at("B").error), "B broke");
  EXPECT_FALSE(r.at("B").result.has_value());
  EXPECT_EQ(b_calls.load(), 3);
  EXPECT_EQ(r.at("D").status, Status::skipped);
  EXPECT_EQ(r.at("D").attempts, 0);
  EXPECT_FALSE(r.at("D").error);
  EXPECT_FALSE(r.at("D").result.has_value());
  EXPECT_EQ(d_calls.load(), 0);
  ASSERT_EQ(r.at("D").skip_causes().size(), 1u);
  EXPECT_EQ(r.at("D").skip_causes()[0], "B");
}

// ---------------------------------------------------------------------------------------------------------
// Option validation.

void ExpectRejected(const TaskOptions& bad, const std::string& what) {
  SCOPED_TRACE(what);
  TaskScheduler s(2);
  s.add_task("ok", [] { return 1; });
  const std::size_t before = s.size();
  // A dependency on an unregistered id: a rejected call must not leave a placeholder for it behind.
  EXPECT_THROW(s.add_task(
                   "bad", [] { return 2; }, {"ok", "ghost"}, bad),
               std::invalid_argument);
  EXPECT_EQ(s.size(), before);
  EXPECT_FALSE(s.contains("bad"));
  EXPECT_FALSE(s.contains("ghost"));
  // Range overload too.
  const std::vector<std::string> deps{"ok", "ghost"};
  EXPECT_THROW(s.add_task(
                   "bad", [] { return 2; }, deps, bad),
               std::invalid_argument);
  EXPECT_EQ(s.size(), before);
  // The scheduler still runs, with no unknown dependency, and the id is still free.
  const dagsched::ResultSet r = s.run();
  EXPECT_EQ(r.size(), 1u);
  EXPECT_TRUE(r.all_succeeded());
  s.add_task(
      "bad", [] { return 2; }, {"ok"}, TaskOptions{});
  EXPECT_EQ(s.run().at("bad").value<int>(), 2);
}

TEST(TaskOptionsValidation, OutOfRangeOptionsThrowAndChangeNothing) {
  TaskOptions o;
  o.retries = -1;
  ExpectRejected(o, "negative retries");
  o = {};
  o.retries = INT_MIN;
  ExpectRejected(o, "INT_MIN retries");
  o = {};
  o.retries = INT_MAX;  // at most INT_MAX - 1, so that attempts fit in an int
  ExpectRejected(o, "INT_MAX retries");
  o = {};
  o.retry.delay = -1ns;
  ExpectRejected(o, "negative delay");
  o = {};
  o.retry.backoff = 0.5;
  ExpectRejected(o, "backoff < 1");
  o = {};
  o.retry.backoff = -2.0;
  ExpectRejected(o, "negative backoff");
  o = {};
  o.retry.jitter = -0.1;
  ExpectRejected(o, "negative jitter");
  o = {};
  o.retry.jitter = 1.5;
  ExpectRejected(o, "jitter > 1");
  o = {};
  o.timeout = -1ms;
  ExpectRejected(o, "negative timeout");
  o = {};
  o.deadline = -1ms;
  ExpectRejected(o, "negative deadline");
  o = {};
  o.retry.max_delay = -1ms;
  ExpectRejected(o, "negative max_delay");
}

TEST(TaskOptionsValidation, NotANumberIsOutOfRange) {
  TaskOptions o;
  o.retry.backoff = std::numeric_limits<double>::quiet_NaN();
  ExpectRejected(o, "NaN backoff");
  o = {};
  o.retry.jitter = std::numeric_limits<double>::quiet_NaN();
  ExpectRejected(o, "NaN jitter");
}

TEST(TaskOptionsValidation, BoundaryValuesAreAccepted) {
  TaskScheduler s(2);
  TaskOptions o;
  o.retry.backoff = 1.0;
  o.retry.jitter = 1.0;
  o.retry.max_delay = 0ns;
  s.add_task(
      "a", [] { return 1; }, {}, o);
  o = {};
  o.retry.jitter = 0.0;
  o.retry.backoff = 1e9;
  o.retries = 0;
  s.add_task(
      "b", [] { return 2; }, {"a"}, o);
  EXPECT_TRUE(s.run().all_succeeded());
}

// ---------------------------------------------------------------------------------------------------------
// Retrying in the scheduler.

class Retry : public testing::TestWithParam<std::size_t> {
 protected:
  [[nodiscard]] std::size_t workers() const { return GetParam(); }
};

TEST_P(Retry, ZeroDelayRetriesAtOnceUntilSuccess) {
  TaskScheduler s(workers());
  std::atomic<int> calls{0};
  s.add_task(
      "flaky",
      [&]() -> int {
        if (++calls < 3) {
          throw std::runtime_error("not yet");
        }
        return 42;
      },
      {}, TaskOptions{.retries = 5});
  s.add_task(
      "child", [](TaskContext& ctx) { return ctx.result<int>("flaky") + 1; }, {"flaky"}, TaskOptions{});
  const dagsched::ResultSet r = s.run();
  EXPECT_EQ(r.at("flaky").status, Status::success);
  EXPECT_EQ(r.at("flaky").attempts, 3);
  EXPECT_EQ(r.at("flaky").value<int>(), 42);
  EXPECT_FALSE(r.at("flaky").error);
  EXPECT_EQ(r.at("child").value<int>(), 43);
  EXPECT_EQ(calls.load(), 3);
}

TEST_P(Retry, DelaysGrowByBackoffAndAreReallyWaited) {
  TaskScheduler s(workers());
  std::mutex m;
  std::vector<Clock::time_point> starts;
  // Designated initializers work: every member of the option structs has a default member initializer.
  const TaskOptions o{.retries = 3, .retry = {.delay = 40ms, .backoff = 2.0}};
  s.add_task(
      "flaky",
      [&]() -> int {
        std::lock_guard<std::mutex> lock(m);
        starts.push_back(Clock::now());
        if (starts.size() < 3) {
          throw std::runtime_error("attempt " + std::to_string(starts.size()));
        }
        return static_cast<int>(starts.size());
      },
      {}, o);
  const dagsched::ResultSet r = s.run();
  ASSERT_EQ(r.at("flaky").status, Status::success) << DescribeError(r.at("flaky").error);
  EXPECT_EQ(r.at("flaky").attempts, 3);
  ASSERT_EQ(starts.size(), 3u);
  EXPECT_GE(starts[1] - starts[0], Scaled(40ms, kLowerBoundSlack));
  EXPECT_GE(starts[2] - starts[1], Scaled(80ms, kLowerBoundSlack));
}

TEST_P(Retry, FailsWithTheLastErrorAfterAllDelayedRetries) {
  TaskScheduler s(workers());
  std::atomic<int> calls{0};
  TaskOptions o;
  o.retries = 2;
  o.retry.delay = 5ms;
  s.add_task(
      "bad", [&]() -> int { throw std::runtime_error("attempt " + std::to_string(++calls)); }, {}, o);
  s.add_task("after", [] {}, {"bad"});
  const dagsched::ResultSet r = s.run();
  EXPECT_EQ(r.at("bad").status, Status::failed);
  EXPECT_EQ(r.at("bad").attempts, 3);
  EXPECT_EQ(DescribeError(r.at("bad").error), "attempt 3");
  EXPECT_EQ(r.at("after").status, Status::skipped);
  EXPECT_EQ(calls.load(), 3);
}

TEST_P(Retry, PermanentErrorFailsAtOnceWithRetriesLeft) {
  struct Fatal : PermanentError {
    using PermanentError::PermanentError;
  };
  TaskScheduler s(workers());
  std::atomic<int> calls_a{0};
  std::atomic<int> calls_b{0};
  std::atomic<int> calls_c{0};
  std::atomic<int> calls_d{0};
  TaskOptions o;
  o.retries = 10;
  o.retry.retry_if = [](const std::exception_ptr&) { return true; };  // even when retry_if says yes
  s.add_task(
      "a",
      [&]() -> int {
        if (++calls_a == 1) {
          throw std::runtime_error("transient");
        }
        throw PermanentError("give up");
      },
      {}, o);
  o.retry.retry_if = nullptr;
  o.retry.delay = 1ms;
  s.add_task(
      "b",
      [&]() -> int {
        ++calls_b;
        throw Fatal("derived");
      },
      {}, o);
  // The spec's overload, with an int for retries.
  s.add_task(
      "c",
      [&]() -> int {
        ++calls_c;
        throw PermanentError("spec overload");
      },
      {}, 5);
  const std::vector<std::string> no_deps;
  s.add_task(
      "d",
      [&]() -> int {
        ++calls_d;
        throw PermanentError("range overload");
      },
      no_deps, 5);
  s.add_task("after_a", [] {}, {"a"});
  const dagsched::ResultSet r = s.run();

  EXPECT_EQ(r.at("a").status, Status::failed);
  EXPECT_EQ(r.at("a").attempts, 2);
  EXPECT_EQ(calls_a.load(), 2);
  EXPECT_TRUE(ErrorIs<PermanentError>(r.at("a").error));
  EXPECT_EQ(DescribeError(r.at("a").error), "give up");

  EXPECT_EQ(r.at("b").status, Status::failed);
  EXPECT_EQ(r.at("b").attempts, 1);
  EXPECT_EQ(calls_b.load(), 1);
  EXPECT_TRUE(ErrorIs<Fatal>(r.at("b").error));

  EXPECT_EQ(r.at("c").status, Status::failed);
  EXPECT_EQ(r.at("c").attempts, 1);
  EXPECT_EQ(calls_c.load(), 1);
  EXPECT_EQ(DescribeError(r.at("c").error), "spec overload");

  EXPECT_EQ(r.at("d").status, Status::failed);
  EXPECT_EQ(r.at("d").attempts, 1);
  EXPECT_EQ(calls_d.load(), 1);

  EXPECT_EQ(r.at("after_a").status, Status::skipped);
}

TEST_P(Retry, RetryIfFalseFailsAtOnce) {
  TaskScheduler s(workers());
  std::atomic<int> calls{0};
  std::atomic<int> asked{0};
  TaskOptions o;
  o.retries = 10;
  o.retry.retry_if = [&](const std::exception_ptr& e) {
    ++asked;
    return !ErrorIs<std::logic_error>(e);
  };
  s.add_task(
      "t",
      [&]() -> int {
        if (++calls == 1) {
          throw std::runtime_error("retry me");
        }
        throw std::logic_error("do not retry me");
      },
      {}, o);
  const dagsched::ResultSet r = s.run();
  EXPECT_EQ(r.at("t").status, Status::failed);
  EXPECT_EQ(r.at("t").attempts, 2);
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(DescribeError(r.at("t").error), "do not retry me");
  EXPECT_GE(asked.load(), 2);
}

TEST_P(Retry, OnlyRetriesTheListedTypes) {
  TaskScheduler s(workers());
  std::atomic<int> calls_logic{0};
  std::atomic<int> calls_range{0};
  std::atomic<int> calls_int{0};
  TaskOptions o;
  o.retries = 4;
  o.retry.retry_if = RetryPolicy::only<std::runtime_error>();
  s.add_task(
      "logic",
      [&]() -> int {
        ++calls_logic;
        throw std::invalid_argument("not a runtime_error");
      },
      {}, o);
  s.add_task(
      "range",
      [&]() -> int {
        if (++calls_range < 3) {
          throw std::range_error("a runtime_error");
        }
        return 3;
      },
      {}, o);
  s.add_task(
      "int",
      [&]() -> int {
        ++calls_int;
        throw 7;
      },
      {}, o);
  const dagsched::ResultSet r = s.run();
  EXPECT_EQ(r.at("logic").status, Status::failed);
  EXPECT_EQ(r.at("logic").attempts, 1);
  EXPECT_EQ(calls_logic.load(), 1);
  EXPECT_EQ(r.at("range").status, Status::success);
  EXPECT_EQ(r.at("range").attempts, 3);
  EXPECT_EQ(r.at("int").status, Status::failed);
  EXPECT_EQ(r.at("int").attempts, 1);
  EXPECT_EQ(DescribeError(r.at("int").error), "int 7");
}

// With a busy pool, tasks whose retries are delayed and tasks that keep the workers busy all end with
// the statuses and attempt counts their bodies dictate.
TEST_P(Retry, DelayedRetriesWhileThePoolIsSaturated) {
  TaskScheduler s(workers());
  constexpr int kFlaky = 40;
  constexpr int kBusy = 40;
  std::vector<std::unique_ptr<std::atomic<int>>> calls;
  for (int i = 0; i < kFlaky; ++i) {
    calls.push_back(std::make_unique<std::atomic<int>>(0));
  }
  for (int i = 0; i < kFlaky; ++i) {
    TaskOptions o;
    o.retries = i % 4;  // 0..3 retries
    o.retry.delay = std::chrono::milliseconds(1 + i % 5);
    o.retry.backoff = 1.5;
    o.retry.jitter = 0.5;
    const int fail_times = i % 5;  // 0..4 failures before success
    std::atomic<int>* c = calls[static_cast<std::size_t>(i)].get();
    s.add_task(
        "flaky" + std::to_string(i),
        [c, fail_times]() -> int {
          const int attempt = ++*c;
          std::this_thread::sleep_for(200us);
          if (attempt <= fail_times) {
            throw std::runtime_error("attempt " + std::to_string(attempt));
          }
          return attempt;
        },
        {}, o);
    s.add_task("child" + std::to_string(i), [] {}, {"flaky" + std::to_string(i)});
  }
  for (int i = 0; i < kBusy; ++i) {
    s.add_task("busy" + std::to_string(i), [] { std::this_thread::sleep_for(2ms); });
  }
  const dagsched::ResultSet r = s.run({.seed = 1234});
  for (int i = 0; i < kFlaky; ++i) {
    const std::string id = "flaky" + std::to_string(i);
    SCOPED_TRACE(id);
    const int retries = i % 4;
    const int fail_times = i % 5;
    const dagsched::TaskResult& t = r.at(id);
    if (fail_times <= retries) {
      EXPECT_EQ(t.status, Status::success);
      EXPECT_EQ(t.attempts, fail_times + 1);
      EXPECT_EQ(t.value<int>(), fail_times + 1);
      EXPECT_EQ(r.at("child" + std::to_string(i)).status, Status::success);
    } else {
      EXPECT_EQ(t.status, Status::failed);
      EXPECT_EQ(t.attempts, retries + 1);
      EXPECT_EQ(DescribeError(t.error), "attempt " + std::to_string(retries + 1));
      EXPECT_EQ(r.at("child" + std::to_string(i)).status, Status::skipped);
    }
    EXPECT_EQ(calls[static_cast<std::size_t>(i)]->load(), t.attempts);
  }
  for (int i = 0; i < kBusy; ++i) {
    EXPECT_EQ(r.at("busy" + std::to_string(i)).status, Status::success);
  }
}

TEST_P(Retry, SameSeedSameWaits) {
  const auto run_once = [this](std::uint64_t seed) {
    TaskScheduler s(workers());
    auto recorder = std::make_shared<RetryRecorder>();
    for (int i = 0; i < 4; ++i) {
      TaskOptions o;
      o.retries = 3;
      o.retry.delay = 2ms;
      o.retry.backoff = 2.0;
      o.retry.jitter = 1.0;
      s.add_task(
          "t" + std::to_string(i), []() -> int { throw std::runtime_error("always"); }, {}, o);
    }
    const dagsched::ResultSet r = s.run(Seeded(seed, recorder));
    EXPECT_EQ(r.count(Status::failed), 4u);
    return recorder->delays();
  };
  const auto first = run_once(42);
  const auto second = run_once(42);
  const auto other = run_once(43);
  ASSERT_EQ(first.size(), 4u);
  for (const auto& [id, waits] : first) {
    SCOPED_TRACE(id);
    ASSERT_EQ(waits.size(), 3u);
    // Retry k waits at most delay * 2^(k-1), jitter shortening it by up to all of it.
    for (std::size_t k = 0; k < waits.size(); ++k) {
      EXPECT_GE(waits[k], 0ns);
      EXPECT_LE(waits[k], 2ms * (1 << k));
    }
  }
  EXPECT_EQ(first, second) << "the same non-zero seed must give the same waits";
  EXPECT_NE(first, other) << "12 uniform draws were identical under two seeds";
  // Seed 0 draws a fresh seed for each run.
  EXPECT_NE(run_once(0), run_once(0)) << "12 uniform draws were identical in two runs with seed 0";
}

// A task waiting for its retry holds no worker: with one worker, an independent task runs (and
// finishes) during the wait.
TEST(RetryOneWorker, WaitingRetryHoldsNoWorker) {
  TaskScheduler s(1);
  Log log;
  std::atomic<int> calls{0};
  TaskOptions o;
  o.retries = 1;
  o.retry.delay = 200ms;
  s.add_task(
      "A",
      [&]() -> int {
        const int attempt = ++calls;
        log.add("A" + std::to_string(attempt) + " start");
        if (attempt == 1) {
          throw std::runtime_error("once");
        }
        return 1;
      },
      {}, o);
  s.add_task("B", [&] { log.add("B end"); });
  s.add_task("B2", [&] { log.add("B2 end"); }, {"B"});
  const dagsched::ResultSet r = s.run();
  EXPECT_EQ(r.at("A").status, Status::success);
  EXPECT_EQ(r.at("A").attempts, 2);
  EXPECT_TRUE(r.all_succeeded());
  const long a1 = log.index_of("A1 start");
  const long a2 = log.index_of("A2 start");
  const long b = log.index_of("B end");
  const long b2 = log.index_of("B2 end");
  ASSERT_GE(a1, 0);
  ASSERT_GE(a2, 0);
  ASSERT_GE(b, 0);
  EXPECT_LT(b, a2) << "B had to wait for A's retry: the delay held the only worker";
  EXPECT_LT(b2, a2) << "B's dependent too";
  EXPECT_GE(log.time_of("A2 start") - log.time_of("A1 start"), Scaled(200ms, kLowerBoundSlack));
}

// Cancelling a run ends a task waiting for its retry at once, not after the delay, keeping its attempts
// and last error.
TEST(RetryCancel, TaskWaitingForARetryEndsCancelledPromptly) {
  TaskScheduler s(2);
  auto recorder = std::make_shared<RetryRecorder>();
  TaskOptions o;
  o.retries = 3;
  o.retry.delay = 60s;  // far beyond any wait below
  std::atomic<int> calls{0};
  for (int i = 0; i < 20; ++i) {
    s.add_task(
        "slow_retry" + std::to_string(i),
        [&]() -> int { throw std::runtime_error("attempt " + std::to_string(++calls)); }, {}, o);
  }
  s.add_task("child", [] {}, {"slow_retry0"});
  RunHandle h = s.start(Seeded(0, recorder));
  ASSERT_TRUE(recorder->scheduled().wait_for(kGenerousTimeout));
  // Let every task reach its wait.
  const auto give_up = Clock::now() + kGenerousTimeout;
  while (calls.load() < 20 && Clock::now() < give_up) {
    std::this_thread::sleep_for(1ms);
  }
  std::this_thread::sleep_for(20ms);
  const auto cancelled_at = Clock::now();
  h.cancel();
  ASSERT_TRUE(h.wait_for(kGenerousTimeout)) << "the 60 s retry wait was not cut short by cancel()";
  EXPECT_LT(Clock::now() - cancelled_at, 30s);
  const dagsched::ResultSet r = h.wait();
  for (int i = 0; i < 20; ++i) {
    const dagsched::TaskResult& t = r.at("slow_retry" + std::to_string(i));
    EXPECT_EQ(t.status, Status::cancelled) << i;
    EXPECT_EQ(t.attempts, 1) << i;
    EXPECT_TRUE(ErrorIs<std::runtime_error>(t.error)) << i;
    EXPECT_FALSE(t.result.has_value());
  }
  EXPECT_EQ(calls.load(), 20);
  EXPECT_EQ(r.at("child").status, Status::cancelled);
  EXPECT_EQ(r.at("child").attempts, 0);

  // The scheduler is reusable: a cancelled run leaves no stale timer behind.
  RunHandle h2 = s.start();
  h2.cancel();
  ASSERT_TRUE(h2.wait_for(kGenerousTimeout));
  EXPECT_EQ(h2.wait().size(), 21u);
}

// A wait so long that its due time saturates (delay = nanoseconds::max()) is still ended by cancel().
TEST(RetryCancel, CancelEndsAWaitWhoseDueTimeSaturates) {
  dagsched_test::Watchdog watchdog("RetryCancel.CancelEndsAWaitWhoseDueTimeSaturates (cancel() did not end the wait)",
                                   std::chrono::seconds(60));
  TaskScheduler s(2);
  auto recorder = std::make_shared<RetryRecorder>();
  TaskOptions o;
  o.retries = 1;
  o.retry.delay = nanoseconds::max();
  s.add_task(
      "forever", []() -> int { throw std::runtime_error("fails"); }, {}, o);
  s.add_task("child", [] {}, {"forever"});
  RunHandle h = s.start(Seeded(0, recorder));
  ASSERT_TRUE(recorder->scheduled().wait_for(kGenerousTimeout));
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(h.done());
  h.cancel();
  ASSERT_TRUE(h.wait_for(kGenerousTimeout)) << "cancel() did not end a task waiting for a saturated retry";
  const dagsched::ResultSet r = h.wait();
  EXPECT_EQ(r.at("forever").status, Status::cancelled);
  EXPECT_EQ(r.at("forever").attempts, 1);
  EXPECT_EQ(DescribeError(r.at("forever").error), "fails");
  EXPECT_EQ(r.at("child").status, Status::cancelled);
}

// fail_fast cancels the run at another task's failure: a task waiting for its retry ends cancelled at once.
TEST(RetryCancel, FailFastEndsATaskWaitingForItsRetry) {
  TaskScheduler s(1);  // one worker: "waits" fails first, then "bad" fails while it waits
  auto recorder = std::make_shared<RetryRecorder>();
  TaskOptions o;
  o.retries = 3;
  o.retry.delay = 60s;
  s.add_task(
      "waits", []() -> int { throw std::runtime_error("first"); }, {}, o);
  s.add_task("bad", [&]() -> int {
    EXPECT_TRUE(recorder->scheduled().wait_for(kGenerousTimeout));
    throw std::runtime_error("bad");
  });
  RunOptions run_options = Seeded(0, recorder);
  run_options.failure_policy = dagsched::FailurePolicy::fail_fast();
  RunHandle h = s.start(run_options);
  ASSERT_TRUE(h.wait_for(kGenerousTimeout)) << "the 60 s retry wait outlived the fail_fast cancellation";
  const dagsched::ResultSet r = h.wait();
  EXPECT_EQ(r.at("bad").status, Status::failed);
  EXPECT_EQ(r.at("waits").status, Status::cancelled);
  EXPECT_EQ(r.at("waits").attempts, 1);
  EXPECT_EQ(DescribeError(r.at("waits").error), "first");
}

// Destroying an unwaited handle cancels the run and waits for it: a 60 s retry wait must not hold it up.
TEST(RetryCancel, DestroyingTheHandleEndsRetryWaits) {
  dagsched_test::Watchdog watchdog("RetryCancel.DestroyingTheHandleEndsRetryWaits", std::chrono::seconds(60));
  TaskScheduler s(2);
  auto recorder = std::make_shared<RetryRecorder>();
  TaskOptions o;
  o.retries = 3;
  o.retry.delay = 60s;
  std::atomic<int> calls{0};
  s.add_task(
      "waits", [&]() -> int { throw std::runtime_error("attempt " + std::to_string(++calls)); }, {}, o);
  const auto start = Clock::now();
  {
    RunHandle h = s.start(Seeded(0, recorder));
    ASSERT_TRUE(recorder->scheduled().wait_for(kGenerousTimeout));
  }
  EXPECT_LT(Clock::now() - start, 30s);
  EXPECT_EQ(calls.load(), 1);
  // The scheduler is free again.
  RunHandle again = s.start();
  again.cancel();
  EXPECT_EQ(again.wait().at("waits").status, Status::cancelled);
}

TEST(RetryCancel, CancelWhileRetryingWithSmallDelays) {
  TaskScheduler s(2);
  std::atomic<int> calls{0};
  Flag tenth;
  TaskOptions o;
  o.retries = 100'000;
  o.retry.delay = 100us;
  s.add_task(
      "flaky",
      [&]() -> int {
        if (++calls == 10) {
          tenth.set();
        }
        throw std::runtime_error("again");
      },
      {}, o);
  s.add_task("child", [] {}, {"flaky"});
  RunHandle h = s.start();
  ASSERT_TRUE(tenth.wait_for(kGenerousTimeout));
  h.cancel();
  ASSERT_TRUE(h.wait_for(kGenerousTimeout));
  const dagsched::ResultSet r = h.wait();
  const dagsched::TaskResult& t = r.at("flaky");
  EXPECT_EQ(t.status, Status::cancelled);
  EXPECT_GE(t.attempts, 10);
  EXPECT_LE(t.attempts, 100'001);
  EXPECT_EQ(t.attempts, calls.load());
  EXPECT_EQ(DescribeError(t.error), "again");
  EXPECT_EQ(r.at("child").status, Status::cancelled);
}

TEST(RetryRuns, RepeatedRunsStartFromScratch) {
  TaskScheduler s(2);
  std::atomic<int> calls{0};
  TaskOptions o;
  o.retries = 2;
  o.retry.delay = 2ms;
  s.add_task(
      "t",
      [&]() -> int {
        if (++calls % 3 != 0) {
          throw std::runtime_error("no");
        }
        return 1;
      },
      {}, o);
  for (int run = 0; run < 3; ++run) {
    const dagsched::ResultSet r = s.run();
    EXPECT_EQ(r.at("t").status, Status::success) << run;
    EXPECT_EQ(r.at("t").attempts, 3) << run;
  }
  EXPECT_EQ(calls.load(), 9);
}

INSTANTIATE_TEST_SUITE_P(Workers, Retry, testing::ValuesIn(dagsched_test::kWorkerCounts),
                         dagsched_test::WorkerCountName);

// ---------------------------------------------------------------------------------------------------------
// A million retries with backoff: the arithmetic saturates at max_delay and every retry goes through the
// delayed-retry path. Scaled down under sanitizers only, where each throw costs far more.

// Measured for 2 x 1,000,000 retries: about 6.5 s in the release build, 28 s under ThreadSanitizer and 33 s
// under AddressSanitizer+UBSan, so every build runs the full million. DAGSCHED_TEST_MANY_RETRIES overrides
// the count.
#ifdef DAGSCHED_TEST_MANY_RETRIES
constexpr int kManyRetries = DAGSCHED_TEST_MANY_RETRIES;
#else
constexpr int kManyRetries = 1'000'000;
#endif
// Only the watchdog (which turns a hang into a prompt failure) knows about sanitizers: they are slower.
constexpr std::chrono::seconds kManyRetriesWatchdog{kSanitized ? 400 : 110};

TEST(ManyRetries, MillionRetriesWithBackoffSucceedOnTheLastAttempt) {
  dagsched_test::Watchdog watchdog("MillionRetriesWithBackoffSucceedOnTheLastAttempt", kManyRetriesWatchdog);
  TaskScheduler s(2);
  TaskOptions o;
  o.retries = kManyRetries;
  o.retry.delay = 1ns;
  o.retry.backoff = 2.0;
  o.retry.max_delay = 1us;
  std::atomic<int> calls_eventually{0};
  std::atomic<int> calls_never{0};
  s.add_task(
      "eventually",
      [&](TaskContext& ctx) -> int {
        ++calls_eventually;
        if (ctx.attempt() < kManyRetries + 1) {
          throw std::runtime_error("not yet");
        }
        return ctx.attempt();
      },
      {}, o);
  s.add_task(
      "never",
      [&]() -> int {
        ++calls_never;
        throw std::runtime_error("never");
      },
      {}, o);
  s.add_task("after_never", [] {}, {"never"});
  const auto start = Clock::now();
  const dagsched::ResultSet r = s.run();
  const auto elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("[ info ] 2 x %d retries (delay 1ns, backoff 2, max_delay 1us) took %.2f s\n", kManyRetries, elapsed);
  RecordProperty("seconds", std::to_string(elapsed));

  EXPECT_EQ(r.at("eventually").status, Status::success);
  EXPECT_EQ(r.at("eventually").attempts, kManyRetries + 1);
  EXPECT_EQ(r.at("eventually").value<int>(), kManyRetries + 1);
  EXPECT_EQ(calls_eventually.load(), kManyRetries + 1);
  EXPECT_EQ(r.at("never").status, Status::failed);
  EXPECT_EQ(r.at("never").attempts, kManyRetries + 1);
  EXPECT_EQ(calls_never.load(), kManyRetries + 1);
  EXPECT_EQ(r.at("after_never").status, Status::skipped);
  ASSERT_EQ(r.at("after_never").skip_causes().size(), 1u);
  EXPECT_EQ(r.at("after_never").skip_causes()[0], "never");
}

}  // namespace
