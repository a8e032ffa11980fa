// dagsched: the outcome of one task in one run.
#pragma once

#include <any>
#include <cstdint>
#include <exception>
#include <iosfwd>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dagsched {

/// How a task ended in a run.
enum class Status : std::uint8_t {
  success,    ///< An attempt returned normally.
  failed,     ///< Every allowed attempt threw; `TaskResult::error` holds the last exception.
  skipped,    ///< Never called: a dependency, direct or transitive, failed.
  cancelled,  ///< The run was cancelled (`RunHandle::cancel`) before this task could finish its attempts.
};

/// Returns "success", "failed", "skipped" or "cancelled". Thread-safe.
[[nodiscard]] std::string_view to_string(Status status) noexcept;

/// Writes `to_string(status)`.
std::ostream& operator<<(std::ostream& os, Status status);

/// The result of one task after `TaskScheduler::run()`.
///
/// Invariants, per status:
/// | status  | result                                   | error           | attempts      |
/// |---------|------------------------------------------|-----------------|---------------|
/// | success | return value (empty for `void` bodies)   | null            | 1..retries+1  |
/// | failed  | empty                                    | last exception  | retries+1     |
/// | skipped | empty                                    | null            | 0             |
/// | cancelled | empty                                | last exception, if any | attempts made (0 if never started) |
///
/// `skipped_by` is set for skipped tasks only.
struct TaskResult {
  Status status = Status::skipped;
  std::any result;
  std::exception_ptr error;
  int attempts = 0;
  /// For a skipped task, the ids of the failed tasks upstream whose failure skipped it (each once, in no
  /// particular order); null otherwise. Shared, read-only, by the skipped tasks of one cascade.
  std::shared_ptr<const std::vector<std::string>> skipped_by;

  /// `*skipped_by`, or an empty span when the task was not skipped.
  [[nodiscard]] std::span<const std::string> skip_causes() const noexcept {
    return skipped_by ? std::span<const std::string>(*skipped_by) : std::span<const std::string>();
  }

  /// True when `status == Status::success`.
  [[nodiscard]] bool ok() const noexcept { return status == Status::success; }

  /// The successful return value as a `T`. Throws `std::bad_any_cast` when `result` does not hold a `T`
  /// (for instance when the task failed, was skipped or returned void).
  template <class T>
  [[nodiscard]] const T& value() const {
    if (const T* p = std::any_cast<T>(&result)) {
      return *p;
    }
    throw std::bad_any_cast();
  }
};

}  // namespace dagsched
