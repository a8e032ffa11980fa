// Malformed graphs: unknown dependencies and cycles are reported by run() with typed errors naming the ids,
// before any task body runs, and leave the scheduler usable.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "dagsched/dagsched.hpp"
#include "test_util.hpp"

namespace {

using dagsched::CycleError;
using dagsched::GraphError;
using dagsched::ResultSet;
using dagsched::Status;
using dagsched::TaskScheduler;
using dagsched::UnknownDependencyError;

// Registers tasks from an id -> dependencies map; every body bumps `calls`.
void AddAll(TaskScheduler& scheduler, const std::map<std::string, std::vector<std::string>>& graph,
            std::atomic<int>& calls) {
  for (const auto& [id, deps] : graph) {
    scheduler.add_task(
        id,
        [&calls] {
          calls.fetch_add(1);
          return 0;
        },
        deps);
  }
}

// Runs and returns the CycleError, failing the test when run() does something else.
CycleError ExpectCycle(TaskScheduler& scheduler) {
  try {
    (void)scheduler.run();
  } catch (const CycleError& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "run() threw something other than CycleError: " << e.what();
    return CycleError({});
  }
  ADD_FAILURE() << "run() accepted a cycle";
  return CycleError({});
}

std::string Join(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) {
    out += id + " -> ";
  }
  return ids.empty() ? out : out + ids.front();
}

// Whether `got` is a rotation of `expected`.
bool IsRotation(const std::vector<std::string>& got, const std::vector<std::string>& expected) {
  if (got.size() != expected.size()) {
    return false;
  }
  if (got.empty()) {
    return true;
  }
  const auto start = std::find(expected.begin(), expected.end(), got.front());
  if (start == expected.end()) {
    return false;
  }
  std::vector<std::string> rotated(start, expected.end());
  rotated.insert(rotated.end(), expected.begin(), start);
  return rotated == got;
}

// Checks a reported cycle against the expected one (any starting point) and the documented what() format.
void CheckCycle(const CycleError& e, const std::vector<std::string>& expected) {
  EXPECT_TRUE(IsRotation(e.cycle(), expected))
      << "reported: " << Join(e.cycle()) << "\nexpected a rotation of: " << Join(expected);
  EXPECT_EQ(std::string(e.what()), "cycle: " + Join(e.cycle()));
}

TEST(UnknownDependency, ThrownBeforeAnyTaskRuns) {
  TaskScheduler scheduler(2);
  std::atomic<int> calls{0};
  AddAll(scheduler, {{"root", {}}, {"independent", {}}, {"child", {"root", "missing"}}}, calls);
  try {
    (void)scheduler.run();
    ADD_FAILURE() << "run() accepted an unknown dependency";
  } catch (const UnknownDependencyError& e) {
    EXPECT_EQ(e.task_id(), "child");
    EXPECT_EQ(e.dependency(), "missing");
    const std::string what = e.what();
    EXPECT_NE(what.find("child"), std::string::npos) << what;
    EXPECT_NE(what.find("missing"), std::string::npos) << what;
  }
  EXPECT_EQ(calls.load(), 0);
  // Catchable broadly, as the Python spec's ValueError.
  EXPECT_THROW((void)scheduler.run(), std::invalid_argument);
  EXPECT_THROW((void)scheduler.run(), GraphError);
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(scheduler.size(), 3u);

  // Registering the missing task repairs the graph.
  scheduler.add_task("missing", [] { return 1; });
  const ResultSet results = scheduler.run();
  EXPECT_TRUE(results.all_succeeded());
  EXPECT_EQ(calls.load(), 3);
}

TEST(UnknownDependency, FromSetAndVector) {
  for (int form = 0; form < 2; ++form) {
    TaskScheduler scheduler;
    std::atomic<int> calls{0};
    auto body = [&calls] {
      calls.fetch_add(1);
      return 1;
    };
    scheduler.add_task("a", body);
    if (form == 0) {
      scheduler.add_task("b", body, std::set<std::string>{"a", "zz"});
    } else {
      scheduler.add_task("b", body, std::vector<std::string>{"zz"});
    }
    try {
      (void)scheduler.run();
      ADD_FAILURE() << "accepted";
    } catch (const UnknownDependencyError& e) {
      EXPECT_EQ(e.task_id(), "b");
      EXPECT_EQ(e.dependency(), "zz");
    }
    EXPECT_EQ(calls.load(), 0);
  }
}

TEST(Cycles, SelfDependency) {
  TaskScheduler scheduler;
  std::atomic<int> calls{0};
  AddAll(scheduler, {{"other", {}}, {"self", {"self"}}}, calls);
  const CycleError e = ExpectCycle(scheduler);
  EXPECT_EQ(e.cycle(), std::vector<std::string>{"self"});
  EXPECT_STREQ(e.what(), "cycle: self -> self");
  EXPECT_EQ(calls.load(), 0);
}

TEST(Cycles, TwoTasks) {
  TaskScheduler scheduler;
  std::atomic<int> calls{0};
  AddAll(scheduler, {{"a", {"b"}}, {"b", {"a"}}}, calls);
  const CycleError e = ExpectCycle(scheduler);
  CheckCycle(e, {"a", "b"});
  EXPECT_EQ(calls.load(), 0);
  EXPECT_THROW((void)scheduler.run(), std::invalid_argument);  // still a cycle; typed as invalid_argument
}

TEST(Cycles, ThreeTasksInDependencyOrder) {
  // y depends on x, z on y, x on z: the run order would be x -> y -> z -> x, never x -> z -> y.
  TaskScheduler scheduler(3);
  std::atomic<int> calls{0};
  AddAll(scheduler, {{"x", {"z"}}, {"y", {"x"}}, {"z", {"y"}}}, calls);
  const CycleError e = ExpectCycle(scheduler);
  CheckCycle(e, {"x", "y", "z"});
  ASSERT_EQ(e.cycle().size(), 3u);
  EXPECT_EQ(calls.load(), 0);
}

TEST(Cycles, ExactMessageForKnownStart) {
  // Whatever task the report starts from, the message is one of the three rotations.
  TaskScheduler scheduler;
  std::atomic<int> calls{0};
  AddAll(scheduler, {{"x", {"z"}}, {"y", {"x"}}, {"z", {"y"}}}, calls);
  const CycleError e = ExpectCycle(scheduler);
  const std::string what = e.what();
  EXPECT_TRUE(what == "cycle: x -> y -> z -> x" || what == "cycle: y -> z -> x -> y" ||
              what == "cycle: z -> x -> y -> z")
      << what;
}

TEST(Cycles, CycleInTheMiddleOfAnAcyclicGraph) {
  // root -> p -> c1 -> c2 -> c3 -> c1, c3 -> tail; plus an unrelated diamond. Only c1..c3 form a cycle.
  TaskScheduler scheduler(4);
  std::atomic<int> calls{0};
  AddAll(scheduler,
         {{"root", {}},
          {"p", {"root"}},
          {"c1", {"p", "c3"}},
          {"c2", {"c1"}},
          {"c3", {"c2", "root"}},
          {"tail", {"c3"}},
          {"d1", {}},
          {"d2", {"d1"}},
          {"d3", {"d1"}},
          {"d4", {"d2", "d3"}}},
         calls);
  const CycleError e = ExpectCycle(scheduler);
  CheckCycle(e, {"c1", "c2", "c3"});
  EXPECT_EQ(calls.load(), 0) << "a task ran although the graph has a cycle";
  EXPECT_EQ(scheduler.size(), 10u);
}

TEST(Cycles, CycleClosedByLaterRegistration) {
  // The back edge names a task registered afterwards.
  TaskScheduler scheduler;
  std::atomic<int> calls{0};
  auto body = [&calls] {
    calls.fetch_add(1);
    return 0;
  };
  scheduler.add_task("n0", body, {"n3"});
  scheduler.add_task("n1", body, {"n0"});
  scheduler.add_task("n2", body, {"n1"});
  scheduler.add_task("free", body);
  scheduler.add_task("n3", body, {"n2"});
  const CycleError e = ExpectCycle(scheduler);
  CheckCycle(e, {"n0", "n1", "n2", "n3"});
  EXPECT_EQ(calls.load(), 0);
}

TEST(Cycles, CycleErrorAccessorsAndHierarchy) {
  const CycleError e({"a", "b"});
  EXPECT_EQ(e.cycle(), (std::vector<std::string>{"a", "b"}));
  EXPECT_STREQ(e.what(), "cycle: a -> b -> a");
  const std::invalid_argument& base = e;
  EXPECT_STREQ(base.what(), "cycle: a -> b -> a");
  const dagsched::DuplicateTaskError dup("id7");
  EXPECT_EQ(dup.task_id(), "id7");
  EXPECT_NE(std::string(dup.what()).find("id7"), std::string::npos);
  const UnknownDependencyError unknown("t", "d");
  EXPECT_EQ(unknown.task_id(), "t");
  EXPECT_EQ(unknown.dependency(), "d");
}

TEST(Cycles, HugeCycleDoesNotExhaustTheStack) {
  constexpr std::size_t kN = 1'000'000;
  TaskScheduler scheduler(4);
  std::atomic<int> calls{0};
  std::vector<std::string> ids;
  ids.reserve(kN);
  for (std::size_t i = 0; i < kN; ++i) {
    ids.push_back(dagsched_test::TaskId(i));
  }
  // t(i) depends on t(i-1); t0 depends on t(N-1).
  for (std::size_t i = 0; i < kN; ++i) {
    scheduler.add_task(ids[i],
                       [&calls] {
                         calls.fetch_add(1);
                         return 0;
                       },
                       {ids[(i + kN - 1) % kN]});
  }
  const CycleError e = ExpectCycle(scheduler);
  const auto& cycle = e.cycle();
  ASSERT_EQ(cycle.size(), kN);
  // Consecutive ids, wrapping around: t(k) -> t(k+1) -> ...
  const auto first = std::find(ids.begin(), ids.end(), cycle.front());
  ASSERT_NE(first, ids.end());
  const auto offset = static_cast<std::size_t>(first - ids.begin());
  for (std::size_t i = 0; i < kN; ++i) {
    ASSERT_EQ(cycle[i], ids[(offset + i) % kN]) << "at position " << i;
  }
  const std::string what = e.what();
  EXPECT_EQ(what.rfind("cycle: " + cycle.front() + " -> " + cycle[1] + " -> ", 0), 0u);
  EXPECT_TRUE(what.ends_with(" -> " + cycle.back() + " -> " + cycle.front()));
  EXPECT_EQ(calls.load(), 0);
}

}  // namespace
