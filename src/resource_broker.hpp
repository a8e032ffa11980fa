// Resource pools (TaskScheduler::add_resource): who holds how many units, and who waits for them.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "thread_annotations.hpp"

namespace dagsched::detail {

/// Units of one pool that a task needs for each attempt.
struct Need {
  std::uint32_t pool;
  std::uint32_t units;
};

/// Hands out units of the scheduler's pools for one run. Touched only by tasks that need resources, so a
/// mutex is plenty. Acquisition is all-or-nothing under that one mutex, so no set of tasks can each hold
/// part of what another waits for: no deadlock, whatever pools they combine.
///
/// Waiting tasks hold no worker: acquire() queues the task and the worker moves on; release() returns the
/// tasks that the freed units let start, for the caller to make ready. Waiters are served by priority,
/// then in arrival order, but a waiter whose request does not fit yet does not block smaller ones behind
/// it (a task needing 1 gpu can pass one needing 2)... up to `max_bypass` times: then it reserves what it
/// needs, and nobody passes it until it has started (no starvation of a large request).
class ResourceBroker {
 public:
  static constexpr std::uint32_t max_bypass = 8;

  /// Starts a run with these capacities, nothing in use and nobody waiting.
  void reset(const std::vector<std::uint32_t>& capacities);

  /// Takes `needs` for `task` if they are free and no reserving waiter is in the way; otherwise queues
  /// `task` (with its `priority`). Returns whether the units were taken. `needs` must stay valid while the
  /// task waits.
  [[nodiscard]] bool acquire(std::uint32_t task, std::span<const Need> needs, std::uint64_t priority);

  /// Gives `needs` back, then grants what it can to waiters; appends the tasks granted to `granted`.
  void release(std::span<const Need> needs, std::vector<std::uint32_t>& granted);

  /// Removes every waiter (the run is cancelled), appending them to `out`.
  void drain(std::vector<std::uint32_t>& out);

  /// Units of `pool` in use now (for tests of the capacity bound).
  [[nodiscard]] std::uint32_t in_use(std::uint32_t pool);

 private:
  struct Waiter {
    std::uint32_t task;
    std::uint64_t priority;
    std::uint64_t seq;
    std::uint32_t bypassed;
    std::span<const Need> needs;
  };

  [[nodiscard]] bool fits(std::span<const Need> needs) const DAGSCHED_REQUIRES(m_mutex);
  void take(std::span<const Need> needs) DAGSCHED_REQUIRES(m_mutex);
  /// Grants waiters in order while units allow, honouring reservations.
  void grant(std::vector<std::uint32_t>& granted) DAGSCHED_REQUIRES(m_mutex);

  Mutex m_mutex;
  std::vector<std::uint32_t> m_capacity DAGSCHED_GUARDED_BY(m_mutex);
  std::vector<std::uint32_t> m_used DAGSCHED_GUARDED_BY(m_mutex);
  std::vector<Waiter> m_waiters DAGSCHED_GUARDED_BY(m_mutex);  // sorted: priority desc, then seq
  std::uint64_t m_seq DAGSCHED_GUARDED_BY(m_mutex) = 0;
};

}  // namespace dagsched::detail
