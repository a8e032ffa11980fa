// dagsched: the typed errors a malformed graph or a misuse produces.
//
// Every graph error derives from `GraphError`, itself a `std::invalid_argument`, so a caller may catch
// broadly (`std::invalid_argument`, as the original Python spec raises `ValueError`) or precisely.
// All of them are thrown before any task body runs and leave the scheduler unchanged.
#pragma once

#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace dagsched {

/// Base of every error about the shape of the task graph.
class GraphError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// `add_task` was given an id that is already registered.
class DuplicateTaskError : public GraphError {
 public:
  explicit DuplicateTaskError(std::string task_id);
  /// The id given twice.
  [[nodiscard]] const std::string& task_id() const noexcept { return m_task_id; }

 private:
  std::string m_task_id;
};

/// `run()` found a dependency on an id that no `add_task` call registered.
class UnknownDependencyError : public GraphError {
 public:
  UnknownDependencyError(std::string task_id, std::string dependency);
  /// The task that names the missing dependency.
  [[nodiscard]] const std::string& task_id() const noexcept { return m_task_id; }
  /// The id that was never registered.
  [[nodiscard]] const std::string& dependency() const noexcept { return m_dependency; }

 private:
  std::string m_task_id;
  std::string m_dependency;
};

/// `run()` found a dependency cycle (a task depending on itself included).
///
/// `what()` reads `cycle: a -> b -> c -> a`, where each arrow points from a task to one that depends on it
/// (the order in which they would have had to run). `cycle()` holds the same ids, the first not repeated.
class CycleError : public GraphError {
 public:
  explicit CycleError(std::vector<std::string> cycle);
  /// The tasks on the cycle, in dependency order; `cycle().front()` depends on `cycle().back()`.
  [[nodiscard]] const std::vector<std::string>& cycle() const noexcept { return m_cycle; }

 private:
  std::vector<std::string> m_cycle;
};

/// `run()` found a task needing a resource pool that was never declared, or more units than the pool has.
class ResourceError : public GraphError {
 public:
  ResourceError(std::string task_id, std::string pool, const std::string& why);
  /// The task with the impossible request.
  [[nodiscard]] const std::string& task_id() const noexcept { return m_task_id; }
  /// The pool it names.
  [[nodiscard]] const std::string& pool() const noexcept { return m_pool; }

 private:
  std::string m_task_id;
  std::string m_pool;
};

/// Thrown by a task body (directly, or as a base class of its own error) to say that retrying cannot help:
/// the task fails at once, whatever attempts it has left.
class PermanentError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Recorded as a task's error when an attempt outlived its `TaskOptions::timeout` or the task's
/// `TaskOptions::deadline` (the attempt's stop token was requested when the limit expired). Retried, like
/// any error, unless the deadline has passed.
class TimeoutError : public std::runtime_error {
 public:
  /// `cause` is what the overrunning attempt threw, if anything.
  TimeoutError(const std::string& task_id, int attempt, std::chrono::nanoseconds limit, bool deadline,
               std::exception_ptr cause = nullptr);
  /// The task's id.
  [[nodiscard]] const std::string& task_id() const noexcept { return m_task_id; }
  /// The attempt that overran (1 for the first).
  [[nodiscard]] int attempt() const noexcept { return m_attempt; }
  /// The limit that expired.
  [[nodiscard]] std::chrono::nanoseconds limit() const noexcept { return m_limit; }
  /// True when the total deadline expired, false for the per-attempt timeout.
  [[nodiscard]] bool deadline() const noexcept { return m_deadline; }
  /// What the attempt threw after its limit had expired (often its reaction to the stop request), or null
  /// if it returned normally or never started.
  [[nodiscard]] const std::exception_ptr& cause() const noexcept { return m_cause; }

 private:
  std::string m_task_id;
  int m_attempt;
  std::chrono::nanoseconds m_limit;
  bool m_deadline;
  std::exception_ptr m_cause;
};

}  // namespace dagsched
