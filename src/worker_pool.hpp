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
  void run_mode(Worker& worker, RunState::Mode mode);
  template <bool Observed, bool Extras, bool Counted, ReadyOrder Order>
  void work(Worker& worker, RunState& state);
  template <ReadyOrder Order, bool Queued>
  [[nodiscard]] std::uint32_t find_work(Sink<Order, Queued>& sink, RunState& state);
  template <ReadyOrder Order>
  [[nodiscard]] std::uint32_t steal(Worker& worker);
  [[nodiscard]] bool work_visible(const RunState& state) const noexcept;
  /// In ordered runs: the worker whose queued best has a key above `bound` (the highest), or none.
  [[nodiscard]] std::uint32_t better_elsewhere(Worker& worker, std::uint64_t bound) noexcept;
  void stop_and_join() noexcept;

  std::vector<std::unique_ptr<Worker>> m_workers;
  EventCount m_idle;  // parking inside a run

  // Between runs workers sleep on m_epoch; run() publishes m_state, then bumps m_epoch (release), so a
  // worker that sees the new epoch (acquire) sees the state. m_state is rewritten only after every worker
  // has left the previous run (m_active reached zero, acq_rel/acquire), so it never races.
  alignas(64) std::atomic<std::uint32_t> m_epoch{0};
  std::atomic<bool> m_stop{false};
  RunState* m_state = nullptr;
  // Workers still inside the current run. The worker that brings it to zero sets m_finished under the
  // mutex and signals, so the waiter cannot miss it (a timed wait needs a condition variable; this costs
  // one lock per run, not per task).
  alignas(64) std::atomic<std::uint32_t> m_active{0};
  Mutex m_done_mutex;
  std::condition_variable m_done_cv;
  bool m_finished DAGSCHED_GUARDED_BY(m_done_mutex) = true;
  // Bumped (seq_cst) by the timer thread before it wakes workers for a due retry. A parking worker reads
  // it (seq_cst) before its clock: either that read sees the bump, and then its clock reads at least the
  // due time (the timer read its clock before bumping), so it sees the retry due; or the read precedes the
  // bump in the single total order, and then so does the worker's prepare_wait, so the timer's notify sees
  // the waiter and wakes it. The same Dekker argument as EventCount's, with time as the published thing.
  alignas(64) std::atomic<std::uint32_t> m_timer_signal{0};
};

}  // namespace dagsched::detail
