// TaskContext: a body taking `TaskContext&` sees its id, its attempt number and the previous attempt's
// error, and reads its dependencies' results in place (no copy), by id or by handle.
#include <gtest/gtest.h>

#include <any>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "dagsched/dagsched.hpp"
#include "test_util.hpp"

namespace {

using dagsched::ResultSet;
using dagsched::Status;
using dagsched::TaskContext;
using dagsched::TaskHandle;
using dagsched::TaskOptions;
using dagsched::TaskScheduler;
using dagsched_test::DescribeError;
using dagsched_test::ErrorIs;
using namespace std::chrono_literals;

TaskOptions WithRetries(int retries) {
  TaskOptions o;
  o.retries = retries;
  return o;
}

// A value that counts its copies (moves are free), and remembers nothing else.
struct Counted {
  static std::atomic<int> copies;
  int payload = 0;
  std::vector<int> bulk;  // something worth not copying
  Counted() = default;
  explicit Counted(int p) : payload(p), bulk(1000, p) {}
  Counted(const Counted& other) : payload(other.payload), bulk(other.bulk) { ++copies; }
  Counted(Counted&&) noexcept = default;
  Counted& operator=(const Counted& other) {
    payload = other.payload;
    bulk = other.bulk;
    ++copies;
    return *this;
  }
  Counted& operator=(Counted&&) noexcept = default;
  ~Counted() = default;
};
std::atomic<int> Counted::copies{0};

class Context : public testing::TestWithParam<std::size_t> {
 protected:
  [[nodiscard]] std::size_t workers() const { return GetParam(); }
};

TEST_P(Context, IdAttemptAndLastErrorAcrossRetries) {
  TaskScheduler s(workers());
  std::mutex m;
  std::vector<std::string> seen;  // "<id> <attempt> <last error>"
  s.add_task(
      "flaky",
      [&](TaskContext& ctx) -> int {
        {
          std::lock_guard<std::mutex> lock(m);
          seen.push_back(ctx.id() + " " + std::to_string(ctx.attempt()) + " " + DescribeError(ctx.last_error()));
        }
        if (ctx.attempt() < 3) {
          throw std::runtime_error("attempt " + std::to_string(ctx.attempt()) + " failed");
        }
        return ctx.attempt();
      },
      {}, WithRetries(4));
  const ResultSet r = s.run();
  EXPECT_EQ(r.at("flaky").status, Status::success);
  EXPECT_EQ(r.at("flaky").attempts, 3);
  EXPECT_EQ(r.at("flaky").value<int>(), 3);
  EXPECT_EQ(seen, (std::vector<std::string>{"flaky 1 <null>", "flaky 2 attempt 1 failed", "flaky 3 attempt 2 failed"}));
}

TEST_P(Context, LastErrorKeepsTheExceptionObject) {
  struct OutOfMemory : std::runtime_error {
    explicit OutOfMemory(int b) : std::runtime_error("oom"), batch(b) {}
    int batch;
  };
  TaskScheduler s(workers());
  std::vector<int> batches;
  // Halves its batch after each out-of-memory error, as the header's example suggests.
  s.add_task(
      "train",
      [&](TaskContext& ctx) -> int {
        int batch = 64;
        if (ctx.last_error()) {
          try {
            std::rethrow_exception(ctx.last_error());
          } catch (const OutOfMemory& e) {
            batch = e.batch / 2;
          }
        }
        batches.push_back(batch);  // attempts of one task never overlap
        if (batch > 16) {
          throw OutOfMemory(batch);
        }
        return batch;
      },
      {}, WithRetries(5));
  const ResultSet r = s.run();
  EXPECT_EQ(r.at("train").value<int>(), 16);
  EXPECT_EQ(batches, (std::vector<int>{64, 32, 16}));
}

TEST_P(Context, SpecOverloadsAcceptContextBodies) {
  TaskScheduler s(workers());
  const TaskHandle a = s.add_task("a", [](TaskContext& ctx) { return ctx.id() + "!"; });
  std::atomic<int> calls{0};
  s.add_task(
      "b",
      [&](TaskContext& ctx) -> std::string {
        if (++calls < 2) {
          throw std::runtime_error("once");
        }
        return ctx.result<std::string>("a") + std::to_string(ctx.attempt());
      },
      {a}, /*retries=*/1);
  const std::vector<std::string> deps{"a", "b"};
  s.add_task(
      "c", [](TaskContext& ctx) { return ctx.dependency_count(); }, deps);
  s.add_task("void_body", [](TaskContext& ctx) { EXPECT_EQ(ctx.id(), "void_body"); });
  const ResultSet r = s.run();
  EXPECT_EQ(r.at("a").value<std::string>(), "a!");
  EXPECT_EQ(r.at("b").value<std::string>(), "a!2");
  EXPECT_EQ(r.at("c").value<std::size_t>(), 2u);
  EXPECT_EQ(r.at("void_body").status, Status::success);
  EXPECT_FALSE(r.at("void_body").result.has_value());
}

TEST_P(Context, ResultIsReadInPlaceWithoutCopying) {
  TaskScheduler s(workers());
  std::atomic<const Counted*> seen_by_id{nullptr};
  std::atomic<const Counted*> seen_by_handle{nullptr};
  std::atomic<int> copies_during_read{-1};
  const TaskHandle dep = s.add_task("dep", [] { return Counted(7); });
  s.add_task("reader",
             [&](TaskContext& ctx) {
               const int before = Counted::copies.load();
               const Counted& by_id = ctx.result<Counted>("dep");
               const Counted& by_handle = ctx.result<Counted>(dep);
               const Counted& via_dependency = ctx.dependency("dep").value<Counted>();
               copies_during_read = Counted::copies.load() - before;
               seen_by_id = &by_id;
               seen_by_handle = &by_handle;
               EXPECT_EQ(&via_dependency, &by_id);
               EXPECT_EQ(by_id.payload, 7);
               EXPECT_EQ(by_id.bulk.size(), 1000u);
               return by_id.payload * 2;
             },
             {"dep"});
  const ResultSet r = s.run();
  ASSERT_EQ(r.at("reader").status, Status::success) << DescribeError(r.at("reader").error);
  EXPECT_EQ(r.at("reader").value<int>(), 14);
  EXPECT_EQ(copies_during_read.load(), 0);
  EXPECT_EQ(seen_by_id.load(), &r.at("dep").value<Counted>());
  EXPECT_EQ(seen_by_handle.load(), &r.at("dep").value<Counted>());
  EXPECT_EQ(&r.at(dep).value<Counted>(), &r.at("dep").value<Counted>());
}

TEST_P(Context, FanInReadsEveryDependency) {
  TaskScheduler s(workers());
  constexpr int kDeps = 100;
  std::vector<TaskHandle> handles;
  std::vector<std::string> ids;
  for (int i = 0; i < kDeps; ++i) {
    ids.push_back("d" + std::to_string(i));
    handles.push_back(s.add_task(ids.back(), [i] { return std::int64_t{i}; }));
  }
  s.add_task(
      "sum_by_id",
      [&ids](TaskContext& ctx) {
        std::int64_t sum = 0;
        for (const std::string& id : ids) {
          sum += ctx.result<std::int64_t>(id);
        }
        return sum + static_cast<std::int64_t>(ctx.dependency_count()) * 1'000'000;
      },
      ids);
  s.add_task(
      "sum_by_handle",
      [&handles](TaskContext& ctx) {
        std::int64_t sum = 0;
        for (const TaskHandle h : handles) {
          EXPECT_EQ(ctx.dependency(h).status, Status::success);
          sum += ctx.result<std::int64_t>(h);
        }
        return sum;
      },
      handles);
  const ResultSet r = s.run();
  EXPECT_EQ(r.at("sum_by_id").value<std::int64_t>(), 4950 + 100'000'000);
  EXPECT_EQ(r.at("sum_by_handle").value<std::int64_t>(), 4950);
}

TEST_P(Context, ResultComesFromTheDependencysSuccessfulRetry) {
  TaskScheduler s(workers());
  std::atomic<int> calls{0};
  TaskOptions o = WithRetries(3);
  o.retry.delay = 1ms;
  s.add_task(
      "dep",
      [&](TaskContext& ctx) -> std::string {
        ++calls;
        if (ctx.attempt() < 3) {
          throw std::runtime_error("no");
        }
        return "from attempt " + std::to_string(ctx.attempt());
      },
      {}, o);
  s.add_task("reader",
             [](TaskContext& ctx) {
               EXPECT_EQ(ctx.dependency("dep").attempts, 3);
               EXPECT_EQ(ctx.dependency("dep").status, Status::success);
               EXPECT_FALSE(ctx.dependency("dep").error);
               return ctx.result<std::string>("dep");
             },
             {"dep"});
  const ResultSet r = s.run();
  EXPECT_EQ(r.at("reader").value<std::string>(), "from attempt 3");
  EXPECT_EQ(calls.load(), 3);
}

TEST_P(Context, NonDependencyThrowsOutOfRangeNamingBothIds) {
  TaskScheduler s(workers());
  const TaskHandle other = s.add_task("other_task", [] { return 1; });
  const TaskHandle dep = s.add_task("dep_task", [] { return 2; });
  std::mutex m;
  std::vector<std::string> messages;
  s.add_task(
      "asker",
      [&](TaskContext& ctx) {
        EXPECT_EQ(ctx.dependency_count(), 1u);
        for (const char* bad : {"other_task", "no_such_task", "asker", ""}) {
          try {
            static_cast<void>(ctx.dependency(bad));
            ADD_FAILURE() << "dependency(\"" << bad << "\") did not throw";
          } catch (const std::out_of_range& e) {
            std::lock_guard<std::mutex> lock(m);
            messages.emplace_back(e.what());
          }
        }
        EXPECT_THROW(static_cast<void>(ctx.result<int>("other_task")), std::out_of_range);
        EXPECT_THROW(static_cast<void>(ctx.dependency(other)), std::out_of_range);
        EXPECT_THROW(static_cast<void>(ctx.result<int>(other)), std::out_of_range);
        EXPECT_THROW(static_cast<void>(ctx.dependency(TaskHandle{})), std::out_of_range);
        EXPECT_EQ(ctx.result<int>(dep), 2);
        return 0;
      },
      {dep}, TaskOptions{});
  const ResultSet r = s.run();
  ASSERT_EQ(r.at("asker").status, Status::success) << DescribeError(r.at("asker").error);
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_NE(messages[0].find("asker"), std::string::npos) << messages[0];
  EXPECT_NE(messages[0].find("other_task"), std::string::npos) << messages[0];
  EXPECT_NE(messages[1].find("asker"), std::string::npos) << messages[1];
  EXPECT_NE(messages[1].find("no_such_task"), std::string::npos) << messages[1];
}

// A default-constructed handle, or one from another scheduler, names no dependency of this task, even when
// its index happens to be a dependency's index here.
TEST_P(Context, DefaultOrForeignHandleIsNotADependency) {
  TaskScheduler other(1);
  const TaskHandle foreign = other.add_task("elsewhere", [] { return 0; });
  ASSERT_EQ(foreign.index(), 0u);
  TaskScheduler s(workers());
  const TaskHandle dep = s.add_task("dep", [] { return 42; });
  ASSERT_EQ(dep.index(), 0u);
  s.add_task("reader",
             [&](TaskContext& ctx) {
               EXPECT_EQ(ctx.result<int>(dep), 42);
               EXPECT_THROW(static_cast<void>(ctx.dependency(TaskHandle{})), std::out_of_range);
               EXPECT_THROW(static_cast<void>(ctx.result<int>(TaskHandle{})), std::out_of_range);
               EXPECT_THROW(static_cast<void>(ctx.dependency(foreign)), std::out_of_range);
               EXPECT_THROW(static_cast<void>(ctx.result<int>(foreign)), std::out_of_range);
             },
             {dep});
  EXPECT_TRUE(s.run().all_succeeded());
}

TEST_P(Context, ARootHasNoDependencies) {
  TaskScheduler s(workers());
  s.add_task("root", [](TaskContext& ctx) {
    EXPECT_EQ(ctx.dependency_count(), 0u);
    EXPECT_THROW(static_cast<void>(ctx.dependency("root")), std::out_of_range);
    EXPECT_FALSE(ctx.stop_requested());
    EXPECT_FALSE(ctx.stop_token().stop_requested());
    EXPECT_EQ(ctx.attempt(), 1);
    EXPECT_FALSE(ctx.last_error());
  });
  EXPECT_TRUE(s.run().all_succeeded());
}

TEST_P(Context, WrongTypeThrowsBadAnyCast) {
  TaskScheduler s(workers());
  s.add_task("str", [] { return std::string("text"); });
  s.add_task("void_dep", [] {});
  s.add_task("reader",
             [](TaskContext& ctx) {
               EXPECT_THROW(static_cast<void>(ctx.result<int>("str")), std::bad_any_cast);
               EXPECT_THROW(static_cast<void>(ctx.result<const char*>("str")), std::bad_any_cast);
               EXPECT_THROW(static_cast<void>(ctx.result<int>("void_dep")), std::bad_any_cast);
               EXPECT_EQ(ctx.result<std::string>("str"), "text");
               // Escaping from the body, it is the task's error like any other.
               return ctx.result<double>("str");
             },
             {"str", "void_dep"});
  const ResultSet r = s.run();
  EXPECT_EQ(r.at("reader").status, Status::failed);
  EXPECT_TRUE(ErrorIs<std::bad_any_cast>(r.at("reader").error));
}

TEST_P(Context, RepeatedRunsSeeFreshResults) {
  TaskScheduler s(workers());
  std::atomic<int> run_number{0};
  s.add_task("dep", [&] { return run_number.load(); });
  s.add_task("reader", [](TaskContext& ctx) { return ctx.result<int>("dep") * 10; }, {"dep"});
  for (int i = 1; i <= 3; ++i) {
    run_number = i;
    const ResultSet r = s.run();
    EXPECT_EQ(r.at("reader").value<int>(), i * 10);
  }
}

TEST_P(Context, ManyContextTasksAtOnce) {
  // A wide, two-level graph of context bodies: every reader checks its own id and its parent's value.
  TaskScheduler s(workers());
  constexpr int kWidth = 500;
  for (int i = 0; i < kWidth; ++i) {
    const std::string parent = "p" + std::to_string(i);
    s.add_task(parent, [i](TaskContext& ctx) {
      EXPECT_EQ(ctx.id(), "p" + std::to_string(i));
      return i;
    });
    s.add_task("c" + std::to_string(i),
               [i, parent](TaskContext& ctx) {
                 EXPECT_EQ(ctx.id(), "c" + std::to_string(i));
                 return ctx.result<int>(parent) + 1;
               },
               {parent});
  }
  const ResultSet r = s.run();
  ASSERT_TRUE(r.all_succeeded());
  for (int i = 0; i < kWidth; ++i) {
    EXPECT_EQ(r.at("c" + std::to_string(i)).value<int>(), i + 1);
  }
}

INSTANTIATE_TEST_SUITE_P(Workers, Context, testing::ValuesIn(dagsched_test::kWorkerCounts),
                         dagsched_test::WorkerCountName);

}  // namespace
