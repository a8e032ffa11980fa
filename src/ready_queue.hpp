// A worker's ready tasks when a run orders them (ReadyOrder::critical_path, fifo): a priority queue on a
// key, which the owner pushes to and pops from and other workers steal the top of.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "graph.hpp"
#include "thread_annotations.hpp"

namespace dagsched::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#else
  std::this_thread::yield();
#endif
}

/// A test-and-test-and-set lock for critical sections of a few dozen instructions. The owner of a queue
/// takes it for every push and pop and contends only with a thief, so it is almost always free: one
/// atomic exchange, where a mutex would add a call and, under contention, a futex sleep far longer than
/// the section itself. A holder that was preempted is waited for with yields, not burnt cycles.
class DAGSCHED_CAPABILITY("mutex") SpinLock {
 public:
  void lock() noexcept DAGSCHED_ACQUIRE() {
    for (int spins = 0;; ++spins) {
      if (!m_locked.load(std::memory_order_relaxed) && !m_locked.exchange(true, std::memory_order_acquire)) {
        return;
      }
      if (spins < 64) {
        cpu_relax();
      } else {
        std::this_thread::yield();
      }
    }
  }
  [[nodiscard]] bool try_lock() noexcept DAGSCHED_TSA(try_acquire_capability(true)) {
    return !m_locked.load(std::memory_order_relaxed) && !m_locked.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept DAGSCHED_RELEASE() { m_locked.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> m_locked{false};
};

/// Holds a SpinLock for a scope.
class DAGSCHED_SCOPED_CAPABILITY SpinGuard {
 public:
  explicit SpinGuard(SpinLock& lock) noexcept DAGSCHED_ACQUIRE(lock) : m_lock(lock) { m_lock.lock(); }
  ~SpinGuard() DAGSCHED_RELEASE() { m_lock.unlock(); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  SpinLock& m_lock;
};

/// A worker's ready tasks, highest key first: a bucket queue. Tasks of equal key share a bucket, a LIFO
/// stack threaded through `links` (one slot per task, since a task waits in at most one queue at a time);
/// the buckets sit in a binary max-heap on their key. Unit-cost critical paths give few distinct keys among
/// the tasks ready at once (a tree or a wavefront has one or two), so most pushes and pops touch one bucket
/// in O(1); distinct keys (cost hints, FIFO numbers) degrade it to a heap of single tasks, O(log n).
/// Ties go to the task readied last (depth-first, cache-warm).
///
/// Memory orders: items are published under the lock (its release/acquire orders a pusher's writes
/// before a thief's run of the item). `m_size` mirrors the number of tasks held for lock-free looks: it is
/// stored seq_cst after each push, the publication EventCount's Dekker argument needs before a notify (as
/// a deque's m_bottom store is); a stale value only sends a thief to an empty queue or past a full one, and
/// a parking worker re-checks it with a seq_cst load after announcing itself.
class ReadyQueue {
 public:
  static constexpr std::uint32_t empty = UINT32_MAX;

  struct Entry {
    std::uint64_t key;
    std::uint32_t item;
  };

  /// Uses `links` (indexed by task) for its stacks; set before each run, by the owner.
  void attach(std::uint32_t* links) noexcept {
    SpinGuard lock(m_lock);
    m_links = links;
  }

  /// Owner only.
  void push(Entry entry) {
    SpinGuard lock(m_lock);
    insert(entry);
    publish_top();
    m_size.store(m_count, std::memory_order_seq_cst);
  }

  /// Owner only: several at once under one lock (a batch of roots).
  template <class Fn>
  void push_many(std::uint32_t count, Fn&& entry_at) {
    SpinGuard lock(m_lock);
    for (std::uint32_t i = 0; i < count; ++i) {
      insert(entry_at(i));
    }
    publish_top();
    m_size.store(m_count, std::memory_order_seq_cst);
  }

  /// Owner only: `entry`'s item if nothing here has a higher key, else the top's, and `entry` takes its
  /// place.
  [[nodiscard]] std::uint32_t exchange(Entry entry) {
    SpinGuard lock(m_lock);
    if (m_count == 0 || m_heap.front().key <= entry.key) {
      return entry.item;
    }
    const std::uint32_t top = take_top();
    insert(entry);
    publish_top();
    m_size.store(m_count, std::memory_order_seq_cst);
    return top;
  }

  /// Owner only: the top, if its key is at least `bound`'s (else `empty`, and nothing changes).
  [[nodiscard]] std::uint32_t pop_before(Entry bound) {
    if (m_size.load(std::memory_order_relaxed) == 0) {  // as in pop()
      return empty;
    }
    SpinGuard lock(m_lock);
    if (m_count == 0 || m_heap.front().key < bound.key) {
      return empty;
    }
    return take_top_published();
  }

  /// Owner only. Returns `empty` when there is nothing to pop.
  [[nodiscard]] std::uint32_t pop() {
    if (m_size.load(std::memory_order_relaxed) == 0) {  // only the owner adds: a zero is the truth
      return empty;
    }
    SpinGuard lock(m_lock);
    return m_count == 0 ? empty : take_top_published();
  }

  /// Any thread: takes from the top bucket, the best this worker has. Returns `empty` when there is
  /// nothing, or the owner holds the lock (the caller looks elsewhere; the parking re-check sees the size).
  [[nodiscard]] std::uint32_t steal() {
    if (m_size.load(std::memory_order_relaxed) == 0 || !m_lock.try_lock()) {
      return empty;
    }
    const std::uint32_t item = m_count == 0 ? empty : take_top_published();
    m_lock.unlock();
    return item;
  }

  /// Owner only: a hint that costs one load (exact for the owner when zero).
  [[nodiscard]] bool owner_sees_empty() const noexcept { return m_size.load(std::memory_order_relaxed) == 0; }

  /// Any thread: the key of the best task held (0 when empty; a task of priority INT_MIN and path 0 looks
  /// empty too, harmlessly). A hint, for comparing workers' best tasks without their locks.
  [[nodiscard]] std::uint64_t top_key() const noexcept { return m_top.load(std::memory_order_relaxed); }

  /// Any thread; seq_cst, for the parking re-check.
  [[nodiscard]] bool looks_empty() const noexcept { return m_size.load(std::memory_order_seq_cst) == 0; }

 private:
  static constexpr std::uint32_t end = UINT32_MAX;  // of a stack (no task item is all ones)
  static constexpr std::uint32_t cache_size = 16;   // direct-mapped: key -> bucket

  struct Bucket {
    std::uint64_t key;
    std::uint32_t head;  // top of its stack; `end` once the bucket is free
  };
  struct HeapEntry {
    std::uint64_t key;
    std::uint32_t bucket;
  };

  static std::uint32_t cache_slot(std::uint64_t key) noexcept {
    return static_cast<std::uint32_t>((key * 0x9E3779B97F4A7C15ULL) >> 60);  // 16 slots
  }

  void publish_top() DAGSCHED_REQUIRES(m_lock) {
    m_top.store(m_count == 0 ? 0 : m_heap.front().key, std::memory_order_relaxed);
  }

  void insert(Entry entry) DAGSCHED_REQUIRES(m_lock) {
    ++m_count;
    std::uint32_t& cached = m_cache[cache_slot(entry.key)];
    if (cached < m_buckets.size() && m_buckets[cached].head != end && m_buckets[cached].key == entry.key) {
      Bucket& b = m_buckets[cached];
      m_links[entry.item & index_mask] = b.head;
      b.head = entry.item;
      return;
    }
    // A new bucket (or a second one of this key, when the cache lost the first: harmless).
    std::uint32_t bucket;
    if (!m_free.empty()) {
      bucket = m_free.back();
      m_free.pop_back();
    } else {
      bucket = static_cast<std::uint32_t>(m_buckets.size());
      m_buckets.push_back({});
    }
    m_buckets[bucket] = {entry.key, entry.item};
    m_links[entry.item & index_mask] = end;
    cached = bucket;
    // Sift up, moving the hole.
    std::size_t hole = m_heap.size();
    m_heap.push_back({});
    while (hole > 0) {
      const std::size_t parent = (hole - 1) / 2;
      if (m_heap[parent].key >= entry.key) {
        break;
      }
      m_heap[hole] = m_heap[parent];
      hole = parent;
    }
    m_heap[hole] = {entry.key, bucket};
  }

  std::uint32_t take_top_published() DAGSCHED_REQUIRES(m_lock) {
    const std::uint32_t item = take_top();
    publish_top();
    m_size.store(m_count, std::memory_order_relaxed);
    return item;
  }

  // The top bucket's last pushed item; frees the bucket when that empties it.
  std::uint32_t take_top() DAGSCHED_REQUIRES(m_lock) {
    --m_count;
    const std::uint32_t bucket = m_heap.front().bucket;
    Bucket& b = m_buckets[bucket];
    const std::uint32_t item = b.head;
    b.head = m_links[item & index_mask];
    if (b.head != end) {
      return item;
    }
    m_free.push_back(bucket);
    // Sift the last heap entry down from the root.
    const HeapEntry last = m_heap.back();
    m_heap.pop_back();
    const std::size_t n = m_heap.size();
    if (n == 0) {
      return item;
    }
    std::size_t hole = 0;
    for (;;) {
      std::size_t child = 2 * hole + 1;
      if (child >= n) {
        break;
      }
      if (child + 1 < n && m_heap[child + 1].key > m_heap[child].key) {
        ++child;
      }
      if (m_heap[child].key <= last.key) {
        break;
      }
      m_heap[hole] = m_heap[child];
      hole = child;
    }
    m_heap[hole] = last;
    return item;
  }

  SpinLock m_lock;
  std::atomic<std::uint32_t> m_size{0};
  std::uint32_t* m_links DAGSCHED_GUARDED_BY(m_lock) = nullptr;
  std::uint32_t m_count DAGSCHED_GUARDED_BY(m_lock) = 0;
  std::vector<HeapEntry> m_heap DAGSCHED_GUARDED_BY(m_lock);
  std::vector<Bucket> m_buckets DAGSCHED_GUARDED_BY(m_lock);
  std::vector<std::uint32_t> m_free DAGSCHED_GUARDED_BY(m_lock);
  std::uint32_t m_cache[cache_size] DAGSCHED_GUARDED_BY(m_lock) = {};
  // Read by every other worker of an ordered run, often: last and on its own line, so that those reads
  // do not take the lock's and the heap's line from the owner.
  alignas(64) std::atomic<std::uint64_t> m_top{0};
};

}  // namespace dagsched::detail
