// dagsched: what a recorded run did, where and when: attempts, workers, waits, the critical path.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dagsched/task_result.hpp"

namespace dagsched {

namespace detail {
class IdTable;
struct ReportBuilder;
}  // namespace detail

class ResultSet;

/// One attempt of one task: when it ran (on `std::chrono::steady_clock`), on which worker, and how it ended.
struct AttemptRecord {
  /// 1 for the first attempt, 2 for the first retry, ...
  int number = 0;
  /// The worker thread that ran it, in [0, workers).
  std::uint32_t worker = 0;
  /// When the body was called and when the attempt ended.
  std::chrono::steady_clock::time_point start;
  std::chrono::steady_clock::time_point end;
  /// `start` and `end` relative to the run's start (`RunReport::start()`).
  std::chrono::nanoseconds start_offset{0};
  std::chrono::nanoseconds end_offset{0};
  /// Whether the attempt returned normally.
  bool ok = false;
  /// What the attempt threw (`what()` of a std::exception, "(unknown exception)" otherwise); empty when `ok`.
  std::string error;
  /// Whether a retry was scheduled after it, and the wait before that retry (zero: at once).
  bool retried = false;
  std::chrono::nanoseconds retry_delay{0};

  /// `end - start`.
  [[nodiscard]] std::chrono::nanoseconds duration() const noexcept { return end - start; }
};

/// Everything recorded about one task in one run.
struct TaskRecord {
  /// The task's index (`TaskHandle::index()`) and id.
  std::uint32_t index = 0;
  std::string id;
  /// Its final status, as in the run's `ResultSet`.
  Status status = Status::skipped;
  /// Every attempt, in order (empty for a task that never started).
  std::vector<AttemptRecord> attempts;
  /// The error of the final result (`TaskResult::error`) as a message; empty when there is none.
  std::string error;
  /// For a skipped task, the failed tasks upstream that caused the skip (`TaskResult::skip_causes()`).
  std::vector<std::string> skipped_by;
  /// The task's direct dependencies, by index.
  std::vector<std::uint32_t> dependencies;
  /// When it was queued: its dependencies were done, or, for a root, the run started. Absent for a task that
  /// was skipped or was never queued (the run was cancelled first); a task cancelled while queued has it.
  std::optional<std::chrono::steady_clock::time_point> ready;
  /// When it got its final status.
  std::chrono::steady_clock::time_point finish;
  /// `finish` relative to the run's start.
  std::chrono::nanoseconds finish_offset{0};
  /// From `ready` to the start of the first attempt; zero for a task that never started.
  std::chrono::nanoseconds queue_wait{0};
  /// The sum of its attempts' durations (time spent inside the body).
  std::chrono::nanoseconds busy{0};

  /// From the start of the first attempt to the end of the last one, retry waits included; zero for a task
  /// that never started.
  [[nodiscard]] std::chrono::nanoseconds elapsed() const noexcept {
    return attempts.empty() ? std::chrono::nanoseconds(0) : attempts.back().end - attempts.front().start;
  }
};

/// The timing report of one run, produced when it was started with `RunOptions::record` and available
/// from `ResultSet::report()`.
///
/// Per task it holds every attempt's start and end, the worker that ran it, the queue wait and totals
/// (`TaskRecord`); for the run, its makespan, the critical path actually taken and counts by status. It can
/// be written as JSON (`to_json`), as a Chrome trace-event file for Perfetto or chrome://tracing
/// (`write_chrome_trace`), or as a human-readable summary (`summary`).
///
/// Immutable once made: every const member function may be called from several threads at once.
class RunReport {
 public:
  using clock = std::chrono::steady_clock;

  /// When the run started (the run's `Observer::on_run_start`).
  [[nodiscard]] clock::time_point start() const noexcept { return m_start; }
  /// When its last task got its final status (`start()` for an empty run).
  [[nodiscard]] clock::time_point end() const noexcept { return m_end; }
  /// `end() - start()`.
  [[nodiscard]] std::chrono::nanoseconds makespan() const noexcept { return m_end - m_start; }
  /// `time - start()`.
  [[nodiscard]] std::chrono::nanoseconds since_start(clock::time_point time) const noexcept { return time - m_start; }

  /// Number of worker threads the run had.
  [[nodiscard]] std::size_t workers() const noexcept { return m_workers; }

  /// One record per task, in index order (the order of the run's `ResultSet`).
  [[nodiscard]] const std::vector<TaskRecord>& tasks() const noexcept { return m_tasks; }

  /// The record of task `id`, or nullptr. One hash lookup (the run's id table).
  [[nodiscard]] const TaskRecord* find(std::string_view id) const noexcept;

  /// The record of task `id`. Throws `std::out_of_range` naming the id when there is none.
  [[nodiscard]] const TaskRecord& at(std::string_view id) const;

  /// Number of tasks that ended with `status`.
  [[nodiscard]] std::size_t count(Status status) const noexcept;

  /// Attempts made in the run, all tasks together (retries included).
  [[nodiscard]] std::size_t attempt_count() const noexcept { return m_attempts; }
  /// Time spent inside task bodies, all attempts together.
  [[nodiscard]] std::chrono::nanoseconds total_busy() const noexcept { return m_busy; }
  /// Queue waits (ready to first attempt), all tasks together.
  [[nodiscard]] std::chrono::nanoseconds total_queue_wait() const noexcept { return m_queue_wait; }

  /// The chain of tasks that decided when the run ended, first to last, by index: starting from the task
  /// that finished last, each step goes back to the dependency that finished last, up to a task without
  /// dependencies. Empty for an empty run.
  [[nodiscard]] const std::vector<std::uint32_t>& critical_path() const noexcept { return m_critical_path; }

  /// The report as a JSON document (see README, "Observability", for the fields); `indent` < 0 writes it on
  /// one line. Times are integer nanoseconds relative to `start()`.
  [[nodiscard]] std::string to_json(int indent = 2) const;

  /// Writes the run in Chrome's trace-event format (a JSON object with `traceEvents`), which Perfetto
  /// (ui.perfetto.dev) and chrome://tracing open: one track per worker, one slice per attempt named by the
  /// task id (colour "good" when it returned, "terrible" when it threw, with the error in its args), an
  /// instant event for each retry scheduled and each task that never started (skipped or cancelled, on a
  /// separate "run" track), and the critical path as flow arrows. Events are streamed: memory stays small.
  void write_chrome_trace(std::ostream& out) const;

  /// A human-readable summary: counts by status, failures with their messages, skipped tasks and their
  /// causes, the `slowest` tasks by time in their bodies, and the critical path.
  [[nodiscard]] std::string summary(std::size_t slowest = 5) const;

 private:
  friend struct detail::ReportBuilder;
  RunReport() = default;

  clock::time_point m_start{};
  clock::time_point m_end{};
  std::size_t m_workers = 0;
  std::vector<TaskRecord> m_tasks;
  std::shared_ptr<const detail::IdTable> m_ids;  // the run's id table (shared with its ResultSet), for find()
  std::vector<std::uint32_t> m_critical_path;
  std::size_t m_attempts = 0;
  std::chrono::nanoseconds m_busy{0};
  std::chrono::nanoseconds m_queue_wait{0};
};

/// A human-readable summary of `results`: `results.report()->summary(slowest)` when the run was recorded;
/// otherwise counts by status, failures with their messages and skipped tasks with their causes (no timings).
[[nodiscard]] std::string summary(const ResultSet& results, std::size_t slowest = 5);

/// The message of `error`: `what()` of a std::exception, "(unknown exception)" for anything else, "" for null.
[[nodiscard]] std::string error_message(const std::exception_ptr& error);

}  // namespace dagsched
