// The two examples of the original problem statement, as written there, then again at every worker count
// with instrumented bodies that check the execution order the statement describes.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "dagsched/dagsched.hpp"
#include "test_util.hpp"

namespace {

using dagsched::ResultSet;
using dagsched::Status;
using dagsched::TaskScheduler;
using namespace std::string_literals;
using dagsched_test::kGenerousTimeout;

void ExpectSuccess(const ResultSet& results, const std::string& id, const std::string& value) {
  SCOPED_TRACE("task " + id);
  ASSERT_TRUE(results.contains(id));
  const auto& r = results.at(id);
  EXPECT_EQ(r.status, Status::success);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_FALSE(r.error) << dagsched_test::DescribeError(r.error);
  ASSERT_TRUE(r.result.has_value());
  ASSERT_EQ(r.result.type(), typeid(std::string));
  EXPECT_EQ(std::any_cast<std::string>(r.result), value);
}

TEST(SpecExamples, DiamondAllSucceed) {
  TaskScheduler scheduler(4);

  scheduler.add_task("A", [] { return "result_A"s; });
  scheduler.add_task("B", [] { return "result_B"s; }, {"A"});
  scheduler.add_task("C", [] { return "result_C"s; }, {"A"});
  scheduler.add_task("D", [] { return "result_D"s; }, {"B", "C"});
  scheduler.add_task("E", [] { return "result_E"s; });

  const ResultSet results = scheduler.run();

  ASSERT_EQ(results.size(), 5u);
  EXPECT_EQ(results.at("A").status, Status::success);
  EXPECT_EQ(results.at("A").value<std::string>(), "result_A");
  EXPECT_EQ(results.at("A").attempts, 1);
  EXPECT_EQ(results.at("E").status, Status::success);
  EXPECT_EQ(results.at("D").status, Status::success);
  for (const char* id : {"A", "B", "C", "D", "E"}) {
    ExpectSuccess(results, id, "result_"s + id);
  }
  EXPECT_TRUE(results.all_succeeded());
}

TEST(SpecExamples, FailureSkipsOnlyDownstream) {
  std::atomic<int> b_calls{0};
  std::atomic<int> d_calls{0};
  auto failing_b = [&b_calls]() -> std::string {
    b_calls.fetch_add(1);
    throw std::invalid_argument("B broke");  // the C++ counterpart of Python's ValueError
  };

  TaskScheduler scheduler(4);
  scheduler.add_task("A", [] { return "result_A"s; });
  scheduler.add_task("B", failing_b, {"A"}, 2);
  scheduler.add_task("C", [] { return "result_C"s; }, {"A"});
  scheduler.add_task("D",
                     [&d_calls] {
                       d_calls.fetch_add(1);
                       return "result_D"s;
                     },
                     {"B", "C"});
  scheduler.add_task("E", [] { return "result_E"s; });

  const ResultSet results = scheduler.run();
  ASSERT_EQ(results.size(), 5u);

  EXPECT_EQ(results.at("A").status, Status::success);
  EXPECT_EQ(results.at("A").attempts, 1);
  EXPECT_EQ(results.at("A").value<std::string>(), "result_A");

  const auto& b = results.at("B");
  EXPECT_EQ(b.status, Status::failed);
  EXPECT_EQ(b.attempts, 3);
  EXPECT_EQ(b_calls.load(), 3);
  EXPECT_FALSE(b.result.has_value());
  ASSERT_TRUE(b.error);
  try {
    std::rethrow_exception(b.error);
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "B broke");
  } catch (...) {
    ADD_FAILURE() << "B's error is not the std::invalid_argument it threw: " << dagsched_test::DescribeError(b.error);
  }

  EXPECT_EQ(results.at("C").status, Status::success);
  EXPECT_EQ(results.at("C").attempts, 1);
  EXPECT_EQ(results.at("C").value<std::string>(), "result_C");

  const auto& d = results.at("D");
  EXPECT_EQ(d.status, Status::skipped);
  EXPECT_EQ(d.attempts, 0);
  EXPECT_FALSE(d.result.has_value());
  EXPECT_FALSE(d.error);
  EXPECT_EQ(d_calls.load(), 0);

  EXPECT_EQ(results.at("E").status, Status::success);
  EXPECT_EQ(results.at("E").attempts, 1);
  EXPECT_EQ(results.at("E").value<std::string>(), "result_E");

  EXPECT_EQ(results.count(Status::success), 3u);
  EXPECT_EQ(results.count(Status::failed), 1u);
  EXPECT_EQ(results.count(Status::skipped), 1u);
  EXPECT_FALSE(results.all_succeeded());
}

// The same examples at every worker count, with bodies that record a global sequence number when they
// start and end, so the order the statement describes can be checked.
class SpecExamplesP : public testing::TestWithParam<std::size_t> {
 protected:
  struct Span {
    std::uint64_t start = 0;
    std::uint64_t end = 0;
  };
  std::atomic<std::uint64_t> m_seq{1};
  Span m_a, m_b, m_c, m_d, m_e;

  // A body that records its span in `span` and returns `value`.
  auto Recorder(Span& span, std::string value) {
    return [this, &span, value = std::move(value)] {
      span.start = m_seq.fetch_add(1);
      span.end = m_seq.fetch_add(1);
      return value;
    };
  }
};

TEST_P(SpecExamplesP, DiamondOrder) {
  const std::size_t workers = GetParam();
  dagsched_test::Watchdog watchdog("SpecExamplesP.DiamondOrder");
  TaskScheduler scheduler(workers);
  // "A and E start immediately, running in parallel": with two or more workers they must be able to meet.
  dagsched_test::Rendezvous a_and_e(2);
  const bool meet = workers >= 2;
  std::atomic<bool> a_met{true};
  std::atomic<bool> e_met{true};

  scheduler.add_task("A", [&, rec = Recorder(m_a, "result_A")]() mutable {
    if (meet) {
      a_met = a_and_e.arrive_and_wait_for(kGenerousTimeout);
    }
    return rec();
  });
  scheduler.add_task("B", Recorder(m_b, "result_B"), {"A"});
  scheduler.add_task("C", Recorder(m_c, "result_C"), {"A"});
  scheduler.add_task("D", Recorder(m_d, "result_D"), {"B", "C"});
  scheduler.add_task("E", [&, rec = Recorder(m_e, "result_E")]() mutable {
    if (meet) {
      e_met = a_and_e.arrive_and_wait_for(kGenerousTimeout);
    }
    return rec();
  });

  const ResultSet results = scheduler.run();
  for (const char* id : {"A", "B", "C", "D", "E"}) {
    ExpectSuccess(results, id, "result_"s + id);
  }
  EXPECT_TRUE(a_met.load()) << "A never saw E running alongside it";
  EXPECT_TRUE(e_met.load()) << "E never saw A running alongside it";
  EXPECT_LT(m_a.end, m_b.start);
  EXPECT_LT(m_a.end, m_c.start);
  EXPECT_LT(m_b.end, m_d.start);
  EXPECT_LT(m_c.end, m_d.start);
}

TEST_P(SpecExamplesP, FailureExample) {
  const std::size_t workers = GetParam();
  dagsched_test::Watchdog watchdog("SpecExamplesP.FailureExample");
  TaskScheduler scheduler(workers);
  std::atomic<int> b_calls{0};
  std::atomic<int> d_calls{0};

  scheduler.add_task("A", Recorder(m_a, "result_A"));
  scheduler.add_task(
      "B",
      [&b_calls]() -> std::string {
        b_calls.fetch_add(1);
        throw std::invalid_argument("B broke");
      },
      {"A"}, 2);
  scheduler.add_task("C", Recorder(m_c, "result_C"), {"A"});
  scheduler.add_task("D",
                     [&d_calls] {
                       d_calls.fetch_add(1);
                       return "result_D"s;
                     },
                     {"B", "C"});
  scheduler.add_task("E", Recorder(m_e, "result_E"));

  const ResultSet results = scheduler.run();
  ExpectSuccess(results, "A", "result_A");
  ExpectSuccess(results, "C", "result_C");
  ExpectSuccess(results, "E", "result_E");
  EXPECT_EQ(results.at("B").status, Status::failed);
  EXPECT_EQ(results.at("B").attempts, 3);
  EXPECT_EQ(b_calls.load(), 3);
  EXPECT_TRUE(dagsched_test::ErrorIs<std::invalid_argument>(results.at("B").error));
  EXPECT_EQ(dagsched_test::DescribeError(results.at("B").error), "B broke");
  EXPECT_EQ(results.at("D").status, Status::skipped);
  EXPECT_EQ(results.at("D").attempts, 0);
  EXPECT_FALSE(results.at("D").error);
  EXPECT_FALSE(results.at("D").result.has_value());
  EXPECT_EQ(d_calls.load(), 0);
  EXPECT_LT(m_a.end, m_c.start);
}

INSTANTIATE_TEST_SUITE_P(Workers, SpecExamplesP, testing::ValuesIn(dagsched_test::kWorkerCounts),
                         dagsched_test::WorkerCountName);

}  // namespace
