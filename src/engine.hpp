// What a TaskScheduler owns: the id table, the graph being built, its frozen form, the result slots and
// the worker pool. The three parts are separate so that each can change on its own (a task could become
// a process, a worker a remote rank).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <vector>

#include "dagsched/task_scheduler.hpp"

#include "dagsched/task_result.hpp"
#include "graph.hpp"
#include "id_table.hpp"
#include "result_block.hpp"
#include "run_state.hpp"
#include "thread_annotations.hpp"
#include "timekeeper.hpp"
#include "worker_pool.hpp"

namespace dagsched::detail {

class Engine {
 public:
  explicit Engine(std::size_t workers);

  std::shared_ptr<IdTable> ids = std::make_shared<IdTable>();  // copied before changes when shared
  Graph graph;
  FrozenGraph frozen;
  bool frozen_valid = false;  // frozen matches graph
  // Result slots, reused by the next run unless a ResultSet still holds them.
  std::shared_ptr<ResultBlock> results;
  // Set from the start of a run (or an add_task) until its end; guards against re-entry from tasks.
  std::atomic<bool> running{false};
  // The run in flight, between start() and the end of wait(). Created and destroyed under run_mutex, so
  // that RunHandle::progress() and cancel() from other threads never see it half-made or gone.
  std::optional<RunState> run DAGSCHED_GUARDED_BY(run_mutex);
  std::shared_ptr<Observer> observer;  // the run's, kept alive until on_run_end
  std::shared_ptr<Observer> recorder;  // RunOptions::record's
  // Runs are numbered, and a RunHandle knows its run's number: a late cancel() (racing with the end of
  // its run) finds another number, or no run, under run_mutex, and touches nothing.
  std::uint64_t run_serial DAGSCHED_GUARDED_BY(run_mutex) = 0;
  std::stop_source run_stop DAGSCHED_GUARDED_BY(run_mutex){std::nostopstate};  // run_serial's, see cancel()
  Progress final_progress DAGSCHED_GUARDED_BY(run_mutex);                      // run_serial's, once it ended
  FailedLists failed_lists;                                                    // skip causes, kept across runs
  Mutex run_mutex;
  const std::uint32_t serial;  // tags this scheduler's TaskHandles
  WorkerPool pool;
  Timekeeper timekeeper;  // after the pool: its thread is joined first, and its entries point at the pool

  /// Cancels run `run` if it is still the current one: what RunHandle::cancel() does.
  void cancel(std::uint64_t run) noexcept;
};

}  // namespace dagsched::detail
