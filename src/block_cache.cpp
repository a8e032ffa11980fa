#include "block_cache.hpp"

#include <array>
#include <bit>
#include <mutex>
#include <vector>

#include "thread_annotations.hpp"

namespace dagsched::detail {

namespace {

constexpr unsigned min_class = 12;  // 4 KiB
constexpr unsigned class_count = 48;

unsigned size_class(std::size_t bytes) noexcept {
  if (bytes <= (std::size_t{1} << min_class)) {
    return min_class;  // 0 included
  }
  return static_cast<unsigned>(std::bit_width(bytes - 1));
}

class BlockCache {
 public:
  void* acquire(unsigned cls) {
    {
      Lock lock(m_mutex);
      std::vector<void*>& list = m_free[cls];
      if (!list.empty()) {
        void* block = list.back();
        list.pop_back();
        m_bytes -= std::size_t{1} << cls;
        return block;
      }
    }
    return ::operator new (std::size_t{1} << cls, std::align_val_t{64});
  }

  void release(void* block, unsigned cls) noexcept {
    const std::size_t size = std::size_t{1} << cls;
    {
      Lock lock(m_mutex);
      if (m_bytes + size <= block_cache_limit) {
        try {
          m_free[cls].push_back(block);
          m_bytes += size;
          return;
        } catch (...) {  // no room to remember it: free it instead
        }
      }
    }
    ::operator delete (block, std::align_val_t{64});
  }

 private:
  Mutex m_mutex;
  std::array<std::vector<void*>, class_count> m_free DAGSCHED_GUARDED_BY(m_mutex);
  std::size_t m_bytes DAGSCHED_GUARDED_BY(m_mutex) = 0;
};

// Never destroyed: schedulers with static storage duration may release blocks during exit. The blocks it
// still holds then stay reachable through it, so leak checkers do not report them.
BlockCache& cache() {
  static BlockCache* const instance = new BlockCache;
  return *instance;
}

}  // namespace

void* acquire_block(std::size_t bytes) { return cache().acquire(size_class(bytes)); }

void release_block(void* block, std::size_t bytes) noexcept { cache().release(block, size_class(bytes)); }

}  // namespace dagsched::detail
