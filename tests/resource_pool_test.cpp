// Resource pools (TaskScheduler::add_resource, TaskOptions::resources): the capacity bound, no
// head-of-line blocking, no starvation, priorities among waiters, retries and cancellation.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dagsched/dagsched.hpp"
#include "test_util.hpp"

namespace {

using dagsched::ResourceError;
using dagsched::ResultSet;
using dagsched::Status;
using dagsched::TaskOptions;
using dagsched::TaskScheduler;
using dagsched_test::Flag;
using dagsched_test::kGenerousTimeout;
using namespace std::chrono_literals;

TaskOptions Needs(std::vector<dagsched::ResourceRequest> resources, int priority = 0) {
  TaskOptions o;
  o.resources = std::move(resources);
  o.priority = priority;
  return o;
}

/// Adds "hold", which takes `units` of "gpu" (with `priority`) and keeps them until `release`, and "kick",
/// which finishes once "hold" has them: tasks depending on "kick" queue for units behind "hold".
void AddHoldAndKick(TaskScheduler& s, std::uint32_t units, Flag& holding, Flag& release, int priority = 0) {
  s.add_task(
      "hold",
      [&] {
        holding.set();
        EXPECT_TRUE(release.wait_for(kGenerousTimeout));
      },
      {}, Needs({{"gpu", units}}, priority));
  s.add_task("kick", [&] { EXPECT_TRUE(holding.wait_for(kGenerousTimeout)); });
}

/// Counts units in use per pool from inside the task bodies, and remembers the peak.
class UsageTracker {
 public:
  explicit UsageTracker(std::size_t pools) : m_now(pools, 0), m_peak(pools, 0) {}
  void enter(const std::vector<std::pair<std::size_t, unsigned>>& needs) {
    std::lock_guard<std::mutex> lock(m_mutex);
    for (auto [pool, units] : needs) {
      m_now[pool] += units;
      m_peak[pool] = std::max(m_peak[pool], m_now[pool]);
    }
  }
  void leave(const std::vector<std::pair<std::size_t, unsigned>>& needs) {
    std::lock_guard<std::mutex> lock(m_mutex);
    for (auto [pool, units] : needs) {
      m_now[pool] -= units;
    }
  }
  [[nodiscard]] unsigned peak(std::size_t pool) const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_peak[pool];
  }

 private:
  mutable std::mutex m_mutex;
  std::vector<unsigned> m_now;
  std::vector<unsigned> m_peak;
};

class Resources : public testing::TestWithParam<std::size_t> {};

TEST_P(Resources, CapacityIsNeverExceededUnderRandomStress) {
  const std::uint64_t seed = dagsched_test::BaseSeed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const std::vector<std::pair<std::string, unsigned>> pools = {{"gpu", 2}, {"db", 3}, {"licence", 1}};
  TaskScheduler s(GetParam());
  for (const auto& [name, capacity] : pools) {
    s.add_resource(name, capacity);
  }
  UsageTracker usage(pools.size());
  constexpr int tasks = 300;
  for (int i = 0; i < tasks; ++i) {
    std::vector<std::pair<std::size_t, unsigned>> needs;
    std::vector<dagsched::ResourceRequest> requests;
    for (std::size_t p = 0; p < pools.size(); ++p) {
      if (rng() % 3 == 0) {
        const auto units = static_cast<unsigned>(1 + rng() % pools[p].second);
        needs.emplace_back(p, units);
        requests.push_back({pools[p].first, units});
      }
    }
    std::vector<std::string> deps;
    for (int k = 0; k < 2 && i > 0; ++k) {
      if (rng() % 2 == 0) {
        deps.push_back("t" + std::to_string(rng() % static_cast<std::uint64_t>(i)));
      }
    }
    std::sort(deps.begin(), deps.end());
    deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
    const bool fails = rng() % 10 == 0;
    TaskOptions o = Needs(requests, static_cast<int>(rng() % 3));
    o.retries = 1;
    s.add_task(
        "t" + std::to_string(i),
        [&usage, needs, fails] {
          usage.enter(needs);
          std::this_thread::sleep_for(50us);
          usage.leave(needs);
          if (fails) {
            throw std::runtime_error("planned");
          }
        },
        deps, o);
  }
  const ResultSet r = s.run();
  EXPECT_EQ(r.size(), static_cast<std::size_t>(tasks));
  for (std::size_t p = 0; p < pools.size(); ++p) {
    EXPECT_LE(usage.peak(p), pools[p].second) << pools[p].first;
  }
  for (const auto& [id, result] : r) {
    EXPECT_NE(result.status, Status::cancelled) << id;
    if (result.status == Status::failed) {
      EXPECT_EQ(result.attempts, 2) << id;
    }
  }
}

TEST_P(Resources, ASmallRequestPassesALargeOneThatDoesNotFitYet) {
  if (GetParam() < 2) {
    GTEST_SKIP() << "needs a worker for the holder and one for the others";
  }
  TaskScheduler s(GetParam());
  s.add_resource("gpu", 2);
  Flag holding, release, small_done;
  AddHoldAndKick(s, 1, holding, release);
  s.add_task(
      "big", [] {}, {"kick"}, Needs({{"gpu", 2}}, /*priority=*/5));
  s.add_task(
      "small", [&] { small_done.set(); }, {"kick"}, Needs({{"gpu", 1}}));
  dagsched::RunHandle h = s.start();
  // "small" runs while "hold" still holds one unit and "big" (higher priority) waits for two.
  EXPECT_TRUE(small_done.wait_for(kGenerousTimeout));
  release.set();
  const ResultSet r = h.wait();
  EXPECT_TRUE(r.all_succeeded());
}

TEST_P(Resources, ALargeRequestIsNotStarvedBySmallOnes) {
  if (GetParam() < 2) {
    GTEST_SKIP() << "needs a worker for the holder and one to queue the others (with one worker nothing waits)";
  }
  // ResourceBroker::max_bypass: how many later waiters may pass a waiter that does not fit before it reserves.
  constexpr std::size_t kMaxBypass = 8;
  constexpr std::size_t kSmalls = 120;
  TaskScheduler s(GetParam());
  s.add_resource("gpu", 2);
  std::mutex m;
  std::vector<std::string> starts;  // "big" and the small ones, in the order their bodies started
  auto body = [&](std::string id) {
    return [&, id] {
      std::lock_guard<std::mutex> lock(m);
      starts.push_back(id);
    };
  };
  // Everything queues behind "hold", which takes the whole pool; the priorities fix the waiters' order
  // whatever order the workers queue them in: "first" (1 unit), "big" (2), then the small ones (1 each).
  Flag holding, release;
  AddHoldAndKick(s, 2, holding, release);
  s.add_task(
      "first", [] {}, {"kick"}, Needs({{"gpu", 1}}, /*priority=*/2));
  s.add_task("big", body("big"), {"kick"}, Needs({{"gpu", 2}}, /*priority=*/1));
  for (std::size_t i = 0; i < kSmalls; ++i) {
    s.add_task("s" + std::to_string(i), body("s" + std::to_string(i)), {"kick"}, Needs({{"gpu", 1}}));
  }
  dagsched::RunHandle h = s.start();
  // A task counts as waiting just before it queues for its units. Once all of them count, none is left in a
  // ready queue, so no worker takes new work; a worker counts as running from taking a task until it runs
  // dry, so once only the holder's worker runs (polled after that), every one of them is in the queue.
  const std::size_t queued = kSmalls + 2;
  EXPECT_EQ(dagsched_test::PollProgress(h, [&](const dagsched::Progress& p) { return p.waiting == queued; }).waiting,
            queued);
  EXPECT_EQ(dagsched_test::PollProgress(h, [](const dagsched::Progress& p) { return p.running == 1; }).running, 1u);
  // "hold" gives both units back at once: "first" takes one, "big" does not fit in the other, so the first
  // small one passes it. From then on a unit is only ever freed while the other is held ("first", or a small
  // one), so "big" never fits while small ones are granted: without the reservation every one of them passes
  // it (it starts after all kSmalls: checked by switching the reservation off). With it, once kMaxBypass have
  // passed, the freed unit stays idle until the other one comes back, and "big" starts.
  release.set();
  ASSERT_TRUE(h.wait_for(kGenerousTimeout));
  const ResultSet r = h.wait();
  ASSERT_TRUE(r.all_succeeded());
  ASSERT_EQ(starts.size(), kSmalls + 1);
  const auto passed = static_cast<std::size_t>(std::find(starts.begin(), starts.end(), "big") - starts.begin());
  EXPECT_GE(passed, 1u) << "a small request passes the large one that does not fit yet";
  EXPECT_LE(passed, kMaxBypass) << "started after " << passed << " small ones";
}

TEST(ResourcesPriority, WaitersStartInPriorityOrder) {
  TaskScheduler s(2);
  s.add_resource("gpu", 1);
  Flag holding, release;
  std::mutex m;
  std::vector<int> order;
  AddHoldAndKick(s, 1, holding, release, 100);
  const int priorities[] = {3, 7, 1, 9, 5};
  for (int p : priorities) {
    s.add_task(
        "p" + std::to_string(p),
        [&, p] {
          std::lock_guard<std::mutex> lock(m);
          order.push_back(p);
        },
        {"kick"}, Needs({{"gpu", 1}}, p));
  }
  dagsched::RunHandle h = s.start();
  EXPECT_EQ(
      dagsched_test::PollProgress(h, [&](const dagsched::Progress& p) { return p.waiting == std::size(priorities); })
          .waiting,
      std::size(priorities));
  release.set();
  const ResultSet r = h.wait();
  EXPECT_TRUE(r.all_succeeded());
  EXPECT_EQ(order, (std::vector<int>{9, 7, 5, 3, 1}));
}

TEST(ResourcesRetry, UnitsAreNotHeldDuringARetryWait) {
  TaskScheduler s(2);
  s.add_resource("gpu", 1);
  std::atomic<int> attempts{0};
  Flag other_ran;
  TaskOptions flaky = Needs({{"gpu", 1}});
  flaky.retries = 1;
  flaky.retry.delay = 300ms;
  s.add_task(
      "flaky",
      [&] {
        if (++attempts == 1) {
          throw std::runtime_error("first attempt fails");
        }
        // By the retry, the other task has had the unit.
        EXPECT_TRUE(other_ran.is_set());
      },
      {}, flaky);
  s.add_task(
      "other", [&] { other_ran.set(); }, {"start"}, Needs({{"gpu", 1}}));
  s.add_task("start", [] { std::this_thread::sleep_for(50ms); });
  const ResultSet r = s.run();
  EXPECT_TRUE(r.all_succeeded());
  EXPECT_EQ(r.at("flaky").attempts, 2);
}

TEST(ResourcesCancel, CancelEndsTheWaitersAndReleasesTheUnits) {
  TaskScheduler s(2);
  s.add_resource("gpu", 1);
  Flag holding, release;
  AddHoldAndKick(s, 1, holding, release);
  for (int i = 0; i < 4; ++i) {
    s.add_task(
        "w" + std::to_string(i), [] {}, {"kick"}, Needs({{"gpu", 1}}));
  }
  dagsched::RunHandle h = s.start();
  EXPECT_EQ(dagsched_test::PollProgress(h, [](const dagsched::Progress& p) { return p.waiting == 4; }).waiting, 4u);
  h.cancel();
  release.set();
  ASSERT_TRUE(h.wait_for(kGenerousTimeout));
  const ResultSet r = h.wait();
  EXPECT_EQ(r.at("hold").status, Status::success);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(r.at("w" + std::to_string(i)).status, Status::cancelled);
    EXPECT_EQ(r.at("w" + std::to_string(i)).attempts, 0);
  }
  // The units came back: a second run can use the whole pool.
  release.set();
  const ResultSet again = s.run();
  EXPECT_TRUE(again.all_succeeded());
}

TEST(ResourcesErrors, ImpossibleRequestsAreRejectedBeforeAnythingRuns) {
  TaskScheduler s(2);
  s.add_resource("gpu", 2);
  std::atomic<int> ran{0};
  s.add_task("ok", [&] { ++ran; });
  s.add_task(
      "greedy", [&] { ++ran; }, {}, Needs({{"gpu", 3}}));
  try {
    static_cast<void>(s.run());
    FAIL() << "no ResourceError";
  } catch (const ResourceError& e) {
    EXPECT_EQ(e.task_id(), "greedy");
    EXPECT_EQ(e.pool(), "gpu");
    EXPECT_NE(std::string(e.what()).find("capacity of 2"), std::string::npos) << e.what();
  }
  TaskScheduler t(2);
  t.add_task(
      "lost", [&] { ++ran; }, {}, Needs({{"tpu", 1}}));
  EXPECT_THROW(static_cast<void>(t.run()), ResourceError);
  EXPECT_EQ(ran.load(), 0);
  EXPECT_THROW(s.add_resource("gpu", 1), std::invalid_argument);
  EXPECT_THROW(s.add_resource("cpu", 0), std::invalid_argument);
  EXPECT_THROW(s.add_resource("", 1), std::invalid_argument);
  EXPECT_THROW(s.add_task(
                   "zero", [] {}, {}, Needs({{"gpu", 0}})),
               std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Workers, Resources, testing::ValuesIn(dagsched_test::kWorkerCounts),
                         dagsched_test::WorkerCountName);

}  // namespace
