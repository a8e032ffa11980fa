// dagsched: what a task body taking a `TaskContext&` can see of its run.
#pragma once

#include <any>
#include <cstdint>
#include <exception>
#include <stop_token>
#include <string>
#include <string_view>

#include "dagsched/task_handle.hpp"
#include "dagsched/task_result.hpp"

namespace dagsched {

namespace detail {
class RunState;
}

/// Passed to a task body declared as `f(dagsched::TaskContext&)` (instead of `f()`), for one attempt.
///
/// It gives the task its id and attempt number, a stop token that is requested when the attempt's
/// timeout or deadline expires or the run is cancelled, and the results of its dependencies, read in place:
/// `ctx.result<Tensor>("preprocess")` returns a reference into the dependency's `TaskResult`, without a
/// copy. A dependency has always finished before its dependents start, and its result does not change
/// for the rest of the run.
///
/// Valid only during the call it is passed to; use it from that call's thread (the stop token may be
/// handed to other threads).
class TaskContext {
 public:
  TaskContext(const TaskContext&) = delete;
  TaskContext& operator=(const TaskContext&) = delete;

  /// This task's id.
  [[nodiscard]] const std::string& id() const noexcept { return *m_id; }

  /// This attempt's number: 1 for the first, 2 for the first retry, ...
  [[nodiscard]] int attempt() const noexcept { return m_attempt; }

  /// What the previous attempt threw (null on the first attempt), so that a retry can adapt, e.g. halve
  /// its batch after running out of memory.
  [[nodiscard]] const std::exception_ptr& last_error() const noexcept { return *m_last_error; }

  /// Requested when this attempt's timeout or the task's deadline expires, or the run is cancelled.
  /// Tasks that can stop early should poll it or register a `std::stop_callback`.
  [[nodiscard]] std::stop_token stop_token() const noexcept { return m_stop; }

  /// `stop_token().stop_requested()`.
  [[nodiscard]] bool stop_requested() const noexcept { return m_stop.stop_requested(); }

  /// The result of dependency `dependency_id`. With `TriggerRule::all_done` it may be failed, skipped or
  /// cancelled. Throws `std::out_of_range` naming both ids when `dependency_id` is not a direct dependency
  /// of this task.
  [[nodiscard]] const TaskResult& dependency(std::string_view dependency_id) const;

  /// As above, for a dependency given by handle.
  [[nodiscard]] const TaskResult& dependency(TaskHandle dependency) const;

  /// The value dependency `dependency_id` returned, as a `T`, without copying it. Throws `std::out_of_range`
  /// as `dependency()` does, and `std::bad_any_cast` when the dependency did not return a `T` (or did not
  /// succeed).
  template <class T>
  [[nodiscard]] const T& result(std::string_view dependency_id) const {
    return dependency(dependency_id).template value<T>();
  }

  /// As above, for a dependency given by handle.
  template <class T>
  [[nodiscard]] const T& result(TaskHandle dependency) const {
    return this->dependency(dependency).template value<T>();
  }

  /// Number of direct dependencies.
  [[nodiscard]] std::size_t dependency_count() const noexcept;

 private:
  friend class detail::RunState;
  TaskContext(const detail::RunState& run, std::uint32_t task, const std::string& id, int attempt,
              const std::exception_ptr& last_error, std::stop_token stop) noexcept
      : m_run(&run), m_task(task), m_id(&id), m_attempt(attempt), m_last_error(&last_error), m_stop(std::move(stop)) {}

  const detail::RunState* m_run;
  std::uint32_t m_task;
  const std::string* m_id;
  int m_attempt;
  const std::exception_ptr* m_last_error;
  std::stop_token m_stop;
};

}  // namespace dagsched
