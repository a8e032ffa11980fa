// The executor: a fixed set of worker threads, each with its own work-stealing deque, that execute the
// tasks of one RunState at a time and sleep when there is nothing to do.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <chrono>
#include <condition_variable>

#include "event_count.hpp"
#include "run_state.hpp"
#include "thread_annotations.hpp"

namespace dagsched::detail {

class WorkerPool {
 public:
  /// Starts `workers` threads (at least 1). They sleep until run() gives them work.
  explicit WorkerPool(std::size_t workers);
  /// Stops and joins the threads. Must not overlap run().
  ~WorkerPool();

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  /// Starts executing every task of `state` and returns at once. `state` must stay alive until wait()
  /// (or a wait_for() that returned true) has returned. The calling thread never runs a task.
  void start(RunState& state);

  /// Blocks until every task of the started run is finished and no worker touches its state any more.
  void wait();

  /// As wait(), for at most `timeout`. Returns whether the run has ended.
  [[nodiscard]] bool wait_for(std::chrono::nanoseconds timeout);

  /// Whether the started run has ended (as wait() would see it).
  [[nodiscard]] bool finished();

  [[nodiscard]] std::size_t size() const noexcept { return m_workers.size(); }

  /// Whether the calling thread is one of this pool's workers (so waiting for a run would wait for itself).
  [[nodiscard]] bool is_worker_thread() const noexcept;

  /// Called by the timer thread when a delayed retry falls due: wakes parked workers to pick it up.
  void timer_wake() noexcept;

  /// Wakes every parked worker (after a cancellation stored with seq_cst, so that they end the tasks
  /// waiting for a retry).
  void wake_all() noexcept { m_idle.notify_all(); }

 private:
  struct Worker;
  struct Grain;
  template <ReadyOrder Order, bool Queued>
  struct Sink;

  void thread_main(Worker& worker);
  template <ReadyOrder Order, bool Specialised>
  void run_mode(Worker& worker, RunState::Mode mode, std::uint32_t epoch);
  template <bool Observed, bool Extras, bool Counted, ReadyOrder Order>
  void work(Worker& worker, RunState& state, std::uint32_t epoch);
  template <ReadyOrder Order, bool Queued>
  [[nodiscard]] std::uint32_t find_work(Sink<Order, Queued>& sink, RunState& state);
  template <ReadyOrder Order>
  [[nodiscard]] std::uint32_t steal(Worker& worker);
  [[nodiscard]] bool work_visible(const RunState& state) const noexcept;
  /// In ordered runs: the worker whose queued best has a key above `bound` (the highest), or none.
  [[nodiscard]] std::uint32_t better_elsewhere(Worker& worker, std::uint64_t bound) noexcept;
  void stop_and_join() noexcept;
  [[nodiscard]] bool enter(std::uint32_t epoch) noexcept;
  void leave(std::uint32_t epoch) noexcept;
  [[nodiscard]] bool finished_locked() const DAGSCHED_REQUIRES(m_done_mutex) { return m_done == m_started; }

  std::vector<std::unique_ptr<Worker>> m_workers;
  EventCount m_idle;  // parking inside a run

  // Between runs workers sleep on m_epoch (or in m_idle, parked in the run that ended); run() publishes
  // m_state, then bumps m_epoch (seq_cst), so a worker that sees the new epoch (acquire) sees the state.
  // A run is named by its epoch. m_state is rewritten only once the previous run was given back, with
  // no worker inside it (see leave()), so it never races.
  alignas(64) std::atomic<std::uint32_t> m_epoch{0};
  std::atomic<bool> m_stop{false};
  RunState* m_state = nullptr;
  // Who may touch a run's state, and when the waiter may have it back (see enter() and leave()):
  // m_active counts the workers inside a run; m_ended is the epoch of the last run whose every task has
  // finished. A worker parks outside the run, so a run ends when its last task does, without waking a
  // parked worker first (on a VM, waking an idle vCPU can take tens of microseconds).
  alignas(64) std::atomic<std::uint32_t> m_active{0};
  std::atomic<std::uint32_t> m_ended{0};
  // The waiter sleeps on a condition variable (a timed wait needs one): one lock per run, not per task.
  Mutex m_done_mutex;
  std::condition_variable m_done_cv;
  std::uint32_t m_started DAGSCHED_GUARDED_BY(m_done_mutex) = 0;  // the epoch of the last run started
  std::uint32_t m_done DAGSCHED_GUARDED_BY(m_done_mutex) = 0;     // ... and of the last one given back
  // Bumped (seq_cst) by the timer thread before it wakes workers for a due retry. A parking worker reads
  // it (seq_cst) before its clock: either that read sees the bump, and then its clock reads at least the
  // due time (the timer read its clock before bumping), so it sees the retry due; or the read precedes the
  // bump in the single total order, and then so does the worker's prepare_wait, so the timer's notify sees
  // the waiter and wakes it. The same Dekker argument as EventCount's, with time as the published thing.
  alignas(64) std::atomic<std::uint32_t> m_timer_signal{0};
};

}  // namespace dagsched::detail
