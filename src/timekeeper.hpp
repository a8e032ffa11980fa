// The timer thread: wakes the workers when a delayed retry falls due, and requests the stop token of an
// attempt whose timeout expires. Workers never block on a timer; this one thread does it for them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <stop_token>
#include <thread>
#include <utility>

#include "thread_annotations.hpp"

namespace dagsched::detail {

class WorkerPool;

/// Time in nanoseconds on std::chrono::steady_clock, the one clock of the engine.
using Nanos = std::int64_t;
inline constexpr Nanos never = INT64_MAX;

[[nodiscard]] inline Nanos clock_now() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// `t + d`, saturating at `never` (so that no timeout, delay or deadline overflows).
[[nodiscard]] inline Nanos add_saturated(Nanos t, std::chrono::nanoseconds d) noexcept {
  const Nanos n = d.count();
  return n > 0 && t > never - n ? never : t + n;
}

/// One timer thread per scheduler, started the first time a run needs it and joined by the destructor.
/// Entries are few (one per delayed retry or per running attempt with a timeout), so an ordered map under
/// a mutex is plenty: nothing here is on a task's fast path.
class Timekeeper {
 public:
  Timekeeper() = default;
  ~Timekeeper();
  Timekeeper(const Timekeeper&) = delete;
  Timekeeper& operator=(const Timekeeper&) = delete;

  /// Names a stop_at entry; default-constructed: none.
  using Ticket = std::pair<Nanos, std::uint64_t>;

  /// Starts the thread now rather than with the first entry (a run that will need it starts it up front,
  /// so that no attempt's time is spent creating a thread).
  void ensure_started();

  /// Calls `pool.timer_wake()` at `due` (or soon after).
  void wake_at(Nanos due, WorkerPool& pool);

  /// Requests `source`'s stop at `due`, unless cancel(ticket) comes first.
  [[nodiscard]] Ticket stop_at(Nanos due, std::stop_source source);

  /// Forgets a stop_at entry. Harmless if it already fired.
  void cancel(Ticket ticket) noexcept;

 private:
  struct Entry {
    WorkerPool* pool = nullptr;               // a wake-up, or
    std::stop_source stop{std::nostopstate};  // a stop request
  };
  using Key = Ticket;

  void insert(Key key, Entry entry) DAGSCHED_REQUIRES(m_mutex);
  void thread_main();

  Mutex m_mutex;
  std::condition_variable m_cv;
  std::map<Key, Entry> m_entries DAGSCHED_GUARDED_BY(m_mutex);
  std::uint64_t m_next_ticket DAGSCHED_GUARDED_BY(m_mutex) = 1;
  bool m_stop DAGSCHED_GUARDED_BY(m_mutex) = false;
  std::thread m_thread;  // started with the first entry
};

}  // namespace dagsched::detail
