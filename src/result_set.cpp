#include "dagsched/result_set.hpp"

#include <stdexcept>
#include <string>
#include <utility>

#include "id_table.hpp"

namespace dagsched {

ResultSet::ResultSet(std::shared_ptr<const detail::IdTable> ids, std::shared_ptr<const void> results_owner,
                     const TaskResult* results, std::size_t size, std::uint32_t owner) noexcept
    : m_ids(std::move(ids)),
      m_results_owner(std::move(results_owner)),
      m_results(results),
      m_size(size),
      m_owner(owner) {}

const std::string& ResultSet::name_at(std::size_t index) const noexcept {
  return m_ids->name(static_cast<std::uint32_t>(index));
}

const TaskResult* ResultSet::find(std::string_view id) const noexcept {
  if (!m_ids) {
    return nullptr;
  }
  const std::uint32_t index = m_ids->find(id);
  return index < m_size ? &m_results[index] : nullptr;
}

const TaskResult& ResultSet::at(std::string_view id) const {
  if (const TaskResult* result = find(id)) {
    return *result;
  }
  throw std::out_of_range("ResultSet::at: no task '" + std::string(id) + "' in this run");
}

const TaskResult& ResultSet::at(TaskHandle handle) const {
  if (!handle.valid() || handle.m_owner != m_owner || handle.index() >= m_size) {
    throw std::out_of_range("ResultSet::at: the handle does not refer to a task of this run");
  }
  return m_results[handle.index()];
}

std::size_t ResultSet::count(Status status) const noexcept {
  std::size_t count = 0;
  for (std::size_t i = 0; i < m_size; ++i) {
    count += m_results[i].status == status ? 1 : 0;
  }
  return count;
}

}  // namespace dagsched
