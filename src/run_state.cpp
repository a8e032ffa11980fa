#include "run_state.hpp"

#include <exception>

namespace dagsched::detail {

bool RunState::attempt(std::uint32_t task) {
  TaskNode& node = m_nodes[task];
  TaskResult& result = m_results[task];
  for (int attempt = 1;; ++attempt) {
    try {
      node.fn(result.result);
      result.status = Status::success;
      result.attempts = attempt;
      result.error = nullptr;
      return true;
    } catch (...) {
      // Any type, std::exception or not. Only the last attempt's exception is kept.
      if (attempt > node.retries) {
        result.status = Status::failed;
        result.attempts = attempt;
        result.error = std::current_exception();
        result.result.reset();
        return false;
      }
    }
  }
}

bool RunState::skip(std::uint32_t task) noexcept {
  TaskResult& result = m_results[task];
  result.status = Status::skipped;
  result.attempts = 0;
  result.result.reset();
  result.error = nullptr;
  return false;
}

}  // namespace dagsched::detail
