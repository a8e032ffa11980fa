// dagsched: a run's progress pushed to a callback, throttled for live displays.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>

#include "dagsched/observer.hpp"
#include "dagsched/task_scheduler.hpp"

namespace dagsched {

/// An `Observer` that calls `callback` with the run's `Progress` (finished/total, running, waiting, and
/// finished counts by status), at most once per `interval`: cheap enough to drive a progress bar or a status
/// line on runs of any size.
///
///     auto progress = std::make_shared<dagsched::ProgressObserver>(
///         [](const dagsched::Progress& p) { std::cerr << p.finished << '/' << p.total << '\r'; });
///     scheduler.run({.observer = progress});
///
/// Cost: every event adds one relaxed atomic increment to a counter on the reporting worker's own cache line
/// (no counter is shared between workers), and `on_task_finish` compares the event's timestamp with the next
/// due time. The callback is called once when the run starts (on the thread that starts it), then from
/// `on_task_finish` on the worker that finishes a task once `interval` has passed since the previous call
/// (never on two threads at once), and once more with the final, exact counts from `on_run_end` (on the thread
/// that waits for the run). Between those, counts are a snapshot that may lag the workers by a task or two.
/// The calling worker waits for the callback, so keep it short; it must not throw (see `Observer`).
///
/// For polling instead of being called, use `RunHandle::progress()`. One ProgressObserver may watch several
/// runs one after the other (each `on_run_start` starts afresh), not two at once.
class ProgressObserver : public Observer {
 public:
  using Callback = std::function<void(const Progress&)>;

  /// Throws `std::invalid_argument` when `callback` is empty or `interval` is negative.
  explicit ProgressObserver(Callback callback, std::chrono::milliseconds interval = std::chrono::milliseconds(100));
  ~ProgressObserver() override;

  ProgressObserver(const ProgressObserver&) = delete;
  ProgressObserver& operator=(const ProgressObserver&) = delete;

  /// The counts now (what the callback would be given). Callable from any thread once the run has started.
  [[nodiscard]] Progress progress() const noexcept;

  void on_run_start(std::size_t tasks, std::size_t workers) override;
  void on_attempt_start(const TaskEvent& event) override;
  void on_attempt_end(const TaskEvent& event, const std::exception_ptr& error) override;
  void on_retry_scheduled(const TaskEvent& event, std::chrono::nanoseconds delay) override;
  void on_task_finish(const TaskEvent& event, const TaskResult& result) override;
  void on_run_end(const ResultSet& results) override;

 private:
  struct State;
  void maybe_report(std::chrono::steady_clock::time_point now);
  void report();

  Callback m_callback;
  std::chrono::nanoseconds m_interval;
  std::unique_ptr<State> m_state;
};

}  // namespace dagsched
