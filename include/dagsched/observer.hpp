// dagsched: watching a run as it happens.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "dagsched/task_result.hpp"

namespace dagsched {

class ResultSet;

/// One moment in a task's life, as an `Observer` sees it.
struct TaskEvent {
  /// The task's index (see `TaskHandle::index()`) and id.
  std::uint32_t index;
  const std::string& id;
  /// The attempt concerned: 1 for the first; 0 for a task that never started (skipped or cancelled).
  int attempt;
  /// The worker thread reporting the event, in [0, max_workers); for an event raised by the timer thread
  /// (a retry falling due) the worker that will run the attempt is not yet known, and this is max_workers.
  std::uint32_t worker;
  /// When it happened.
  std::chrono::steady_clock::time_point time;
};

/// Callbacks describing a run, installed with `RunOptions::observer`. Override the ones you need.
///
/// Task callbacks run on worker threads, several at once, while the task's worker waits for them: keep
/// them short, and synchronise what they share. No engine lock is held while they run, so they may call
/// `RunHandle::cancel()` or `RunHandle::progress()`; they must not call `add_task`, `run`, or `wait`. An
/// exception thrown by a callback ends the process (std::terminate), as it would from a destructor.
///
/// For every task, in order: `on_task_ready` (its dependencies are done, or for a root, the run starts;
/// not raised for a task that will be skipped, or once the run is cancelled), then for each attempt
/// `on_attempt_start` and `on_attempt_end`, with `on_retry_scheduled` between a failed attempt and its
/// retry, and finally `on_task_finish` with the final result (raised for every task, skipped and cancelled
/// ones included; a task cancelled while queued has seen `on_task_ready`). `on_run_start` comes before any
/// task event, on the thread that starts the run; `on_run_end` after every task event, on the thread that
/// waits for the run.
class Observer {
 public:
  virtual ~Observer() = default;

  /// The run is about to start `tasks` tasks on `workers` threads.
  virtual void on_run_start(std::size_t /*tasks*/, std::size_t /*workers*/) {}
  /// The task's dependencies are done and it is queued, waiting for a worker.
  virtual void on_task_ready(const TaskEvent& /*event*/) {}
  /// An attempt is about to call the task body.
  virtual void on_attempt_start(const TaskEvent& /*event*/) {}
  /// An attempt returned (`error` null) or failed (`error` is what it threw, or a `TimeoutError`).
  virtual void on_attempt_end(const TaskEvent& /*event*/, const std::exception_ptr& /*error*/) {}
  /// A failed attempt will be retried after `delay` (zero: at once).
  virtual void on_retry_scheduled(const TaskEvent& /*event*/, std::chrono::nanoseconds /*delay*/) {}
  /// The task has its final result (any status; `result.skip_causes()` says why a skipped task was skipped).
  virtual void on_task_finish(const TaskEvent& /*event*/, const TaskResult& /*result*/) {}
  /// Every task has finished; `results` is what `wait()` is about to return.
  virtual void on_run_end(const ResultSet& /*results*/) {}
};

}  // namespace dagsched
