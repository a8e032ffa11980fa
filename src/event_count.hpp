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
/// Why no wake-up is lost (Dekker's pattern, with no standalone fence): the publication of work (a
/// deque's m_bottom store, the finished-count RMW), the re-check in work_visible() and every operation
/// here on m_waiters and m_epoch are seq_cst, so they all sit in one total order S in which each thread's
/// operations keep their program order. If the notifier's read of m_waiters precedes the waiter's
/// increment in S, then the notifier's publication precedes the waiter's re-check, which therefore sees
/// the work. Otherwise the notifier sees m_waiters > 0 and bumps m_epoch: either the waiter read its
/// `key` before that bump, and the futex wait (which compares atomically) returns at once, or after it,
/// and then the publication precedes the re-check in S again. Callers must therefore publish with a
/// seq_cst store or RMW before notifying. (Standalone fences would do too, but ThreadSanitizer does not
/// model them.)
///
/// The epoch is 32 bits because std::atomic<uint32_t>::wait maps straight onto a futex on Linux.
class EventCount {
 public:
  [[nodiscard]] std::uint32_t prepare_wait() noexcept {
    m_waiters.fetch_add(1, std::memory_order_seq_cst);
    return m_epoch.load(std::memory_order_seq_cst);
  }

  // Decrements may be relaxed: a stale non-zero count only costs a notifier a spurious epoch bump.
  void cancel_wait() noexcept { m_waiters.fetch_sub(1, std::memory_order_relaxed); }

  void commit_wait(std::uint32_t key) noexcept {
    m_epoch.wait(key, std::memory_order_seq_cst);
    m_waiters.fetch_sub(1, std::memory_order_relaxed);
  }

  /// Wakes one parked worker, if any. Call after publishing work with a seq_cst store or RMW.
  void notify_one() noexcept {
    if (m_waiters.load(std::memory_order_seq_cst) != 0) {
      m_epoch.fetch_add(1, std::memory_order_seq_cst);
      m_epoch.notify_one();
    }
  }

  /// Wakes every parked worker. Call after ending the run with a seq_cst RMW.
  void notify_all() noexcept {
    if (m_waiters.load(std::memory_order_seq_cst) != 0) {
      m_epoch.fetch_add(1, std::memory_order_seq_cst);
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
