#include "id_table.hpp"

#include <utility>

namespace dagsched::detail {

IdTable::IdTable(const IdTable& other) : m_index(other.m_index), m_names(other.m_names.size()) {
  for (const auto& [id, index] : m_index) {
    m_names[index] = &id;
  }
}

std::uint32_t IdTable::find(std::string_view id) const noexcept {
  auto it = m_index.find(id);
  return it == m_index.end() ? npos : it->second;
}

std::uint32_t IdTable::intern(std::string_view id) {
  auto it = m_index.find(id);
  if (it != m_index.end()) {
    return it->second;
  }
  return add(std::string(id));
}

std::uint32_t IdTable::add(std::string&& id) {
  const auto index = static_cast<std::uint32_t>(m_names.size());
  if (m_names.size() == m_names.capacity()) {
    // Grow first, so that the push_back below cannot throw after the insertion.
    m_names.reserve(m_names.empty() ? 16 : 2 * m_names.size());
  }
  auto [it, inserted] = m_index.try_emplace(std::move(id), index);
  m_names.push_back(&it->first);
  return index;
}

}  // namespace dagsched::detail
