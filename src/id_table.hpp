// Interning of task ids to dense indices.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "block_cache.hpp"
#include "chunked_array.hpp"

namespace dagsched::detail {

/// Maps task ids to dense indices 0..size()-1 and back.
///
/// The ids live in a chunked array (short ids inside their std::string, so no allocation per id), found
/// through an open-addressing table of 8-byte slots (linear probing, at most half full). A node-based
/// std::unordered_map costs an allocation, a free and ~70 bytes per task; this costs one probe into a
/// flat array, which decides the speed of building large graphs.
///
/// A `ResultSet` shares the table of the run that made it, so the scheduler copies the table before
/// changing a shared one (copy-on-write): a table is never modified while anyone else can see it.
class IdTable {
 public:
  static constexpr std::uint32_t npos = UINT32_MAX;

  IdTable() = default;
  IdTable(const IdTable& other);
  IdTable& operator=(const IdTable&) = delete;

  /// Where `id` is, or would go: the result of one probe, reusable by add() while the table is unchanged.
  struct Lookup {
    std::uint32_t index;  // npos when absent
    std::uint32_t tag;
    std::size_t slot;
  };
  [[nodiscard]] Lookup lookup(std::string_view id) const noexcept;

  /// The index of `id`, or `npos`.
  [[nodiscard]] std::uint32_t find(std::string_view id) const noexcept { return lookup(id).index; }

  /// The index of `id`, giving it the next index when new.
  std::uint32_t intern(std::string_view id);

  /// Adds `id`, which must not be present, under the next index. `where` is lookup(id), taken since the
  /// last change of the table (a copy of the table counts as unchanged).
  std::uint32_t add(std::string&& id, const Lookup& where);
  std::uint32_t add(std::string&& id) {
    const Lookup where = lookup(id);
    return add(std::move(id), where);
  }

  [[nodiscard]] const std::string& name(std::uint32_t index) const noexcept { return m_names[index]; }
  [[nodiscard]] std::uint32_t size() const noexcept { return static_cast<std::uint32_t>(m_names.size()); }

 private:
  // A slot keeps the high 32 bits of its id's hash (the tag). The slot's home position is the tag's top
  // m_bits bits, so growing the table re-places every slot from its tag alone: no rehashing, and no
  // touching the ids. Comparing tags settles almost every mismatch without reading an id.
  struct Slot {
    std::uint32_t index_plus_one = 0;  // 0: empty
    std::uint32_t tag = 0;
  };

  static std::uint32_t tag_of(std::string_view id) noexcept;
  [[nodiscard]] std::size_t home(std::uint32_t tag) const noexcept { return tag >> (32 - m_bits); }
  /// The first empty slot from the home of `tag` on.
  [[nodiscard]] std::size_t empty_slot(std::uint32_t tag) const noexcept;
  void grow();

  ChunkedArray<std::string> m_names;
  BlockArray<Slot> m_slots;  // 2^m_bits slots, at most half full (or none yet)
  unsigned m_bits = 0;
};

}  // namespace dagsched::detail
