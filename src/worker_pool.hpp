// The executor: a fixed set of worker threads, each with its own work-stealing deque, that execute the
// tasks of one RunState at a time and sleep when there is nothing to do.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "event_count.hpp"
#include "run_state.hpp"

namespace dagsched::detail {

class WorkerPool {
 public:
  /// Starts `workers` threads (at least 1). They sleep until run() gives them work.
  explicit WorkerPool(std::size_t workers);
  /// Stops and joins the threads. Must not overlap run().
  ~WorkerPool();

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  /// Executes every task of `state` and returns once all are finished and every worker has stopped
  /// touching `state`. The calling thread only waits; it never runs a task.
  void run(RunState& state);

  [[nodiscard]] std::size_t size() const noexcept { return m_workers.size(); }

 private:
  struct Worker;

  void thread_main(Worker& worker);
  void work(Worker& worker, RunState& state);
  [[nodiscard]] std::uint32_t find_work(Worker& worker, RunState& state);
  [[nodiscard]] std::uint32_t steal(Worker& worker);
  [[nodiscard]] bool work_visible(const RunState& state) const noexcept;
  void stop_and_join() noexcept;

  std::vector<std::unique_ptr<Worker>> m_workers;
  EventCount m_idle;  // parking inside a run

  // Between runs workers sleep on m_epoch; run() publishes m_state, then bumps m_epoch (release), so a
  // worker that sees the new epoch (acquire) sees the state. m_state is rewritten only after every worker
  // has left the previous run (m_active reached zero, acq_rel/acquire), so it never races.
  alignas(64) std::atomic<std::uint32_t> m_epoch{0};
  std::atomic<bool> m_stop{false};
  RunState* m_state = nullptr;
  // Workers still inside the current run; run() returns when it drops to zero.
  alignas(64) std::atomic<std::uint32_t> m_active{0};
};

}  // namespace dagsched::detail
