// Interning of task ids to dense indices.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dagsched::detail {

/// Maps task ids to dense indices 0..size()-1 and back.
///
/// A `ResultSet` shares the table of the run that made it, so the scheduler copies the table before
/// changing a shared one (copy-on-write); a table is never modified while anyone else can see it.
class IdTable {
 public:
  static constexpr std::uint32_t npos = UINT32_MAX;

  IdTable() = default;
  IdTable(const IdTable& other);
  IdTable& operator=(const IdTable&) = delete;

  /// The index of `id`, or `npos`.
  [[nodiscard]] std::uint32_t find(std::string_view id) const noexcept;

  /// The index of `id`, giving it the next index when new.
  std::uint32_t intern(std::string_view id);

  /// Adds `id`, which must not be present, under the next index.
  std::uint32_t add(std::string&& id);

  [[nodiscard]] const std::string& name(std::uint32_t index) const noexcept { return *m_names[index]; }
  [[nodiscard]] const std::string* const* names() const noexcept { return m_names.data(); }
  [[nodiscard]] std::uint32_t size() const noexcept { return static_cast<std::uint32_t>(m_names.size()); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  // Node-based, so the keys' addresses (kept in m_names) survive rehashing.
  std::unordered_map<std::string, std::uint32_t, Hash, std::equal_to<>> m_index;
  std::vector<const std::string*> m_names;
};

}  // namespace dagsched::detail
