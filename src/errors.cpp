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

CycleError::CycleError(std::vector<std::string> cycle) : GraphError(cycle_message(cycle)), m_cycle(std::move(cycle)) {}

}  // namespace dagsched
