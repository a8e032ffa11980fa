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
/// through an open-addressing table (linear probing, at most half full) split in two arrays: one control
/// byte per slot (empty, or 7 bits of the id's hash) and the slot's index. A node-based
/// std::unordered_map costs an allocation, a free and ~70 bytes per task; this costs one probe into a
/// flat array, which decides the speed of building large graphs.
///
/// Why the control bytes: a graph is built by adding new ids, and a new id's probe ends at the first
/// empty slot. Scanning bytes, the probe reads a 256 KiB array for 100,000 ids (which stays in the
/// processor's second-level cache) instead of a 2 MiB one; the index array is only written. A matching
/// byte (1 in 128 for another id) is confirmed by comparing the id itself.
///
/// A `ResultSet` shares the table of the run that made it, so the scheduler copies the table before
/// changing a shared one (copy-on-write): a table is never modified while anyone else can see it.
class IdTable {
 public:
  static constexpr std::uint32_t npos = UINT32_MAX;

  IdTable() = default;
  IdTable(const IdTable& other);
  IdTable& operator=(const IdTable&) = delete;
  ~IdTable() {
    if (m_heap_names == 0) {
      m_names.clear_trivially();  // every id is held inside its std::string: no pass over them
    }
  }

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
  // Every id's 32-bit hash (its tag) is kept by index. A slot's home position is the tag's top m_bits
  // bits and its control byte holds the tag's low 7 bits, so growing the table re-places every index from
  // its tag alone: no rehashing, no touching the ids, and no reading of the old arrays.
  static std::uint32_t tag_of(std::string_view id) noexcept;
  static std::uint8_t control_of(std::uint32_t tag) noexcept {
    return static_cast<std::uint8_t>(0x80U | (tag & 0x7FU));
  }
  [[nodiscard]] std::size_t home(std::uint32_t tag) const noexcept { return tag >> (32 - m_bits); }
  /// The first empty slot from the home of `tag` on.
  [[nodiscard]] std::size_t empty_slot(std::uint32_t tag) const noexcept;
  void grow();

  ChunkedArray<std::string> m_names;
  // Ids whose std::string holds its characters on the heap (longer than the string's inline buffer):
  // while there are none, destroying the names does nothing and is skipped.
  std::uint32_t m_heap_names = 0;
  ChunkedArray<std::uint32_t> m_tags;  // by index
  BlockArray<std::uint8_t> m_control;  // 2^m_bits bytes, at most half of them set (or none yet); 0: empty
  BlockArray<std::uint32_t> m_slots;   // 2^m_bits indices, meaningful where the control byte is set
  unsigned m_bits = 0;
};

}  // namespace dagsched::detail
