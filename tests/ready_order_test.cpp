// Ready-task order (RunOptions::order): with one worker the order in which tasks start is exactly the
// run's order: critical path (cost-weighted, after explicit priorities), FIFO, or depth-first. Checked
// against models computed here, independently of the engine's ranks.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <deque>
#include <limits>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "dagsched/dagsched.hpp"
#include "test_util.hpp"

namespace {

using dagsched::ReadyOrder;
using dagsched::RunOptions;
using dagsched::Status;
using dagsched::TaskHandle;
using dagsched::TaskOptions;
using dagsched::TaskScheduler;
using dagsched_test::Uniform;

/// Records the order in which task bodies start.
class StartLog {
 public:
  void started(std::size_t task) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_order.push_back(task);
  }
  [[nodiscard]] std::vector<std::size_t> order() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_order;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_order.clear();
  }

 private:
  mutable std::mutex m_mutex;
  std::vector<std::size_t> m_order;
};

/// A graph built in index order (so a task's index is the order its id was first seen), each task with a
/// priority and a cost, recording its start.
struct Case {
  dagsched_test::RandomDag dag;
  std::vector<int> priority;
  std::vector<double> cost;
};

RunOptions Exact(ReadyOrder order) {
  RunOptions o;
  o.order = order;
  o.order_threshold = std::chrono::nanoseconds(0);  // order every task, however short
  return o;
}

/// Registers `c`'s tasks in index order with handle dependencies, or, given `shuffle`, in a random order
/// with id dependencies (a task may name one registered later, so the scheduler's indices are no longer
/// a topological order and freeze must find one). Returns the handles by the case's index.
std::vector<TaskHandle> Build(TaskScheduler& s, const Case& c, StartLog& log,
                              std::chrono::microseconds sleep = std::chrono::microseconds(0),
                              std::mt19937_64* shuffle = nullptr) {
  const std::size_t n = c.dag.size();
  std::vector<TaskHandle> h(n);
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) {
    order[i] = i;
  }
  if (shuffle != nullptr) {
    order = dagsched_test::ShuffledOrder(*shuffle, n);
  }
  for (std::size_t i : order) {
    TaskOptions o;
    o.priority = c.priority.empty() ? 0 : c.priority[i];
    o.cost = c.cost.empty() ? 1.0 : c.cost[i];
    auto body = [&log, i, sleep] {
      log.started(i);
      if (sleep.count() != 0) {
        std::this_thread::sleep_for(sleep);
      }
    };
    if (shuffle != nullptr) {
      std::vector<std::string> deps;
      for (std::size_t d : c.dag.deps[i]) {
        deps.push_back(dagsched_test::TaskId(d));
      }
      h[i] = s.add_task(dagsched_test::TaskId(i), body, deps, o);
    } else {
      std::vector<TaskHandle> deps;
      for (std::size_t d : c.dag.deps[i]) {
        deps.push_back(h[d]);
      }
      h[i] = s.add_task(dagsched_test::TaskId(i), body, deps, o);
    }
  }
  return h;
}

/// Critical path of every task: its cost plus the longest of its dependents' (the model, in doubles).
std::vector<double> CriticalPaths(const Case& c) {
  const std::size_t n = c.dag.size();
  const auto dependents = dagsched_test::Dependents(c.dag.deps);
  std::vector<double> cp(n, 0.0);
  for (std::size_t i = n; i-- > 0;) {
    double below = 0;
    for (std::size_t d : dependents[i]) {
      below = std::max(below, cp[d]);
    }
    cp[i] = below + (c.cost.empty() ? 1.0 : c.cost[i]);
  }
  return cp;
}

/// Checks that at every start, no other ready task had a higher (priority, critical path): the
/// critical-path rule with one worker, whatever it does with ties. Returns the first violation.
std::string CheckCriticalPathOrder(const Case& c, const std::vector<std::size_t>& order) {
  const std::size_t n = c.dag.size();
  if (order.size() != n) {
    return "started " + std::to_string(order.size()) + " of " + std::to_string(n) + " tasks";
  }
  const std::vector<double> cp = CriticalPaths(c);
  auto key = [&](std::size_t t) { return std::make_pair(c.priority.empty() ? 0 : c.priority[t], cp[t]); };
  const auto dependents = dagsched_test::Dependents(c.dag.deps);
  std::vector<std::size_t> unmet(n);
  std::vector<char> started(n, 0);
  std::vector<std::size_t> ready;
  for (std::size_t i = 0; i < n; ++i) {
    unmet[i] = c.dag.deps[i].size();
    if (unmet[i] == 0) {
      ready.push_back(i);
    }
  }
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t t = order[k];
    const auto it = std::find(ready.begin(), ready.end(), t);
    if (it == ready.end()) {
      return "start " + std::to_string(k) + ": t" + std::to_string(t) + " was not ready";
    }
    for (std::size_t other : ready) {
      if (key(other) > key(t)) {
        return "start " + std::to_string(k) + ": t" + std::to_string(t) + " (priority " + std::to_string(key(t).first) +
               ", path " + std::to_string(key(t).second) + ") before ready t" + std::to_string(other) + " (priority " +
               std::to_string(key(other).first) + ", path " + std::to_string(key(other).second) + ")";
      }
    }
    ready.erase(it);
    started[t] = 1;
    for (std::size_t d : dependents[t]) {  // one worker: t finished before the next start
      if (--unmet[d] == 0) {
        ready.push_back(d);
      }
    }
  }
  return "";
}

/// The FIFO order with one worker: roots by priority then index; every other task in the order it
/// became ready (after its last dependency), those readied together in index order, priorities first.
std::vector<std::size_t> FifoModel(const Case& c) {
  const std::size_t n = c.dag.size();
  const auto dependents = dagsched_test::Dependents(c.dag.deps);
  std::vector<std::size_t> unmet(n);
  // (priority, -ready sequence) decides; a stable pick of the max.
  std::vector<std::pair<std::size_t, std::size_t>> ready;  // (sequence, task)
  std::size_t seq = 0;
  for (std::size_t i = 0; i < n; ++i) {
    unmet[i] = c.dag.deps[i].size();
  }
  std::vector<std::size_t> roots;
  for (std::size_t i = 0; i < n; ++i) {
    if (unmet[i] == 0) {
      roots.push_back(i);
    }
  }
  auto prio = [&](std::size_t t) { return c.priority.empty() ? 0 : c.priority[t]; };
  std::stable_sort(roots.begin(), roots.end(), [&](std::size_t a, std::size_t b) { return prio(a) > prio(b); });
  for (std::size_t r : roots) {
    ready.emplace_back(seq++, r);
  }
  std::vector<std::size_t> order;
  while (!ready.empty()) {
    auto best = ready.begin();
    for (auto it = ready.begin(); it != ready.end(); ++it) {
      if (prio(it->second) > prio(best->second) ||
          (prio(it->second) == prio(best->second) && it->first < best->first)) {
        best = it;
      }
    }
    const std::size_t t = best->second;
    ready.erase(best);
    order.push_back(t);
    for (std::size_t d : dependents[t]) {
      if (--unmet[d] == 0) {
        ready.emplace_back(seq++, d);
      }
    }
  }
  return order;
}

Case RandomCase(std::mt19937_64& rng, std::size_t n, bool priorities, bool costs) {
  Case c;
  c.dag = dagsched_test::MakeRandomDag(rng, n);
  if (priorities) {
    for (std::size_t i = 0; i < n; ++i) {
      c.priority.push_back(dagsched_test::Chance(rng, 0.8) ? 0 : Uniform<int>(rng, -2, 2));
    }
  }
  if (costs) {
    for (std::size_t i = 0; i < n; ++i) {
      c.cost.push_back(static_cast<double>(Uniform<int>(rng, 0, 5)));  // integers: no ties from scaling
    }
  }
  return c;
}

std::string SeedNote() { return "base seed " + std::to_string(dagsched_test::BaseSeed()); }

TEST(ReadyOrder, OneWorkerStartsRootsInPriorityOrder) {
  std::mt19937_64 rng(dagsched_test::BaseSeed());
  SCOPED_TRACE(SeedNote());
  constexpr std::size_t n = 200;
  Case c;
  c.dag.deps.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    c.priority.push_back(static_cast<int>(i) - 100);
  }
  std::shuffle(c.priority.begin(), c.priority.end(), rng);
  for (const ReadyOrder order : {ReadyOrder::critical_path, ReadyOrder::fifo}) {
    TaskScheduler s(1);
    StartLog log;
    Build(s, c, log);
    const auto results = s.run(Exact(order));
    std::vector<std::size_t> expected(n);
    for (std::size_t i = 0; i < n; ++i) {
      expected[i] = i;
    }
    std::sort(expected.begin(), expected.end(),
              [&](std::size_t a, std::size_t b) { return c.priority[a] > c.priority[b]; });
    EXPECT_EQ(log.order(), expected) << (order == ReadyOrder::fifo ? "fifo" : "critical_path");
  }
}

TEST(ReadyOrder, OneWorkerFollowsTheCriticalPathOnRandomDags) {
  SCOPED_TRACE(SeedNote());
  for (std::uint64_t k = 0; k < 60; ++k) {
    std::mt19937_64 rng(dagsched_test::CaseSeed(dagsched_test::BaseSeed(), k));
    const bool priorities = k % 3 == 1;
    const bool costs = k % 2 == 1;
    // Every other pair of cases registers the tasks out of order (ranks then follow Kahn's order).
    const bool shuffled = k % 4 >= 2;
    const Case c = RandomCase(rng, Uniform<std::size_t>(rng, 1, 400), priorities, costs);
    TaskScheduler s(1);
    StartLog log;
    Build(s, c, log, std::chrono::microseconds(0), shuffled ? &rng : nullptr);
    for (int run = 0; run < 2; ++run) {  // a second run reuses the frozen graph and its ranks
      log.clear();
      const auto results = s.run(Exact(ReadyOrder::critical_path));
      ASSERT_EQ(CheckCriticalPathOrder(c, log.order()), "")
          << "case " << k << " (" << c.dag.size() << " tasks, priorities " << priorities << ", costs " << costs
          << ", shuffled " << shuffled << "), run " << run;
    }
  }
}

TEST(ReadyOrder, OneWorkerFifoIsTheOrderTasksBecameReady) {
  SCOPED_TRACE(SeedNote());
  for (std::uint64_t k = 0; k < 60; ++k) {
    std::mt19937_64 rng(dagsched_test::CaseSeed(dagsched_test::BaseSeed() ^ 0xF1F0, k));
    const bool priorities = k % 3 == 1;
    const Case c = RandomCase(rng, Uniform<std::size_t>(rng, 1, 400), priorities, false);
    TaskScheduler s(1);
    StartLog log;
    Build(s, c, log);
    const auto results = s.run(Exact(ReadyOrder::fifo));
    ASSERT_EQ(log.order(), FifoModel(c)) << "case " << k << " (" << c.dag.size() << " tasks)";
  }
}

TEST(ReadyOrder, TheLongestRemainingPathStartsFirst) {
  // Two roots: "short" heads a chain of 2, "long" a chain of 5. Unit costs: "long" first. A cost hint
  // that makes the short chain heavier turns it around.
  for (const bool hint : {false, true}) {
    TaskScheduler s(1);
    StartLog log;
    TaskOptions heavy;
    heavy.cost = hint ? 10.0 : 1.0;
    TaskHandle prev = s.add_task("short", [&] { log.started(0); });
    s.add_task(
        "short.1", [&] { log.started(1); }, {prev}, heavy);
    prev = s.add_task("long", [&] { log.started(2); });
    for (int i = 1; i < 5; ++i) {
      prev = s.add_task("long." + std::to_string(i), [&] { log.started(3); }, {prev});
    }
    const auto results = s.run(Exact(ReadyOrder::critical_path));
    ASSERT_FALSE(log.order().empty());
    EXPECT_EQ(log.order().front(), hint ? 0u : 2u) << "hint " << hint;
  }
}

// Roots start in the order of their critical paths, longest first, and roots of equal path in the order
// they were added (freeze sorts them by counting where the paths are short, by comparison otherwise).
TEST(ReadyOrder, RootsOfEqualPathStartInTheOrderTheyWereAdded) {
  for (const bool hinted : {false, true}) {
    constexpr std::size_t roots = 300;
    TaskScheduler s(1);
    StartLog log;
    std::vector<std::size_t> length(roots);
    std::vector<TaskHandle> h;
    for (std::size_t i = 0; i < roots; ++i) {
      length[i] = (i * 7) % 5 + 1;  // each root heads a chain of 1 to 5 tasks
      TaskOptions o;
      o.cost = hinted ? 2.0 : 1.0;  // cost hints: the same order, through the comparison sort
      h.push_back(s.add_task(
          "r" + std::to_string(i), [&log, i] { log.started(i); }, {}, o));
    }
    for (std::size_t i = 0; i < roots; ++i) {
      TaskHandle prev = h[i];
      for (std::size_t k = 1; k < length[i]; ++k) {
        prev = s.add_task("r" + std::to_string(i) + "." + std::to_string(k), [] {}, {prev});
      }
    }
    std::vector<std::size_t> expected(roots);
    for (std::size_t i = 0; i < roots; ++i) {
      expected[i] = i;
    }
    std::stable_sort(expected.begin(), expected.end(),
                     [&](std::size_t a, std::size_t b) { return length[a] > length[b]; });
    for (int run = 0; run < 2; ++run) {
      log.clear();
      const auto results = s.run(Exact(ReadyOrder::critical_path));
      ASSERT_TRUE(results.all_succeeded());
      EXPECT_EQ(log.order(), expected) << "hinted " << hinted << ", run " << run;
    }
  }
}

TEST(ReadyOrder, ExplicitPriorityComesBeforeTheCriticalPath) {
  TaskScheduler s(1);
  StartLog log;
  TaskHandle prev = s.add_task("deep", [&] { log.started(0); });
  for (int i = 1; i < 10; ++i) {
    prev = s.add_task("deep." + std::to_string(i), [] {}, {prev});
  }
  TaskOptions urgent;
  urgent.priority = 1;  // alone: no other option, and still honoured
  s.add_task(
      "urgent", [&] { log.started(1); }, {}, urgent);
  const auto results = s.run(Exact(ReadyOrder::critical_path));
  ASSERT_EQ(log.order().size(), 2u);
  EXPECT_EQ(log.order().front(), 1u);
}

TEST(ReadyOrder, DefaultThresholdKeepsTheOrderOfTasksLongerThanIt) {
  // The default order_threshold (20 us) lets workers go depth-first through tiny tasks only. Tasks that
  // sleep 100 us are above it, so the unit-cost critical path holds over many measuring windows.
  SCOPED_TRACE(SeedNote());
  std::mt19937_64 rng(dagsched_test::BaseSeed() ^ 0x7123);
  const Case c = RandomCase(rng, 200, false, false);
  TaskScheduler s(1);
  StartLog log;
  Build(s, c, log, std::chrono::microseconds(100));
  const auto results = s.run();  // the defaults: critical_path, 20 us
  EXPECT_EQ(CheckCriticalPathOrder(c, log.order()), "");
}

TEST(ReadyOrder, RequestedOrdersHoldForTinyTasks) {
  // Below the threshold only the unit-cost guess gives way: FIFO, explicit priorities and cost hints are
  // kept for every task, with the default threshold, over many windows of empty tasks.
  SCOPED_TRACE(SeedNote());
  for (std::uint64_t k = 0; k < 20; ++k) {
    std::mt19937_64 rng(dagsched_test::CaseSeed(dagsched_test::BaseSeed() ^ 0x71E7, k));
    const Case prioritised = RandomCase(rng, 600, true, k % 2 == 0);
    {
      TaskScheduler s(1);
      StartLog log;
      Build(s, prioritised, log);
      const auto results = s.run();
      ASSERT_EQ(CheckCriticalPathOrder(prioritised, log.order()), "") << "case " << k;
    }
    const Case plain = RandomCase(rng, 600, false, false);
    {
      TaskScheduler s(1);
      StartLog log;
      Build(s, plain, log);
      RunOptions fifo;
      fifo.order = ReadyOrder::fifo;
      const auto results = s.run(fifo);
      ASSERT_EQ(log.order(), FifoModel(plain)) << "case " << k;
    }
  }
}

TEST(ReadyOrder, BadRunOptionsAreRejectedBeforeAnythingRuns) {
  TaskScheduler s(2);
  bool ran = false;
  s.add_task("a", [&] { ran = true; });
  RunOptions bad_order;
  bad_order.order = static_cast<ReadyOrder>(3);
  EXPECT_THROW(static_cast<void>(s.run(bad_order)), std::invalid_argument);
  RunOptions negative;
  negative.order_threshold = std::chrono::nanoseconds(-1);
  EXPECT_THROW(static_cast<void>(s.start(negative)), std::invalid_argument);
  EXPECT_FALSE(ran);
  EXPECT_EQ(s.run().at("a").status, Status::success);
}

TEST(ReadyOrder, EveryOrderRunsEveryTaskWithTheSameResults) {
  // Orders change when tasks start, never what happens to them: same statuses, results and skips.
  SCOPED_TRACE(SeedNote());
  std::mt19937_64 rng(dagsched_test::BaseSeed() ^ 0x0DE5);
  const dagsched_test::RandomDag dag = dagsched_test::MakeRandomDag(rng, 2000);
  std::vector<char> fails(dag.size());
  for (auto& f : fails) {
    f = dagsched_test::Chance(rng, 0.02) ? 1 : 0;
  }
  for (const std::size_t workers : {std::size_t{1}, std::size_t{2}, std::size_t{4}}) {
    TaskScheduler s(workers);
    std::vector<TaskHandle> h;
    for (std::size_t i = 0; i < dag.size(); ++i) {
      std::vector<TaskHandle> deps;
      for (std::size_t d : dag.deps[i]) {
        deps.push_back(h[d]);
      }
      const bool fail = fails[i] != 0;
      h.push_back(s.add_task(
          dagsched_test::TaskId(i),
          [i, fail]() -> std::size_t {
            if (fail) {
              throw std::runtime_error("boom");
            }
            return i;
          },
          deps));
    }
    std::vector<Status> reference;
    for (const ReadyOrder order : {ReadyOrder::depth_first, ReadyOrder::critical_path, ReadyOrder::fifo}) {
      for (const long threshold_ns : {0L, 20'000L}) {
        RunOptions o;
        o.order = order;
        o.order_threshold = std::chrono::nanoseconds(threshold_ns);
        const auto results = s.run(o);
        std::vector<Status> statuses;
        for (std::size_t i = 0; i < dag.size(); ++i) {
          const auto& r = results.at(h[i]);
          statuses.push_back(r.status);
          if (r.status == Status::success) {
            ASSERT_EQ(std::any_cast<std::size_t>(r.result), i);
          }
        }
        if (reference.empty()) {
          reference = statuses;
        }
        ASSERT_EQ(statuses, reference) << workers << " workers, order " << static_cast<int>(order) << ", threshold "
                                       << threshold_ns;
      }
    }
  }
}

TEST(ReadyOrder, ExtremeCostsStillOrderByPath) {
  // Finite costs whose paths overflow a double, and costs so small that their scale factor would: the
  // ranks are capped and scaled by a ratio, so the longest path still starts first (UBSan's
  // float-cast-overflow once caught a NaN converted to an integer here).
  for (const double cost : {1e308, 1e-310}) {
    TaskScheduler s(1);
    StartLog log;
    TaskOptions o;
    o.cost = cost;
    TaskOptions none;
    none.cost = 0.0;
    s.add_task(
        "short", [&] { log.started(0); }, {}, none);
    const TaskHandle a = s.add_task(
        "long", [&] { log.started(1); }, {}, o);
    s.add_task(
        "long.1", [&] { log.started(2); }, {a}, o);
    const auto results = s.run(Exact(ReadyOrder::critical_path));
    ASSERT_TRUE(results.all_succeeded());
    ASSERT_EQ(log.order().size(), 3u);
    EXPECT_EQ(log.order().front(), 1u) << cost;
  }
}

TEST(ReadyOrder, CostMustBeFiniteAndNotNegative) {
  TaskScheduler s(1);
  for (const double bad : {-1.0, std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
    TaskOptions o;
    o.cost = bad;
    EXPECT_THROW(s.add_task(
                     "t", [] {}, {}, o),
                 std::invalid_argument)
        << bad;
  }
  EXPECT_FALSE(s.contains("t"));
  TaskOptions zero;
  zero.cost = 0.0;
  s.add_task(
      "t", [] {}, {}, zero);
  EXPECT_EQ(s.run().at("t").status, Status::success);
}

}  // namespace
