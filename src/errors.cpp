#include "dagsched/errors.hpp"

#include <string>
#include <utility>
#include <vector>

namespace dagsched {

namespace {

std::string cycle_message(const std::vector<std::string>& cycle) {
  std::string msg = "cycle: ";
  for (const std::string& id : cycle) {
    msg += id;
    msg += " -> ";
  }
  msg += cycle.empty() ? std::string() : cycle.front();
  return msg;
}

}  // namespace

DuplicateTaskError::DuplicateTaskError(std::string task_id)
    : GraphError("duplicate task id '" + task_id + "': a task with this id is already registered"),
      m_task_id(std::move(task_id)) {}

UnknownDependencyError::UnknownDependencyError(std::string task_id, std::string dependency)
    : GraphError("task '" + task_id + "' depends on unknown task '" + dependency + "'"),
      m_task_id(std::move(task_id)),
      m_dependency(std::move(dependency)) {}

namespace {

std::string timeout_message(const std::string& task_id, int attempt, std::chrono::nanoseconds limit, bool deadline) {
  const auto ms = std::chrono::duration<double, std::milli>(limit).count();
  std::string msg = "task '" + task_id + "' attempt " + std::to_string(attempt) + ": ";
  msg += deadline ? "deadline of " : "timeout of ";
  msg += std::to_string(ms);
  msg += " ms expired";
  return msg;
}

}  // namespace

ResourceError::ResourceError(std::string task_id, std::string pool, const std::string& why)
    : GraphError("task '" + task_id + "' needs resource '" + pool + "': " + why),
      m_task_id(std::move(task_id)),
      m_pool(std::move(pool)) {}

TimeoutError::TimeoutError(const std::string& task_id, int attempt, std::chrono::nanoseconds limit, bool deadline,
                           std::exception_ptr cause)
    : std::runtime_error(timeout_message(task_id, attempt, limit, deadline)),
      m_task_id(task_id),
      m_attempt(attempt),
      m_limit(limit),
      m_deadline(deadline),
      m_cause(std::move(cause)) {}

CycleError::CycleError(std::vector<std::string> cycle) : GraphError(cycle_message(cycle)), m_cycle(std::move(cycle)) {}

}  // namespace dagsched
