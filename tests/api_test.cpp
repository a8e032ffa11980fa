// The public API and its edge cases: Status, TaskResult, the constructor, add_task's argument forms and
// errors, return values of every kind, retries, ResultSet, handles and repeated runs.
#include <gtest/gtest.h>

#include <any>
#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dagsched/dagsched.hpp"
#include "test_util.hpp"

namespace {

using dagsched::DuplicateTaskError;
using dagsched::ResultSet;
using dagsched::SchedulerOptions;
using dagsched::Status;
using dagsched::TaskHandle;
using dagsched::TaskResult;
using dagsched::TaskScheduler;
using dagsched_test::DescribeError;
using dagsched_test::ErrorIs;
using namespace std::string_literals;

// Expects `fn` to throw an exception of type E whose what() contains `needle`.
template <class E, class Fn>
void ExpectThrowsNaming(Fn&& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception naming '" << needle << "'";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "what(): " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

TEST(StatusTest, ToStringAndStream) {
  EXPECT_EQ(dagsched::to_string(Status::success), "success");
  EXPECT_EQ(dagsched::to_string(Status::failed), "failed");
  EXPECT_EQ(dagsched::to_string(Status::skipped), "skipped");
  std::ostringstream os;
  os << Status::success << ' ' << Status::failed << ' ' << Status::skipped;
  EXPECT_EQ(os.str(), "success failed skipped");
}

TEST(TaskResultTest, DefaultAndValueAccess) {
  const TaskResult skipped;
  EXPECT_EQ(skipped.status, Status::skipped);
  EXPECT_EQ(skipped.attempts, 0);
  EXPECT_FALSE(skipped.ok());
  EXPECT_FALSE(skipped.error);
  EXPECT_THROW((void)skipped.value<int>(), std::bad_any_cast);

  TaskResult ok;
  ok.status = Status::success;
  ok.result = 7;
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.value<int>(), 7);
  EXPECT_THROW((void)ok.value<long>(), std::bad_any_cast);
}

TEST(ConstructorTest, WorkerCounts) {
  EXPECT_THROW(TaskScheduler{0}, std::invalid_argument);
  EXPECT_THROW(TaskScheduler{SchedulerOptions{0}}, std::invalid_argument);
  EXPECT_EQ(TaskScheduler().max_workers(), 4u);
  EXPECT_EQ(TaskScheduler(1).max_workers(), 1u);
  EXPECT_EQ(TaskScheduler(64).max_workers(), 64u);
  EXPECT_EQ(TaskScheduler(SchedulerOptions{3}).max_workers(), 3u);
  TaskScheduler fresh;
  EXPECT_EQ(fresh.size(), 0u);
  EXPECT_FALSE(fresh.contains("A"));
}

TEST(EdgeCases, EmptyDag) {
  TaskScheduler scheduler;
  const ResultSet results = scheduler.run();
  EXPECT_EQ(results.size(), 0u);
  EXPECT_TRUE(results.empty());
  EXPECT_TRUE(results.begin() == results.end());
  EXPECT_FALSE(results.contains("A"));
  EXPECT_THROW((void)results.at("A"), std::out_of_range);
  EXPECT_EQ(scheduler.run().size(), 0u);  // again
  const ResultSet default_constructed;
  EXPECT_EQ(default_constructed.size(), 0u);
}

TEST(EdgeCases, SingleTask) {
  TaskScheduler scheduler(2);
  std::atomic<int> calls{0};
  scheduler.add_task("only", [&calls] {
    calls.fetch_add(1);
    return 42;
  });
  EXPECT_EQ(scheduler.size(), 1u);
  EXPECT_TRUE(scheduler.contains("only"));
  const ResultSet results = scheduler.run();
  ASSERT_EQ(results.size(), 1u);
  const TaskResult& r = results.at("only");
  EXPECT_EQ(r.status, Status::success);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_FALSE(r.error);
  EXPECT_EQ(r.value<int>(), 42);
  EXPECT_EQ(calls.load(), 1);
}

TEST(EdgeCases, VoidCallableHasEmptyResult) {
  TaskScheduler scheduler;
  std::atomic<int> calls{0};
  scheduler.add_task("void", [&calls] { calls.fetch_add(1); });
  // A void body that needed retries: the result is still empty and the error null.
  scheduler.add_task(
      "void_retry",
      [&calls, n = 0]() mutable {
        calls.fetch_add(1);
        if (++n < 3) {
          throw std::runtime_error("not yet");
        }
      },
      {}, 2);
  const ResultSet results = scheduler.run();
  for (const char* id : {"void", "void_retry"}) {
    const TaskResult& r = results.at(id);
    EXPECT_EQ(r.status, Status::success) << id;
    EXPECT_FALSE(r.result.has_value()) << id;
    EXPECT_FALSE(r.error) << id << ": " << DescribeError(r.error);
  }
  EXPECT_EQ(results.at("void").attempts, 1);
  EXPECT_EQ(results.at("void_retry").attempts, 3);
  EXPECT_EQ(calls.load(), 4);
}

TEST(EdgeCases, MoveOnlyCallables) {
  TaskScheduler scheduler(2);
  auto owned = std::make_unique<int>(5);
  scheduler.add_task("unique", [p = std::move(owned)] { return *p * 2; });
  // Bigger than any small-buffer optimisation, move-only, stateful across retries.
  auto big = std::make_unique<std::vector<int>>(std::vector<int>{1, 2, 3});
  scheduler.add_task(
      "stateful",
      [v = std::move(big), pad = std::string(100, 'x'), tries = 0]() mutable {
        v->push_back(++tries);
        if (tries < 2) {
          throw std::runtime_error("first try fails");
        }
        return v->size() + pad.size();
      },
      {"unique"}, 1);
  const ResultSet results = scheduler.run();
  EXPECT_EQ(results.at("unique").value<int>(), 10);
  EXPECT_EQ(results.at("stateful").status, Status::success);
  EXPECT_EQ(results.at("stateful").attempts, 2);
  EXPECT_EQ(results.at("stateful").value<std::size_t>(), 105u);  // {1,2,3,1,2} + 100
}

// Knows whether it was moved by its move constructor: a byte copy leaves `self` at the old address.
struct SelfAware {
  SelfAware() noexcept : self(this) {}
  SelfAware(SelfAware&& /*other*/) noexcept : self(this) {}
  SelfAware(const SelfAware& /*other*/) noexcept : self(this) {}
  SelfAware& operator=(const SelfAware&) = delete;
  ~SelfAware() = default;
  [[nodiscard]] bool intact() const noexcept { return self == this; }
  const SelfAware* self;
};

// Bodies are moved into the graph (twice: into add_task's TaskFn, then into the node), inline up to 16
// bytes and on the heap beyond. Each capture exists once while the scheduler holds the body, was moved by
// its own move constructor, and is released with the scheduler.
TEST(EdgeCases, ClosuresAreKeptOnceAndReleasedWithTheScheduler) {
  auto token = std::make_shared<int>(7);
  int plain = 1;
  {
    TaskScheduler scheduler(2);
    scheduler.add_task("trivial", [&plain, k = 2] { return plain + k; });  // inline
    scheduler.add_task("shared", [token] { return *token; });              // inline
    scheduler.add_task("large", [token, pad = std::array<long, 8>{}] { return *token + static_cast<int>(pad[0]); });
    scheduler.add_task("large_trivial", [pad = std::array<long, 8>{{5}}] { return static_cast<int>(pad[0]); });
    scheduler.add_task("self_aware", [s = SelfAware{}] { return s.intact(); });  // not trivially copyable
    EXPECT_EQ(token.use_count(), 3);  // the two captures, no copies left behind by the moves
    for (int round = 0; round < 2; ++round) {
      const ResultSet results = scheduler.run();
      EXPECT_EQ(results.at("trivial").value<int>(), 3);
      EXPECT_EQ(results.at("shared").value<int>(), 7);
      EXPECT_EQ(results.at("large").value<int>(), 7);
      EXPECT_EQ(results.at("large_trivial").value<int>(), 5);
      EXPECT_TRUE(results.at("self_aware").value<bool>()) << "moved as bytes, not by its move constructor";
      EXPECT_EQ(token.use_count(), 3);
    }
  }
  EXPECT_EQ(token.use_count(), 1);
}

// Where no body's destruction does anything, the scheduler skips the pass that would destroy them: a
// body that is trivially destructible but too large to be stored inline must not be skipped with them
// (LeakSanitizer, in the ASan build, would report its block), and one that owns something turns the
// pass back on.
TEST(EdgeCases, TrivialBodiesAreSkippedAtTeardownButNotHeapStoredOnes) {
  int plain = 1;
  {
    TaskScheduler scheduler(2);
    scheduler.add_task("trivial", [&plain] { return plain; });
    scheduler.add_task("large_trivial", [pad = std::array<long, 8>{{5}}] { return static_cast<int>(pad[0]); });
    EXPECT_EQ(scheduler.run().at("large_trivial").value<int>(), 5);
  }
  auto token = std::make_shared<int>(7);
  {
    TaskScheduler scheduler(2);
    for (int i = 0; i < 1000; ++i) {
      scheduler.add_task("trivial" + std::to_string(i), [&plain, i] { return plain + i; });
    }
    scheduler.add_task("owner", [token] { return *token; });  // the last one added
    EXPECT_EQ(scheduler.run().at("owner").value<int>(), 7);
    EXPECT_EQ(token.use_count(), 2);
  }
  EXPECT_EQ(token.use_count(), 1) << "the one owning body among trivial ones was not destroyed";
}

// Ids up to a std::string's inline capacity need no teardown, and a table of only such ids skips the pass
// that destroys them; a long id (on the heap) must still be freed, in the scheduler's table and in the
// copy a ResultSet keeps when the scheduler changes after handing it out (LeakSanitizer, in the ASan
// build, would report a missed one).
TEST(EdgeCases, LongIdsAmongShortOnesAreFreed) {
  const std::string long_id(64, 'x');
  const std::string longer_id(80, 'y');
  ResultSet kept;
  {
    TaskScheduler scheduler(2);
    for (int i = 0; i < 100; ++i) {
      scheduler.add_task("t" + std::to_string(i), [i] { return i; });
    }
    scheduler.add_task(long_id, [] { return 1; }, {"t0"});
    kept = scheduler.run();
    scheduler.add_task(longer_id, [] { return 2; }, {long_id});  // copies the table `kept` shares
    const ResultSet again = scheduler.run();
    EXPECT_EQ(again.at(longer_id).value<int>(), 2);
    EXPECT_EQ(again.at(long_id).value<int>(), 1);
  }
  EXPECT_EQ(kept.at(long_id).value<int>(), 1);
  EXPECT_EQ(kept.size(), 101u);
  EXPECT_FALSE(kept.contains(longer_id));
  kept = ResultSet();
  // The freed graphs' blocks go to a process-wide cache, where a string left in them would still be
  // reachable: a graph of the same size takes them back and writes over them.
  TaskScheduler reuse(2);
  for (int i = 0; i < 200; ++i) {
    reuse.add_task(
        "r" + std::to_string(i), [i] { return i; },
        i == 0 ? std::vector<std::string>{} : std::vector<std::string>{"r" + std::to_string(i - 1)});
  }
  EXPECT_TRUE(reuse.run().all_succeeded());
}

// Workers call bodies through the frozen graph's array of invokers, beside the nodes that hold the
// closures: each task must get its own invoker and its own closure, whatever kind the closure is, along
// an in-order chain (which steps through both arrays together) and through fan-ins, on every run.
TEST(EdgeCases, EveryKindOfBodyRunsItsOwnClosure) {
  dagsched_test::Watchdog watchdog("EdgeCases.EveryKindOfBodyRunsItsOwnClosure");
  constexpr std::size_t n = 600;
  std::vector<std::atomic<int>> ran(n);
  static std::atomic<int> anonymous{0};  // capture-less bodies cannot say who they are: they are counted
  std::atomic<bool> fail{false};
  TaskScheduler scheduler(2);
  std::vector<TaskHandle> h;
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<TaskHandle> deps;
    if (i > 0) {
      deps.push_back(h[i - 1]);  // a chain added in order...
    }
    if (i % 50 == 49) {
      deps.push_back(h[i / 2]);  // ...broken now and then by a fan-in
    }
    const std::string id = "t" + std::to_string(i);
    switch (i % 6) {
      case 0:
        h.push_back(scheduler.add_task(
            id, [&ran, i] { ++ran[i]; }, deps));  // inline, trivially copyable
        break;
      case 1:
        h.push_back(scheduler.add_task(
            id, [] { ++anonymous; }, deps));  // empty
        break;
      case 2:  // too large to be stored inline
        h.push_back(scheduler.add_task(
            id, [&ran, pad = std::array<std::size_t, 6>{{i, i, i, i, i, i}}] { ++ran[pad[5]]; }, deps));
        break;
      case 3:  // returns a value
        h.push_back(scheduler.add_task(
            id,
            [&ran, i] {
              ++ran[i];
              return i;
            },
            deps));
        break;
      case 4:  // owns something (not trivially copyable)
        h.push_back(scheduler.add_task(
            id,
            [&ran, &fail, i, owned = std::make_shared<std::size_t>(i)] {
              if (*owned == 100 && fail.load()) {
                throw std::runtime_error("injected");
              }
              ++ran[*owned];
            },
            deps));
        break;
      default:  // takes a TaskContext (the run's slow path)
        h.push_back(scheduler.add_task(
            id, [&ran, i](dagsched::TaskContext& ctx) { ++ran[ctx.id() == "t" + std::to_string(i) ? i : 0]; }, deps));
        break;
    }
  }
  // Depth-first runs take the chain loop for certain; the default order does in its depth-first spells.
  dagsched::RunOptions depth_first;
  depth_first.order = dagsched::ReadyOrder::depth_first;
  for (int run = 0; run < 6; ++run) {
    fail = run % 3 == 1;  // the middle run of three fails t100: everything after it in the chain is skipped
    for (auto& r : ran) {
      r = 0;
    }
    anonymous = 0;
    const ResultSet results = run < 3 ? scheduler.run() : scheduler.run(depth_first);
    int expected_anonymous = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const bool skipped = fail && i > 100;
      const bool failed = fail && i == 100;
      const TaskResult& r = results.at(h[i]);
      ASSERT_EQ(r.status, skipped  ? Status::skipped
                          : failed ? Status::failed
                                   : Status::success)
          << "run " << run << ", task " << i;
      if (i % 6 == 1) {
        expected_anonymous += skipped ? 0 : 1;
        continue;
      }
      EXPECT_EQ(ran[i].load(), skipped || failed ? 0 : 1) << "run " << run << ", task " << i;
      if (i % 6 == 3 && !skipped) {
        EXPECT_EQ(r.value<std::size_t>(), i);
      }
    }
    EXPECT_EQ(anonymous.load(), expected_anonymous) << "run " << run;
  }
}

// A task with several dependencies waits on a counter that the parent readying it resets for the next
// run. Over runs that alternate between success and a failure upstream (which poisons the counters it
// reaches), every fan-in must start exactly when its dependencies are done, every time.
TEST(EdgeCases, FanInCountersStartOverOnEveryRun) {
  dagsched_test::Watchdog watchdog("EdgeCases.FanInCountersStartOverOnEveryRun");
  std::atomic<bool> fail{false};
  std::atomic<int> joins{0};
  TaskScheduler scheduler(2);
  std::vector<TaskHandle> sources;
  for (int i = 0; i < 70; ++i) {
    sources.push_back(scheduler.add_task("s" + std::to_string(i), [&fail, i] {
      if (i == 3 && fail.load()) {
        throw std::runtime_error("injected");
      }
    }));
  }
  const TaskHandle two = scheduler.add_task("two", [&joins] { ++joins; }, {sources[0], sources[1]});
  const TaskHandle three = scheduler.add_task("three", [&joins] { ++joins; }, {sources[2], sources[3], sources[4]});
  const TaskHandle all = scheduler.add_task(
      "all", [&joins] { ++joins; }, sources);
  const TaskHandle last = scheduler.add_task("last", [&joins] { ++joins; }, {two, three, all});
  for (int run = 0; run < 6; ++run) {
    fail = run % 2 == 1;
    joins = 0;
    const ResultSet results = scheduler.run();
    EXPECT_EQ(results.at(two).status, Status::success) << "run " << run;
    const Status poisoned = fail ? Status::skipped : Status::success;
    EXPECT_EQ(results.at(three).status, poisoned) << "run " << run;
    EXPECT_EQ(results.at(all).status, poisoned) << "run " << run;
    EXPECT_EQ(results.at(last).status, poisoned) << "run " << run;
    EXPECT_EQ(joins.load(), fail ? 1 : 4) << "run " << run;
  }
}

// Counts its live instances, to see that a result slot released what it held.
struct Tracked : std::runtime_error {
  static inline std::atomic<int> live{0};
  Tracked() : std::runtime_error("tracked") { ++live; }
  Tracked(const Tracked& other) : std::runtime_error(other) { ++live; }
  Tracked& operator=(const Tracked&) = delete;
  ~Tracked() override { --live; }
};

// A run of void bodies that all succeed leaves its result slots empty, and the scheduler then skips the
// pass that would destroy them. Any run that leaves something in a slot must not be skipped: an error
// (a failure after a clean run), a skipped task's causes, or a returned value.
TEST(EdgeCases, ResultSlotsAreReleasedUnlessEveryRunLeftThemEmpty) {
  std::atomic<int> calls{0};  // the void bodies run on both workers at once
  {
    TaskScheduler scheduler(2);
    std::atomic<int> run{0};
    for (int i = 0; i < 50; ++i) {
      scheduler.add_task("v" + std::to_string(i), [&calls] { calls.fetch_add(1); });
    }
    scheduler.add_task("flaky", [&run] {
      if (run.load() == 1) {
        throw Tracked();
      }
    });
    scheduler.add_task("after_flaky", [] {}, {"flaky"});
    EXPECT_TRUE(scheduler.run().all_succeeded());  // every slot empty
    run = 1;
    const ResultSet failed = scheduler.run();
    EXPECT_EQ(failed.at("flaky").status, Status::failed);
    EXPECT_EQ(failed.at("after_flaky").status, Status::skipped);
    const int one_error = Tracked::live.load();  // 1, or more where the runtime copies exceptions
    EXPECT_GE(one_error, 1);
    run = 2;
    EXPECT_TRUE(scheduler.run().all_succeeded());  // another block (`failed` holds the last one)
    EXPECT_EQ(Tracked::live.load(), one_error);
    run = 1;
    EXPECT_EQ(scheduler.run().at("flaky").status, Status::failed);  // the last run leaves an error
    EXPECT_EQ(Tracked::live.load(), 2 * one_error);
  }
  EXPECT_EQ(Tracked::live.load(), 0) << "an error in a result slot outlived the scheduler";
  {
    TaskScheduler scheduler(2);
    scheduler.add_task("void", [&calls] { calls.fetch_add(1); });
    scheduler.add_task("value", [] { return std::make_shared<Tracked>(); });
    EXPECT_TRUE(scheduler.run().all_succeeded());
    EXPECT_EQ(Tracked::live.load(), 1);
  }
  EXPECT_EQ(Tracked::live.load(), 0) << "a returned value outlived the scheduler";
  EXPECT_EQ(calls.load(), 4 * 50 + 1);
}

struct Point {
  int x;
  int y;
};

TEST(EdgeCases, ReturnTypesAreStored) {
  TaskScheduler scheduler;
  scheduler.add_task("int", [] { return 1; });
  scheduler.add_task("double", [] { return 2.5; });
  scheduler.add_task("string", [] { return "s"s; });
  scheduler.add_task("c_string", [] { return "literal"; });
  scheduler.add_task("vector", [] { return std::vector<int>{1, 2}; });
  scheduler.add_task("struct", [] { return Point{3, 4}; });
  scheduler.add_task("shared", [] { return std::make_shared<int>(9); });
  const ResultSet results = scheduler.run();
  EXPECT_EQ(results.at("int").value<int>(), 1);
  EXPECT_EQ(results.at("double").value<double>(), 2.5);
  EXPECT_EQ(results.at("string").value<std::string>(), "s");
  EXPECT_STREQ(results.at("c_string").value<const char*>(), "literal");
  EXPECT_EQ(results.at("vector").value<std::vector<int>>(), (std::vector<int>{1, 2}));
  EXPECT_EQ(results.at("struct").value<Point>().y, 4);
  EXPECT_EQ(*results.at("shared").value<std::shared_ptr<int>>(), 9);
}

TEST(EdgeCases, FalsyReturnValuesAreSuccess) {
  TaskScheduler scheduler;
  scheduler.add_task("zero", [] { return 0; });
  scheduler.add_task("false", [] { return false; });
  scheduler.add_task("empty_string", [] { return std::string(); });
  scheduler.add_task("null", [] { return nullptr; });
  scheduler.add_task("after", [] { return 1; }, {"zero", "false", "empty_string", "null"});
  const ResultSet results = scheduler.run();
  for (const auto& [id, r] : results) {
    EXPECT_EQ(r.status, Status::success) << id;
    EXPECT_EQ(r.attempts, 1) << id;
    EXPECT_TRUE(r.result.has_value()) << id;
  }
  EXPECT_EQ(results.at("zero").value<int>(), 0);
  EXPECT_FALSE(results.at("false").value<bool>());
  EXPECT_EQ(results.at("empty_string").value<std::string>(), "");
  EXPECT_EQ(results.at("null").result.type(), typeid(std::nullptr_t));
  EXPECT_EQ(results.at("after").status, Status::success);
}

TEST(EdgeCases, AllTasksFail) {
  TaskScheduler scheduler(3);
  std::atomic<int> calls{0};
  for (int i = 0; i < 6; ++i) {
    scheduler.add_task(
        "f" + std::to_string(i),
        [&calls, i]() -> int {
          calls.fetch_add(1);
          throw std::runtime_error("fail " + std::to_string(i));
        },
        {}, i % 3);
  }
  const ResultSet results = scheduler.run();
  EXPECT_EQ(results.count(Status::failed), 6u);
  for (int i = 0; i < 6; ++i) {
    const TaskResult& r = results.at("f" + std::to_string(i));
    EXPECT_EQ(r.status, Status::failed);
    EXPECT_EQ(r.attempts, i % 3 + 1);
    EXPECT_FALSE(r.result.has_value());
    EXPECT_EQ(DescribeError(r.error), "fail " + std::to_string(i));
  }
  EXPECT_EQ(calls.load(), 0 + 1 + 2 + 3 + 1 + 2 + 3);
}

struct NotAnException {
  int code;
};

TEST(EdgeCases, NonStdExceptionsAreCaptured) {
  TaskScheduler scheduler(2);
  scheduler.add_task("int", []() -> int { throw 42; });
  scheduler.add_task(
      "string", [] { throw std::string("thrown string"); }, {}, 1);
  scheduler.add_task("struct", [] { throw NotAnException{7}; });
  scheduler.add_task("child", [] { return 1; }, {"int"});
  const ResultSet results = scheduler.run();

  const TaskResult& i = results.at("int");
  EXPECT_EQ(i.status, Status::failed);
  ASSERT_TRUE(i.error);
  try {
    std::rethrow_exception(i.error);
  } catch (int v) {
    EXPECT_EQ(v, 42);
  } catch (...) {
    ADD_FAILURE() << "not the thrown int";
  }
  EXPECT_EQ(results.at("string").attempts, 2);
  try {
    std::rethrow_exception(results.at("string").error);
  } catch (const std::string& s) {
    EXPECT_EQ(s, "thrown string");
  } catch (...) {
    ADD_FAILURE() << "not the thrown std::string";
  }
  try {
    std::rethrow_exception(results.at("struct").error);
  } catch (const NotAnException& e) {
    EXPECT_EQ(e.code, 7);
  } catch (...) {
    ADD_FAILURE() << "not the thrown struct";
  }
  EXPECT_EQ(results.at("child").status, Status::skipped);
}

TEST(Retries, ErrorIsTheLastAttempts) {
  TaskScheduler scheduler(2);
  std::atomic<int> calls{0};
  scheduler.add_task(
      "flaky", [&calls]() -> int { throw std::runtime_error("attempt " + std::to_string(calls.fetch_add(1) + 1)); }, {},
      3);
  const ResultSet results = scheduler.run();
  EXPECT_EQ(results.at("flaky").status, Status::failed);
  EXPECT_EQ(results.at("flaky").attempts, 4);
  EXPECT_EQ(DescribeError(results.at("flaky").error), "attempt 4");
  EXPECT_EQ(calls.load(), 4);
}

TEST(Retries, RetryThenSucceedClearsError) {
  TaskScheduler scheduler(2);
  std::atomic<int> calls{0};
  scheduler.add_task(
      "flaky",
      [&calls] {
        if (calls.fetch_add(1) < 2) {
          throw std::runtime_error("transient");
        }
        return "done"s;
      },
      {}, 5);
  scheduler.add_task("child", [] { return 1; }, {"flaky"});
  const ResultSet results = scheduler.run();
  const TaskResult& r = results.at("flaky");
  EXPECT_EQ(r.status, Status::success);
  EXPECT_EQ(r.attempts, 3);
  EXPECT_FALSE(r.error) << DescribeError(r.error);
  EXPECT_EQ(r.value<std::string>(), "done");
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(results.at("child").status, Status::success);
}

TEST(AddTaskErrors, DuplicateIdLeavesSchedulerUnchanged) {
  TaskScheduler scheduler(2);
  std::atomic<int> second_calls{0};
  scheduler.add_task("A", [] { return 1; });
  ExpectThrowsNaming<DuplicateTaskError>(
      [&] {
        scheduler.add_task("A", [&second_calls] {
          second_calls.fetch_add(1);
          return 2;
        });
      },
      "A");
  // Also catchable as std::invalid_argument, and the id is available; the failed call's dependencies
  // (a not-yet-registered id) must leave no trace either.
  try {
    scheduler.add_task("A", [] { return 3; }, {"ghost"});
    ADD_FAILURE() << "duplicate accepted";
  } catch (const std::invalid_argument& e) {
    const auto* dup = dynamic_cast<const DuplicateTaskError*>(&e);
    ASSERT_NE(dup, nullptr);
    EXPECT_EQ(dup->task_id(), "A");
  }
  EXPECT_EQ(scheduler.size(), 1u);
  const ResultSet results = scheduler.run();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results.at("A").value<int>(), 1);
  EXPECT_EQ(second_calls.load(), 0);
}

TEST(AddTaskErrors, EmptyIdRejected) {
  TaskScheduler scheduler;
  EXPECT_THROW(scheduler.add_task("", [] { return 1; }), std::invalid_argument);
  EXPECT_THROW(scheduler.add_task(std::string(), [] { return 1; }, {"x"}), std::invalid_argument);
  EXPECT_EQ(scheduler.size(), 0u);
  EXPECT_EQ(scheduler.run().size(), 0u);
}

TEST(AddTaskErrors, NegativeRetriesRejected) {
  TaskScheduler scheduler;
  ExpectThrowsNaming<std::invalid_argument>(
      [&] {
        scheduler.add_task(
            "neg", [] { return 1; }, {}, -1);
      },
      "neg");
  ExpectThrowsNaming<std::invalid_argument>(
      [&] {
        scheduler.add_task(
            "neg", [] { return 1; }, std::vector<std::string>{"ghost"}, -5);
      },
      "neg");
  EXPECT_EQ(scheduler.size(), 0u);
  EXPECT_FALSE(scheduler.contains("neg"));
  // Not registered, so the id is still free.
  scheduler.add_task(
      "neg", [] { return 1; }, {}, 0);
  const ResultSet results = scheduler.run();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results.at("neg").status, Status::success);
}

TEST(Dependencies, AllContainerForms) {
  TaskScheduler scheduler(2);
  std::atomic<int> done{0};
  auto mark = [&done] { return done.fetch_add(1) + 1; };
  const TaskHandle a = scheduler.add_task("A", mark);
  const TaskHandle b = scheduler.add_task("B", mark);
  const std::set<std::string> set_deps{"A", "B"};
  const std::vector<std::string> vec_deps{"A", "B"};
  const std::vector<std::string_view> view_deps{"A", "B"};
  const std::vector<TaskHandle> handle_deps{a, b};
  // Each dependent sees both A and B done: done >= 2 when it starts.
  auto check = [&done] { return done.load() >= 2; };
  scheduler.add_task("braced", check, {"A", "B"});
  scheduler.add_task("set", check, set_deps);
  scheduler.add_task("vector", check, vec_deps);
  scheduler.add_task("views", check, view_deps);
  scheduler.add_task("temporary", check, std::vector<std::string>{"A", "B"});
  scheduler.add_task("handles", check, {a, b});
  scheduler.add_task("handle_vector", check, handle_deps);
  scheduler.add_task("mixed", check, {a, "B"});
  scheduler.add_task("std_string", check, {std::string("A"), b});
  const ResultSet results = scheduler.run();
  for (const char* id :
       {"braced", "set", "vector", "views", "temporary", "handles", "handle_vector", "mixed", "std_string"}) {
    EXPECT_EQ(results.at(id).status, Status::success) << id;
    EXPECT_TRUE(results.at(id).value<bool>()) << id << " started before its dependencies finished";
  }
}

TEST(Dependencies, DuplicateEntriesInOneList) {
  dagsched_test::Watchdog watchdog("Dependencies.DuplicateEntriesInOneList", std::chrono::seconds(60));
  TaskScheduler scheduler(2);
  const TaskHandle a = scheduler.add_task("A", [] { return 1; });
  scheduler.add_task("B", [] { return 2; }, {"A", "A"});
  scheduler.add_task("C", [] { return 3; }, {a, "A", a});
  scheduler.add_task(
      "D", [] { return 4; }, std::vector<std::string>{"B", "B", "C"});
  const ResultSet results = scheduler.run();
  EXPECT_TRUE(results.all_succeeded());
  EXPECT_EQ(results.at("D").value<int>(), 4);
}

TEST(Dependencies, AnyInsertionOrder) {
  // Every dependent is registered before its dependencies: chain e <- d <- c <- b <- a, added a first.
  TaskScheduler scheduler(3);
  std::atomic<int> next{0};
  const std::vector<std::string> ids{"a", "b", "c", "d", "e"};
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const int expected_position = static_cast<int>(ids.size() - 1 - i);
    auto body = [&next, expected_position] { return next.fetch_add(1) == expected_position; };
    if (i + 1 < ids.size()) {
      scheduler.add_task(ids[i], body, {ids[i + 1]});
    } else {
      scheduler.add_task(ids[i], body);
    }
  }
  EXPECT_EQ(scheduler.size(), 5u);
  const ResultSet results = scheduler.run();
  for (const auto& id : ids) {
    EXPECT_EQ(results.at(id).status, Status::success) << id;
    EXPECT_TRUE(results.at(id).value<bool>()) << id << " ran out of order";
  }
}

TEST(Dependencies, NamedOnlyIdsAreNotTasks) {
  TaskScheduler scheduler;
  scheduler.add_task("child", [] { return 1; }, {"later"});
  EXPECT_EQ(scheduler.size(), 1u);
  EXPECT_FALSE(scheduler.contains("later"));
  scheduler.add_task("later", [] { return 2; });
  EXPECT_EQ(scheduler.size(), 2u);
  EXPECT_TRUE(scheduler.contains("later"));
  EXPECT_TRUE(scheduler.run().all_succeeded());
}

TEST(Handles, IndicesAndLookup) {
  TaskScheduler scheduler;
  const TaskHandle none;
  EXPECT_FALSE(none.valid());
  const TaskHandle a = scheduler.add_task("A", [] { return 1; });
  const TaskHandle b = scheduler.add_task("B", [] { return 2; }, {a});
  EXPECT_TRUE(a.valid());
  EXPECT_TRUE(b.valid());
  EXPECT_EQ(a.index(), 0u);
  EXPECT_EQ(b.index(), 1u);
  EXPECT_NE(a, b);
  const ResultSet results = scheduler.run();
  EXPECT_EQ(results.at(a).value<int>(), 1);
  EXPECT_EQ(results.at(b).value<int>(), 2);
  EXPECT_EQ(&results.at(b), &results.at("B"));
  EXPECT_THROW((void)results.at(none), std::out_of_range);
  // A task added after the run is not covered by it.
  const TaskHandle c = scheduler.add_task("C", [] { return 3; });
  EXPECT_THROW((void)results.at(c), std::out_of_range);
  EXPECT_EQ(scheduler.run().at(c).value<int>(), 3);
}

TEST(Handles, HandleFromAnotherSchedulerRejected) {
  TaskScheduler first;
  TaskScheduler second;
  const TaskHandle foreign = first.add_task("A", [] { return 1; });
  second.add_task("A", [] { return 2; });
  EXPECT_THROW(second.add_task("B", [] { return 3; }, {foreign}), std::invalid_argument);
  EXPECT_THROW(second.add_task(
                   "B", [] { return 3; }, std::vector<TaskHandle>{foreign}),
               std::invalid_argument);
  EXPECT_THROW(second.add_task("B", [] { return 3; }, {"A", TaskHandle{}}), std::invalid_argument);
  EXPECT_EQ(second.size(), 1u);
  EXPECT_FALSE(second.contains("B"));
  const ResultSet results = second.run();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results.at("A").value<int>(), 2);
  // Same index, other scheduler: not this run's task.
  EXPECT_THROW((void)results.at(foreign), std::out_of_range);
}

// The id table across many growths: every id stays findable, ids that differ only late, in length or by a
// NUL byte stay apart, duplicates are caught at every size, and a ResultSet taken before more ids were added
// keeps its own view. With 40,000 ids, many share a probe's 7-bit hash filter, so a lookup that trusted the
// filter without comparing the id would take one task for another here.
TEST(Ids, EveryIdIsFoundAndEveryDuplicateCaughtAcrossGrowth) {
  constexpr int n = 40000;
  auto id_of = [](int i) {
    switch (i % 4) {
      case 0:
        return "t" + std::to_string(i);  // short: inside the string
      case 1:
        return std::string(40, 'x') + std::to_string(i);  // long: differs only after 40 equal bytes
      case 2:
        return "n\0"s + std::to_string(i);  // an embedded NUL
      default:
        return std::to_string(i) + std::string(static_cast<std::size_t>(i % 9), '.');  // lengths 0-8 past it
    }
  };
  TaskScheduler scheduler(2);
  ResultSet snapshot;
  int snapshot_size = 0;
  for (int i = 0; i < n; ++i) {
    const std::string id = id_of(i);
    ASSERT_FALSE(scheduler.contains(id)) << i;
    scheduler.add_task(
        id, [i] { return i; }, i == 0 ? std::vector<std::string>{} : std::vector{id_of(i / 2)});
    if ((i & (i + 1)) == 0 || i == n - 1) {  // after 1, 2, 4, ... ids: a growth has just happened or is due
      for (int j = 0; j <= i; ++j) {
        ASSERT_TRUE(scheduler.contains(id_of(j))) << j << " lost after " << i + 1 << " ids";
      }
      ASSERT_FALSE(scheduler.contains("t" + std::to_string(i + 4))) << "an id not added yet is found";
      ASSERT_FALSE(scheduler.contains("n" + std::to_string(i))) << "the NUL byte is ignored";
      ASSERT_FALSE(scheduler.contains(std::string(40, 'x'))) << "a prefix is found";
      const int again = i / 3;
      EXPECT_THROW(scheduler.add_task(id_of(again), [] { return -1; }), DuplicateTaskError) << again;
    }
    if (i == 1000) {
      snapshot = scheduler.run();  // shares the table: what follows must copy it, not change it
      snapshot_size = i + 1;
    }
  }
  EXPECT_EQ(scheduler.size(), static_cast<std::size_t>(n));
  const ResultSet results = scheduler.run();
  ASSERT_TRUE(results.all_succeeded());
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(results.at(id_of(i)).value<int>(), i) << id_of(i);
  }
  ASSERT_EQ(snapshot.size(), static_cast<std::size_t>(snapshot_size));
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(snapshot.contains(id_of(i)), i < snapshot_size) << i;
  }
  EXPECT_EQ(snapshot.at(id_of(snapshot_size - 1)).value<int>(), snapshot_size - 1);
}

TEST(ResultSetTest, LookupIterationAndLifetime) {
  ResultSet kept;
  {
    TaskScheduler scheduler(2);
    scheduler.add_task("x", [] { return 1; });
    scheduler.add_task("y", []() -> int { throw std::runtime_error("y"); });
    scheduler.add_task("z", [] { return 3; }, {"y"});
    kept = scheduler.run();
    try {
      (void)kept.at("nope");
      ADD_FAILURE() << "unknown id accepted";
    } catch (const std::out_of_range& e) {
      EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos) << e.what();
    }
    // A later run and add_task leave an earlier ResultSet unchanged.
    scheduler.add_task("w", [] { return 4; });
    EXPECT_EQ(scheduler.run().size(), 4u);
  }  // the scheduler is gone; its results stay valid
  EXPECT_EQ(kept.size(), 3u);
  EXPECT_FALSE(kept.contains("w"));
  EXPECT_EQ(kept.find("w"), nullptr);
  ASSERT_NE(kept.find("x"), nullptr);
  EXPECT_EQ(kept.find("x")->value<int>(), 1);
  EXPECT_EQ(kept.count(Status::success), 1u);
  EXPECT_EQ(kept.count(Status::failed), 1u);
  EXPECT_EQ(kept.count(Status::skipped), 1u);

  std::vector<std::string> seen;
  for (const auto& [id, r] : kept) {
    seen.push_back(id);
    EXPECT_EQ(&r, &kept.at(id));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"x", "y", "z"}));  // registration order
  const ResultSet copy = kept;
  EXPECT_EQ(copy.at("x").value<int>(), 1);
}

// When no ResultSet holds the last run's results, the next run reuses their slots, and a success stores
// only the fields that differ from what the slot holds. Every field that changed must still be rewritten.
TEST(RunTwice, ReusedResultSlotsAreRewritten) {
  TaskScheduler scheduler(2);
  std::atomic<int> run_number{0};
  std::atomic<int> flaky_calls{0};
  scheduler.add_task(
      "flaky",  // run 1: fails once, then succeeds (2 attempts); later runs: succeeds at once
      [&] {
        if (run_number.load() == 1 && flaky_calls.fetch_add(1) == 0) {
          throw std::runtime_error("once");
        }
        return run_number.load();
      },
      {}, 1);
  scheduler.add_task("broken_once", [&] {  // run 1: fails; later runs: succeeds
    if (run_number.load() == 1) {
      throw std::runtime_error("run 1");
    }
  });
  scheduler.add_task("child", [] {}, {"broken_once"});
  scheduler.add_task("steady", [] {});
  for (int run = 1; run <= 3; ++run) {
    run_number = run;
    const ResultSet r = scheduler.run();  // dropped at the end of each round: its slots are reused
    EXPECT_EQ(r.at("flaky").status, Status::success) << run;
    EXPECT_EQ(r.at("flaky").attempts, run == 1 ? 2 : 1) << run;
    EXPECT_EQ(r.at("flaky").value<int>(), run) << run;
    EXPECT_EQ(r.at("broken_once").status, run == 1 ? Status::failed : Status::success) << run;
    EXPECT_EQ(static_cast<bool>(r.at("broken_once").error), run == 1) << run;
    EXPECT_EQ(r.at("child").status, run == 1 ? Status::skipped : Status::success) << run;
    EXPECT_EQ(r.at("child").attempts, run == 1 ? 0 : 1) << run;
    EXPECT_EQ(r.at("child").skip_causes().size(), run == 1 ? 1u : 0u) << run;
    EXPECT_EQ(r.at("steady").status, Status::success) << run;
    EXPECT_EQ(r.at("steady").attempts, 1) << run;
  }
}

// A skip rewrites only what changed in a reused slot: the causes must still follow each run's failures,
// whether they stay the same, change, merge, split or go away.
TEST(RunTwice, ReusedSlotsReportEachRunsSkipCauses) {
  TaskScheduler scheduler(2);
  std::atomic<int> run_number{0};
  // Which of a and b fail in runs 1..6.
  static constexpr bool a_fails[] = {true, true, false, false, true, true};
  static constexpr bool b_fails[] = {false, true, true, false, true, true};
  scheduler.add_task("a", [&] {
    if (a_fails[run_number.load() - 1]) throw std::runtime_error("a");
  });
  scheduler.add_task("b", [&] {
    if (b_fails[run_number.load() - 1]) throw std::runtime_error("b");
  });
  scheduler.add_task("c", [] { return 3; }, {"a", "b"});
  scheduler.add_task("d", [] { return 4; }, {"c"});
  for (int run = 1; run <= 6; ++run) {
    run_number = run;
    std::vector<std::string> causes;
    if (a_fails[run - 1]) causes.emplace_back("a");
    if (b_fails[run - 1]) causes.emplace_back("b");
    const ResultSet r = scheduler.run();  // dropped at the end of each round: its slots are reused
    for (const char* id : {"c", "d"}) {
      const TaskResult& t = r.at(id);
      EXPECT_EQ(t.status, causes.empty() ? Status::success : Status::skipped) << id << " run " << run;
      EXPECT_EQ(std::vector<std::string>(t.skip_causes().begin(), t.skip_causes().end()), causes)
          << id << " run " << run;
      EXPECT_EQ(t.attempts, causes.empty() ? 1 : 0) << id << " run " << run;
      EXPECT_EQ(t.result.has_value(), causes.empty()) << id << " run " << run;
      EXPECT_FALSE(t.error) << id << " run " << run;
    }
  }
}

TEST(RunTwice, FreshResultsAndResetCounters) {
  TaskScheduler scheduler(2);
  std::atomic<int> run_number{0};
  std::atomic<int> calls{0};
  // Fails every attempt of the first run, succeeds on the second; retries 1, so 2 attempts in run 1.
  scheduler.add_task(
      "flip",
      [&] {
        calls.fetch_add(1);
        if (run_number.load() == 1) {
          throw std::runtime_error("first run");
        }
        return run_number.load();
      },
      {}, 1);
  scheduler.add_task("child", [&run_number] { return run_number.load() * 10; }, {"flip"});
  scheduler.add_task("always", [&run_number] { return run_number.load(); });

  run_number = 1;
  const ResultSet first = scheduler.run();
  EXPECT_EQ(first.at("flip").status, Status::failed);
  EXPECT_EQ(first.at("flip").attempts, 2);
  EXPECT_EQ(first.at("child").status, Status::skipped);
  EXPECT_EQ(first.at("always").value<int>(), 1);
  EXPECT_EQ(calls.load(), 2);

  run_number = 2;
  const ResultSet second = scheduler.run();
  EXPECT_EQ(second.at("flip").status, Status::success);
  EXPECT_EQ(second.at("flip").attempts, 1);
  EXPECT_FALSE(second.at("flip").error);
  EXPECT_EQ(second.at("flip").value<int>(), 2);
  EXPECT_EQ(second.at("child").status, Status::success);
  EXPECT_EQ(second.at("child").attempts, 1);
  EXPECT_EQ(second.at("child").value<int>(), 20);
  EXPECT_EQ(second.at("always").value<int>(), 2);
  EXPECT_EQ(calls.load(), 3);

  // The first run's results are untouched by the second.
  EXPECT_EQ(first.at("flip").status, Status::failed);
  EXPECT_EQ(first.at("child").status, Status::skipped);
  EXPECT_EQ(first.at("always").value<int>(), 1);

  run_number = 1;  // and back: a third run fails again, with attempts counted from zero
  const ResultSet third = scheduler.run();
  EXPECT_EQ(third.at("flip").status, Status::failed);
  EXPECT_EQ(third.at("flip").attempts, 2);
  EXPECT_EQ(third.at("child").status, Status::skipped);
  EXPECT_EQ(third.at("child").attempts, 0);
  EXPECT_EQ(calls.load(), 5);
}

TEST(RunTwice, TasksAddedBetweenRuns) {
  TaskScheduler scheduler(2);
  scheduler.add_task("A", [] { return 1; });
  EXPECT_EQ(scheduler.run().size(), 1u);
  scheduler.add_task("B", [] { return 2; }, {"A"});
  const ResultSet second = scheduler.run();
  EXPECT_EQ(second.size(), 2u);
  EXPECT_TRUE(second.all_succeeded());
}

}  // namespace
