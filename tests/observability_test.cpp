// Observability: the run report (RunOptions::record) and its JSON, the Chrome trace, to_dot, the summary and
// ProgressObserver, mostly on the problem statement's failure example (A ok, B fails after retries, C ok, D
// skipped, E ok).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dagsched/dagsched.hpp"
#include "dagsched/progress.hpp"
#include "dagsched/run_report.hpp"
#include "test_util.hpp"

namespace {

using dagsched::Progress;
using dagsched::ProgressObserver;
using dagsched::ResultSet;
using dagsched::RunOptions;
using dagsched::RunReport;
using dagsched::Status;
using dagsched::TaskRecord;
using dagsched::TaskScheduler;
using nlohmann::json;
using namespace std::chrono_literals;
using namespace std::string_literals;

/// The problem statement's failure example: B always throws and has two retries.
void AddFailureExample(TaskScheduler& scheduler) {
  scheduler.add_task("A", [] { return "result_A"s; });
  scheduler.add_task(
      "B", []() -> std::string { throw std::invalid_argument("B broke"); }, {"A"}, 2);
  scheduler.add_task("C", [] { return "result_C"s; }, {"A"});
  scheduler.add_task("D", [] { return "result_D"s; }, {"B", "C"});
  scheduler.add_task("E", [] { return "result_E"s; });
}

ResultSet RunRecorded(TaskScheduler& scheduler, RunOptions options = {}) {
  dagsched_test::Watchdog watchdog("recorded run");
  options.record = true;
  return scheduler.run(options);
}

std::size_t Count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) {
    ++n;
  }
  return n;
}

/// The line of `dot` that declares node `node` ("n3"), or "".
std::string NodeLine(const std::string& dot, const std::string& node) {
  std::istringstream in(dot);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("  " + node + " [", 0) == 0) {
      return line;
    }
  }
  return {};
}

/// Checks what must hold of any recorded run against its results: the same tasks and statuses, one record
/// per attempt, workers in range, attempts in order, dependencies finished before their dependents started,
/// and a critical path that is a chain of dependencies ending with the task that finished last.
void ExpectConsistent(const ResultSet& results, const RunReport& report, std::size_t workers) {
  ASSERT_EQ(report.tasks().size(), results.size());
  EXPECT_EQ(report.workers(), workers);
  std::size_t attempts = 0;
  std::size_t index = 0;
  for (const auto& [id, r] : results) {
    const TaskRecord& t = report.tasks()[index];
    SCOPED_TRACE("task " + id);
    EXPECT_EQ(t.index, index);
    EXPECT_EQ(t.id, id);
    EXPECT_EQ(report.find(id), &t);
    EXPECT_EQ(t.status, r.status);
    ASSERT_EQ(t.attempts.size(), static_cast<std::size_t>(r.attempts));
    attempts += t.attempts.size();
    for (std::size_t k = 0; k < t.attempts.size(); ++k) {
      const auto& a = t.attempts[k];
      EXPECT_EQ(a.number, static_cast<int>(k + 1));
      EXPECT_LT(a.worker, workers);
      EXPECT_LE(a.start, a.end);
      EXPECT_EQ(a.start_offset, a.start - report.start());
      EXPECT_GE(a.start_offset.count(), 0);
      EXPECT_LE(a.end, t.finish);
      if (k > 0) {
        EXPECT_LE(t.attempts[k - 1].end, a.start);
        EXPECT_TRUE(t.attempts[k - 1].retried);
      }
      EXPECT_EQ(a.ok, r.ok() && k + 1 == t.attempts.size());
    }
    if (!t.attempts.empty()) {
      ASSERT_TRUE(t.ready.has_value());
      EXPECT_LE(*t.ready, t.attempts.front().start);
      EXPECT_EQ(t.queue_wait, t.attempts.front().start - *t.ready);
      for (std::uint32_t d : t.dependencies) {
        const TaskRecord& dep = report.tasks()[d];
        ASSERT_FALSE(dep.attempts.empty()) << "dependency " << dep.id << " never ran";
        EXPECT_LE(dep.attempts.back().end, t.attempts.front().start) << "dependency " << dep.id;
      }
    }
    EXPECT_LE(t.finish, report.end());
    ++index;
  }
  EXPECT_EQ(report.attempt_count(), attempts);

  const auto& path = report.critical_path();
  if (results.size() == 0) {
    EXPECT_TRUE(path.empty());
    return;
  }
  ASSERT_FALSE(path.empty());
  EXPECT_EQ(report.tasks()[path.back()].finish, report.end());
  EXPECT_TRUE(report.tasks()[path.front()].dependencies.empty());
  for (std::size_t i = 0; i + 1 < path.size(); ++i) {
    const TaskRecord& next = report.tasks()[path[i + 1]];
    const auto& deps = next.dependencies;
    ASSERT_NE(std::find(deps.begin(), deps.end(), path[i]), deps.end()) << "not a dependency of " << next.id;
    for (std::uint32_t d : deps) {
      EXPECT_LE(report.tasks()[d].finish, report.tasks()[path[i]].finish);
    }
  }
}

class Observability : public testing::TestWithParam<std::size_t> {};

TEST_P(Observability, ReportOfTheFailureExample) {
  TaskScheduler scheduler(GetParam());
  AddFailureExample(scheduler);
  const ResultSet results = RunRecorded(scheduler);
  ASSERT_NE(results.report(), nullptr);
  const RunReport& report = *results.report();
  ExpectConsistent(results, report, GetParam());

  EXPECT_EQ(report.count(Status::success), 3u);
  EXPECT_EQ(report.count(Status::failed), 1u);
  EXPECT_EQ(report.count(Status::skipped), 1u);
  EXPECT_EQ(report.count(Status::cancelled), 0u);
  EXPECT_EQ(report.attempt_count(), 6u);

  const TaskRecord& b = report.at("B");
  ASSERT_EQ(b.attempts.size(), 3u);
  for (const auto& a : b.attempts) {
    EXPECT_FALSE(a.ok);
    EXPECT_EQ(a.error, "B broke");
  }
  EXPECT_TRUE(b.attempts[0].retried);
  EXPECT_TRUE(b.attempts[1].retried);
  EXPECT_FALSE(b.attempts[2].retried);
  EXPECT_EQ(b.attempts[0].retry_delay, 0ns);
  EXPECT_EQ(b.error, "B broke");
  EXPECT_LE(report.at("A").finish, b.attempts.front().start);

  const TaskRecord& d = report.at("D");
  EXPECT_TRUE(d.attempts.empty());
  EXPECT_FALSE(d.ready.has_value());
  EXPECT_EQ(d.skipped_by, std::vector<std::string>{"B"});
  EXPECT_EQ(d.queue_wait, 0ns);
  EXPECT_GE(d.finish, b.attempts.back().end);

  EXPECT_EQ(report.find("nope"), nullptr);
  EXPECT_THROW((void)report.at("nope"), std::out_of_range);
}

TEST_P(Observability, JsonOfTheFailureExample) {
  TaskScheduler scheduler(GetParam());
  AddFailureExample(scheduler);
  const ResultSet results = RunRecorded(scheduler);
  ASSERT_NE(results.report(), nullptr);
  const json doc = json::parse(results.report()->to_json());

  EXPECT_EQ(doc.at("workers"), GetParam());
  EXPECT_GE(doc.at("makespan_ns").get<std::int64_t>(), 0);
  EXPECT_EQ(doc.at("counts"), json({{"success", 3}, {"failed", 1}, {"skipped", 1}, {"cancelled", 0}}));
  EXPECT_EQ(doc.at("totals").at("tasks"), 5);
  EXPECT_EQ(doc.at("totals").at("attempts"), 6);
  EXPECT_EQ(doc.at("totals").at("retries"), 2);

  std::map<std::string, json> tasks;
  for (const json& t : doc.at("tasks")) {
    tasks[t.at("id").get<std::string>()] = t;
  }
  ASSERT_EQ(tasks.size(), 5u);
  const std::map<std::string, std::pair<std::string, std::size_t>> expected = {
      {"A", {"success", 1}}, {"B", {"failed", 3}}, {"C", {"success", 1}}, {"D", {"skipped", 0}}, {"E", {"success", 1}}};
  for (const auto& [id, want] : expected) {
    SCOPED_TRACE("task " + id);
    const json& t = tasks.at(id);
    EXPECT_EQ(t.at("status"), want.first);
    ASSERT_EQ(t.at("attempts").size(), want.second);
    for (const json& a : t.at("attempts")) {
      EXPECT_LT(a.at("worker").get<std::size_t>(), GetParam());
      EXPECT_LE(a.at("start_ns").get<std::int64_t>(), a.at("end_ns").get<std::int64_t>());
      EXPECT_EQ(a.at("ok"), want.first == "success");
    }
  }
  const json& b = tasks.at("B");
  EXPECT_EQ(b.at("error"), "B broke");
  EXPECT_EQ(b.at("dependencies"), json({"A"}));
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(b.at("attempts")[k].at("number"), k + 1);
    EXPECT_EQ(b.at("attempts")[k].at("error"), "B broke");
    EXPECT_EQ(b.at("attempts")[k].contains("retry_delay_ns"), k < 2);
  }
  EXPECT_TRUE(tasks.at("A").at("error").is_null());
  EXPECT_TRUE(tasks.at("D").at("ready_ns").is_null());
  EXPECT_EQ(tasks.at("D").at("skipped_by"), json({"B"}));
  EXPECT_EQ(tasks.at("D").at("dependencies"), json({"B", "C"}));

  const json& path = doc.at("critical_path");
  ASSERT_FALSE(path.empty());
  EXPECT_TRUE(path.front() == "A" || path.front() == "E");
  EXPECT_EQ(json::parse(results.report()->to_json(-1)), doc);  // compact form, same document
}

TEST_P(Observability, ChromeTraceOfTheFailureExample) {
  TaskScheduler scheduler(GetParam());
  AddFailureExample(scheduler);
  const ResultSet results = RunRecorded(scheduler);
  ASSERT_NE(results.report(), nullptr);
  std::ostringstream out;
  results.report()->write_chrome_trace(out);
  const json doc = json::parse(out.str());

  ASSERT_TRUE(doc.at("traceEvents").is_array());
  std::map<std::string, int> slices;
  std::size_t retries = 0;
  std::size_t skips = 0;
  std::size_t named_workers = 0;
  for (const json& e : doc.at("traceEvents")) {
    ASSERT_TRUE(e.contains("ph") && e.contains("pid") && e.contains("name")) << e.dump();
    const std::string ph = e.at("ph");
    const std::string name = e.at("name");
    if (ph == "M" && name == "thread_name" && e.at("tid").get<std::size_t>() < GetParam()) {
      ++named_workers;
    }
    if (ph == "X" && e.at("cat").get<std::string>().starts_with("attempt")) {
      ++slices[name];
      EXPECT_LT(e.at("tid").get<std::size_t>(), GetParam());
      EXPECT_GE(e.at("ts").get<double>(), 0.0);
      EXPECT_GE(e.at("dur").get<double>(), 0.0);
      const json& args = e.at("args");
      EXPECT_EQ(args.at("task"), name);
      if (name == "B") {
        EXPECT_EQ(e.at("cname"), "terrible");
        EXPECT_EQ(args.at("error"), "B broke");
        EXPECT_EQ(args.at("task_status"), "failed");
      } else {
        EXPECT_EQ(e.at("cname"), "good");
        EXPECT_EQ(args.at("task_status"), "success");
      }
    }
    if (ph == "i" && name == "retry B") {
      ++retries;
    }
    if (ph == "i" && name == "skipped D") {
      ++skips;
      EXPECT_EQ(e.at("args").at("skipped_by"), json({"B"}));
    }
  }
  EXPECT_EQ(slices, (std::map<std::string, int>{{"A", 1}, {"B", 3}, {"C", 1}, {"E", 1}}));
  EXPECT_EQ(retries, 2u);
  EXPECT_EQ(skips, 1u);
  EXPECT_EQ(named_workers, GetParam());
  EXPECT_EQ(doc.at("displayTimeUnit"), "ms");
}

TEST_P(Observability, RandomGraphsRecordEveryAttempt) {
  const std::uint64_t seed = dagsched_test::CaseSeed(dagsched_test::BaseSeed(), 6000 + GetParam());
  SCOPED_TRACE("seed " + std::to_string(seed) + " (DAGSCHED_TEST_SEED to reproduce)");
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 3; ++round) {
    const dagsched_test::RandomDag dag = dagsched_test::MakeRandomDag(rng, 300);
    TaskScheduler scheduler(GetParam());
    for (std::size_t i = 0; i < dag.size(); ++i) {
      std::vector<std::string> deps;
      for (std::size_t d : dag.deps[i]) {
        deps.push_back(dagsched_test::TaskId(d));
      }
      const bool fails = dagsched_test::Chance(rng, 0.05);
      const int flaky = dagsched_test::Uniform<int>(rng, 0, 2);
      auto calls = std::make_shared<std::atomic<int>>(0);
      scheduler.add_task(
          dagsched_test::TaskId(i),
          [fails, flaky, calls] {
            if (fails || calls->fetch_add(1) < flaky) {
              throw std::runtime_error("boom");
            }
          },
          deps, 2);
    }
    const ResultSet results = RunRecorded(scheduler);
    ASSERT_NE(results.report(), nullptr);
    ExpectConsistent(results, *results.report(), GetParam());
    EXPECT_TRUE(json::accept(results.report()->to_json()));
    std::ostringstream trace;
    results.report()->write_chrome_trace(trace);
    EXPECT_TRUE(json::accept(trace.str()));
  }
}

INSTANTIATE_TEST_SUITE_P(Workers, Observability, testing::ValuesIn(dagsched_test::kWorkerCounts),
                         dagsched_test::WorkerCountName);

TEST(Observability, NoReportUnlessRecorded) {
  TaskScheduler scheduler(2);
  AddFailureExample(scheduler);
  const ResultSet results = scheduler.run();
  EXPECT_EQ(results.report(), nullptr);
}

TEST(Observability, EachRunHasItsOwnReport) {
  TaskScheduler scheduler(2);
  std::atomic<int> runs{0};
  scheduler.add_task("X", [&runs] {
    if (runs.fetch_add(1) == 0) {
      throw std::runtime_error("first run fails");
    }
  });
  scheduler.add_task("Y", [] {}, {"X"});
  const ResultSet first = RunRecorded(scheduler);
  const ResultSet second = RunRecorded(scheduler);
  ASSERT_NE(first.report(), nullptr);
  ASSERT_NE(second.report(), nullptr);
  EXPECT_NE(first.report(), second.report());
  EXPECT_EQ(first.report()->at("X").status, Status::failed);
  EXPECT_EQ(first.report()->at("Y").status, Status::skipped);
  EXPECT_EQ(second.report()->at("X").status, Status::success);
  EXPECT_EQ(second.report()->at("Y").status, Status::success);
  EXPECT_LE(first.report()->end(), second.report()->start());
}

TEST(Observability, UserObserverAndRecordTogether) {
  struct Counting : dagsched::Observer {
    std::atomic<int> attempts{0};
    std::atomic<int> finished{0};
    void on_attempt_start(const dagsched::TaskEvent&) override { attempts.fetch_add(1); }
    void on_task_finish(const dagsched::TaskEvent&, const dagsched::TaskResult&) override { finished.fetch_add(1); }
  };
  auto counting = std::make_shared<Counting>();
  TaskScheduler scheduler(3);
  AddFailureExample(scheduler);
  RunOptions options;
  options.observer = counting;
  const ResultSet results = RunRecorded(scheduler, options);
  ASSERT_NE(results.report(), nullptr);
  EXPECT_EQ(counting->attempts.load(), 6);
  EXPECT_EQ(counting->finished.load(), 5);
  EXPECT_EQ(results.report()->attempt_count(), 6u);
}

TEST(Observability, CancelledTasksAreReported) {
  TaskScheduler scheduler(1);
  dagsched_test::Flag entered;
  dagsched_test::Flag release;
  scheduler.add_task("gate", [&] {
    entered.set();
    EXPECT_TRUE(release.wait_for(dagsched_test::kGenerousTimeout));
  });
  scheduler.add_task("later", [] {}, {"gate"});
  dagsched_test::Watchdog watchdog("cancelled run");
  RunOptions options;
  options.record = true;
  dagsched::RunHandle run = scheduler.start(options);
  ASSERT_TRUE(entered.wait_for(dagsched_test::kGenerousTimeout));
  run.cancel();
  release.set();
  const ResultSet results = run.wait();
  ASSERT_NE(results.report(), nullptr);
  const RunReport& report = *results.report();
  ExpectConsistent(results, report, 1);
  EXPECT_EQ(report.at("gate").status, Status::success);
  EXPECT_EQ(report.at("later").status, Status::cancelled);
  EXPECT_TRUE(report.at("later").attempts.empty());
  EXPECT_EQ(report.count(Status::cancelled), 1u);
  EXPECT_EQ(json::parse(report.to_json()).at("counts").at("cancelled"), 1);
  std::ostringstream trace;
  report.write_chrome_trace(trace);
  EXPECT_NE(trace.str().find("\"name\":\"cancelled later\""), std::string::npos) << trace.str();
  EXPECT_NE(NodeLine(scheduler.to_dot(results), "n1").find("fillcolor=\"#fff3c4\""), std::string::npos);
}

TEST(Observability, ChainCriticalPathAndMakespan) {
  // "third" waits until "side" has finished (its finish event raised), so the chain surely ends last.
  struct SideWatcher : dagsched::Observer {
    dagsched_test::Flag side_finished;
    void on_task_finish(const dagsched::TaskEvent& event, const dagsched::TaskResult&) override {
      if (event.id == "side") {
        side_finished.set();
      }
    }
  };
  auto watcher = std::make_shared<SideWatcher>();
  TaskScheduler scheduler(2);
  scheduler.add_task("first", [] { std::this_thread::sleep_for(2ms); });
  scheduler.add_task("second", [] { std::this_thread::sleep_for(2ms); }, {"first"});
  scheduler.add_task("third",
                     [&watcher] {
                       EXPECT_TRUE(watcher->side_finished.wait_for(dagsched_test::kGenerousTimeout));
                       std::this_thread::sleep_for(2ms);
                     },
                     {"second"});
  scheduler.add_task("side", [] {});
  RunOptions options;
  options.observer = watcher;
  const ResultSet results = RunRecorded(scheduler, options);
  const RunReport& report = *results.report();
  std::vector<std::string> path;
  for (std::uint32_t i : report.critical_path()) {
    path.push_back(report.tasks()[i].id);
  }
  EXPECT_EQ(path, (std::vector<std::string>{"first", "second", "third"}));
  EXPECT_GE(report.makespan(), 6ms);
  EXPECT_GE(report.at("second").busy, 2ms);
  EXPECT_GE(report.total_busy(), 6ms);
  EXPECT_EQ(report.end(), report.at("third").finish);
  const std::string dot = scheduler.to_dot(results);  // the critical path's edges are drawn bold
  EXPECT_NE(dot.find("n0 -> n1 [penwidth=2.5"), std::string::npos) << dot;
  EXPECT_NE(dot.find("n1 -> n2 [penwidth=2.5"), std::string::npos) << dot;
}

TEST(Observability, DelayedRetryIsRecorded) {
  TaskScheduler scheduler(2);
  std::atomic<int> calls{0};
  dagsched::TaskOptions options;
  options.retries = 1;
  options.retry.delay = 5ms;
  scheduler.add_task(
      "flaky",
      [&calls] {
        if (calls.fetch_add(1) == 0) {
          throw std::runtime_error("not yet");
        }
      },
      {}, options);
  const ResultSet results = RunRecorded(scheduler);
  const TaskRecord& t = results.report()->at("flaky");
  ASSERT_EQ(t.attempts.size(), 2u);
  EXPECT_TRUE(t.attempts[0].retried);
  EXPECT_EQ(t.attempts[0].retry_delay, 5ms);
  EXPECT_EQ(t.attempts[0].error, "not yet");
  EXPECT_GE(t.attempts[1].start - t.attempts[0].end, 5ms);
  EXPECT_TRUE(t.attempts[1].ok);
  EXPECT_EQ(t.status, Status::success);
  EXPECT_GE(t.elapsed(), 5ms);
}

TEST(Observability, EmptyRunReport) {
  TaskScheduler scheduler(2);
  const ResultSet results = RunRecorded(scheduler);
  if (results.report() == nullptr) {
    GTEST_SKIP() << "an empty run produced no report";
  }
  EXPECT_TRUE(results.report()->tasks().empty());
  EXPECT_TRUE(results.report()->critical_path().empty());
  EXPECT_EQ(json::parse(results.report()->to_json()).at("tasks").size(), 0u);
  std::ostringstream trace;
  results.report()->write_chrome_trace(trace);
  EXPECT_TRUE(json::accept(trace.str()));
}

TEST(Observability, JsonSurvivesAwkwardIds) {
  TaskScheduler scheduler(1);
  scheduler.add_task("quote\"back\\slash\nnewline", [] {});
  scheduler.add_task("bad utf-8 \xff\xfe", []() { throw std::runtime_error("bad \xc3 too"); });
  const ResultSet results = RunRecorded(scheduler);
  const json doc = json::parse(results.report()->to_json());
  EXPECT_EQ(doc.at("tasks")[0].at("id"), "quote\"back\\slash\nnewline");
  EXPECT_EQ(doc.at("tasks").size(), 2u);
  std::ostringstream trace;
  results.report()->write_chrome_trace(trace);
  EXPECT_TRUE(json::accept(trace.str()));
}

// --- to_dot ---

TEST(Dot, GraphHasEveryTaskAndEdge) {
  TaskScheduler scheduler(2);
  AddFailureExample(scheduler);  // indices: A 0, B 1, C 2, D 3, E 4
  const std::string dot = scheduler.to_dot();
  EXPECT_EQ(dot.rfind("digraph dagsched {", 0), 0u) << dot;
  EXPECT_EQ(dot.back(), '\n');
  const char* ids[] = {"A", "B", "C", "D", "E"};
  for (int i = 0; i < 5; ++i) {
    EXPECT_NE(NodeLine(dot, "n" + std::to_string(i)).find("[label=\""s + ids[i] + "\"]"), std::string::npos) << dot;
  }
  for (const char* edge : {"n0 -> n1;", "n0 -> n2;", "n1 -> n3;", "n2 -> n3;"}) {
    EXPECT_EQ(Count(dot, edge), 1u) << edge << "\n" << dot;
  }
  EXPECT_EQ(Count(dot, " -> "), 4u) << dot;
  EXPECT_EQ(Count(dot, "fillcolor=\"#"), 0u) << "no colours before a run\n" << dot;
}

TEST(Dot, UnknownDependencyIsDashed) {
  TaskScheduler scheduler(1);
  scheduler.add_task("X", [] {}, {"missing"});
  const std::string dot = scheduler.to_dot();
  const std::string missing = NodeLine(dot, "n1");
  EXPECT_NE(missing.find("label=\"missing\\n(not registered)\""), std::string::npos) << dot;
  EXPECT_NE(missing.find("dashed"), std::string::npos) << dot;
  EXPECT_NE(dot.find("n1 -> n0 [style=dashed"), std::string::npos) << dot;
}

TEST(Dot, RunIsColouredByStatus) {
  TaskScheduler scheduler(2);
  AddFailureExample(scheduler);
  const ResultSet results = RunRecorded(scheduler);
  const std::string dot = scheduler.to_dot(results);
  const std::string a = NodeLine(dot, "n0");
  const std::string b = NodeLine(dot, "n1");
  const std::string d = NodeLine(dot, "n3");
  EXPECT_NE(a.find("label=\"A\\nsuccess, 1 attempt, "), std::string::npos) << dot;
  EXPECT_NE(a.find("fillcolor=\"#c8e6c9\""), std::string::npos) << dot;
  EXPECT_NE(b.find("label=\"B\\nfailed, 3 attempts, "), std::string::npos) << dot;
  EXPECT_NE(b.find("fillcolor=\"#ffcdd2\""), std::string::npos) << dot;
  EXPECT_NE(b.find("tooltip=\"B broke\""), std::string::npos) << dot;
  EXPECT_NE(d.find("label=\"D\\nskipped, 0 attempts\""), std::string::npos) << dot;
  EXPECT_NE(d.find("fillcolor=\"#eeeeee\""), std::string::npos) << dot;
  EXPECT_NE(d.find("tooltip=\"skipped because of: B\""), std::string::npos) << dot;
  // The failure that skipped D is red; a duration shows in every label of a task that ran.
  EXPECT_NE(dot.find("n1 -> n3 [style=dashed, color=\"#c62828\""), std::string::npos) << dot;
  EXPECT_NE(dot.find("label=\"5 tasks: 3 succeeded, 1 failed, 1 skipped, 0 cancelled; makespan "), std::string::npos)
      << dot;
}

TEST(Dot, UnrecordedRunHasNoDurations) {
  TaskScheduler scheduler(2);
  AddFailureExample(scheduler);
  const ResultSet results = scheduler.run();
  const std::string dot = scheduler.to_dot(results);
  EXPECT_NE(NodeLine(dot, "n1").find("label=\"B\\nfailed, 3 attempts\""), std::string::npos) << dot;
  EXPECT_EQ(dot.find("makespan"), std::string::npos) << dot;
}

TEST(Dot, IdsAreEscaped) {
  TaskScheduler scheduler(1);
  scheduler.add_task("say \"hi\"", [] {});
  scheduler.add_task("back\\slash", [] {}, {"say \"hi\""});
  scheduler.add_task("two\nlines", [] {}, {"back\\slash"});
  scheduler.add_task("}; digraph evil {", [] {});
  const std::string dot = scheduler.to_dot(scheduler.run());
  EXPECT_NE(NodeLine(dot, "n0").find("label=\"say \\\"hi\\\"\\n"), std::string::npos) << dot;
  EXPECT_NE(NodeLine(dot, "n1").find("label=\"back\\\\slash\\n"), std::string::npos) << dot;
  EXPECT_NE(NodeLine(dot, "n2").find("label=\"two\\nlines\\n"), std::string::npos) << dot;
  EXPECT_EQ(Count(dot, "digraph"), 2u);  // the real one and the label's text
  EXPECT_EQ(Count(dot, "\n}\n"), 1u);

  // Graphviz itself must accept it (CI installs it; skipped where it is absent).
  if (std::system("command -v dot >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "Graphviz dot not installed";
  }
  const std::string path = testing::TempDir() + "dagsched_escaped.dot";
  std::ofstream(path) << dot;
  EXPECT_EQ(std::system(("dot -Tsvg '" + path + "' -o /dev/null").c_str()), 0) << dot;
  std::remove(path.c_str());
}

// --- summary ---

TEST(Summary, RecordedFailureExample) {
  TaskScheduler scheduler(2);
  AddFailureExample(scheduler);
  const ResultSet results = RunRecorded(scheduler);
  const std::string text = dagsched::summary(results);
  EXPECT_EQ(text, results.report()->summary());
  EXPECT_NE(text.find("5 tasks on 2 workers in "), std::string::npos) << text;
  EXPECT_NE(text.find("3 succeeded, 1 failed, 1 skipped, 0 cancelled; 6 attempts (2 retries)"), std::string::npos)
      << text;
  EXPECT_NE(text.find("failed:\n  B after 3 attempts: B broke\n"), std::string::npos) << text;
  EXPECT_NE(text.find("skipped:\n  D, because B failed\n"), std::string::npos) << text;
  EXPECT_NE(text.find("slowest (time in the body):\n"), std::string::npos) << text;
  EXPECT_NE(text.find("critical path ("), std::string::npos) << text;
  EXPECT_EQ(Count(results.report()->summary(2), ", worker "), 2u) << "two slowest tasks";
}

TEST(Summary, UnrecordedRunStillListsFailures) {
  TaskScheduler scheduler(2);
  AddFailureExample(scheduler);
  const std::string text = dagsched::summary(scheduler.run());
  EXPECT_NE(text.find("5 tasks: 3 succeeded, 1 failed, 1 skipped, 0 cancelled; 6 attempts (2 retries)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  B after 3 attempts: B broke\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  D, because B failed\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("critical path"), std::string::npos) << text;
}

TEST(Summary, LongListsAreCut) {
  TaskScheduler scheduler(2);
  for (int i = 0; i < 30; ++i) {
    scheduler.add_task("f" + std::to_string(i), [] { throw std::runtime_error("no"); });
  }
  const std::string text = dagsched::summary(scheduler.run());
  EXPECT_EQ(Count(text, ": no\n"), 20u) << text;
  EXPECT_NE(text.find("  ... and 10 more\n"), std::string::npos) << text;
}

TEST(Summary, ErrorMessage) {
  EXPECT_EQ(dagsched::error_message(nullptr), "");
  EXPECT_EQ(dagsched::error_message(std::make_exception_ptr(std::runtime_error("x"))), "x");
  EXPECT_EQ(dagsched::error_message(std::make_exception_ptr(42)), "(unknown exception)");
}

// --- ProgressObserver ---

TEST(Progress, FinalCallHasExactCounts) {
  std::mutex mutex;
  std::vector<Progress> calls;
  std::atomic<int> inside{0};
  std::atomic<bool> overlapped{false};
  auto observer = std::make_shared<ProgressObserver>(
      [&](const Progress& p) {
        if (inside.fetch_add(1) != 0) {
          overlapped = true;
        }
        {
          std::lock_guard<std::mutex> lock(mutex);
          calls.push_back(p);
        }
        inside.fetch_sub(1);
      },
      0ms);
  TaskScheduler scheduler(4);
  AddFailureExample(scheduler);
  for (int i = 0; i < 200; ++i) {
    scheduler.add_task("extra" + std::to_string(i), [] {}, {"A"});
  }
  dagsched_test::Watchdog watchdog("progress run");
  const ResultSet results = scheduler.run({.observer = observer});
  std::lock_guard<std::mutex> lock(mutex);
  ASSERT_GE(calls.size(), 2u);
  EXPECT_FALSE(overlapped.load());
  EXPECT_EQ(calls.front().total, 205u);
  EXPECT_EQ(calls.front().finished, 0u);
  const Progress& last = calls.back();
  EXPECT_EQ(last.total, 205u);
  EXPECT_EQ(last.finished, 205u);
  EXPECT_EQ(last.succeeded, 203u);
  EXPECT_EQ(last.failed, 1u);
  EXPECT_EQ(last.skipped, 1u);
  EXPECT_EQ(last.cancelled, 0u);
  EXPECT_EQ(last.running, 0u);
  EXPECT_EQ(last.waiting, 0u);
  for (const Progress& p : calls) {
    EXPECT_LE(p.finished, p.total);
    EXPECT_LE(p.running, 4u);
  }
  const Progress now = observer->progress();
  EXPECT_EQ(now.finished, 205u);
}

TEST(Progress, IsThrottled) {
  std::atomic<int> calls{0};
  auto observer = std::make_shared<ProgressObserver>([&](const Progress&) { calls.fetch_add(1); }, 1h);
  TaskScheduler scheduler(4);
  for (int i = 0; i < 1000; ++i) {
    scheduler.add_task("t" + std::to_string(i), [] {});
  }
  dagsched_test::Watchdog watchdog("throttled run");
  (void)scheduler.run({.observer = observer});
  EXPECT_EQ(calls.load(), 2) << "once at the start, once at the end";
  (void)scheduler.run({.observer = observer});
  EXPECT_EQ(calls.load(), 4) << "the observer watches a second run afresh";
  EXPECT_EQ(observer->progress().finished, 1000u);
}

TEST(Progress, SeesRunningAndWaitingTasks) {
  auto observer = std::make_shared<ProgressObserver>([](const Progress&) {}, 1h);
  TaskScheduler scheduler(2);
  std::atomic<int> calls{0};
  dagsched::TaskOptions options;
  options.retries = 1;
  options.retry.delay = 300ms;
  scheduler.add_task(
      "waits",
      [&calls] {
        if (calls.fetch_add(1) == 0) {
          throw std::runtime_error("later");
        }
      },
      {}, options);
  std::atomic<bool> saw{false};
  scheduler.add_task("watcher", [&] {
    const auto deadline = std::chrono::steady_clock::now() + dagsched_test::kGenerousTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      const Progress p = observer->progress();
      if (p.waiting == 1 && p.running >= 1) {
        saw = true;
        return;
      }
      std::this_thread::sleep_for(1ms);
    }
  });
  dagsched_test::Watchdog watchdog("waiting run");
  const ResultSet results = scheduler.run({.observer = observer});
  EXPECT_TRUE(saw.load()) << "never saw the delayed retry waiting while the watcher ran";
  EXPECT_EQ(results.at("waits").attempts, 2);
  EXPECT_EQ(observer->progress().waiting, 0u);
}

TEST(Progress, RejectsBadArguments) {
  EXPECT_THROW(ProgressObserver(nullptr), std::invalid_argument);
  EXPECT_THROW(ProgressObserver([](const Progress&) {}, -1ms), std::invalid_argument);
}

}  // namespace
