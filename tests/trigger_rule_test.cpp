// TriggerRule::all_done (cleanup tasks that run whatever their dependencies' outcome) and
// TaskResult::skip_causes() (which failed tasks upstream skipped a task), including a random-DAG check of
// both against a sequential oracle.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "dagsched/dagsched.hpp"
#include "test_util.hpp"

namespace {

using dagsched::FailurePolicy;
using dagsched::ResultSet;
using dagsched::RunHandle;
using dagsched::RunOptions;
using dagsched::Status;
using dagsched::TaskContext;
using dagsched::TaskOptions;
using dagsched::TaskScheduler;
using dagsched::TriggerRule;
using dagsched_test::DescribeError;
using dagsched_test::Flag;
using dagsched_test::kGenerousTimeout;

TaskOptions AllDone() {
  TaskOptions o;
  o.trigger = TriggerRule::all_done;
  return o;
}

RunOptions WithPolicy(FailurePolicy policy) {
  RunOptions o;
  o.failure_policy = policy;
  return o;
}

std::multiset<std::string> Causes(const dagsched::TaskResult& r) {
  return {r.skip_causes().begin(), r.skip_causes().end()};
}

using Ids = std::multiset<std::string>;

class Trigger : public testing::TestWithParam<std::size_t> {
 protected:
  [[nodiscard]] std::size_t workers() const { return GetParam(); }
};

TEST_P(Trigger, CleanupRunsAfterFailedAndSkippedDependencies) {
  TaskScheduler s(workers());
  std::atomic<int> cleanup_calls{0};
  s.add_task("A", []() -> int { throw std::runtime_error("A broke"); });
  s.add_task("B", [] { return 2; }, {"A"});  // skipped
  s.add_task("C", [] { return 3; });
  s.add_task(
      "cleanup",
      [&](TaskContext& ctx) {
        ++cleanup_calls;
        EXPECT_EQ(ctx.dependency_count(), 3u);
        EXPECT_EQ(ctx.dependency("A").status, Status::failed);
        EXPECT_EQ(DescribeError(ctx.dependency("A").error), "A broke");
        EXPECT_EQ(ctx.dependency("A").attempts, 1);
        EXPECT_EQ(ctx.dependency("B").status, Status::skipped);
        EXPECT_EQ(Causes(ctx.dependency("B")), Ids{"A"});
        EXPECT_EQ(ctx.dependency("C").status, Status::success);
        EXPECT_EQ(ctx.result<int>("C"), 3);
        EXPECT_THROW(static_cast<void>(ctx.result<int>("B")), std::bad_any_cast);
        return std::string("cleaned");
      },
      {"A", "B", "C"}, AllDone());
  s.add_task("after_cleanup", [](TaskContext& ctx) { return ctx.result<std::string>("cleanup") + "!"; }, {"cleanup"});
  s.add_task("normal", [] {}, {"A", "C"});  // all_success: still skipped
  const ResultSet r = s.run();
  EXPECT_EQ(cleanup_calls.load(), 1);
  EXPECT_EQ(r.at("cleanup").status, Status::success);
  EXPECT_EQ(r.at("cleanup").attempts, 1);
  EXPECT_TRUE(r.at("cleanup").skip_causes().empty());
  EXPECT_EQ(r.at("after_cleanup").status, Status::success);
  EXPECT_EQ(r.at("after_cleanup").value<std::string>(), "cleaned!");
  EXPECT_EQ(r.at("normal").status, Status::skipped);
  EXPECT_EQ(Causes(r.at("normal")), Ids{"A"});
  EXPECT_EQ(r.at("B").status, Status::skipped);
}

TEST_P(Trigger, AllDoneWithSuccessfulDependenciesRunsLikeAllSuccess) {
  TaskScheduler s(workers());
  s.add_task("a", [] { return 1; });
  s.add_task("b", [] { return 2; });
  s.add_task(
      "sum", [](TaskContext& ctx) { return ctx.result<int>("a") + ctx.result<int>("b"); }, {"a", "b"}, AllDone());
  s.add_task(
      "root_cleanup", [] { return 9; }, {}, AllDone());  // no dependencies: a plain root
  const ResultSet r = s.run();
  EXPECT_TRUE(r.all_succeeded());
  EXPECT_EQ(r.at("sum").value<int>(), 3);
  EXPECT_EQ(r.at("root_cleanup").value<int>(), 9);
}

TEST_P(Trigger, AllDoneWaitsForEveryDependencyIncludingRetries) {
  TaskScheduler s(workers());
  constexpr int kDeps = 20;
  std::vector<std::unique_ptr<std::atomic<bool>>> finished;
  std::vector<std::string> ids;
  for (int i = 0; i < kDeps; ++i) {
    finished.push_back(std::make_unique<std::atomic<bool>>(false));
  }
  for (int i = 0; i < kDeps; ++i) {
    TaskOptions o;
    o.retries = 2;
    o.retry.delay = std::chrono::milliseconds(i % 3);
    std::atomic<bool>* done = finished[static_cast<std::size_t>(i)].get();
    ids.push_back("d" + std::to_string(i));
    s.add_task(
        ids.back(),
        [done, i](TaskContext& ctx) -> int {
          if (ctx.attempt() <= i % 4) {  // i % 4 == 3: fails all 3 attempts
            if (ctx.attempt() == 3) {
              done->store(true);
            }
            throw std::runtime_error("no");
          }
          done->store(true);
          return i;
        },
        {}, o);
  }
  s.add_task(
      "cleanup",
      [&](TaskContext& ctx) {
        for (int i = 0; i < kDeps; ++i) {
          EXPECT_TRUE(finished[static_cast<std::size_t>(i)]->load()) << i;
          const dagsched::TaskResult& d = ctx.dependency(ids[static_cast<std::size_t>(i)]);
          if (i % 4 == 3) {
            EXPECT_EQ(d.status, Status::failed) << i;
            EXPECT_EQ(d.attempts, 3) << i;
          } else {
            EXPECT_EQ(d.status, Status::success) << i;
            EXPECT_EQ(d.attempts, i % 4 + 1) << i;
          }
        }
      },
      ids, AllDone());
  const ResultSet r = s.run();
  EXPECT_EQ(r.at("cleanup").status, Status::success);
}

TEST_P(Trigger, AllDoneBreaksTheSkipCascade) {
  TaskScheduler s(workers());
  s.add_task("F", []() -> int { throw std::runtime_error("F"); });
  s.add_task("S", [] {}, {"F"});
  s.add_task(
      "cleanup", [] { return 1; }, {"S"}, AllDone());
  s.add_task("next", [](TaskContext& ctx) { return ctx.result<int>("cleanup") + 1; }, {"cleanup"});
  s.add_task("joined", [] {}, {"next", "S"});  // still skipped by F through S
  const ResultSet r = s.run();
  EXPECT_EQ(r.at("S").status, Status::skipped);
  EXPECT_EQ(r.at("cleanup").status, Status::success);
  EXPECT_EQ(r.at("next").value<int>(), 2);
  EXPECT_EQ(r.at("joined").status, Status::skipped);
  EXPECT_EQ(Causes(r.at("joined")), Ids{"F"});
}

TEST_P(Trigger, AFailingCleanupSkipsItsOwnDependents) {
  TaskScheduler s(workers());
  s.add_task("F", []() -> int { throw std::runtime_error("F"); });
  s.add_task(
      "cleanup", []() -> int { throw std::runtime_error("cleanup broke too"); }, {"F"}, AllDone());
  s.add_task("after", [] {}, {"cleanup"});
  s.add_task("after_both", [] {}, {"cleanup", "F"});
  const ResultSet r = s.run();
  EXPECT_EQ(r.at("cleanup").status, Status::failed);
  EXPECT_EQ(r.at("after").status, Status::skipped);
  EXPECT_EQ(Causes(r.at("after")), Ids{"cleanup"});
  EXPECT_EQ(Causes(r.at("after_both")), (Ids{"F", "cleanup"}));
}

INSTANTIATE_TEST_SUITE_P(Workers, Trigger, testing::ValuesIn(dagsched_test::kWorkerCounts),
                         dagsched_test::WorkerCountName);

// An all_done task does not start once the run is cancelled.
TEST(TriggerCancel, CleanupDoesNotRunInACancelledRun) {
  TaskScheduler s(2);
  Flag started;
  Flag release;
  std::atomic<int> cleanup_calls{0};
  s.add_task("slow", [&] {
    started.set();
    EXPECT_TRUE(release.wait_for(kGenerousTimeout));
  });
  s.add_task(
      "cleanup", [&] { ++cleanup_calls; }, {"slow"}, AllDone());
  RunHandle h = s.start();
  ASSERT_TRUE(started.wait_for(kGenerousTimeout));
  h.cancel();
  release.set();
  ASSERT_TRUE(h.wait_for(kGenerousTimeout));
  const ResultSet r = h.wait();
  EXPECT_EQ(r.at("slow").status, Status::success);
  EXPECT_EQ(r.at("cleanup").status, Status::cancelled);
  EXPECT_EQ(r.at("cleanup").attempts, 0);
  EXPECT_EQ(cleanup_calls.load(), 0);
  EXPECT_TRUE(r.at("cleanup").skip_causes().empty());
}

TEST(TriggerCancel, FailFastCancelsTheCleanupButSkipsTheFailuresDependents) {
  TaskScheduler s(1);
  std::atomic<int> cleanup_calls{0};
  s.add_task("F", []() -> int { throw std::runtime_error("F"); });
  s.add_task(
      "cleanup", [&] { ++cleanup_calls; }, {"F"}, AllDone());
  s.add_task("dependent", [] {}, {"F"});
  const ResultSet r = s.run(WithPolicy(FailurePolicy::fail_fast()));
  EXPECT_EQ(r.at("F").status, Status::failed);
  EXPECT_EQ(r.at("cleanup").status, Status::cancelled);
  EXPECT_EQ(cleanup_calls.load(), 0);
  EXPECT_EQ(r.at("dependent").status, Status::skipped);
  EXPECT_EQ(Causes(r.at("dependent")), Ids{"F"});
}

// ---------------------------------------------------------------------------------------------------------
// skip_causes()

class SkipCauses : public testing::TestWithParam<std::size_t> {
 protected:
  [[nodiscard]] std::size_t workers() const { return GetParam(); }
};

TEST_P(SkipCauses, ChainNamesTheFailureAtItsHead) {
  TaskScheduler s(workers());
  s.add_task("A", []() -> int { throw std::runtime_error("A"); });
  s.add_task("B", [] {}, {"A"});
  s.add_task("C", [] {}, {"B"});
  s.add_task("D", [] {}, {"C"});
  const ResultSet r = s.run();
  EXPECT_EQ(Causes(r.at("B")), Ids{"A"});
  EXPECT_EQ(Causes(r.at("C")), Ids{"A"});
  EXPECT_EQ(Causes(r.at("D")), Ids{"A"});
  EXPECT_TRUE(r.at("A").skip_causes().empty());
  EXPECT_FALSE(r.at("A").skipped_by);
}

TEST_P(SkipCauses, TwoFailedParentsAreBothNamed) {
  TaskScheduler s(workers());
  s.add_task("F1", []() -> int { throw std::runtime_error("F1"); });
  s.add_task(
      "F2", []() -> int { throw std::runtime_error("F2"); }, {}, 2);
  s.add_task("ok", [] {});
  s.add_task("J", [] {}, {"F1", "F2", "ok"});
  s.add_task("K", [] {}, {"J"});
  const ResultSet r = s.run();
  EXPECT_EQ(Causes(r.at("J")), (Ids{"F1", "F2"}));
  EXPECT_EQ(Causes(r.at("K")), (Ids{"F1", "F2"}));
}

TEST_P(SkipCauses, DiamondNamesTheFailureOnce) {
  TaskScheduler s(workers());
  s.add_task("F", []() -> int { throw std::runtime_error("F"); });
  s.add_task("L", [] {}, {"F"});
  s.add_task("R", [] {}, {"F"});
  s.add_task("J", [] {}, {"L", "R", "F"});
  s.add_task("K", [] {}, {"J", "L"});
  const ResultSet r = s.run();
  EXPECT_EQ(Causes(r.at("J")), Ids{"F"});
  EXPECT_EQ(Causes(r.at("K")), Ids{"F"});
}

TEST_P(SkipCauses, CausesMergeAcrossBranches) {
  TaskScheduler s(workers());
  s.add_task("F1", []() -> int { throw std::runtime_error("F1"); });
  s.add_task("F2", []() -> int { throw std::runtime_error("F2"); });
  s.add_task("X", [] {}, {"F1"});
  s.add_task("Y", [] {}, {"F2"});
  s.add_task("X2", [] {}, {"X"});
  s.add_task("Z", [] {}, {"X2", "Y", "F1"});
  const ResultSet r = s.run();
  EXPECT_EQ(Causes(r.at("X")), Ids{"F1"});
  EXPECT_EQ(Causes(r.at("Y")), Ids{"F2"});
  EXPECT_EQ(Causes(r.at("Z")), (Ids{"F1", "F2"}));
}

TEST_P(SkipCauses, OnlySkippedTasksHaveCauses) {
  TaskScheduler s(workers());
  std::atomic<int> calls{0};
  s.add_task(
      "flaky",
      [&]() -> int {
        if (++calls == 1) {
          throw std::runtime_error("once");
        }
        return 1;
      },
      {}, 1);
  s.add_task("child", [] {}, {"flaky"});
  s.add_task("bad", []() -> int { throw std::runtime_error("bad"); });
  const ResultSet r = s.run();
  for (const auto& [id, t] : r) {
    EXPECT_TRUE(t.skip_causes().empty()) << id;
    EXPECT_FALSE(t.skipped_by) << id;
  }
}

// Result slots are reused from run to run: a task skipped in one run and successful in the next has no
// causes left over, and causes change with the failures.
TEST_P(SkipCauses, FreshOnEveryRun) {
  TaskScheduler s(workers());
  std::atomic<int> run{0};
  s.add_task("A", [&]() -> int {
    if (run.load() == 1) {
      throw std::runtime_error("A");
    }
    return 1;
  });
  s.add_task("B", [&]() -> int {
    if (run.load() == 3) {
      throw std::runtime_error("B");
    }
    return 2;
  });
  s.add_task("C", [] {}, {"A", "B"});
  s.add_task("D", [](TaskContext& ctx) { return ctx.dependency_count(); }, {"C"});
  for (int i = 1; i <= 4; ++i) {
    run = i;
    const ResultSet r = s.run();  // dropped before the next run, so its slots are reused
    SCOPED_TRACE("run " + std::to_string(i));
    for (const char* id : {"C", "D"}) {
      if (i == 1) {
        EXPECT_EQ(Causes(r.at(id)), Ids{"A"}) << id;
      } else if (i == 3) {
        EXPECT_EQ(Causes(r.at(id)), Ids{"B"}) << id;
      } else {
        EXPECT_EQ(r.at(id).status, Status::success) << id;
        EXPECT_TRUE(r.at(id).skip_causes().empty()) << id;
        EXPECT_FALSE(r.at(id).skipped_by) << id;
      }
    }
  }
}

// A wide fan-out below one failure: every task of the cascade names it, exactly once.
TEST_P(SkipCauses, WideCascade) {
  TaskScheduler s(workers());
  s.add_task("F", []() -> int { throw std::runtime_error("F"); });
  for (int i = 0; i < 2000; ++i) {
    s.add_task("a" + std::to_string(i), [] {}, {"F"});
    s.add_task("b" + std::to_string(i), [] {}, {"a" + std::to_string(i), "a" + std::to_string(i / 2)});
  }
  const ResultSet r = s.run();
  EXPECT_EQ(r.count(Status::skipped), 4000u);
  for (const auto& [id, t] : r) {
    if (id != "F") {
      ASSERT_EQ(Causes(t), Ids{"F"}) << id;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Workers, SkipCauses, testing::ValuesIn(dagsched_test::kWorkerCounts),
                         dagsched_test::WorkerCountName);

// ---------------------------------------------------------------------------------------------------------
// Random DAGs against an oracle: statuses, attempts, skip causes, and what a task sees of its dependencies,
// with random retries (immediate and delayed, with jitter), PermanentErrors and all_done tasks.

// ok: succeeds at once; fails: every attempt throws; flaky: throws `fail_times` times, then succeeds (it has
// the retries for it); permanent: throws PermanentError, so fails at once whatever its retries.
enum class Kind : std::uint8_t { ok, fails, flaky, permanent };

struct Case {
  dagsched_test::RandomDag dag;
  std::vector<Kind> kind;
  std::vector<bool> all_done;
  std::vector<int> retries;
  std::vector<int> fail_times;
  std::vector<std::chrono::microseconds> delay;  // between retries (0: at once)
  // Oracle.
  std::vector<Status> status;
  std::vector<int> attempts;
  std::vector<std::set<std::string>> causes;
};

Case MakeCase(std::mt19937_64& rng) {
  Case c;
  const std::size_t n = dagsched_test::RandomDagSize(rng, 2000);
  c.dag = dagsched_test::MakeRandomDag(rng, n);
  c.kind.resize(n);
  c.all_done.resize(n);
  c.retries.resize(n);
  c.fail_times.resize(n);
  c.delay.resize(n);
  c.status.resize(n);
  c.attempts.resize(n);
  c.causes.resize(n);
  const double p_fail = std::uniform_real_distribution<double>(0.0, 0.2)(rng);
  for (std::size_t i = 0; i < n; ++i) {
    const double roll = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    c.kind[i] = roll < p_fail          ? Kind::fails
                : roll < p_fail + 0.1  ? Kind::flaky
                : roll < p_fail + 0.13 ? Kind::permanent
                                       : Kind::ok;
    c.all_done[i] = dagsched_test::Chance(rng, 0.15);
    c.fail_times[i] = c.kind[i] == Kind::flaky ? dagsched_test::Uniform<int>(rng, 1, 2) : 0;
    c.retries[i] = c.fail_times[i] + dagsched_test::Uniform<int>(rng, 0, 2);
    const int delay_roll = dagsched_test::Uniform<int>(rng, 0, 3);
    c.delay[i] = std::chrono::microseconds(delay_roll == 0 ? 0 : delay_roll == 1 ? 20 : 200);
  }
  for (std::size_t i = 0; i < n; ++i) {  // index order is topological
    bool blocked = false;
    if (!c.all_done[i]) {
      for (std::size_t d : c.dag.deps[i]) {
        if (c.status[d] == Status::failed) {
          blocked = true;
          c.causes[i].insert(dagsched_test::TaskId(d));
        } else if (c.status[d] == Status::skipped) {
          blocked = true;
          c.causes[i].insert(c.causes[d].begin(), c.causes[d].end());
        }
      }
    }
    if (blocked) {
      c.status[i] = Status::skipped;
      c.attempts[i] = 0;
    } else if (c.kind[i] == Kind::fails) {
      c.status[i] = Status::failed;
      c.attempts[i] = c.retries[i] + 1;
    } else if (c.kind[i] == Kind::permanent) {
      c.status[i] = Status::failed;
      c.attempts[i] = 1;
    } else {
      c.status[i] = Status::success;
      c.attempts[i] = c.fail_times[i] + 1;
    }
  }
  return c;
}

class RandomSkipCauses : public testing::TestWithParam<std::size_t> {};

TEST_P(RandomSkipCauses, MatchTheOracle) {
  const std::size_t workers = GetParam();
  constexpr int kCases = 25;
  for (int case_index = 0; case_index < kCases; ++case_index) {
    const std::uint64_t seed =
        dagsched_test::CaseSeed(dagsched_test::BaseSeed() ^ workers, static_cast<std::uint64_t>(case_index));
    SCOPED_TRACE("seed " + std::to_string(seed) + " (case " + std::to_string(case_index) + ")");
    std::mt19937_64 rng(seed);
    const Case c = MakeCase(rng);
    const std::size_t n = c.dag.size();
    TaskScheduler sched(workers);
    std::vector<std::atomic<int>> calls(n);
    std::atomic<int> wrong_view{0};
    for (std::size_t i : dagsched_test::ShuffledOrder(rng, n)) {
      std::vector<std::string> deps;
      for (std::size_t d : c.dag.deps[i]) {
        deps.push_back(dagsched_test::TaskId(d));
      }
      TaskOptions o;
      o.retries = c.retries[i];
      o.retry.delay = c.delay[i];
      o.retry.backoff = 1.5;
      o.retry.jitter = 0.5;
      o.trigger = c.all_done[i] ? TriggerRule::all_done : TriggerRule::all_success;
      sched.add_task(
          dagsched_test::TaskId(i),
          [&c, &calls, &wrong_view, i](TaskContext& ctx) -> std::size_t {
            const int call = ++calls[i];
            // What this task sees of its dependencies is what the oracle says they ended with.
            for (std::size_t d : c.dag.deps[i]) {
              const dagsched::TaskResult& dep = ctx.dependency(dagsched_test::TaskId(d));
              if (dep.status != c.status[d] || dep.attempts != c.attempts[d]) {
                ++wrong_view;
              }
            }
            if (c.kind[i] == Kind::permanent) {
              throw dagsched::PermanentError("planned permanent failure");
            }
            if (c.kind[i] == Kind::fails || call <= c.fail_times[i]) {
              throw std::runtime_error("planned failure");
            }
            return i;
          },
          deps, o);
    }
    const ResultSet r = sched.run();
    ASSERT_EQ(r.size(), n);
    EXPECT_EQ(wrong_view.load(), 0);
    int mismatches = 0;
    for (std::size_t i = 0; i < n && mismatches < 5; ++i) {
      const std::string id = dagsched_test::TaskId(i);
      const dagsched::TaskResult& t = r.at(id);
      const std::multiset<std::string> got(t.skip_causes().begin(), t.skip_causes().end());
      const std::multiset<std::string> want(c.causes[i].begin(), c.causes[i].end());
      if (t.status != c.status[i] || t.attempts != c.attempts[i] || got != want || calls[i].load() != c.attempts[i]) {
        ++mismatches;
        ADD_FAILURE() << id << ": status " << t.status << " (want " << c.status[i] << "), attempts " << t.attempts
                      << " (want " << c.attempts[i] << "), calls " << calls[i].load() << ", causes " << got.size()
                      << " (want " << want.size() << ")";
      }
    }
    if (HasFailure()) {
      return;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Workers, RandomSkipCauses, testing::ValuesIn(dagsched_test::kWorkerCounts),
                         dagsched_test::WorkerCountName);

}  // namespace
