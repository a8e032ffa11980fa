// RunHandle::progress() while a run is blocked, waiting for a retry, and at its end; and the Observer
// callbacks: their order per task, what skipped and cancelled tasks get, the run's first and last events,
// and callbacks that call progress() or cancel().
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dagsched/dagsched.hpp"
#include "test_util.hpp"

namespace {

using dagsched::Progress;
using dagsched::ResultSet;
using dagsched::RunHandle;
using dagsched::RunOptions;
using dagsched::Status;
using dagsched::TaskContext;
using dagsched::TaskEvent;
using dagsched::TaskOptions;
using dagsched::TaskScheduler;
using dagsched_test::DescribeError;
using dagsched_test::ErrorIs;
using dagsched_test::Flag;
using dagsched_test::kGenerousTimeout;
using dagsched_test::PollProgress;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

RunOptions Observed(std::shared_ptr<dagsched::Observer> observer) {
  RunOptions o;
  o.observer = std::move(observer);
  return o;
}

std::string Describe(const Progress& p) {
  return "total " + std::to_string(p.total) + " finished " + std::to_string(p.finished) + " running " +
         std::to_string(p.running) + " waiting " + std::to_string(p.waiting) + " succeeded " +
         std::to_string(p.succeeded) + " failed " + std::to_string(p.failed) + " skipped " + std::to_string(p.skipped) +
         " cancelled " + std::to_string(p.cancelled);
}

// The snapshot's counts are self-consistent (they may lag, but never exceed the total or wrap around).
void ExpectPlausible(const Progress& p, std::size_t total) {
  EXPECT_EQ(p.total, total) << Describe(p);
  EXPECT_LE(p.finished, p.total) << Describe(p);
  EXPECT_LE(p.succeeded, p.finished) << Describe(p);
  EXPECT_LE(p.failed + p.skipped + p.cancelled, p.finished) << Describe(p);
  EXPECT_LE(p.waiting, p.total) << Describe(p);
}

void ExpectExact(const Progress& p, const ResultSet& r) {
  EXPECT_EQ(p.total, r.size()) << Describe(p);
  EXPECT_EQ(p.finished, r.size()) << Describe(p);
  EXPECT_EQ(p.running, 0u) << Describe(p);
  EXPECT_EQ(p.waiting, 0u) << Describe(p);
  EXPECT_EQ(p.succeeded, r.count(Status::success)) << Describe(p);
  EXPECT_EQ(p.failed, r.count(Status::failed)) << Describe(p);
  EXPECT_EQ(p.skipped, r.count(Status::skipped)) << Describe(p);
  EXPECT_EQ(p.cancelled, r.count(Status::cancelled)) << Describe(p);
}

// ---------------------------------------------------------------------------------------------------------
// Progress

TEST(Progress, EmptyHandleReportsZeros) {
  const RunHandle h;
  const Progress p = h.progress();
  EXPECT_EQ(p.total, 0u);
  EXPECT_EQ(p.finished, 0u);
  EXPECT_EQ(p.running, 0u);
  EXPECT_EQ(p.waiting, 0u);
  EXPECT_EQ(p.succeeded + p.failed + p.skipped + p.cancelled, 0u);
}

TEST(Progress, WhileBlockedAndAtTheEnd) {
  TaskScheduler s(4);
  Flag release;
  dagsched_test::Rendezvous blocked(4);  // 3 blocked tasks + this thread
  s.add_task("quick0", [] { return 0; });
  s.add_task("quick1", [] { return 1; });
  for (int i = 0; i < 3; ++i) {
    s.add_task("block" + std::to_string(i), [&] {
      EXPECT_TRUE(blocked.arrive_and_wait_for(kGenerousTimeout));
      EXPECT_TRUE(release.wait_for(kGenerousTimeout));
    });
  }
  for (int i = 0; i < 5; ++i) {
    s.add_task("dep" + std::to_string(i), [] {}, {"block" + std::to_string(i % 3)});
  }
  RunHandle h = s.start();
  ASSERT_TRUE(blocked.arrive_and_wait_for(kGenerousTimeout));
  const Progress p = PollProgress(h, [](const Progress& q) { return q.finished == 2 && q.running == 3; });
  ExpectPlausible(p, 10);
  EXPECT_EQ(p.finished, 2u) << Describe(p);
  EXPECT_EQ(p.running, 3u) << Describe(p);
  EXPECT_EQ(p.waiting, 0u) << Describe(p);
  EXPECT_EQ(p.succeeded, 2u) << Describe(p);
  EXPECT_EQ(p.failed + p.skipped + p.cancelled, 0u) << Describe(p);

  release.set();
  ASSERT_TRUE(h.wait_for(kGenerousTimeout));
  const Progress end = h.progress();  // before wait(): exact once the run is done
  const ResultSet r = h.wait();
  ExpectExact(end, r);
  EXPECT_EQ(end.succeeded, 10u);
}

TEST(Progress, CountsATaskWaitingForItsRetry) {
  TaskScheduler s(2);
  TaskOptions o;
  o.retries = 2;
  o.retry.delay = 60s;
  s.add_task(
      "retrying", []() -> int { throw std::runtime_error("later"); }, {}, o);
  s.add_task("child", [] {}, {"retrying"});
  s.add_task("bad", []() -> int { throw std::runtime_error("bad"); });
  s.add_task("skipped", [] {}, {"bad"});
  s.add_task("ok", [] {});
  RunHandle h = s.start();
  const Progress p =
      PollProgress(h, [](const Progress& q) { return q.waiting == 1 && q.finished == 3 && q.running == 0; });
  ExpectPlausible(p, 5);
  EXPECT_EQ(p.waiting, 1u) << Describe(p);
  EXPECT_EQ(p.finished, 3u) << Describe(p);
  EXPECT_EQ(p.running, 0u) << Describe(p);
  EXPECT_EQ(p.failed, 1u) << Describe(p);
  EXPECT_EQ(p.skipped, 1u) << Describe(p);
  EXPECT_EQ(p.succeeded, 1u) << Describe(p);

  h.cancel();
  ASSERT_TRUE(h.wait_for(kGenerousTimeout));
  const Progress end = h.progress();
  const ResultSet r = h.wait();
  ExpectExact(end, r);
  EXPECT_EQ(end.cancelled, 2u);
  EXPECT_EQ(r.at("retrying").status, Status::cancelled);
  EXPECT_EQ(r.at("retrying").attempts, 1);
}

class ProgressAt : public testing::TestWithParam<std::size_t> {};

TEST_P(ProgressAt, ExactAtTheEndOfAMixedRun) {
  TaskScheduler s(GetParam());
  constexpr int kTasks = 3000;
  for (int i = 0; i < kTasks; ++i) {
    const std::string id = "t" + std::to_string(i);
    if (i % 10 == 3) {
      s.add_task(id, []() -> int { throw std::runtime_error("x"); });
    } else if (i > 10 && i % 10 == 4) {
      s.add_task(id, [] {}, {"t" + std::to_string(i - 1)});  // skipped
    } else {
      s.add_task(id, [] {});
    }
  }
  RunHandle h = s.start();
  // Snapshots taken during the run are plausible.
  while (!h.done()) {
    ExpectPlausible(h.progress(), kTasks);
    std::this_thread::yield();
  }
  ASSERT_TRUE(h.wait_for(kGenerousTimeout));
  const Progress end = h.progress();
  const ResultSet r = h.wait();
  ExpectExact(end, r);
  EXPECT_EQ(end.failed, 300u);
}

INSTANTIATE_TEST_SUITE_P(Workers, ProgressAt, testing::ValuesIn(dagsched_test::kWorkerCounts),
                         dagsched_test::WorkerCountName);

// ---------------------------------------------------------------------------------------------------------
// Observer

struct Event {
  std::string kind;  // run_start, ready, start, end, retry, finish, run_end
  std::string id;
  std::uint32_t index = 0;
  int attempt = 0;
  std::uint32_t worker = 0;
  Clock::time_point time;
  std::thread::id thread;
  bool error = false;
  std::string error_text;
  nanoseconds delay{0};
  Status status = Status::skipped;
  int attempts = 0;
  std::vector<std::string> causes;
  std::size_t tasks = 0;
  std::size_t workers = 0;
};

class Recorder : public dagsched::Observer {
 public:
  void on_run_start(std::size_t tasks, std::size_t workers) override {
    Event e;
    e.kind = "run_start";
    e.tasks = tasks;
    e.workers = workers;
    push(std::move(e));
  }
  void on_task_ready(const TaskEvent& event) override { push(from(event, "ready")); }
  void on_attempt_start(const TaskEvent& event) override { push(from(event, "start")); }
  void on_attempt_end(const TaskEvent& event, const std::exception_ptr& error) override {
    Event e = from(event, "end");
    e.error = static_cast<bool>(error);
    e.error_text = DescribeError(error);
    push(std::move(e));
  }
  void on_retry_scheduled(const TaskEvent& event, nanoseconds delay) override {
    Event e = from(event, "retry");
    e.delay = delay;
    push(std::move(e));
  }
  void on_task_finish(const TaskEvent& event, const dagsched::TaskResult& result) override {
    Event e = from(event, "finish");
    e.status = result.status;
    e.attempts = result.attempts;
    e.causes.assign(result.skip_causes().begin(), result.skip_causes().end());
    push(std::move(e));
  }
  void on_run_end(const ResultSet& results) override {
    Event e;
    e.kind = "run_end";
    e.tasks = results.size();
    push(std::move(e));
  }

  [[nodiscard]] std::vector<Event> events() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_events;
  }
  [[nodiscard]] std::map<std::string, std::vector<Event>> by_task() const {
    std::map<std::string, std::vector<Event>> out;
    for (const Event& e : events()) {
      if (!e.id.empty()) {
        out[e.id].push_back(e);
      }
    }
    return out;
  }

 protected:
  virtual void also(const Event& /*event*/) {}

 private:
  static Event from(const TaskEvent& event, const char* kind) {
    Event e;
    e.kind = kind;
    e.id = event.id;
    e.index = event.index;
    e.attempt = event.attempt;
    e.worker = event.worker;
    e.time = event.time;
    return e;
  }
  void push(Event e) {
    e.thread = std::this_thread::get_id();
    also(e);
    std::lock_guard<std::mutex> lock(m_mutex);
    m_events.push_back(std::move(e));
  }

  mutable std::mutex m_mutex;
  std::vector<Event> m_events;
};

// The kinds of a task's events as one string, e.g. "ready start end retry start end finish".
std::string Kinds(const std::vector<Event>& events) {
  std::string out;
  for (const Event& e : events) {
    out += (out.empty() ? "" : " ") + e.kind;
  }
  return out;
}

// One task's events follow: ready (start end (retry start end)*)? finish, attempts numbered 1, 2, ...,
// with `retry` also allowed right before `finish` when `retry_then_finish` (a cancelled wait).
void ExpectWellFormed(const std::string& id, const std::vector<Event>& events, const dagsched::TaskResult& result,
                      std::size_t workers, bool retry_then_finish = false) {
  SCOPED_TRACE(id + ": " + Kinds(events));
  ASSERT_FALSE(events.empty());
  const Event& last = events.back();
  ASSERT_EQ(last.kind, "finish");
  EXPECT_EQ(last.status, result.status);
  EXPECT_EQ(last.attempts, result.attempts);
  const std::vector<std::string> causes(result.skip_causes().begin(), result.skip_causes().end());
  EXPECT_EQ(last.causes, causes);
  if (result.attempts == 0) {
    // Never started. Skipped: only the finish. Cancelled: the finish, after on_task_ready if it was queued
    // when the run was cancelled.
    EXPECT_EQ(last.attempt, 0);
    if (result.status == Status::cancelled && events.size() == 2) {
      EXPECT_EQ(events.front().kind, "ready");
    } else {
      EXPECT_EQ(events.size(), 1u);
    }
    return;
  }
  ASSERT_EQ(events.front().kind, "ready");
  int attempt = 0;
  std::string expect = "start";
  for (std::size_t i = 1; i + 1 < events.size(); ++i) {
    const Event& e = events[i];
    if (e.kind == "start") {
      ASSERT_EQ(expect, "start") << "at event " << i;
      ++attempt;
      EXPECT_EQ(e.attempt, attempt);
      EXPECT_LT(e.worker, workers);
      expect = "end";
    } else if (e.kind == "end") {
      ASSERT_EQ(expect, "end") << "at event " << i;
      EXPECT_EQ(e.attempt, attempt);
      EXPECT_LT(e.worker, workers);
      expect = e.error ? "retry" : "finish";
    } else if (e.kind == "retry") {
      ASSERT_EQ(expect, "retry") << "at event " << i;
      EXPECT_LE(e.worker, workers);
      expect = "start";
    } else {
      ADD_FAILURE() << "unexpected " << e.kind << " at event " << i;
    }
    EXPECT_LE(events[i - 1].time, e.time);
  }
  EXPECT_TRUE(expect == "retry" || expect == "finish" || (retry_then_finish && expect == "start"))
      << "ended expecting " << expect;
  EXPECT_EQ(attempt, result.attempts);
  EXPECT_LE(last.worker, workers);
}

class ObserverAt : public testing::TestWithParam<std::size_t> {
 protected:
  [[nodiscard]] std::size_t workers() const { return GetParam(); }
};

TEST_P(ObserverAt, EventsComeInOrderPerTask) {
  TaskScheduler s(workers());
  auto recorder = std::make_shared<Recorder>();
  std::atomic<int> flaky_calls{0};
  std::atomic<int> quick_calls{0};
  s.add_task("ok", [] { return 1; });
  TaskOptions flaky;
  flaky.retries = 2;
  flaky.retry.delay = 1ms;
  flaky.retry.backoff = 2.0;
  s.add_task(
      "flaky",
      [&]() -> int {
        if (++flaky_calls < 3) {
          throw std::runtime_error("flaky");
        }
        return 3;
      },
      {}, flaky);
  s.add_task(
      "quick_retry",
      [&]() -> int {
        if (++quick_calls < 2) {
          throw std::runtime_error("quick");
        }
        return 2;
      },
      {}, 1);
  s.add_task(
      "bad", []() -> int { throw std::runtime_error("bad"); }, {}, 1);
  s.add_task("skipped", [] {}, {"bad"});
  s.add_task("skipped2", [] {}, {"skipped", "ok"});
  s.add_task("child", [] {}, {"flaky", "ok"});
  const std::thread::id main_thread = std::this_thread::get_id();
  const ResultSet r = s.run(Observed(recorder));
  const std::vector<Event> events = recorder->events();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.front().kind, "run_start");
  EXPECT_EQ(events.front().tasks, 7u);
  EXPECT_EQ(events.front().workers, workers());
  EXPECT_EQ(events.front().thread, main_thread);
  EXPECT_EQ(events.back().kind, "run_end");
  EXPECT_EQ(events.back().tasks, 7u);
  EXPECT_EQ(events.back().thread, main_thread);
  for (std::size_t i = 1; i + 1 < events.size(); ++i) {
    EXPECT_NE(events[i].kind, "run_start");
    EXPECT_NE(events[i].kind, "run_end");
    EXPECT_EQ(r.name_at(events[i].index), events[i].id) << events[i].kind;
  }
  const auto per_task = recorder->by_task();
  ASSERT_EQ(per_task.size(), 7u);
  for (const auto& [id, result] : r) {
    ASSERT_TRUE(per_task.count(id)) << id;
    ExpectWellFormed(id, per_task.at(id), result, workers());
  }
  EXPECT_EQ(Kinds(per_task.at("ok")), "ready start end finish");
  EXPECT_EQ(Kinds(per_task.at("flaky")), "ready start end retry start end retry start end finish");
  EXPECT_EQ(Kinds(per_task.at("bad")), "ready start end retry start end finish");
  EXPECT_EQ(Kinds(per_task.at("quick_retry")), "ready start end retry start end finish");
  EXPECT_EQ(Kinds(per_task.at("skipped")), "finish");
  EXPECT_EQ(Kinds(per_task.at("skipped2")), "finish");
  EXPECT_EQ(per_task.at("skipped2").back().causes, std::vector<std::string>{"bad"});
  // The waits announced are the policy's: 1 ms, then 2 ms; zero for an immediate retry.
  std::vector<nanoseconds> flaky_delays;
  for (const Event& e : per_task.at("flaky")) {
    if (e.kind == "retry") {
      flaky_delays.push_back(e.delay);
    }
  }
  EXPECT_EQ(flaky_delays, (std::vector<nanoseconds>{1ms, 2ms}));
  for (const Event& e : per_task.at("quick_retry")) {
    if (e.kind == "retry") {
      EXPECT_EQ(e.delay, 0ns);
    }
  }
  for (const Event& e : per_task.at("bad")) {
    if (e.kind == "end") {
      EXPECT_EQ(e.error_text, "bad");
    }
  }
}

TEST_P(ObserverAt, EmptyRunHasOnlyRunStartAndRunEnd) {
  TaskScheduler s(workers());
  auto recorder = std::make_shared<Recorder>();
  const ResultSet r = s.run(Observed(recorder));
  EXPECT_EQ(r.size(), 0u);
  EXPECT_EQ(Kinds(recorder->events()), "run_start run_end");
}

TEST_P(ObserverAt, ManyTasksAllWellFormed) {
  TaskScheduler s(workers());
  auto recorder = std::make_shared<Recorder>();
  std::vector<std::unique_ptr<std::atomic<int>>> calls;
  constexpr int kTasks = 400;
  for (int i = 0; i < kTasks; ++i) {
    calls.push_back(std::make_unique<std::atomic<int>>(0));
  }
  for (int i = 0; i < kTasks; ++i) {
    std::atomic<int>* c = calls[static_cast<std::size_t>(i)].get();
    TaskOptions o;
    o.retries = i % 3;
    o.retry.delay = std::chrono::microseconds(i % 2 == 0 ? 0 : 100);
    const int fail_times = i % 4;
    std::vector<std::string> deps;
    if (i >= 7) {
      deps.push_back("t" + std::to_string(i - 7));
    }
    s.add_task(
        "t" + std::to_string(i),
        [c, fail_times]() -> int {
          if (++*c <= fail_times) {
            throw std::runtime_error("fail");
          }
          return 0;
        },
        deps, o);
  }
  const ResultSet r = s.run(Observed(recorder));
  const auto per_task = recorder->by_task();
  ASSERT_EQ(per_task.size(), static_cast<std::size_t>(kTasks));
  for (const auto& [id, result] : r) {
    ExpectWellFormed(id, per_task.at(id), result, workers());
  }
}

INSTANTIATE_TEST_SUITE_P(Workers, ObserverAt, testing::ValuesIn(dagsched_test::kWorkerCounts),
                         dagsched_test::WorkerCountName);

TEST(Observer, CancelledTasksGetOnlyFinishAndAWaitingTaskFinishesCancelled) {
  TaskScheduler s(2);
  auto recorder = std::make_shared<Recorder>();
  Flag started;
  Flag release;
  s.add_task("head", [&] {
    started.set();
    EXPECT_TRUE(release.wait_for(kGenerousTimeout));
  });
  s.add_task("tail1", [] {}, {"head"});
  s.add_task("tail2", [] {}, {"tail1"});
  TaskOptions o;
  o.retries = 3;
  o.retry.delay = 60s;
  std::atomic<int> waiting_calls{0};
  s.add_task(
      "waiting",
      [&]() -> int {
        ++waiting_calls;
        throw std::runtime_error("later");
      },
      {}, o);
  RunHandle h = s.start(Observed(recorder));
  ASSERT_TRUE(started.wait_for(kGenerousTimeout));
  const Progress p = PollProgress(h, [](const Progress& q) { return q.waiting == 1; });
  EXPECT_EQ(p.waiting, 1u) << Describe(p);
  h.cancel();
  release.set();
  ASSERT_TRUE(h.wait_for(kGenerousTimeout));
  const ResultSet r = h.wait();
  const auto per_task = recorder->by_task();
  EXPECT_EQ(Kinds(per_task.at("head")), "ready start end finish");
  EXPECT_EQ(Kinds(per_task.at("tail1")), "finish");
  EXPECT_EQ(Kinds(per_task.at("tail2")), "finish");
  EXPECT_EQ(per_task.at("tail2").back().status, Status::cancelled);
  EXPECT_EQ(Kinds(per_task.at("waiting")), "ready start end retry finish");
  EXPECT_EQ(per_task.at("waiting").back().status, Status::cancelled);
  EXPECT_EQ(per_task.at("waiting").back().attempts, 1);
  for (const auto& [id, result] : r) {
    ExpectWellFormed(id, per_task.at(id), result, 2, /*retry_then_finish=*/true);
  }
  EXPECT_EQ(recorder->events().back().kind, "run_end");
}

// Roots are ready when the run starts; those a failure then cancels (fail_fast) before they start have seen
// on_task_ready, and finish cancelled with no attempt. Their dependents, readied after the cancellation, get
// only their finish; the failure's dependents, skipped, too.
TEST(Observer, FailFastCancelsQueuedRootsAfterTheirReady) {
  TaskScheduler s(1);  // one worker: roots run in index order, so f0 fails before ok1 and ok2 start
  auto recorder = std::make_shared<Recorder>();
  s.add_task("f0", []() -> int { throw std::runtime_error("f0"); });
  s.add_task("ok1", [] {});
  s.add_task("ok2", [] {});
  s.add_task("after_ok1", [] {}, {"ok1"});
  s.add_task("after_f0", [] {}, {"f0"});
  RunOptions o = Observed(recorder);
  o.failure_policy = dagsched::FailurePolicy::fail_fast();
  const ResultSet r = s.run(o);
  ASSERT_EQ(r.at("ok1").status, Status::cancelled);
  ASSERT_EQ(r.at("ok2").status, Status::cancelled);
  ASSERT_EQ(r.at("after_ok1").status, Status::cancelled);
  ASSERT_EQ(r.at("after_f0").status, Status::skipped);
  const auto per_task = recorder->by_task();
  EXPECT_EQ(Kinds(per_task.at("f0")), "ready start end finish");
  EXPECT_EQ(Kinds(per_task.at("ok1")), "ready finish");
  EXPECT_EQ(Kinds(per_task.at("ok2")), "ready finish");
  EXPECT_EQ(Kinds(per_task.at("after_ok1")), "finish");
  EXPECT_EQ(Kinds(per_task.at("after_f0")), "finish");
  for (const auto& [id, result] : r) {
    ExpectWellFormed(id, per_task.at(id), result, 1);
  }
}

// Callbacks may call progress() and cancel() on the run's handle.
class ProgressCallingRecorder : public Recorder {
 public:
  std::atomic<RunHandle*> handle{nullptr};
  std::atomic<int> calls{0};
  std::atomic<int> implausible{0};
  std::atomic<std::size_t> total_seen{0};
  std::string cancel_after;  // cancel the run when this task's attempt ends

 protected:
  void also(const Event& event) override {
    RunHandle* h = handle.load();
    if (h == nullptr) {
      return;
    }
    const Progress p = h->progress();
    ++calls;
    if (event.kind == "run_end") {
      if (p.finished != p.total) {
        ++implausible;
      }
    }
    if (p.finished > p.total || p.succeeded > p.finished || p.failed + p.skipped + p.cancelled > p.finished) {
      ++implausible;
    }
    total_seen = p.total;
    if (event.kind == "end" && event.id == cancel_after) {
      h->cancel();
    }
  }
};

TEST(Observer, CallbacksMayCallProgressAndCancel) {
  TaskScheduler s(4);
  auto recorder = std::make_shared<ProgressCallingRecorder>();
  recorder->cancel_after = "canceller";
  Flag gate_open;
  std::atomic<int> after_calls{0};
  s.add_task("gate", [&] { EXPECT_TRUE(gate_open.wait_for(kGenerousTimeout)); });
  for (int i = 0; i < 20; ++i) {
    s.add_task("w" + std::to_string(i), [] { return 1; }, {"gate"});
  }
  s.add_task("canceller", [] {}, {"w0", "w1", "w2"});
  std::string prev = "canceller";
  for (int i = 0; i < 50; ++i) {
    std::string id = "after" + std::to_string(i);
    s.add_task(id, [&] { ++after_calls; }, {prev});
    prev = std::move(id);
  }
  RunHandle h = s.start(Observed(recorder));
  recorder->handle = &h;
  gate_open.set();
  ASSERT_TRUE(h.wait_for(kGenerousTimeout));
  const ResultSet r = h.wait();
  recorder->handle = nullptr;
  EXPECT_GT(recorder->calls.load(), 20);
  EXPECT_EQ(recorder->implausible.load(), 0);
  EXPECT_EQ(recorder->total_seen.load(), 72u);
  EXPECT_EQ(r.at("canceller").status, Status::success);
  EXPECT_EQ(after_calls.load(), 0);
  EXPECT_EQ(r.at("after0").status, Status::cancelled);
  EXPECT_EQ(r.at("after49").status, Status::cancelled);
  EXPECT_EQ(recorder->events().back().kind, "run_end");
}

TEST(Observer, AllDoneTaskIsReadyAfterAFailedDependency) {
  TaskScheduler s(2);
  auto recorder = std::make_shared<Recorder>();
  s.add_task("bad", []() -> int { throw std::runtime_error("bad"); });
  s.add_task("skipped", [] {}, {"bad"});
  TaskOptions cleanup;
  cleanup.trigger = dagsched::TriggerRule::all_done;
  s.add_task(
      "cleanup", [] {}, {"bad", "skipped"}, cleanup);
  const ResultSet r = s.run(Observed(recorder));
  EXPECT_EQ(r.at("cleanup").status, Status::success);
  const auto per_task = recorder->by_task();
  EXPECT_EQ(Kinds(per_task.at("skipped")), "finish");
  EXPECT_EQ(Kinds(per_task.at("cleanup")), "ready start end finish");
  for (const auto& [id, result] : r) {
    ExpectWellFormed(id, per_task.at(id), result, 2);
  }
}

TEST(Observer, TimedOutAttemptEndsWithTimeoutError) {
  TaskScheduler s(2);
  auto recorder = std::make_shared<Recorder>();
  TaskOptions o;
  o.timeout = 20ms;
  s.add_task(
      "slow",
      [](TaskContext& ctx) {
        const auto give_up = Clock::now() + kGenerousTimeout;
        while (!ctx.stop_requested() && Clock::now() < give_up) {
          std::this_thread::sleep_for(200us);
        }
      },
      {}, o);
  const ResultSet r = s.run(Observed(recorder));
  EXPECT_TRUE(ErrorIs<dagsched::TimeoutError>(r.at("slow").error));
  const auto per_task = recorder->by_task();
  ASSERT_EQ(Kinds(per_task.at("slow")), "ready start end finish");
  EXPECT_TRUE(per_task.at("slow")[2].error);
  EXPECT_EQ(per_task.at("slow")[3].status, Status::failed);
}

TEST(Observer, ReusedAcrossRuns) {
  TaskScheduler s(2);
  auto recorder = std::make_shared<Recorder>();
  s.add_task("a", [] {});
  static_cast<void>(s.run(Observed(recorder)));
  static_cast<void>(s.run(Observed(recorder)));
  EXPECT_EQ(Kinds(recorder->events()),
            "run_start ready start end finish run_end run_start ready start end finish run_end");
}

}  // namespace
