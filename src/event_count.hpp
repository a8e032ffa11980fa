// Parking for idle workers without lost wake-ups: a two-phase event count.
#pragma once

#include <atomic>
#include <cstdint>

namespace dagsched::detail {

/// An idle worker parks in three steps:
///
///     key = ec.prepare_wait();          // announce: "I am about to sleep"
///     if (work_visible()) ec.cancel_wait();
///     else                ec.commit_wait(key);
///
/// and whoever makes work visible (or ends the run) calls notify_one()/notify_all() afterwards.
///
/// Why no wake-up is lost: prepare_wait increments `m_waiters` and notify reads it, each followed (resp.
/// preceded) by a seq_cst fence, as in Dekker's algorithm. In the single total order of those fences
/// either the notifier's fence comes first, and then the waiter's re-check sees the new work, or the
/// waiter's comes first, and then the notifier sees m_waiters > 0 and bumps m_epoch; commit_wait sleeps
/// only while m_epoch still equals `key` (the futex compares atomically), so it returns at once.
///
/// The epoch is 32 bits because std::atomic<uint32_t>::wait maps straight onto a futex on Linux.
class EventCount {
 public:
  [[nodiscard]] std::uint32_t prepare_wait() noexcept {
    m_waiters.fetch_add(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return m_epoch.load(std::memory_order_relaxed);
  }

  void cancel_wait() noexcept { m_waiters.fetch_sub(1, std::memory_order_relaxed); }

  void commit_wait(std::uint32_t key) noexcept {
    m_epoch.wait(key, std::memory_order_relaxed);
    m_waiters.fetch_sub(1, std::memory_order_relaxed);
  }

  /// Wakes one parked worker, if any. Call after making work visible.
  void notify_one() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (m_waiters.load(std::memory_order_relaxed) != 0) {
      m_epoch.fetch_add(1, std::memory_order_relaxed);
      m_epoch.notify_one();
    }
  }

  /// Wakes every parked worker. Call after ending the run.
  void notify_all() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (m_waiters.load(std::memory_order_relaxed) != 0) {
      m_epoch.fetch_add(1, std::memory_order_relaxed);
      m_epoch.notify_all();
    }
  }

 private:
  // Both are touched by every idle transition and every notify: keep them off the lines of the data
  // the workers write on their hot path.
  alignas(64) std::atomic<std::uint32_t> m_epoch{0};
  std::atomic<std::uint32_t> m_waiters{0};
};

}  // namespace dagsched::detail
