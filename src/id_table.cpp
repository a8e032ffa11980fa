#include "id_table.hpp"

#include <cstring>
#include <utility>

namespace dagsched::detail {

namespace {

inline std::uint32_t load32(const char* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline std::uint64_t load64(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// A multiply-xorshift finaliser (the splitmix64 constants): good avalanche, a few cycles.
inline std::uint64_t mix(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

// Ids are short (task names): 8 bytes at a time, and a tail of 1..7 bytes read with two overlapping
// loads (no memcpy call), the length mixed in first so that "a" and "a\0" differ.
std::uint32_t IdTable::tag_of(std::string_view id) noexcept {
  const char* p = id.data();
  std::size_t n = id.size();
  std::uint64_t h = 0x9E3779B97F4A7C15ULL * (n + 1);
  for (; n >= 8; n -= 8, p += 8) {
    h = mix(h ^ load64(p));
  }
  if (n >= 4) {
    h = mix(h ^ ((std::uint64_t{load32(p)} << 32) | load32(p + n - 4)));
  } else if (n != 0) {
    const auto a = static_cast<unsigned char>(p[0]);
    const auto b = static_cast<unsigned char>(p[n / 2]);
    const auto c = static_cast<unsigned char>(p[n - 1]);
    h = mix(h ^ ((std::uint64_t{a} << 16) | (std::uint64_t{b} << 8) | c));
  }
  return static_cast<std::uint32_t>(mix(h) >> 32);
}

IdTable::IdTable(const IdTable& other)
    : m_names(other.m_names),
      m_heap_names(other.m_heap_names),
      m_tags(other.m_tags),
      m_control(other.m_control.size()),
      m_slots(other.m_slots.size()),
      m_bits(other.m_bits) {
  if (m_control.size() != 0) {
    std::memcpy(m_control.data(), other.m_control.data(), m_control.size());
    std::memcpy(m_slots.data(), other.m_slots.data(), m_slots.size() * sizeof(std::uint32_t));
  }
}

IdTable::Lookup IdTable::lookup(std::string_view id) const noexcept {
  const std::uint32_t tag = tag_of(id);
  if (m_control.size() == 0) {
    return {npos, tag, 0};
  }
  const std::uint8_t want = control_of(tag);
  const std::size_t mask = m_control.size() - 1;
  for (std::size_t i = home(tag);; i = (i + 1) & mask) {
    const std::uint8_t c = m_control[i];
    if (c == 0) {
      return {npos, tag, i};
    }
    if (c == want) {
      const std::uint32_t index = m_slots[i];
      if (m_names[index] == id) {
        return {index, tag, i};
      }
    }
  }
}

std::uint32_t IdTable::intern(std::string_view id) {
  const Lookup where = lookup(id);
  return where.index != npos ? where.index : add(std::string(id), where);
}

std::uint32_t IdTable::add(std::string&& id, const Lookup& where) {
  // Grow and reserve first, so that nothing can throw once an index is placed. (A grown table holds the
  // same ids: it is unchanged as far as anyone can see.)
  std::size_t slot = where.slot;
  if (2 * (m_names.size() + 1) > m_control.size()) {
    grow();
    slot = empty_slot(where.tag);
  }
  m_names.reserve_more(1);
  m_tags.reserve_more(1);
  const auto index = static_cast<std::uint32_t>(m_names.size());
  m_control[slot] = control_of(where.tag);
  m_slots[slot] = index;
  m_tags.push_back(where.tag);
  // A std::string longer than its inline buffer holds its characters on the heap (a default-constructed
  // string's capacity is that buffer's). Copies keep the count (the copy constructor copies each string,
  // so the same ones are long).
  static const std::size_t inline_capacity = std::string().capacity();
  m_heap_names += id.capacity() > inline_capacity ? 1U : 0U;
  m_names.push_back(std::move(id));
  return index;
}

std::size_t IdTable::empty_slot(std::uint32_t tag) const noexcept {
  const std::size_t mask = m_control.size() - 1;
  std::size_t i = home(tag);
  while (m_control[i] != 0) {
    i = (i + 1) & mask;
  }
  return i;
}

void IdTable::grow() {
  const unsigned bits = m_bits == 0 ? 5 : m_bits + 1;
  BlockArray<std::uint8_t> control(std::size_t{1} << bits);
  BlockArray<std::uint32_t> slots(std::size_t{1} << bits);
  std::memset(control.data(), 0, control.size());  // all empty
  m_control = std::move(control);
  m_slots = std::move(slots);
  m_bits = bits;
  std::uint32_t* const* const tags = m_tags.chunks();
  const auto count = static_cast<std::uint32_t>(m_tags.size());
  for (std::uint32_t index = 0; index < count; ++index) {
    const std::uint32_t tag = ChunkedArray<std::uint32_t>::at(tags, index);
    const std::size_t i = empty_slot(tag);
    m_control[i] = control_of(tag);
    m_slots[i] = index;
  }
}

}  // namespace dagsched::detail
