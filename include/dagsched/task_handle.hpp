// dagsched: handles to registered tasks, and the type a dependency list is made of.
#pragma once

#include <concepts>
#include <cstdint>
#include <string_view>

namespace dagsched {

class TaskScheduler;
class ResultSet;

/// A small, copyable reference to a task, returned by `TaskScheduler::add_task`.
///
/// A handle may stand in for the task's string id in a later task's dependencies: the scheduler then needs
/// no string lookup. A handle is only meaningful to the scheduler that returned it; giving it to another
/// scheduler throws `std::invalid_argument`. A default-constructed handle refers to no task.
class TaskHandle {
 public:
  constexpr TaskHandle() noexcept = default;

  /// The task's dense index in its scheduler: 0 for the first task registered, and so on. Ids named as
  /// dependencies before they are registered take the next index at that moment.
  [[nodiscard]] constexpr std::uint32_t index() const noexcept { return m_index; }

  /// False for a default-constructed handle.
  [[nodiscard]] constexpr bool valid() const noexcept { return m_owner != 0; }

  friend constexpr bool operator==(TaskHandle, TaskHandle) noexcept = default;

 private:
  friend class TaskScheduler;
  friend class ResultSet;
  friend class TaskContext;
  constexpr TaskHandle(std::uint32_t index, std::uint32_t owner) noexcept : m_index(index), m_owner(owner) {}

  std::uint32_t m_index = 0;
  std::uint32_t m_owner = 0;  // serial number of the scheduler that made it; 0 means none
};

/// One entry of a dependency list: a task id (anything convertible to `std::string_view`) or a
/// `TaskHandle`. It only borrows the id, so it is meant to live inside the `add_task` call that uses it.
class DependencyRef {
 public:
  /// Refers to no task; only a placeholder in arrays (add_task rejects it as an empty id).
  constexpr DependencyRef() noexcept = default;

  template <class S>
  requires std::convertible_to<const S&, std::string_view> DependencyRef(const S& id)
  noexcept : m_id(id) {}  // NOLINT(google-explicit-constructor): list element

  DependencyRef(TaskHandle handle) noexcept  // NOLINT(google-explicit-constructor): list element
      : m_handle(handle), m_is_handle(true) {}

  [[nodiscard]] bool is_handle() const noexcept { return m_is_handle; }
  [[nodiscard]] std::string_view id() const noexcept { return m_id; }
  [[nodiscard]] TaskHandle handle() const noexcept { return m_handle; }

 private:
  std::string_view m_id;
  TaskHandle m_handle;
  bool m_is_handle = false;
};

}  // namespace dagsched
