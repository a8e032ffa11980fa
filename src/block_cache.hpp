// Recycling of the large blocks a graph is made of, across graphs and schedulers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace dagsched::detail {

/// Returns a block of at least `bytes` bytes (rounded up to a power of two, at least 4 KiB), recycled
/// from a process-wide cache when one of that size is there. Throws std::bad_alloc.
///
/// Why: building or first-running a large graph is dominated by faulting in fresh memory, and blocks
/// past malloc's mmap threshold go back to the kernel when freed, so every new graph would fault them in
/// again. The cache keeps up to `block_cache_limit` bytes of freed blocks for the next graph (what
/// Taskflow's node pool and oneTBB's scalable allocator do for their nodes). Thread-safe.
[[nodiscard]] void* acquire_block(std::size_t bytes);

/// Gives back a block from acquire_block(bytes) (the same `bytes`). Never throws.
void release_block(void* block, std::size_t bytes) noexcept;

/// The most bytes of free blocks the cache keeps.
inline constexpr std::size_t block_cache_limit = std::size_t{64} << 20;

/// A fixed-size array of trivially destructible T in a cached block. Elements start uninitialised:
/// the owner writes each before reading it.
template <class T>
class BlockArray {
  static_assert(std::is_trivially_destructible_v<T>);

 public:
  BlockArray() noexcept = default;
  explicit BlockArray(std::size_t size)
      : m_data(size == 0 ? nullptr : static_cast<T*>(acquire_block(size * sizeof(T)))), m_size(size) {}
  BlockArray(BlockArray&& other) noexcept
      : m_data(std::exchange(other.m_data, nullptr)), m_size(std::exchange(other.m_size, 0)) {}
  BlockArray& operator=(BlockArray&& other) noexcept {
    if (this != &other) {
      reset();
      m_data = std::exchange(other.m_data, nullptr);
      m_size = std::exchange(other.m_size, 0);
    }
    return *this;
  }
  BlockArray(const BlockArray&) = delete;
  BlockArray& operator=(const BlockArray&) = delete;
  ~BlockArray() { reset(); }

  [[nodiscard]] T* data() const noexcept { return m_data; }
  [[nodiscard]] std::size_t size() const noexcept { return m_size; }
  [[nodiscard]] T& operator[](std::size_t i) const noexcept { return m_data[i]; }

 private:
  void reset() noexcept {
    if (m_data != nullptr) {
      release_block(m_data, m_size * sizeof(T));
      m_data = nullptr;
      m_size = 0;
    }
  }

  T* m_data = nullptr;
  std::size_t m_size = 0;
};

}  // namespace dagsched::detail
