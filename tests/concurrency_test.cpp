// Concurrency behaviour, at every worker count: the parallelism bound is reached and never exceeded, ready
// tasks start at once, dependencies and retries are waited for, bodies run only on worker threads, calls
// back into the scheduler from a body are refused, and destruction never hangs. Every wait inside a body
// is bounded, so a broken scheduler fails these tests instead of hanging them.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dagsched/dagsched.hpp"
#include "test_util.hpp"

namespace {

using dagsched::ResultSet;
using dagsched::Status;
using dagsched::TaskHandle;
using dagsched::TaskScheduler;
using dagsched_test::ConcurrencyTracker;
using dagsched_test::DescribeError;
using dagsched_test::Flag;
using dagsched_test::kGenerousTimeout;
using dagsched_test::Rendezvous;
using dagsched_test::Watchdog;
using namespace std::chrono_literals;

class Concurrency : public testing::TestWithParam<std::size_t> {
 protected:
  [[nodiscard]] std::size_t workers() const { return GetParam(); }
  std::atomic<std::uint64_t> m_seq{1};
};

// Fan-out of `width` independent tasks. Each holds its worker until the peak reaches the expected bound
// (bounded wait), then a little longer so that any excess over the bound would be observed.
void CheckPeak(std::size_t workers, std::size_t width, bool with_fan_in) {
  const std::size_t expected = std::min(workers, width);
  Watchdog watchdog("peak concurrency");
  TaskScheduler scheduler(workers);
  ConcurrencyTracker tracker;
  if (with_fan_in) {
    scheduler.add_task("source", [] { return 0; });
  }
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < width; ++i) {
    ids.push_back("fan" + std::to_string(i));
    auto body = [&tracker, expected] {
      tracker.enter();
      const bool reached = tracker.wait_for_peak(expected, kGenerousTimeout);
      std::this_thread::sleep_for(20ms);
      tracker.leave();
      return reached;
    };
    if (with_fan_in) {
      scheduler.add_task(ids.back(), body, {"source"});
    } else {
      scheduler.add_task(ids.back(), body);
    }
  }
  if (with_fan_in) {
    scheduler.add_task(
        "sink", [] { return 0; }, ids);
  }
  const ResultSet results = scheduler.run();
  EXPECT_TRUE(results.all_succeeded());
  EXPECT_EQ(tracker.peak(), expected) << "workers=" << workers << " width=" << width;
  for (const auto& id : ids) {
    EXPECT_TRUE(results.at(id).value<bool>()) << id << " timed out waiting for " << expected << " bodies in flight";
  }
}

TEST_P(Concurrency, PeakEqualsMinOfWorkersAndWidth) { CheckPeak(workers(), 16, false); }

TEST_P(Concurrency, PeakBoundedWhenWiderThanPool) {
  CheckPeak(workers(), std::min<std::size_t>(2 * workers() + 3, 80), true);
}

TEST_P(Concurrency, AllWorkersCanRunAtOnce) {
  // max_workers tasks that must all be in flight together to finish: a max_workers-party rendezvous.
  Watchdog watchdog("AllWorkersCanRunAtOnce");
  TaskScheduler scheduler(workers());
  Rendezvous everyone(workers());
  for (std::size_t i = 0; i < workers(); ++i) {
    scheduler.add_task("t" + std::to_string(i), [&everyone] {
      if (!everyone.arrive_and_wait_for(kGenerousTimeout)) {
        throw std::runtime_error("not every worker ran a body at the same time");
      }
    });
  }
  const ResultSet results = scheduler.run();
  for (const auto& [id, r] : results) {
    EXPECT_EQ(r.status, Status::success) << id << ": " << DescribeError(r.error);
  }
}

TEST_P(Concurrency, RendezvousOfTwoTasks) {
  if (workers() < 2) {
    GTEST_SKIP() << "two tasks cannot meet on one worker";
  }
  Watchdog watchdog("RendezvousOfTwoTasks");
  TaskScheduler scheduler(workers());
  Rendezvous meet(2);
  auto body = [&meet] {
    if (!meet.arrive_and_wait_for(kGenerousTimeout)) {
      throw std::runtime_error("the other task never arrived");
    }
    return true;
  };
  // Behind a shared parent too, so both become ready at the same moment.
  scheduler.add_task("parent", [] { return 0; });
  scheduler.add_task("left", body, {"parent"});
  scheduler.add_task("right", body, {"parent"});
  const ResultSet results = scheduler.run();
  EXPECT_EQ(results.at("left").status, Status::success) << DescribeError(results.at("left").error);
  EXPECT_EQ(results.at("right").status, Status::success) << DescribeError(results.at("right").error);
}

TEST_P(Concurrency, DependentsStartPromptly) {
  if (workers() < 2) {
    GTEST_SKIP() << "needs a worker besides the long task";
  }
  // A long task L holds one worker until the short chain a -> b -> c -> d has finished (bounded wait).
  // A scheduler that only schedules dependents in rounds, or after L, times out here.
  Watchdog watchdog("DependentsStartPromptly");
  TaskScheduler scheduler(workers());
  Flag chain_done;
  std::atomic<std::uint64_t> l_end{0};
  std::atomic<std::uint64_t> d_start{0};
  scheduler.add_task("L", [&] {
    const bool saw_chain = chain_done.wait_for(std::chrono::duration_cast<std::chrono::milliseconds>(kGenerousTimeout));
    l_end = m_seq.fetch_add(1);
    return saw_chain;
  });
  scheduler.add_task("a", [] { return 1; });
  scheduler.add_task("b", [] { return 2; }, {"a"});
  scheduler.add_task("c", [] { return 3; }, {"b"});
  scheduler.add_task("d",
                     [&] {
                       d_start = m_seq.fetch_add(1);
                       chain_done.set();
                       return 4;
                     },
                     {"c"});
  const auto started = std::chrono::steady_clock::now();
  const ResultSet results = scheduler.run();
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(results.all_succeeded());
  EXPECT_TRUE(results.at("L").value<bool>()) << "the chain did not finish while L was running";
  EXPECT_LT(d_start.load(), l_end.load());
  EXPECT_LT(elapsed, kGenerousTimeout);
}

TEST_P(Concurrency, NoTaskStartsBeforeItsDependenciesFinish) {
  Watchdog watchdog("NoTaskStartsBeforeItsDependenciesFinish");
  constexpr std::size_t kLayers = 6;
  constexpr std::size_t kPerLayer = 12;
  constexpr std::size_t kN = kLayers * kPerLayer;
  struct Span {
    std::uint64_t start = 0;
    std::uint64_t end = 0;
  };
  std::vector<Span> spans(kN);
  std::vector<std::vector<std::size_t>> deps(kN);
  std::mt19937_64 rng(1234);
  for (std::size_t i = kPerLayer; i < kN; ++i) {
    const std::size_t layer_start = (i / kPerLayer) * kPerLayer;
    for (int k = 0; k < 3; ++k) {
      deps[i].push_back(dagsched_test::Uniform<std::size_t>(rng, 0, layer_start - 1));
    }
    std::sort(deps[i].begin(), deps[i].end());
    deps[i].erase(std::unique(deps[i].begin(), deps[i].end()), deps[i].end());
  }
  TaskScheduler scheduler(workers());
  for (std::size_t i = 0; i < kN; ++i) {
    std::vector<std::string> dep_ids;
    for (std::size_t d : deps[i]) {
      dep_ids.push_back(dagsched_test::TaskId(d));
    }
    scheduler.add_task(
        dagsched_test::TaskId(i),
        [this, &span = spans[i], i] {
          span.start = m_seq.fetch_add(1);
          if (i % 5 == 0) {
            std::this_thread::sleep_for(1ms);
          } else {
            std::this_thread::yield();
          }
          span.end = m_seq.fetch_add(1);
        },
        dep_ids);
  }
  const ResultSet results = scheduler.run();
  EXPECT_TRUE(results.all_succeeded());
  for (std::size_t i = 0; i < kN; ++i) {
    for (std::size_t d : deps[i]) {
      EXPECT_LT(spans[d].end, spans[i].start) << "t" << i << " started before its dependency t" << d << " ended";
    }
  }
}

TEST_P(Concurrency, ChildWaitsForParentsFinalRetry) {
  Watchdog watchdog("ChildWaitsForParentsFinalRetry");
  TaskScheduler scheduler(workers());
  std::atomic<int> parent_calls{0};
  std::atomic<std::uint64_t> parent_last_end{0};
  std::atomic<std::uint64_t> child_start{0};
  std::atomic<int> doomed_child_calls{0};
  scheduler.add_task(
      "parent",
      [&] {
        const int attempt = parent_calls.fetch_add(1) + 1;
        std::this_thread::sleep_for(5ms);  // widen the window a premature child would fall into
        parent_last_end = m_seq.fetch_add(1);
        if (attempt < 4) {
          throw std::runtime_error("attempt " + std::to_string(attempt));
        }
        return attempt;
      },
      {}, 3);
  scheduler.add_task("child",
                     [&] {
                       child_start = m_seq.fetch_add(1);
                       return 0;
                     },
                     {"parent"});
  scheduler.add_task(
      "doomed", []() -> int { throw std::runtime_error("always"); }, {}, 3);
  scheduler.add_task("doomed_child", [&doomed_child_calls] { return doomed_child_calls.fetch_add(1); }, {"doomed"});
  scheduler.add_task("sibling", [] { return 1; });

  const ResultSet results = scheduler.run();
  EXPECT_EQ(results.at("parent").status, Status::success);
  EXPECT_EQ(results.at("parent").attempts, 4);
  EXPECT_EQ(results.at("parent").value<int>(), 4);
  EXPECT_EQ(parent_calls.load(), 4);
  EXPECT_EQ(results.at("child").status, Status::success);
  EXPECT_GT(child_start.load(), parent_last_end.load()) << "child started before the parent's last attempt ended";
  EXPECT_EQ(results.at("doomed").status, Status::failed);
  EXPECT_EQ(results.at("doomed").attempts, 4);
  EXPECT_EQ(results.at("doomed_child").status, Status::skipped);
  EXPECT_EQ(doomed_child_calls.load(), 0);
  EXPECT_EQ(results.at("sibling").status, Status::success);
}

TEST_P(Concurrency, CallCountEqualsAttempts) {
  Watchdog watchdog("CallCountEqualsAttempts");
  TaskScheduler scheduler(workers());
  constexpr int kMaxRetries = 4;
  constexpr int kMaxFailures = 6;
  std::vector<std::atomic<int>> calls(static_cast<std::size_t>((kMaxRetries + 1) * (kMaxFailures + 1)));
  for (int r = 0; r <= kMaxRetries; ++r) {
    for (int f = 0; f <= kMaxFailures; ++f) {
      const auto slot = static_cast<std::size_t>(r * (kMaxFailures + 1) + f);
      scheduler.add_task(
          "r" + std::to_string(r) + "f" + std::to_string(f),
          [&counter = calls[slot], f] {
            if (counter.fetch_add(1) < f) {
              throw std::runtime_error("fail");
            }
            return f;
          },
          {}, r);
    }
  }
  const ResultSet results = scheduler.run();
  for (int r = 0; r <= kMaxRetries; ++r) {
    for (int f = 0; f <= kMaxFailures; ++f) {
      const std::string id = "r" + std::to_string(r) + "f" + std::to_string(f);
      const auto& result = results.at(id);
      const int count = calls[static_cast<std::size_t>(r * (kMaxFailures + 1) + f)].load();
      EXPECT_EQ(count, result.attempts) << id;
      if (f <= r) {
        EXPECT_EQ(result.status, Status::success) << id;
        EXPECT_EQ(result.attempts, f + 1) << id;
      } else {
        EXPECT_EQ(result.status, Status::failed) << id;
        EXPECT_EQ(result.attempts, r + 1) << id;
      }
    }
  }
}

TEST_P(Concurrency, BodiesNeverRunOnTheCallingThread) {
  Watchdog watchdog("BodiesNeverRunOnTheCallingThread");
  TaskScheduler scheduler(workers());
  std::mutex mutex;
  std::set<std::thread::id> seen;
  ConcurrencyTracker tracker;
  const std::size_t width = 3 * workers();
  for (std::size_t i = 0; i < width; ++i) {
    scheduler.add_task(
        "t" + std::to_string(i),
        [&, i] {
          {
            std::lock_guard<std::mutex> lock(mutex);
            seen.insert(std::this_thread::get_id());
          }
          if (i % 3 == 0) {  // some bodies linger so that several workers get involved
            std::this_thread::sleep_for(1ms);
          }
          if (i % 4 == 0) {
            throw std::runtime_error("retried on a worker too");
          }
        },
        {}, i % 2 == 0 ? 1 : 0);
  }
  const ResultSet results = scheduler.run();
  EXPECT_EQ(results.size(), width);
  EXPECT_EQ(seen.count(std::this_thread::get_id()), 0u) << "a body ran on the thread that called run()";
  EXPECT_LE(seen.size(), workers()) << "more distinct threads ran bodies than max_workers";
  // A second run uses worker threads too.
  const ResultSet again = scheduler.run();
  EXPECT_EQ(seen.count(std::this_thread::get_id()), 0u);
  EXPECT_EQ(again.count(Status::success), results.count(Status::success));
}

TEST_P(Concurrency, IndependentBranchesSurviveFailures) {
  Watchdog watchdog("IndependentBranchesSurviveFailures");
  TaskScheduler scheduler(workers());
  // Branch 1 fails at its root; branch 2 is long and healthy; branch 3 joins both.
  scheduler.add_task(
      "bad", []() -> int { throw std::runtime_error("bad"); }, {}, 2);
  TaskHandle prev = scheduler.add_task("good0", [] { return 0; });
  for (int i = 1; i < 50; ++i) {
    prev = scheduler.add_task("good" + std::to_string(i), [i] { return i; }, {prev});
  }
  scheduler.add_task("bad_child", [] { return 1; }, {"bad"});
  scheduler.add_task("join", [] { return 1; }, {"bad_child", "good49"});
  scheduler.add_task("good_child", [] { return 1; }, {"good49"});
  const ResultSet results = scheduler.run();
  EXPECT_EQ(results.at("bad").status, Status::failed);
  EXPECT_EQ(results.at("bad_child").status, Status::skipped);
  EXPECT_EQ(results.at("join").status, Status::skipped);
  EXPECT_EQ(results.at("good49").value<int>(), 49);
  EXPECT_EQ(results.at("good_child").status, Status::success);
  EXPECT_EQ(results.count(Status::success), 51u);
}

TEST_P(Concurrency, AddTaskFromABodyIsALogicError) {
  Watchdog watchdog("AddTaskFromABodyIsALogicError");
  TaskScheduler scheduler(workers());
  scheduler.add_task("adder", [&scheduler] {
    scheduler.add_task("inner", [] { return 0; });
    return 1;
  });
  scheduler.add_task("catcher", [&scheduler] {
    try {
      scheduler.add_task("inner2", [] { return 0; });
    } catch (const std::logic_error&) {
      return true;
    }
    return false;
  });
  scheduler.add_task("after", [] { return 2; }, {"adder"});
  scheduler.add_task("ok", [] { return 3; });
  for (int round = 0; round < 2; ++round) {
    const ResultSet results = scheduler.run();
    const auto& adder = results.at("adder");
    EXPECT_EQ(adder.status, Status::failed);
    EXPECT_TRUE(dagsched_test::ErrorIs<std::logic_error>(adder.error)) << DescribeError(adder.error);
    EXPECT_EQ(results.at("after").status, Status::skipped);
    EXPECT_EQ(results.at("catcher").status, Status::success);
    EXPECT_TRUE(results.at("catcher").value<bool>());
    EXPECT_EQ(results.at("ok").value<int>(), 3);
    EXPECT_EQ(scheduler.size(), 4u);
    EXPECT_FALSE(scheduler.contains("inner"));
    EXPECT_FALSE(scheduler.contains("inner2"));
  }
}

TEST_P(Concurrency, RunFromABodyIsALogicError) {
  Watchdog watchdog("RunFromABodyIsALogicError");
  TaskScheduler scheduler(workers());
  std::atomic<int> inner_calls{0};
  scheduler.add_task(
      "reentrant",
      [&scheduler] {
        (void)scheduler.run();
        return 1;
      },
      {}, 1);
  scheduler.add_task("counted", [&inner_calls] { return inner_calls.fetch_add(1); });
  const ResultSet results = scheduler.run();
  const auto& r = results.at("reentrant");
  EXPECT_EQ(r.status, Status::failed);
  EXPECT_EQ(r.attempts, 2);
  EXPECT_TRUE(dagsched_test::ErrorIs<std::logic_error>(r.error)) << DescribeError(r.error);
  EXPECT_EQ(inner_calls.load(), 1) << "the nested run() executed tasks";
  // Still usable afterwards.
  EXPECT_EQ(scheduler.run().at("counted").status, Status::success);
  EXPECT_EQ(inner_calls.load(), 2);
}

TEST_P(Concurrency, DestructionNeverHangs) {
  Watchdog watchdog("DestructionNeverHangs");
  for (int i = 0; i < 10; ++i) {
    TaskScheduler never_run(workers());
  }
  for (int i = 0; i < 10; ++i) {
    TaskScheduler scheduler(workers());
    scheduler.add_task("a", [] { return 1; });
    scheduler.add_task(
        "b", []() -> int { throw std::runtime_error("b"); }, {"a"}, 1);
    scheduler.add_task("c", [] { return 1; }, {"b"});
    const ResultSet results = scheduler.run();
    EXPECT_EQ(results.count(Status::skipped), 1u);
  }  // destroyed right after a run, results outlive it
  {
    TaskScheduler with_tasks_never_run(workers());
    with_tasks_never_run.add_task("a", [] { return 1; });
  }
}

TEST_P(Concurrency, WorkersParkedWhenARunEndsTakePartInTheNextAndLetTheSchedulerGo) {
  // A run ends when its last task does, without waking the workers parked in it. In the "park" phase
  // one task sleeps while the other workers run out of work and park; the run then ends with them
  // parked. The next run, a rendezvous of one task per worker, needs every one of them back; and a
  // scheduler destroyed after a "park" run must still be able to join them.
  if (workers() < 2) {
    GTEST_SKIP() << "needs workers that run out of work";
  }
  Watchdog watchdog("WorkersParkedWhenARunEndsTakePartInTheNextAndLetTheSchedulerGo");
  for (int round = 0; round < 3; ++round) {
    TaskScheduler scheduler(workers());
    std::atomic<bool> park{true};
    auto everyone = std::make_unique<Rendezvous>(workers());
    for (std::size_t i = 0; i < workers(); ++i) {
      scheduler.add_task("t" + std::to_string(i), [&, i] {
        if (park.load()) {
          if (i == 0) {
            std::this_thread::sleep_for(30ms);
          }
        } else if (!everyone->arrive_and_wait_for(5000ms)) {
          throw std::runtime_error("not every worker came back for this run");
        }
      });
    }
    for (int run = 0; run < 2; ++run) {
      park = true;
      ASSERT_TRUE(scheduler.run().all_succeeded());
      park = false;
      everyone = std::make_unique<Rendezvous>(workers());
      const ResultSet results = scheduler.run();
      for (const auto& [id, r] : results) {
        EXPECT_EQ(r.status, Status::success) << "run " << run << ", " << id << ": " << DescribeError(r.error);
      }
    }
    park = true;
    ASSERT_TRUE(scheduler.run().all_succeeded());
  }  // destroyed with workers parked
}

TEST_P(Concurrency, BackToBackRunsOfOneSchedulerWhileWorkersParkAndWake) {
  // Hundreds of short runs of one scheduler, each ending with some workers parked (a few slow tasks
  // among instant ones), so that late workers of one run meet the start of the next. Runs are waited
  // for by run(), by polling wait_for() and by polling done(); every run must report every task.
  Watchdog watchdog("BackToBackRunsOfOneSchedulerWhileWorkersParkAndWake");
  TaskScheduler scheduler(workers());
  const std::size_t width = 2 * workers() + 3;
  std::atomic<std::size_t> calls{0};
  const TaskHandle root = scheduler.add_task("root", [&calls] { calls.fetch_add(1); });
  std::vector<TaskHandle> middle;
  for (std::size_t i = 0; i < width; ++i) {
    middle.push_back(scheduler.add_task("m" + std::to_string(i),
                                        [&calls, i] {
                                          calls.fetch_add(1);
                                          if (i % 5 == 0) {
                                            std::this_thread::sleep_for(std::chrono::microseconds(200));
                                          }
                                        },
                                        {root}));
  }
  scheduler.add_task(
      "join", [&calls] { calls.fetch_add(1); }, middle);
  const std::size_t per_run = width + 2;
  constexpr int kRuns = 300;
  for (int run = 0; run < kRuns; ++run) {
    ResultSet results;
    if (run % 3 == 0) {
      results = scheduler.run();
    } else {
      dagsched::RunHandle handle = scheduler.start();
      while (run % 3 == 1 ? !handle.wait_for(std::chrono::microseconds(50)) : !handle.done()) {
        std::this_thread::yield();
      }
      results = handle.wait();
    }
    ASSERT_EQ(results.count(Status::success), per_run) << "run " << run;
    ASSERT_EQ(calls.load(), per_run * static_cast<std::size_t>(run + 1)) << "run " << run;
  }
}

TEST(ConcurrencyTwoWorkers, LongTaskDoesNotDelayShortChain) {
  // The scenario with real durations: 2 workers, L sleeps ~300 ms, a -> b must both finish long
  // before L does.
  Watchdog watchdog("LongTaskDoesNotDelayShortChain");
  TaskScheduler scheduler(2);
  using Clock = std::chrono::steady_clock;
  Clock::time_point l_end;
  Clock::time_point b_start;
  scheduler.add_task("L", [&l_end] {
    std::this_thread::sleep_for(300ms);
    l_end = Clock::now();
  });
  scheduler.add_task("a", [] { return 1; });
  scheduler.add_task("b", [&b_start] { b_start = Clock::now(); }, {"a"});
  const ResultSet results = scheduler.run();
  ASSERT_TRUE(results.all_succeeded());
  EXPECT_GT(l_end - b_start, 150ms) << "b started only "
                                    << std::chrono::duration_cast<std::chrono::milliseconds>(l_end - b_start).count()
                                    << " ms before L ended";
}

INSTANTIATE_TEST_SUITE_P(Workers, Concurrency, testing::ValuesIn(dagsched_test::kWorkerCounts),
                         dagsched_test::WorkerCountName);

}  // namespace
