// RunOptions::failure_policy: keep_going (the spec's behaviour and the default), fail_fast, max_failures(n).
// One worker makes the order deterministic: roots run in index order, each to completion.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>

#include "dagsched/dagsched.hpp"
#include "test_util.hpp"

namespace {

using dagsched::FailurePolicy;
using dagsched::RunOptions;
using dagsched::Status;
using dagsched::TaskScheduler;

// Roots f0, f1 (always fail), then ok0..ok3 (succeed); d0 depends on f0.
struct Fixture {
  TaskScheduler scheduler{1};
  std::atomic<int> ok_calls{0};
  Fixture() {
    scheduler.add_task("f0", []() -> int { throw std::runtime_error("f0"); });
    scheduler.add_task("f1", []() -> int { throw std::runtime_error("f1"); });
    for (int i = 0; i < 4; ++i) {
      scheduler.add_task("ok" + std::to_string(i), [this] { ++ok_calls; });
    }
    scheduler.add_task("d0", [] {}, {"f0"});
  }
};

TEST(FailurePolicy, KeepGoingIsTheDefaultAndTheSpecsBehaviour) {
  EXPECT_EQ(RunOptions{}.failure_policy, FailurePolicy::keep_going());
  Fixture f;
  const dagsched::ResultSet r = f.scheduler.run();
  EXPECT_EQ(r.count(Status::failed), 2u);
  EXPECT_EQ(r.count(Status::success), 4u);
  EXPECT_EQ(r.at("d0").status, Status::skipped);
  EXPECT_EQ(r.count(Status::cancelled), 0u);
}

TEST(FailurePolicy, FailFastCancelsEverythingNotStartedAtTheFirstFailure) {
  Fixture f;
  const dagsched::ResultSet r = f.scheduler.run({.failure_policy = FailurePolicy::fail_fast()});
  EXPECT_EQ(r.at("f0").status, Status::failed);
  EXPECT_EQ(r.at("d0").status, Status::skipped);  // downstream of the failure: skipped, as always
  EXPECT_EQ(r.at("f1").status, Status::cancelled);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(r.at("ok" + std::to_string(i)).status, Status::cancelled);
  }
  EXPECT_EQ(f.ok_calls.load(), 0);
}

TEST(FailurePolicy, MaxFailuresCancelsAtTheNth) {
  Fixture f;
  const dagsched::ResultSet r = f.scheduler.run({.failure_policy = FailurePolicy::max_failures(2)});
  EXPECT_EQ(r.at("f0").status, Status::failed);
  EXPECT_EQ(r.at("f1").status, Status::failed);
  EXPECT_EQ(r.count(Status::cancelled), 4u);
  EXPECT_EQ(f.ok_calls.load(), 0);

  // A limit that is never reached changes nothing, and each run starts counting afresh.
  const dagsched::ResultSet again = f.scheduler.run({.failure_policy = FailurePolicy::max_failures(3)});
  EXPECT_EQ(again.count(Status::failed), 2u);
  EXPECT_EQ(again.count(Status::success), 4u);
  EXPECT_EQ(again.count(Status::cancelled), 0u);
}

TEST(FailurePolicy, AFailureRescuedByARetryDoesNotCount) {
  TaskScheduler s(1);
  std::atomic<int> calls{0};
  s.add_task(
      "flaky",
      [&]() -> int {
        if (++calls < 3) {
          throw std::runtime_error("not yet");
        }
        return 1;
      },
      {}, /*retries=*/2);
  s.add_task("after", [] { return 2; });
  const dagsched::ResultSet r = s.run({.failure_policy = FailurePolicy::fail_fast()});
  EXPECT_EQ(r.at("flaky").status, Status::success);
  EXPECT_EQ(r.at("flaky").attempts, 3);
  EXPECT_EQ(r.at("after").status, Status::success);
}

TEST(FailurePolicy, ZeroMaxFailuresIsRejected) {
  EXPECT_THROW(static_cast<void>(FailurePolicy::max_failures(0)), std::invalid_argument);
  EXPECT_EQ(FailurePolicy::max_failures(1), FailurePolicy::fail_fast());
}

class FailFastAtWorkerCount : public testing::TestWithParam<std::size_t> {};

// With several workers the exact set of cancelled tasks depends on timing; what must hold is that every
// task ends in a final status consistent with the policy and nothing runs after the cancellation.
TEST_P(FailFastAtWorkerCount, EveryTaskEndsConsistently) {
  TaskScheduler s(GetParam());
  constexpr int n = 2000;
  std::atomic<int> calls{0};
  for (int i = 0; i < n; ++i) {
    if (i == 100) {
      s.add_task("t" + std::to_string(i), [&]() -> int {
        ++calls;
        throw std::runtime_error("boom");
      });
    } else {
      s.add_task("t" + std::to_string(i), [&] { ++calls; });
    }
  }
  const dagsched::ResultSet r = s.run({.failure_policy = FailurePolicy::fail_fast()});
  EXPECT_EQ(r.at("t100").status, Status::failed);
  EXPECT_EQ(r.count(Status::failed), 1u);
  EXPECT_EQ(r.count(Status::success) + r.count(Status::cancelled) + 1, static_cast<std::size_t>(n));
  EXPECT_EQ(static_cast<std::size_t>(calls.load()), r.count(Status::success) + 1);
  for (const auto& [id, result] : r) {
    if (result.status == Status::cancelled) {
      EXPECT_EQ(result.attempts, 0) << id;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Workers, FailFastAtWorkerCount, testing::ValuesIn(dagsched_test::kWorkerCounts),
                         dagsched_test::WorkerCountName);

}  // namespace
