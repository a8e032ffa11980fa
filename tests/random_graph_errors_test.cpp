// Random malformed graphs: random DAGs with back edges added must always raise CycleError naming a real
// cycle of the graph, and random DAGs with a dangling dependency must raise UnknownDependencyError naming a
// real dangling edge; in both cases before any task body runs. Seeded like the stress test
// (DAGSCHED_TEST_SEED).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "dagsched/dagsched.hpp"
#include "test_util.hpp"

namespace {

using dagsched::CycleError;
using dagsched::TaskScheduler;
using dagsched::UnknownDependencyError;
using dagsched_test::Chance;
using dagsched_test::Uniform;

std::string SeedNote() {
  return "base seed " + std::to_string(dagsched_test::BaseSeed()) +
         " (rerun with DAGSCHED_TEST_SEED=" + std::to_string(dagsched_test::BaseSeed()) + ")";
}

// Tasks reachable from `from` along dependent edges (from itself included).
std::vector<std::size_t> Reachable(const std::vector<std::vector<std::size_t>>& dependents, std::size_t from) {
  std::vector<char> seen(dependents.size(), 0);
  std::vector<std::size_t> stack{from};
  std::vector<std::size_t> out;
  seen[from] = 1;
  while (!stack.empty()) {
    const std::size_t at = stack.back();
    stack.pop_back();
    out.push_back(at);
    for (std::size_t next : dependents[at]) {
      if (seen[next] == 0) {
        seen[next] = 1;
        stack.push_back(next);
      }
    }
  }
  return out;
}

// Registers every task of `deps` (in a shuffled order, dependency ids as strings); bodies bump `calls`.
void Register(TaskScheduler& scheduler, std::mt19937_64& rng, const std::vector<std::vector<std::string>>& deps,
              std::atomic<int>& calls) {
  for (std::size_t i : dagsched_test::ShuffledOrder(rng, deps.size())) {
    scheduler.add_task(
        dagsched_test::TaskId(i),
        [&calls] {
          calls.fetch_add(1);
          return 0;
        },
        deps[i]);
  }
}

// Returns a description of what is wrong with `cycle` as a cycle of the graph, or "" when it is real.
std::string ValidateCycle(const std::vector<std::string>& cycle,
                          const std::map<std::string, std::set<std::string>>& deps) {
  if (cycle.empty()) {
    return "empty cycle";
  }
  if (std::set<std::string>(cycle.begin(), cycle.end()).size() != cycle.size()) {
    return "an id repeats in the cycle";
  }
  for (std::size_t k = 0; k < cycle.size(); ++k) {
    const std::string& from = cycle[k];
    const std::string& to = cycle[(k + 1) % cycle.size()];  // wraps: the closing edge back to the front
    const auto it = deps.find(to);
    if (it == deps.end()) {
      return "unknown id " + to;
    }
    if (it->second.count(from) == 0) {
      return to + " does not depend on " + from;
    }
  }
  return {};
}

TEST(RandomCycles, BackEdgesAlwaysReportedAsRealCycles) {
  SCOPED_TRACE(SeedNote());
  constexpr std::uint64_t kCases = 300;
  for (std::uint64_t c = 0; c < kCases; ++c) {
    const std::uint64_t seed = dagsched_test::CaseSeed(dagsched_test::BaseSeed() ^ 0xC7C1E, c);
    SCOPED_TRACE("case " + std::to_string(c) + ", case seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const std::size_t n = Uniform<std::size_t>(rng, 1, 300);
    dagsched_test::RandomDag dag = dagsched_test::MakeRandomDag(rng, n);
    // 1-3 back edges: u depends on v, where v is reachable from u (v == u is a self-dependency).
    const int back_edges = Uniform<int>(rng, 1, 3);
    for (int b = 0; b < back_edges; ++b) {
      const auto dependents = dagsched_test::Dependents(dag.deps);
      const std::size_t u = Uniform<std::size_t>(rng, 0, n - 1);
      const std::vector<std::size_t> reach = Reachable(dependents, u);
      const std::size_t v = Chance(rng, 0.1) ? u : reach[Uniform<std::size_t>(rng, 0, reach.size() - 1)];
      auto& du = dag.deps[u];
      if (std::find(du.begin(), du.end(), v) == du.end()) {
        du.push_back(v);
      }
    }
    std::vector<std::vector<std::string>> dep_ids(n);
    std::map<std::string, std::set<std::string>> dep_map;
    for (std::size_t i = 0; i < n; ++i) {
      auto& entry = dep_map[dagsched_test::TaskId(i)];
      for (std::size_t d : dag.deps[i]) {
        dep_ids[i].push_back(dagsched_test::TaskId(d));
        entry.insert(dagsched_test::TaskId(d));
      }
    }

    TaskScheduler scheduler(Uniform<std::size_t>(rng, 1, 8));
    std::atomic<int> calls{0};
    Register(scheduler, rng, dep_ids, calls);
    try {
      (void)scheduler.run();
      FAIL() << "a graph with a cycle was accepted (" << n << " tasks)";
    } catch (const CycleError& e) {
      const std::string problem = ValidateCycle(e.cycle(), dep_map);
      ASSERT_EQ(problem, "") << "reported: " << e.what();
      std::string expected_what = "cycle: ";
      for (const auto& id : e.cycle()) {
        expected_what += id + " -> ";
      }
      expected_what += e.cycle().front();
      EXPECT_EQ(std::string(e.what()), expected_what);
    } catch (const std::exception& e) {
      FAIL() << "expected CycleError, got: " << e.what();
    }
    ASSERT_EQ(calls.load(), 0) << "a task ran although the graph has a cycle";
  }
}

TEST(RandomUnknownDependencies, AlwaysReportedBeforeAnyTaskRuns) {
  SCOPED_TRACE(SeedNote());
  constexpr std::uint64_t kCases = 200;
  for (std::uint64_t c = 0; c < kCases; ++c) {
    const std::uint64_t seed = dagsched_test::CaseSeed(dagsched_test::BaseSeed() ^ 0x0DD, c);
    SCOPED_TRACE("case " + std::to_string(c) + ", case seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const std::size_t n = Uniform<std::size_t>(rng, 1, 300);
    const dagsched_test::RandomDag dag = dagsched_test::MakeRandomDag(rng, n);
    std::vector<std::vector<std::string>> dep_ids(n);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t d : dag.deps[i]) {
        dep_ids[i].push_back(dagsched_test::TaskId(d));
      }
    }
    // 1-3 dangling dependencies on ids that are never registered.
    std::map<std::string, std::set<std::string>> dangling;  // task -> missing ids
    const int missing = Uniform<int>(rng, 1, 3);
    for (int m = 0; m < missing; ++m) {
      const std::size_t i = Uniform<std::size_t>(rng, 0, n - 1);
      const std::string ghost = "ghost" + std::to_string(m);
      dep_ids[i].push_back(ghost);
      dangling[dagsched_test::TaskId(i)].insert(ghost);
    }

    TaskScheduler scheduler(Uniform<std::size_t>(rng, 1, 8));
    std::atomic<int> calls{0};
    Register(scheduler, rng, dep_ids, calls);
    try {
      (void)scheduler.run();
      FAIL() << "a graph with an unknown dependency was accepted";
    } catch (const UnknownDependencyError& e) {
      const auto it = dangling.find(e.task_id());
      ASSERT_NE(it, dangling.end()) << "named a task without a dangling dependency: " << e.what();
      EXPECT_EQ(it->second.count(e.dependency()), 1u) << e.what();
      const std::string what = e.what();
      EXPECT_NE(what.find(e.task_id()), std::string::npos) << what;
      EXPECT_NE(what.find(e.dependency()), std::string::npos) << what;
    } catch (const std::exception& e) {
      FAIL() << "expected UnknownDependencyError, got: " << e.what();
    }
    ASSERT_EQ(calls.load(), 0);
  }
}

}  // namespace
