// A growable array stored in fixed-size chunks.
#pragma once

#include <bit>
#include <cstddef>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "block_cache.hpp"

namespace dagsched::detail {

/// Like std::vector, but elements live in chunks of ~32 KiB that never move.
///
/// Why: building a large graph is dominated by touching fresh memory. A vector that doubles copies
/// every element into a new, ever larger block (touching about twice the final size), and blocks past
/// malloc's mmap threshold go back to the kernel when freed, so the next graph faults them in again.
/// Chunks are never copied on growth, and come from (and go back to) the block cache, so the next graph
/// reuses memory that is already mapped.
/// Indexing costs one extra load (the chunk table is small and stays in cache).
template <class T, std::size_t ChunkBytes = 32768>
class ChunkedArray {
 public:
  static constexpr std::size_t per_chunk = std::bit_floor(ChunkBytes / sizeof(T) > 0 ? ChunkBytes / sizeof(T) : 1);
  static constexpr unsigned shift = static_cast<unsigned>(std::countr_zero(per_chunk));
  static constexpr std::size_t mask = per_chunk - 1;
  static constexpr std::size_t chunk_bytes = per_chunk * sizeof(T);
  static_assert(alignof(T) <= 64, "blocks are 64-byte aligned");

  ChunkedArray() = default;
  ChunkedArray(const ChunkedArray& other) {
    reserve_chunks(other.m_chunks.size());
    for (std::size_t i = 0; i < other.m_size; ++i) {
      push_back(other[i]);
    }
  }
  ChunkedArray& operator=(const ChunkedArray&) = delete;
  ChunkedArray(ChunkedArray&& other) noexcept
      : m_chunks(std::move(other.m_chunks)), m_size(std::exchange(other.m_size, 0)) {}
  ChunkedArray& operator=(ChunkedArray&& other) noexcept {
    if (this != &other) {
      clear();
      m_chunks = std::move(other.m_chunks);
      m_size = std::exchange(other.m_size, 0);
    }
    return *this;
  }
  ~ChunkedArray() { clear(); }

  [[nodiscard]] T& operator[](std::size_t i) noexcept { return m_chunks[i >> shift][i & mask]; }
  [[nodiscard]] const T& operator[](std::size_t i) const noexcept { return m_chunks[i >> shift][i & mask]; }
  [[nodiscard]] std::size_t size() const noexcept { return m_size; }

  /// The chunk table, for loops that index many times while the array does not grow: `at(chunks(), i)`
  /// saves reloading the table through the object after every opaque call.
  [[nodiscard]] T* const* chunks() const noexcept { return m_chunks.data(); }
  [[nodiscard]] static T& at(T* const* chunks, std::size_t i) noexcept { return chunks[i >> shift][i & mask]; }
  [[nodiscard]] bool empty() const noexcept { return m_size == 0; }

  template <class... Args>
  T& emplace_back(Args&&... args) {
    if ((m_size & mask) == 0 && (m_size >> shift) == m_chunks.size()) {
      add_chunk();
    }
    T* slot = &m_chunks[m_size >> shift][m_size & mask];
    ::new (static_cast<void*>(slot)) T(std::forward<Args>(args)...);
    ++m_size;
    return *slot;
  }
  void push_back(const T& value) { emplace_back(value); }
  void push_back(T&& value) { emplace_back(std::move(value)); }

  /// Makes room for `n` more elements up front, so that the next `n` emplace_back calls cannot throw.
  void reserve_more(std::size_t n) {
    if (m_size + n <= m_chunks.size() * per_chunk) [[likely]] {  // the chunks held have room: one compare
      return;
    }
    const std::size_t needed = (m_size + n + mask) >> shift;
    reserve_chunks(needed);
    while (m_chunks.size() < needed) {
      add_chunk();
    }
  }

  void clear() noexcept {
    for (std::size_t i = m_size; i > 0; --i) {
      (*this)[i - 1].~T();
    }
    release_chunks();
  }

  /// Empties the array without calling the elements' destructors, which the caller knows do nothing:
  /// a pass over a large array saved. (Ending an object's lifetime by reusing its storage is allowed.)
  void clear_trivially() noexcept { release_chunks(); }

 private:
  void release_chunks() noexcept {
    for (T* chunk : m_chunks) {
      release_block(chunk, chunk_bytes);
    }
    m_chunks.clear();
    m_size = 0;
  }

  void reserve_chunks(std::size_t n) { m_chunks.reserve(n); }
  void add_chunk() {
    T* chunk = static_cast<T*>(acquire_block(chunk_bytes));
    try {
      m_chunks.push_back(chunk);
    } catch (...) {
      release_block(chunk, chunk_bytes);
      throw;
    }
  }

  std::vector<T*> m_chunks;
  std::size_t m_size = 0;
};

}  // namespace dagsched::detail
