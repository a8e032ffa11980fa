// dagsched: what `TaskScheduler::run()` returns, one `TaskResult` per task.
#pragma once

#include <cstddef>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "dagsched/task_handle.hpp"
#include "dagsched/task_result.hpp"

namespace dagsched {

namespace detail {
class IdTable;
}

class RunReport;

/// The results of one run: a read-only, map-like view from task id to `TaskResult`.
///
/// It is backed by flat arrays shared with the scheduler's id table, so producing it costs no per-task
/// hashing or copying. It stays valid and unchanged after later `add_task` or `run` calls and after the
/// scheduler is destroyed. Iteration visits every task once, in index order (the order of
/// `TaskHandle::index()`: registration order, except that an id named as a dependency before its own
/// `add_task` took its index when first named), as
/// `std::pair<const std::string&, const TaskResult&>`, so `for (const auto& [id, r] : results)` works.
/// Const member functions may be called from several threads at once.
class ResultSet {
 public:
  using key_type = std::string;
  using mapped_type = TaskResult;
  using value_type = std::pair<const std::string&, const TaskResult&>;
  using size_type = std::size_t;

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using iterator_concept = std::forward_iterator_tag;
    using value_type = ResultSet::value_type;
    using reference = value_type;
    using difference_type = std::ptrdiff_t;

    iterator() noexcept = default;
    reference operator*() const noexcept { return {m_set->name_at(m_pos), m_set->m_results[m_pos]}; }
    iterator& operator++() noexcept {
      ++m_pos;
      return *this;
    }
    iterator operator++(int) noexcept {
      iterator old = *this;
      ++m_pos;
      return old;
    }
    friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.m_pos == b.m_pos; }

   private:
    friend class ResultSet;
    iterator(const ResultSet* set, std::size_t pos) noexcept : m_set(set), m_pos(pos) {}
    const ResultSet* m_set = nullptr;
    std::size_t m_pos = 0;
  };
  using const_iterator = iterator;

  /// An empty result set (what a run of an empty scheduler returns).
  ResultSet() noexcept = default;

  /// The result of task `id`. Throws `std::out_of_range` naming the id when there is no such task.
  [[nodiscard]] const TaskResult& at(std::string_view id) const;

  /// The result of the task `handle` refers to. Throws `std::out_of_range` for a handle this run does not
  /// cover (default-constructed, or from another scheduler, or added after the run).
  [[nodiscard]] const TaskResult& at(TaskHandle handle) const;

  /// The result of task `id`, or nullptr. Never throws.
  [[nodiscard]] const TaskResult* find(std::string_view id) const noexcept;

  /// Whether the run covered a task `id`.
  [[nodiscard]] bool contains(std::string_view id) const noexcept { return find(id) != nullptr; }

  /// Number of tasks in the run.
  [[nodiscard]] std::size_t size() const noexcept { return m_size; }
  [[nodiscard]] bool empty() const noexcept { return m_size == 0; }

  /// Number of tasks that ended with `status`.
  [[nodiscard]] std::size_t count(Status status) const noexcept;

  /// Whether every task succeeded.
  [[nodiscard]] bool all_succeeded() const noexcept { return count(Status::success) == m_size; }

  [[nodiscard]] iterator begin() const noexcept { return {this, 0}; }
  [[nodiscard]] iterator end() const noexcept { return {this, m_size}; }

  /// The id of the task with index `index` (see TaskHandle::index()), for index < size().
  [[nodiscard]] const std::string& name_at(std::size_t index) const noexcept;

  /// The run's timing report (see `RunReport`), or null unless the run was started with
  /// `RunOptions::record`.
  [[nodiscard]] const RunReport* report() const noexcept { return m_report.get(); }

 private:
  friend class RunHandle;
  ResultSet(std::shared_ptr<const detail::IdTable> ids, std::shared_ptr<const void> results_owner,
            const TaskResult* results, std::size_t size, std::uint32_t owner) noexcept;

  std::shared_ptr<const detail::IdTable> m_ids;
  std::shared_ptr<const void> m_results_owner;
  const TaskResult* m_results = nullptr;
  std::size_t m_size = 0;
  std::uint32_t m_owner = 0;
  std::shared_ptr<const RunReport> m_report;
};

}  // namespace dagsched
