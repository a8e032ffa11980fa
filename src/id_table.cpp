#include "id_table.hpp"

#include <cstring>
#include <utility>

namespace dagsched::detail {

namespace {

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

// Ids are short (task names): hash 8 bytes at a time, the tail zero-padded, the length mixed in first.
std::uint32_t IdTable::tag_of(std::string_view id) noexcept {
  std::uint64_t h = 0x9E3779B97F4A7C15ULL * (id.size() + 1);
  const char* p = id.data();
  std::size_t n = id.size();
  for (; n >= 8; n -= 8, p += 8) {
    h = mix(h ^ load64(p));
  }
  if (n != 0) {
    char tail[8] = {};
    std::memcpy(tail, p, n);
    h = mix(h ^ load64(tail));
  }
  return static_cast<std::uint32_t>(mix(h) >> 32);
}

std::size_t IdTable::probe(std::string_view id, std::uint32_t tag) const noexcept {
  const std::size_t mask = m_slots.size() - 1;
  std::size_t i = home(tag);
  for (;; i = (i + 1) & mask) {
    const Slot s = m_slots[i];
    if (s.index_plus_one == 0 || (s.tag == tag && m_names[s.index_plus_one - 1] == id)) {
      return i;
    }
  }
}

std::uint32_t IdTable::find(std::string_view id) const noexcept {
  if (m_slots.empty()) {
    return npos;
  }
  const Slot s = m_slots[probe(id, tag_of(id))];
  return s.index_plus_one == 0 ? npos : s.index_plus_one - 1;
}

std::uint32_t IdTable::intern(std::string_view id) {
  const std::uint32_t index = find(id);
  return index != npos ? index : add(std::string(id));
}

std::uint32_t IdTable::add(std::string&& id) {
  // Grow both first, so that nothing can throw once the table has changed.
  if (2 * (m_names.size() + 1) > m_slots.size()) {
    grow();
  }
  m_names.reserve_more(1);
  const std::uint32_t tag = tag_of(id);
  const auto index = static_cast<std::uint32_t>(m_names.size());
  m_slots[probe(id, tag)] = Slot{index + 1, tag};
  m_names.push_back(std::move(id));
  return index;
}

void IdTable::grow() {
  const unsigned bits = m_bits == 0 ? 5 : m_bits + 1;
  std::vector<Slot> old(std::size_t{1} << bits);
  m_slots.swap(old);
  m_bits = bits;
  const std::size_t mask = m_slots.size() - 1;
  for (const Slot& s : old) {
    if (s.index_plus_one != 0) {
      std::size_t i = home(s.tag);
      while (m_slots[i].index_plus_one != 0) {
        i = (i + 1) & mask;
      }
      m_slots[i] = s;
    }
  }
}

}  // namespace dagsched::detail
