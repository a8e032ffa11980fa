// Large graphs: skip propagation down a 1,000,000-task chain and across a 1,000,000-task fan-out without
// exhausting the stack, long successful chains in order, wide fan-in, and the spec's 10,000-task bound.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dagsched/dagsched.hpp"
#include "test_util.hpp"

namespace {

using dagsched::ResultSet;
using dagsched::RunHandle;
using dagsched::Status;
using dagsched::TaskContext;
using dagsched::TaskHandle;
using dagsched::TaskScheduler;

constexpr std::size_t kMillion = 1'000'000;

TEST(Scale, MillionTaskChainWithFailingHead) {
  TaskScheduler scheduler(4);
  std::atomic<int> head_calls{0};
  std::atomic<int> other_calls{0};
  TaskHandle prev = scheduler.add_task(
      "t0",
      [&head_calls]() -> int {
        head_calls.fetch_add(1);
        throw std::runtime_error("head");
      },
      {}, 1);
  for (std::size_t i = 1; i < kMillion; ++i) {
    // Alternate handle and string dependencies.
    if (i % 2 == 0) {
      prev = scheduler.add_task(dagsched_test::TaskId(i),
                                [&other_calls] {
                                  other_calls.fetch_add(1);
                                  return 0;
                                },
                                {prev});
    } else {
      prev = scheduler.add_task(dagsched_test::TaskId(i),
                                [&other_calls] {
                                  other_calls.fetch_add(1);
                                  return 0;
                                },
                                {dagsched_test::TaskId(i - 1)});
    }
  }
  ASSERT_EQ(scheduler.size(), kMillion);
  const ResultSet results = scheduler.run();
  ASSERT_EQ(results.size(), kMillion);
  EXPECT_EQ(results.at("t0").status, Status::failed);
  EXPECT_EQ(results.at("t0").attempts, 2);
  EXPECT_EQ(head_calls.load(), 2);
  EXPECT_EQ(other_calls.load(), 0);
  EXPECT_EQ(results.count(Status::failed), 1u);
  EXPECT_EQ(results.count(Status::skipped), kMillion - 1);
  std::size_t bad = 0;
  for (const auto& [id, r] : results) {
    if (id != "t0" && (r.status != Status::skipped || r.attempts != 0 || r.result.has_value() || r.error)) {
      ++bad;
    }
  }
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(results.at(prev).status, Status::skipped);
}

TEST(Scale, MillionDirectDependentsOfAFailure) {
  TaskScheduler scheduler(8);
  std::atomic<int> calls{0};
  const TaskHandle root = scheduler.add_task("root", []() -> int { throw 1; });
  for (std::size_t i = 1; i < kMillion; ++i) {
    scheduler.add_task(dagsched_test::TaskId(i), [&calls] { calls.fetch_add(1); }, {root});
  }
  const ResultSet results = scheduler.run();
  EXPECT_EQ(results.count(Status::failed), 1u);
  EXPECT_EQ(results.count(Status::skipped), kMillion - 1);
  EXPECT_EQ(calls.load(), 0);
}

TEST(Scale, LongChainRunsInOrder) {
  constexpr std::size_t kN = 100'000;
  TaskScheduler scheduler(4);
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> out_of_order{0};
  // Registered tail first: every task names a dependency registered after it.
  for (std::size_t k = kN; k-- > 0;) {
    auto body = [&next, &out_of_order, k] {
      if (next.fetch_add(1) != k) {
        out_of_order.fetch_add(1);
      }
      return k;
    };
    if (k == 0) {
      scheduler.add_task(dagsched_test::TaskId(k), body);
    } else {
      scheduler.add_task(dagsched_test::TaskId(k), body, {dagsched_test::TaskId(k - 1)});
    }
  }
  const ResultSet results = scheduler.run();
  EXPECT_TRUE(results.all_succeeded());
  EXPECT_EQ(out_of_order.load(), 0u);
  EXPECT_EQ(next.load(), kN);
  EXPECT_EQ(results.at(dagsched_test::TaskId(kN - 1)).value<std::size_t>(), kN - 1);
}

// A chain added head first, so each task's only dependent is the next index: the engine's shortcut for
// such chains (it moves on to index + 1 before the loads confirming it land) must keep order, results and
// the skips after a failure, and must not take a next index that has a second dependency.
TEST(Scale, InOrderChainRunsInOrderAndSkipsAfterAFailure) {
  constexpr std::size_t kN = 100'000;
  constexpr std::size_t kFailAt = 70'000;
  dagsched_test::Watchdog watchdog("Scale.InOrderChainRunsInOrderAndSkipsAfterAFailure");
  for (std::size_t workers : {std::size_t{1}, std::size_t{2}, std::size_t{4}}) {
    SCOPED_TRACE("workers " + std::to_string(workers));
    TaskScheduler scheduler(workers);
    std::atomic<std::size_t> next{0};
    std::atomic<std::size_t> out_of_order{0};
    std::atomic<bool> fail{false};
    TaskHandle prev;
    for (std::size_t k = 0; k < kN; ++k) {
      auto body = [&next, &out_of_order, &fail, k] {
        if (next.fetch_add(1) != k) {
          out_of_order.fetch_add(1);
        }
        if (k == kFailAt && fail.load()) {
          throw std::runtime_error("link " + std::to_string(k));
        }
        return k;
      };
      prev = k == 0 ? scheduler.add_task(dagsched_test::TaskId(k), body)
                    : scheduler.add_task(dagsched_test::TaskId(k), body, {prev});
    }
    for (int run = 0; run < 2; ++run) {
      SCOPED_TRACE(run == 0 ? "all succeed" : "one link fails");
      fail = run == 1;
      next = 0;
      const ResultSet results = scheduler.run();
      EXPECT_EQ(out_of_order.load(), 0u);
      if (run == 0) {
        EXPECT_TRUE(results.all_succeeded());
        EXPECT_EQ(next.load(), kN);
        EXPECT_EQ(results.at(dagsched_test::TaskId(kN - 1)).value<std::size_t>(), kN - 1);
        EXPECT_EQ(results.at(dagsched_test::TaskId(12'345)).value<std::size_t>(), std::size_t{12'345});
      } else {
        EXPECT_EQ(next.load(), kFailAt + 1);
        EXPECT_EQ(results.at(dagsched_test::TaskId(kFailAt - 1)).status, Status::success);
        EXPECT_EQ(results.at(dagsched_test::TaskId(kFailAt)).status, Status::failed);
        EXPECT_EQ(results.count(Status::skipped), kN - kFailAt - 1);
        const dagsched::TaskResult& last = results.at(dagsched_test::TaskId(kN - 1));
        EXPECT_EQ(last.status, Status::skipped);
        EXPECT_EQ(last.attempts, 0);
        EXPECT_FALSE(last.result.has_value());
      }
    }
  }
}

TEST(Scale, InOrderChainHandsItsUnusualLinksToTheGeneralPath) {
  // An in-order chain runs in a loop of its own (RunState::run_chain). Links that need more than a plain
  // attempt must leave it and come back: one takes a TaskContext, one fails its first attempt and
  // succeeds on its retry, and one runs under a RunHandle whose progress is counted.
  constexpr std::size_t kN = 20'000;
  constexpr std::size_t kContextAt = 5'000;
  constexpr std::size_t kFlakyAt = 10'000;
  dagsched_test::Watchdog watchdog("Scale.InOrderChainHandsItsUnusualLinksToTheGeneralPath");
  for (std::size_t workers : {std::size_t{1}, std::size_t{2}}) {
    SCOPED_TRACE("workers " + std::to_string(workers));
    TaskScheduler scheduler(workers);
    std::atomic<std::size_t> next{0};
    std::atomic<std::size_t> out_of_order{0};
    std::atomic<int> flaky_calls{0};
    auto in_order = [&next, &out_of_order](std::size_t k) {
      if (next.fetch_add(1) != k) {
        out_of_order.fetch_add(1);
      }
    };
    TaskHandle prev;
    for (std::size_t k = 0; k < kN; ++k) {
      const std::string id = dagsched_test::TaskId(k);
      if (k == kContextAt) {
        prev = scheduler.add_task(id,
                                  [in_order, k](TaskContext& ctx) {
                                    in_order(k);
                                    return ctx.attempt() + 100;
                                  },
                                  {prev});
      } else if (k == kFlakyAt) {
        prev = scheduler.add_task(
            id,
            [in_order, k, &flaky_calls] {
              if (flaky_calls.fetch_add(1) % 2 == 0) {
                in_order(k);
                throw std::runtime_error("first attempt");
              }
              return k;
            },
            {prev}, 1);
      } else {
        auto body = [in_order, k] {
          in_order(k);
          return k;
        };
        prev = k == 0 ? scheduler.add_task(id, body) : scheduler.add_task(id, body, {prev});
      }
    }
    for (int run = 0; run < 3; ++run) {
      SCOPED_TRACE("run " + std::to_string(run));
      next = 0;
      ResultSet results;
      if (run < 2) {
        results = scheduler.run();
      } else {
        RunHandle handle = scheduler.start();  // with a handle, finished tasks are counted as they go
        ASSERT_TRUE(handle.wait_for(dagsched_test::kGenerousTimeout));
        EXPECT_EQ(handle.progress().finished, kN);
        results = handle.wait();
      }
      EXPECT_TRUE(results.all_succeeded());
      EXPECT_EQ(next.load(), kN);
      EXPECT_EQ(out_of_order.load(), 0u);
      EXPECT_EQ(results.at(dagsched_test::TaskId(kContextAt)).value<int>(), 101);
      EXPECT_EQ(results.at(dagsched_test::TaskId(kFlakyAt)).attempts, 2);
      EXPECT_EQ(results.at(dagsched_test::TaskId(kFlakyAt)).value<std::size_t>(), kFlakyAt);
      EXPECT_EQ(results.at(dagsched_test::TaskId(kFlakyAt + 1)).attempts, 1);
      EXPECT_EQ(results.at(dagsched_test::TaskId(kN - 1)).value<std::size_t>(), kN - 1);
    }
  }
}

TEST(Scale, InOrderChainStopsAtACancellation) {
  // A link cancels the run: the links after it end cancelled without starting, although each is the
  // next index and depends on the last alone (the chain loop checks for cancellation as the general
  // path does). The next run is not cancelled.
  constexpr std::size_t kN = 100'000;
  constexpr std::size_t kCancelAt = 500;
  dagsched_test::Watchdog watchdog("Scale.InOrderChainStopsAtACancellation");
  for (std::size_t workers : {std::size_t{1}, std::size_t{2}}) {
    SCOPED_TRACE("workers " + std::to_string(workers));
    TaskScheduler scheduler(workers);
    std::optional<RunHandle> handle;
    dagsched_test::Flag handle_ready;
    std::atomic<bool> cancel{true};
    std::atomic<std::size_t> calls{0};
    TaskHandle prev;
    for (std::size_t k = 0; k < kN; ++k) {
      auto body = [&, k] {
        calls.fetch_add(1);
        if (k == kCancelAt && cancel.load()) {
          if (!handle_ready.wait_for(dagsched_test::kGenerousTimeout)) {
            throw std::runtime_error("no handle");
          }
          handle->cancel();
        }
      };
      prev = k == 0 ? scheduler.add_task(dagsched_test::TaskId(k), body)
                    : scheduler.add_task(dagsched_test::TaskId(k), body, {prev});
    }
    handle.emplace(scheduler.start());
    handle_ready.set();
    const ResultSet cancelled = handle->wait();
    EXPECT_EQ(calls.load(), kCancelAt + 1);
    EXPECT_EQ(cancelled.at(dagsched_test::TaskId(kCancelAt)).status, Status::success);
    EXPECT_EQ(cancelled.count(Status::cancelled), kN - kCancelAt - 1);
    EXPECT_EQ(cancelled.at(dagsched_test::TaskId(kN - 1)).attempts, 0);

    cancel = false;
    calls = 0;
    EXPECT_TRUE(scheduler.run().all_succeeded());
    EXPECT_EQ(calls.load(), kN);
  }
}

TEST(Scale, InOrderChainBreaksAtBlockAndChunkEdges) {
  // The chain loop finds the links ahead a block at a time (RunState::run_chain, chain_extent): a search
  // covers at most 256 links from where the loop was entered, and ends at the end of a node chunk (512
  // nodes). Where a search ends on a link, whether that link goes on is not known yet. Here the chain is
  // broken exactly there: a link with a second dependency (a root gate) just past a search's last link,
  // so that running the gated link early, as if its predecessor went on, is seen; and a link with a
  // second dependent (a side task that depends on it by id) on a chunk's last index. The side tasks and
  // gates are added first, so the chain keeps the last indices and ends once on a chunk's last index and
  // once on a chunk's first. Every task must start after all its dependencies.
  dagsched_test::Watchdog watchdog("Scale.InOrderChainBreaksAtBlockAndChunkEdges");
  for (std::size_t end_at : {std::size_t{4'095}, std::size_t{4'096}}) {  // the last task's index
    for (std::size_t workers : {std::size_t{1}, std::size_t{2}, std::size_t{4}}) {
      SCOPED_TRACE("last index " + std::to_string(end_at) + ", workers " + std::to_string(workers));
      // By task index. The loop is entered at the link after the one that follows a break: 302 after
      // the side task at 300, whose search ends at 512 (a chunk's end: 513 is gated); 514 after 513,
      // whose search ends at 770 (256 links: 771 is gated); 772, ending at 1024 (a chunk's end); 1026,
      // then 1282, ending at 1536 (a chunk's end, with a side task); 1700 falls inside a search's
      // four-at-a-time part. The last two tasks have both kinds of break.
      auto extra_dependent = [end_at](std::size_t i) { return i == 300 || i == 1536 || i + 2 >= end_at; };
      auto gated = [end_at](std::size_t i) {
        return i == 513 || i == 771 || i == 1025 || i == 1700 || i + 2 >= end_at;
      };
      // Side tasks and gates come first (then root fillers, to make the count exact), and the chain takes
      // indices first..end_at: find `first`.
      auto breaks_from = [&](std::size_t first) {
        std::size_t count = 0;
        for (std::size_t i = first; i <= end_at; ++i) {
          count += (extra_dependent(i) ? 1U : 0U) + (gated(i) ? 1U : 0U);
        }
        return count;
      };
      std::size_t first = 0;
      while (breaks_from(first) > first) {
        ++first;
      }
      const std::size_t fillers = first - breaks_from(first);

      TaskScheduler scheduler(workers);
      struct Shared {
        std::atomic<std::uint64_t> clock{0};
        std::vector<std::atomic<std::uint64_t>> started;
        explicit Shared(std::size_t n) : started(n) {}
      };
      Shared shared(end_at + 1);
      std::vector<std::string> ids(end_at + 1);
      std::vector<std::vector<std::size_t>> deps(end_at + 1);
      std::size_t next = 0;
      auto add = [&](std::size_t index, std::string id, std::vector<std::string> dep_ids) {
        ASSERT_EQ(index, next++);
        ids[index] = std::move(id);
        scheduler.add_task(
            ids[index],
            [&shared, index] {
              shared.started[index].store(shared.clock.fetch_add(1) + 1);
              return index;
            },
            dep_ids);
      };
      std::size_t index = 0;
      for (; index < fillers; ++index) {
        add(index, "filler" + std::to_string(index), {});
      }
      for (std::size_t i = first; i <= end_at; ++i) {
        if (extra_dependent(i)) {
          add(index, "side" + std::to_string(i), {"c" + std::to_string(i)});
          deps[index].push_back(i);
          ++index;
        }
        if (gated(i)) {
          add(index, "gate" + std::to_string(i), {});
          deps[i].push_back(index);
          ++index;
        }
      }
      ASSERT_EQ(index, first);
      for (std::size_t i = first; i <= end_at; ++i) {
        std::vector<std::string> dep_ids;
        if (i != first) {
          dep_ids.push_back("c" + std::to_string(i - 1));
          deps[i].push_back(i - 1);
        }
        if (gated(i)) {
          dep_ids.push_back("gate" + std::to_string(i));
        }
        add(i, "c" + std::to_string(i), dep_ids);
      }
      ASSERT_EQ(scheduler.size(), end_at + 1);

      for (int run = 0; run < 2; ++run) {
        SCOPED_TRACE("run " + std::to_string(run));
        for (auto& s : shared.started) {
          s.store(0);
        }
        const ResultSet results = scheduler.run();
        EXPECT_TRUE(results.all_succeeded());
        EXPECT_EQ(shared.clock.exchange(0), end_at + 1);
        std::size_t early = 0;
        for (std::size_t t = 0; t <= end_at; ++t) {
          const std::uint64_t at = shared.started[t].load();
          EXPECT_NE(at, 0u) << ids[t] << " did not run";
          for (std::size_t d : deps[t]) {
            if (shared.started[d].load() >= at) {
              ++early;
              ADD_FAILURE() << ids[t] << " started before its dependency " << ids[d] << " had";
            }
          }
          EXPECT_EQ(results.at(ids[t]).value<std::size_t>(), t);
        }
        EXPECT_EQ(early, 0u);
      }
    }
  }
}

TEST(Scale, InOrderChainWaitsForALinksSecondDependency) {
  // t0 -> t1 -> ... -> t999, added in order, where t500 also names `gate` (a task that sleeps, interned
  // by that call just after t500): t499's only dependent is still the next index, t500, but t500 must
  // wait for the gate too.
  constexpr std::size_t kN = 1'000;
  dagsched_test::Watchdog watchdog("Scale.InOrderChainWaitsForALinksSecondDependency", std::chrono::seconds(30));
  TaskScheduler scheduler(2);
  std::atomic<bool> gate_done{false};
  std::atomic<int> early{0};
  std::vector<TaskHandle> links;
  for (std::size_t k = 0; k < kN; ++k) {
    auto body = [&gate_done, &early, k] {
      if (k == 500 && !gate_done.load()) {
        early.fetch_add(1);
      }
    };
    if (k == 0) {
      links.push_back(scheduler.add_task(dagsched_test::TaskId(k), body));
    } else if (k == 500) {
      links.push_back(scheduler.add_task(dagsched_test::TaskId(k), body, {links.back(), std::string("gate")}));
    } else {
      links.push_back(scheduler.add_task(dagsched_test::TaskId(k), body, {links.back()}));
    }
  }
  ASSERT_EQ(links[500].index(), links[499].index() + 1) << "t500 is not the index after t499";
  scheduler.add_task("gate", [&gate_done] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    gate_done = true;
  });
  for (int run = 0; run < 3; ++run) {
    gate_done = false;
    const ResultSet results = scheduler.run();
    EXPECT_TRUE(results.all_succeeded());
  }
  EXPECT_EQ(early.load(), 0) << "t500 started before its second dependency finished";
}

TEST(Scale, WideFanOutAndFanIn) {
  constexpr std::size_t kWidth = 100'000;
  TaskScheduler scheduler(8);
  std::atomic<std::size_t> finished{0};
  const TaskHandle source = scheduler.add_task("source", [] { return 0; });
  std::vector<TaskHandle> middle;
  middle.reserve(kWidth);
  for (std::size_t i = 0; i < kWidth; ++i) {
    middle.push_back(scheduler.add_task(dagsched_test::TaskId(i), [&finished] { finished.fetch_add(1); }, {source}));
  }
  scheduler.add_task(
      "sink", [&finished] { return finished.load(); }, middle);
  const ResultSet results = scheduler.run();
  EXPECT_TRUE(results.all_succeeded());
  EXPECT_EQ(results.at("sink").value<std::size_t>(), kWidth) << "the sink started before all its dependencies";
}

TEST(Scale, TenThousandTaskRandomDagAllSucceed) {
  // The spec's upper bound on graph size, at several worker counts, each run checked edge by edge.
  constexpr std::size_t kN = 10'000;
  std::mt19937_64 rng(dagsched_test::BaseSeed());
  const dagsched_test::RandomDag dag = dagsched_test::MakeRandomDag(rng, kN);
  for (std::size_t workers : dagsched_test::kWorkerCounts) {
    SCOPED_TRACE("workers " + std::to_string(workers));
    TaskScheduler scheduler(workers);
    std::atomic<std::uint64_t> seq{1};
    std::vector<std::uint64_t> start(kN, 0);
    std::vector<std::uint64_t> end(kN, 0);
    for (std::size_t i = 0; i < kN; ++i) {
      std::vector<std::string> deps;
      for (std::size_t d : dag.deps[i]) {
        deps.push_back(dagsched_test::TaskId(d));
      }
      scheduler.add_task(
          dagsched_test::TaskId(i),
          [&seq, &s = start[i], &e = end[i]] {
            s = seq.fetch_add(1);
            e = seq.fetch_add(1);
          },
          deps);
    }
    const ResultSet results = scheduler.run();
    ASSERT_TRUE(results.all_succeeded());
    std::size_t violations = 0;
    for (std::size_t i = 0; i < kN; ++i) {
      for (std::size_t d : dag.deps[i]) {
        if (end[d] >= start[i]) {
          ++violations;
        }
      }
    }
    EXPECT_EQ(violations, 0u);
  }
}

}  // namespace
