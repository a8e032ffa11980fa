// Run recording (RunOptions::record): an Observer that appends every event to a buffer owned by the worker
// that reports it, and the step that turns those buffers into a RunReport once the run has ended.
#include "recorder.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

#include "dagsched/result_set.hpp"
#include "dagsched/run_report.hpp"
#include "engine.hpp"
#include "thread_annotations.hpp"

namespace dagsched {

namespace detail {

namespace {

using Clock = std::chrono::steady_clock;

enum class EventKind : std::uint8_t { ready, attempt_start, attempt_end, retry, finish };

struct Event {
  Clock::time_point time;
  std::chrono::nanoseconds delay{0};  // retry: the wait before it
  std::exception_ptr error;           // attempt_end: what the attempt threw, if it threw
  std::uint32_t index = 0;
  std::uint32_t worker = 0;
  int attempt = 0;
  EventKind kind = EventKind::ready;
};

// One buffer per worker, each on cache lines of its own: a worker appends only to its own buffer, so
// recording needs no lock and no atomic, and workers never write to a line another worker writes to.
// Task events of one task may sit in several buffers (readied by one worker, run by another); the
// engine orders them (every hand-over of a task between threads is a release/acquire pair), and
// on_run_end happens after all of them, so reading every buffer in take_report needs no lock either.
struct alignas(64) WorkerBuffer {
  std::vector<Event> events;
};

class Recorder final : public Observer {
 public:
  void on_run_start(std::size_t tasks, std::size_t workers) override {
    m_start = Clock::now();
    m_buffers = std::vector<WorkerBuffer>(workers);
    // About four events per task (ready, start, end, finish): reserve each worker's share up front, so a
    // typical run grows no buffer, but cap it so that a huge run does not commit memory it may not use.
    const std::size_t share = std::min<std::size_t>(4 * tasks / std::max<std::size_t>(workers, 1) + 16, 1 << 16);
    for (WorkerBuffer& buffer : m_buffers) {
      buffer.events.reserve(share);
    }
  }
  void on_task_ready(const TaskEvent& event) override { append(event, EventKind::ready); }
  void on_attempt_start(const TaskEvent& event) override { append(event, EventKind::attempt_start); }
  void on_attempt_end(const TaskEvent& event, const std::exception_ptr& error) override {
    append(event, EventKind::attempt_end, std::chrono::nanoseconds(0), error);
  }
  void on_retry_scheduled(const TaskEvent& event, std::chrono::nanoseconds delay) override {
    append(event, EventKind::retry, delay);
  }
  void on_task_finish(const TaskEvent& event, const TaskResult& /*result*/) override {
    append(event, EventKind::finish);
  }
  void on_run_end(const ResultSet& /*results*/) override {}

  [[nodiscard]] Clock::time_point start() const noexcept { return m_start; }
  [[nodiscard]] std::size_t workers() const noexcept { return m_buffers.size(); }

  /// Calls `f(event)` for every recorded event. Only once the run has ended.
  template <class F>
  void for_each(F&& f) {
    for (const WorkerBuffer& buffer : m_buffers) {
      for (const Event& e : buffer.events) {
        f(e);
      }
    }
    Lock lock(m_shared_mutex);
    for (const Event& e : m_shared) {
      f(e);
    }
  }

 private:
  void append(const TaskEvent& event, EventKind kind, std::chrono::nanoseconds delay = std::chrono::nanoseconds(0),
              const std::exception_ptr& error = nullptr) {
    Event e{event.time, delay, error, event.index, event.worker, event.attempt, kind};
    if (event.worker < m_buffers.size()) {
      m_buffers[event.worker].events.push_back(std::move(e));
    } else {
      // Raised by a thread that is not a worker (the thread starting the run readies the roots; the timer
      // thread may end a waiting task): such threads may run concurrently with each other, and their events
      // are few, so a mutex does.
      Lock lock(m_shared_mutex);
      m_shared.push_back(std::move(e));
    }
  }

  Clock::time_point m_start{};
  std::vector<WorkerBuffer> m_buffers;
  Mutex m_shared_mutex;
  std::vector<Event> m_shared DAGSCHED_GUARDED_BY(m_shared_mutex);
};

}  // namespace

/// Builds a RunReport from a recorder's events, the run's results and its graph.
struct ReportBuilder {
  /// `observer` is a Recorder (made by make_recorder) whose run has ended.
  static std::shared_ptr<const RunReport> build(Observer& observer, const ResultSet& results, const Engine& engine) {
    auto& recorder = static_cast<Recorder&>(observer);
    // Not make_shared: RunReport's constructor is private to this builder.
    std::shared_ptr<RunReport> report(new RunReport());
    RunReport& r = *report;
    r.m_start = recorder.start();
    r.m_end = r.m_start;
    r.m_workers = recorder.workers();
    const std::size_t n = results.size();
    r.m_tasks.resize(n);

    std::size_t index = 0;
    for (const auto& [id, result] : results) {  // index order
      TaskRecord& t = r.m_tasks[index];
      t.index = static_cast<std::uint32_t>(index);
      t.id = id;
      t.status = result.status;
      t.error = error_message(result.error);
      const auto causes = result.skip_causes();
      t.skipped_by.assign(causes.begin(), causes.end());
      if (index < engine.graph.size()) {
        const TaskNode& node = engine.graph.nodes[index];
        t.dependencies.reserve(node.dep_count);
        for (std::uint32_t d = 0; d < node.dep_count; ++d) {
          t.dependencies.push_back(engine.graph.deps[node.dep_begin + d]);
        }
      }
      ++index;
    }

    // Group the events by task with a counting sort: O(events), no comparison sort.
    std::vector<std::uint32_t> begin(n + 1, 0);
    recorder.for_each([&](const Event& e) {
      if (e.index < n) {
        ++begin[e.index + 1];
      }
    });
    for (std::size_t i = 0; i < n; ++i) {
      begin[i + 1] += begin[i];
    }
    std::vector<const Event*> grouped(begin[n]);
    {
      std::vector<std::uint32_t> next(begin.begin(), begin.end() - 1);
      recorder.for_each([&](const Event& e) {
        if (e.index < n) {
          grouped[next[e.index]++] = &e;
        }
      });
    }

    for (std::size_t i = 0; i < n; ++i) {
      fold(r, r.m_tasks[i], std::span<const Event* const>(grouped.data() + begin[i], begin[i + 1] - begin[i]));
    }

    // The run's id table, which its ResultSet shares too: add_task copies a shared table before changing it.
    r.m_ids = engine.ids;
    r.m_critical_path = critical_path(r.m_tasks);
    return report;
  }

 private:
  /// Turns one task's events (in no particular order) into its record, and adds it to the run's totals.
  static void fold(RunReport& r, TaskRecord& t, std::span<const Event* const> events) {
    bool finished = false;
    for (const Event* e : events) {
      switch (e->kind) {
        case EventKind::ready:
          if (!t.ready || e->time < *t.ready) {
            t.ready = e->time;
          }
          break;
        case EventKind::attempt_start: {
          AttemptRecord& a = attempt(t, e->attempt);
          a.start = e->time;
          a.worker = e->worker;
          break;
        }
        case EventKind::finish:
          t.finish = e->time;
          finished = true;
          break;
        default:
          break;
      }
    }
    for (const Event* e : events) {
      if (e->kind == EventKind::attempt_end) {
        AttemptRecord& a = attempt(t, e->attempt);
        a.end = e->time;
        a.ok = e->error == nullptr;
        a.error = error_message(e->error);
      }
    }
    std::sort(t.attempts.begin(), t.attempts.end(),
              [](const AttemptRecord& a, const AttemptRecord& b) { return a.number < b.number; });
    // A retry follows the attempt that failed: the latest one that ended by the time it was scheduled.
    // (Matched by time, not number, so it does not matter which attempt number the event carries.)
    for (const Event* e : events) {
      if (e->kind != EventKind::retry) {
        continue;
      }
      AttemptRecord* failed = nullptr;
      for (AttemptRecord& a : t.attempts) {
        if (a.end <= e->time && (failed == nullptr || a.end >= failed->end)) {
          failed = &a;
        }
      }
      if (failed != nullptr) {
        failed->retried = true;
        failed->retry_delay = e->delay;
      }
    }

    for (AttemptRecord& a : t.attempts) {
      if (a.end < a.start) {
        a.end = a.start;  // an attempt with no end event (only if the engine missed one): zero length
      }
      a.start_offset = a.start - r.m_start;
      a.end_offset = a.end - r.m_start;
      t.busy += a.duration();
    }
    if (!finished) {
      t.finish = t.attempts.empty() ? r.m_start : t.attempts.back().end;
    }
    t.finish_offset = t.finish - r.m_start;
    if (t.ready && !t.attempts.empty()) {
      t.queue_wait = std::max(std::chrono::nanoseconds(0), t.attempts.front().start - *t.ready);
    }
    r.m_attempts += t.attempts.size();
    r.m_busy += t.busy;
    r.m_queue_wait += t.queue_wait;
    r.m_end = std::max(r.m_end, t.finish);
  }

  static AttemptRecord& attempt(TaskRecord& t, int number) {
    for (AttemptRecord& a : t.attempts) {
      if (a.number == number) {
        return a;
      }
    }
    AttemptRecord& a = t.attempts.emplace_back();
    a.number = number;
    return a;
  }

  static std::vector<std::uint32_t> critical_path(const std::vector<TaskRecord>& tasks) {
    std::vector<std::uint32_t> path;
    if (tasks.empty()) {
      return path;
    }
    auto later = [&](std::uint32_t a, std::uint32_t b) { return tasks[a].finish > tasks[b].finish; };
    std::uint32_t last = 0;
    for (std::uint32_t i = 1; i < tasks.size(); ++i) {
      if (later(i, last)) {
        last = i;
      }
    }
    // Bounded by the task count: a graph that ran has no cycle, but a report must not loop on a bad one.
    for (std::size_t steps = 0; steps < tasks.size(); ++steps) {
      path.push_back(last);
      const std::vector<std::uint32_t>& deps = tasks[last].dependencies;
      if (deps.empty()) {
        break;
      }
      std::uint32_t next = deps.front();
      for (std::uint32_t d : deps) {
        if (d < tasks.size() && (next >= tasks.size() || later(d, next))) {
          next = d;
        }
      }
      if (next >= tasks.size()) {
        break;
      }
      last = next;
    }
    std::reverse(path.begin(), path.end());
    return path;
  }
};

std::shared_ptr<Observer> make_recorder() { return std::make_shared<Recorder>(); }

std::shared_ptr<const RunReport> take_report(Observer& recorder, const ResultSet& results, const Engine& engine) {
  return ReportBuilder::build(recorder, results, engine);
}

}  // namespace detail

}  // namespace dagsched
