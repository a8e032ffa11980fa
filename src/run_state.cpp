#include "run_state.hpp"

#include <exception>

namespace dagsched::detail {

bool RunState::retry(TaskNode& node, TaskResult& result) {
  // 64-bit, so that the increment after attempt INT_MAX (retries may be INT_MAX - 1) cannot overflow.
  for (std::int64_t attempt = 2; attempt <= std::int64_t{node.retries} + 1; ++attempt) {
    if (is_cancelled()) {
      return cancelled(result, static_cast<int>(attempt - 1));
    }
    try {
      node.fn(result.result);
      result.status = Status::success;
      result.attempts = static_cast<int>(attempt);
      result.error = nullptr;
      return true;
    } catch (...) {
      result.error = std::current_exception();  // only the last attempt's exception is kept
    }
  }
  result.status = Status::failed;
  result.attempts = node.retries + 1;
  result.result.reset();
  record_failure();
  return false;
}

void RunState::record_failure() noexcept {
  if (m_failure_limit != 0 && m_failures.fetch_add(1, std::memory_order_relaxed) + 1 >= m_failure_limit) {
    m_cancelled_run.store(m_run, std::memory_order_relaxed);  // what RunHandle::cancel() does
  }
}

bool RunState::cancelled(TaskResult& result, int attempts) noexcept {
  result.status = Status::cancelled;
  result.attempts = attempts;
  result.result.reset();
  if (attempts == 0) {
    result.error = nullptr;  // otherwise it keeps the last attempt's exception
  }
  return true;
}

bool RunState::skip(TaskResult& result) noexcept {
  result.status = Status::skipped;
  result.attempts = 0;
  result.result.reset();
  result.error = nullptr;
  return false;
}

}  // namespace dagsched::detail
