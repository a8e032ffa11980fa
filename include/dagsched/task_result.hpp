// dagsched: the outcome of one task in one run.
#pragma once

#include <any>
#include <atomic>
#include <cstddef>
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
  failed,     ///< Its last attempt threw (or overran its timeout), and the retry policy allowed no other;
              ///< `TaskResult::error` holds that exception.
  skipped,    ///< Never called: a dependency, direct or transitive, failed (unless the task is `all_done`).
  cancelled,  ///< The run was cancelled (`RunHandle::cancel`) before this task could finish its attempts.
};

/// Returns "success", "failed", "skipped" or "cancelled". Thread-safe.
[[nodiscard]] std::string_view to_string(Status status) noexcept;

/// Writes `to_string(status)`.
std::ostream& operator<<(std::ostream& os, Status status);

/// The ids of the failed tasks that caused a skip: an immutable list, shared by the copies of one handle
/// (one pointer wide, so that it costs a result slot 8 bytes). Copying is a reference-count increment;
/// thread-safe like a `std::shared_ptr<const T>`.
class SkipCauses {
 public:
  SkipCauses() noexcept = default;
  /// A new list holding `ids` (empty `ids` gives an empty handle).
  explicit SkipCauses(std::vector<std::string> ids);
  SkipCauses(const SkipCauses& other) noexcept : m_list(other.m_list) {
    if (m_list != nullptr) {
      m_list->refs.fetch_add(1, std::memory_order_relaxed);
    }
  }
  SkipCauses(SkipCauses&& other) noexcept : m_list(other.m_list) { other.m_list = nullptr; }
  SkipCauses& operator=(const SkipCauses& other) noexcept {
    SkipCauses(other).swap(*this);
    return *this;
  }
  SkipCauses& operator=(SkipCauses&& other) noexcept {
    SkipCauses(std::move(other)).swap(*this);
    return *this;
  }
  ~SkipCauses() { reset(); }

  void reset() noexcept {
    if (m_list != nullptr && m_list->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      delete m_list;
    }
    m_list = nullptr;
  }
  void swap(SkipCauses& other) noexcept { std::swap(m_list, other.m_list); }

  /// The ids, each once, sorted.
  [[nodiscard]] std::span<const std::string> ids() const noexcept {
    return m_list != nullptr ? std::span<const std::string>(m_list->ids) : std::span<const std::string>();
  }
  [[nodiscard]] bool empty() const noexcept { return m_list == nullptr; }
  [[nodiscard]] std::size_t size() const noexcept { return ids().size(); }
  [[nodiscard]] const std::string& operator[](std::size_t i) const noexcept { return m_list->ids[i]; }
  [[nodiscard]] auto begin() const noexcept { return ids().begin(); }
  [[nodiscard]] auto end() const noexcept { return ids().end(); }
  [[nodiscard]] explicit operator bool() const noexcept { return m_list != nullptr; }
  /// Whether both handles share one list (not whether the ids are equal).
  [[nodiscard]] bool same_list(const SkipCauses& other) const noexcept { return m_list == other.m_list; }

 private:
  struct List {
    std::atomic<std::uint32_t> refs{1};
    std::vector<std::string> ids;
  };
  List* m_list = nullptr;
};

/// The result of one task after `TaskScheduler::run()`.
///
/// Invariants, per status:
/// - `success`: `result` holds the return value (empty for `void` bodies); `error` is null; `attempts` is
///   1..retries+1.
/// - `failed`: `result` is empty; `error` holds the last exception; `attempts` is the attempts made:
///   retries+1, or fewer if a `PermanentError`, `retry_if` or the deadline stopped retrying.
/// - `skipped`: `result` is empty; `error` is null; `attempts` is 0; `skipped_by` names the failed tasks
///   upstream that caused the skip.
/// - `cancelled`: `result` is empty; `error` holds the last exception, if any; `attempts` is the attempts
///   made (0 if never started).
///
/// `skipped_by` is set for skipped tasks only.
struct TaskResult {
  Status status = Status::skipped;
  std::any result;
  std::exception_ptr error;
  int attempts = 0;
  /// For a skipped task, the ids of the failed tasks upstream whose failure skipped it (each once,
  /// sorted); empty otherwise. Shared, read-only, by the skipped tasks of one cascade.
  SkipCauses skipped_by;

  /// `skipped_by.ids()`: empty unless the task was skipped.
  [[nodiscard]] std::span<const std::string> skip_causes() const noexcept { return skipped_by.ids(); }

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
