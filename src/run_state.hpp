// The state of one run: what happens to a task from "ready" to "finished", and how finishing it readies,
// or skips, its dependents.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <stop_token>
#include <unordered_map>
#include <vector>

#include "dagsched/errors.hpp"
#include "dagsched/observer.hpp"
#include "dagsched/task_context.hpp"
#include "dagsched/task_result.hpp"
#include "dagsched/task_scheduler.hpp"
#include "graph.hpp"
#include "thread_annotations.hpp"
#include "timekeeper.hpp"

namespace dagsched::detail {

class WorkerPool;

/// The one-id cause lists of failed tasks (see RunState::skip), each made the first time its task's
/// failure skips another and kept for the scheduler's life (an index's id never changes). A task skipped
/// for the same cause run after run so keeps the very same list, and its result slot is left unwritten.
/// Thread-safe; references stay valid while the object lives.
class FailedLists {
 public:
  /// The list holding the id of `task`.
  [[nodiscard]] const SkipCauses& get(std::uint32_t task, const IdTable& ids);

 private:
  Mutex m_mutex;
  std::unordered_map<std::uint32_t, SkipCauses> m_lists DAGSCHED_GUARDED_BY(m_mutex);
};

/// What a run is made of, gathered by the scheduler.
struct RunSetup {
  Graph& graph;
  const FrozenGraph& frozen;
  const IdTable& ids;
  TaskResult* results;  // slots from `constructed` on are raw storage
  std::size_t constructed;
  WorkerPool& pool;
  Timekeeper& timekeeper;
  std::uint32_t failure_limit;  // final failures that cancel the run (0: never)
  std::uint64_t seed;           // for retry jitter
  Observer* observer;           // null: none
  bool counted;                 // whether progress() may be asked for (a start() whose handle is the user's)
  ReadyOrder order;
  Nanos order_threshold;  // see RunOptions (0: always ordered)
  std::stop_source stop;  // requested on cancellation (nostopstate when no task takes a context)
  std::uint32_t owner;    // the scheduler's serial, as in its TaskHandles
  FailedLists& failed_lists;
};

/// A worker's running totals, for progress reports. Each is written by its worker only (load, then
/// store: no read-modify-write), and read by anyone with relaxed loads: a report may lag by a task.
struct alignas(64) WorkerCounters {
  std::atomic<std::uint64_t> finished{0};  // by earlier execute() calls
  std::atomic<std::uint32_t> live{0};      // by the current execute() call
  std::atomic<std::uint32_t> failed{0};
  std::atomic<std::uint32_t> skipped{0};
  std::atomic<std::uint32_t> cancelled{0};
  std::atomic<std::uint32_t> busy{0};  // has work (between finding some and running dry)

  static void bump(std::atomic<std::uint32_t>& c) noexcept {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};

/// Everything a run shares between the workers. Made by the scheduler for each run() over the
/// scheduler's frozen graph and preallocated result slots; nothing here allocates per task on the spec's
/// path (tasks with options or a TaskContext take a slow path that may).
///
/// Dependency counters (FrozenGraph::counters, see DepCounter), used by tasks with two or more
/// dependencies: the low 31 bits count unmet dependencies, bit 31 says that some dependency did not
/// succeed, and the high half holds the dependency count. A finishing parent that failed first sets bit 31
/// (fetch_or), then every finishing parent decrements (fetch_sub). Both are read-modify-writes of one
/// atomic by one thread, so the fetch_or precedes that parent's fetch_sub in the counter's modification
/// order, hence precedes the last fetch_sub, which therefore sees the bit. The parent whose fetch_sub takes
/// the count from 1 to 0, and only that one, readies the task, skipped if the bit is set. The fetch_sub is
/// acq_rel, so every parent's writes (its result) happen-before the task runs. That parent then resets the
/// counter for the next run, from the count in its high half: nobody else touches it again in this run.
///
/// A task with a delayed retry is parked in a heap here (not in any worker's hands) until it falls due;
/// the run cannot end meanwhile, since the task has not finished.
class RunState {
 public:
  explicit RunState(const RunSetup& setup);
  ~RunState();
  RunState(const RunState&) = delete;
  RunState& operator=(const RunState&) = delete;

  /// Finishes `item` and, without a queue round trip, the dependent it readies that the sink picks (when
  /// nothing the sink holds should start first), until none is picked; the other readied dependents go
  /// to `sink.push`. Returns the number of tasks finished. Sink (see WorkerPool): a type `Ready` with an
  /// `item` (a readied item and whatever the sink orders it by), `Ready ready(item)`, `bool before(a, b)`
  /// (whether a starts before b), `void push(Ready)`, `std::uint32_t next(Ready)` (that item, or one the
  /// sink holds that starts before it, keeping the other), `std::uint32_t index` (the worker's) and
  /// `static constexpr bool queued` (false: `next` always returns its argument's item).
  /// `Observed` is fixed per run: without an observer the events cost nothing.
  /// The per-run variants of execute(), fixed when the run starts so that a run pays only for what it
  /// uses: `observed` (an observer: every task takes the slow path and raises events), `extras` (some
  /// task has options or a context: the loop tests for a null invoker), `counted` (a RunHandle can ask for
  /// progress: one relaxed store per task).
  struct Mode {
    bool observed;
    bool extras;
    bool counted;
    ReadyOrder order;
  };

  [[nodiscard]] Mode mode() const noexcept { return m_mode; }

  template <bool Observed, bool Extras, bool Counted, class Sink>
  std::uint32_t execute(std::uint32_t item, Sink& sink) {
    // Locals, not members, for what the loop indexes with: the task body is an opaque call, after which
    // every member must be reloaded through `this`, while locals can stay in callee-saved registers (or
    // cost the same reload from the stack). Flags read once per task are members: one compare each.
    const std::uint32_t* const out_begin = m_out_begin;
    const std::uint32_t* const out = m_out;
    TaskResult* const results = m_results;
    TaskNode* const* const nodes = m_nodes.chunks();
    const TaskFn::Invoker* const invoke = m_invoke;
    std::atomic<std::uint32_t>& live = m_counters[sink.index].live;
    std::uint32_t finished = 0;

    // Readies `task`'s dependents after it finished (`ok`: succeeded, or cancelled). Returns the one to run
    // next on this thread, the sink's pick among them and what it holds, handing it the others; or none.
    // Inlined twice, once with ok == true, so that the common case is folded: a succeeded task cannot
    // poison its dependent.
    auto advance = [&](std::uint32_t task, bool ok) __attribute__((always_inline))->std::uint32_t {
      if constexpr (Counted) {
        live.store(finished, std::memory_order_relaxed);  // this worker's own line; see WorkerPool::work
      }
      const std::uint32_t first = out_begin[task];
      const std::uint32_t end = out_begin[task + 1];
      if (end - first == 1) [[likely]] {  // one dependent (chains, trees' leaves' parents...): no loop
        const std::uint32_t ready = release_dependent(out[first], ok);
        if (ready == none) {
          return none;
        }
        if constexpr (Observed) {
          notify_ready(ready, sink.index);
        }
        return sink.next(sink.ready(ready));
      }
      typename Sink::Ready next{none};
      for (std::uint32_t e = first; e < end; ++e) {
        const std::uint32_t ready = release_dependent(out[e], ok);
        if (ready == none) {
          continue;
        }
        if constexpr (Observed) {
          notify_ready(ready, sink.index);
        }
        typename Sink::Ready candidate = sink.ready(ready);
        if (next.item != none) {
          if (sink.before(candidate, next)) {
            std::swap(candidate, next);
          }
          sink.push(candidate);
        } else {
          next = candidate;
        }
      }
      return next.item == none ? none : sink.next(next);
    };

    for (;;) {
      std::uint32_t task = item & index_mask;
      TaskResult& result = results[task];
      TaskNode& node = ChunkedArray<TaskNode>::at(nodes, task);
      const TaskFn::Invoker call = invoke[task];  // null: the task has options or a context
      bool ok;
      if (Observed || (item & poison_bit) != 0 || (Extras && call == nullptr) ||
          m_cancelled.load(std::memory_order_relaxed)) [[unlikely]] {  // see is_cancelled()
        const Outcome outcome = run_slow(item, node, result, sink.index);
        if (outcome == Outcome::pending) {  // waiting for a delayed retry: it finishes later
          return finished;
        }
        ok = outcome == Outcome::success;
      } else {
        if (task >= m_construct_from) [[unlikely]] {
          ::new (static_cast<void*>(&result)) TaskResult();
        }
        const Attempt outcome = attempt(call, node, result);
        if (outcome == Attempt::success) [[likely]] {
          ++finished;
          if constexpr (!Sink::queued && !Observed) {
            // A chain added in order: this task's one dependent is the next index and depends on it alone.
            // The links run in a loop of their own (run_chain). Not with an observer, which hears of every
            // readied task. (advance repeats these loads; the compiler merges them.)
            const std::uint32_t first = out_begin[task];
            if (out_begin[task + 1] - first == 1 && out[first] == ((task + 1) | FrozenGraph::sole_dependency)) {
              const ChainEnd chain = run_chain<Extras, Counted>(task + 1, finished, live);
              finished += chain.task - (task + 1);
              if (!chain.attempted) {
                item = chain.task;  // the general path takes it
                continue;
              }
              task = chain.task;
              if (chain.outcome != Attempt::success) [[unlikely]] {
                ok = retry(ChunkedArray<TaskNode>::at(nodes, task), results[task], sink.index,
                           chain.outcome == Attempt::permanent);
                ++finished;
                item = advance(task, ok);
                if (item == none) {
                  return finished;
                }
                continue;
              }
              ++finished;
            }
          }
          item = advance(task, true);
          if (item == none) {
            return finished;
          }
          continue;
        }
        ok = retry(node, result, sink.index, outcome == Attempt::permanent);
      }
      ++finished;
      item = advance(task, ok);
      if (item == none) {
        return finished;
      }
    }
  }

  /// This worker's progress counters.
  [[nodiscard]] WorkerCounters& counters(std::uint32_t worker) noexcept { return m_counters[worker]; }

  /// Claims a batch of not-yet-started roots: returns one to run now and hands the rest to
  /// `sink.push_roots(roots, count, position)` (which makes them stealable). Returns none when every root
  /// has been claimed. Roots are claimed in the run order's sequence (see FrozenGraph::roots_by_rank).
  /// Batches shrink as roots run out (guided scheduling), so the cursor is touched rarely yet the last
  /// roots still spread over the workers.
  template <class Sink>
  [[nodiscard]] std::uint32_t claim_roots(Sink& sink) {
    std::uint32_t first = m_root_cursor.load(std::memory_order_relaxed);
    if (first >= m_root_count) {
      return none;
    }
    const std::uint32_t batch = std::clamp<std::uint32_t>((m_root_count - first) / (4 * m_workers), 1, 256);
    first = m_root_cursor.fetch_add(batch, std::memory_order_relaxed);
    if (first >= m_root_count) {
      return none;
    }
    const std::uint32_t last = std::min(first + batch, m_root_count);
    sink.push_roots(m_roots + first + 1, last - first - 1, first + 1);
    return m_roots[first];
  }

  /// The queue key of the root at `position` of the claiming sequence (ordered runs).
  [[nodiscard]] std::uint64_t root_key(std::uint32_t position) const noexcept {
    const std::uint64_t rank = m_rank[m_roots[position]];
    // FIFO: every root was ready before any other task, in claiming order (readied tasks' sequence
    // numbers come after theirs; see next_ready_number()).
    return m_mode.order == ReadyOrder::fifo ? (rank & FrozenGraph::band_mask) | (UINT32_MAX - position) : rank;
  }

  /// The next unclaimed root and its key, or none (a hint: another worker may claim it first).
  [[nodiscard]] std::uint32_t next_root(std::uint64_t& key) const noexcept {
    const std::uint32_t position = m_root_cursor.load(std::memory_order_relaxed);
    if (position >= m_root_count) {
      return none;
    }
    key = root_key(position);
    return m_roots[position];
  }

  /// FIFO: the next readiness number (after the roots'), shared so that workers' numbers compare. One
  /// relaxed RMW per readied task, in FIFO runs only.
  [[nodiscard]] std::uint32_t next_ready_number() noexcept {
    return m_ready_numbers.fetch_add(1, std::memory_order_relaxed);
  }

  /// RunOptions::order_threshold, in nanoseconds (0 where the run's order is always kept).
  [[nodiscard]] Nanos order_threshold() const noexcept { return m_order_threshold; }

  /// Queue keys by task (see FrozenGraph::rank).
  [[nodiscard]] const std::uint64_t* ranks() const noexcept { return m_rank; }
  /// Scratch links for the ready queues (FrozenGraph::links).
  [[nodiscard]] std::uint32_t* links() const noexcept { return m_links; }

  [[nodiscard]] bool roots_left() const noexcept {
    return m_root_cursor.load(std::memory_order_relaxed) < m_root_count;
  }

  /// A task whose delayed retry is due (or any waiting task, once the run is cancelled), or none.
  [[nodiscard]] std::uint32_t pop_retry() {
    if (m_next_due.load(std::memory_order_relaxed) == never) {
      return none;
    }
    return pop_retry_slow();
  }

  /// Whether a task is due at once in the retry heap: one granted pool units (which it holds, idle, until
  /// it runs) or drained by a cancellation. A hint; one load.
  [[nodiscard]] bool urgent() const noexcept { return m_next_due.load(std::memory_order_relaxed) == 0; }

  /// Whether pop_retry() would find something: part of the parking re-check (see WorkerPool::timer_wake).
  [[nodiscard]] bool retry_ready() const noexcept;

  /// Records that `count` more tasks finished. Returns true for the call that finishes the run.
  /// The caller that reaches zero, and anyone who later reads zero, sees every task's result (acquire and
  /// release); seq_cst because ending the run is a publication EventCount's argument relies on.
  bool count_finished(std::uint32_t count) noexcept {
    return m_remaining.fetch_sub(count, std::memory_order_seq_cst) == count;
  }

  [[nodiscard]] bool done() const noexcept { return m_remaining.load(std::memory_order_seq_cst) == 0; }

  /// Cancels the run (RunHandle::cancel(), under the engine's run mutex, which keeps this object alive):
  /// tasks not yet started end cancelled. The caller then requests the stop source and wakes the workers.
  void mark_cancelled() noexcept;

  /// Raises on_run_start and on_task_ready for the roots. Called by the thread starting the run, first.
  void announce_start();

  /// Sums the workers' counters (see Progress).
  void progress(Progress& p) const noexcept;

  /// The result slot of dependency `dep` of `task` (for TaskContext). Throws std::out_of_range when `dep`
  /// is not one of its direct dependencies.
  [[nodiscard]] const TaskResult& dependency_result(std::uint32_t task, std::uint32_t dep) const;
  [[nodiscard]] const TaskResult& dependency_result(std::uint32_t task, std::string_view dep) const;
  [[nodiscard]] std::uint32_t dependency_count(std::uint32_t task) const noexcept { return m_nodes[task].dep_count; }
  /// The serial of the scheduler running this (TaskHandle's owner).
  [[nodiscard]] std::uint32_t owner() const noexcept { return m_owner; }

  static constexpr std::uint32_t none = UINT32_MAX;

 private:
  enum class Outcome : std::uint8_t { success, failure, pending };

  /// Runs the task's attempts (the caller has checked for cancellation) and records the outcome. Returns
  /// whether it succeeded. The first attempt is inline, since it is the whole story for almost every task;
  /// retries are not.
  enum class Attempt : std::uint8_t { success, failure, permanent };

  /// The first attempt of a task on the fast path, recorded if it succeeds; if it throws, the exception is
  /// in `result.error` and retry() takes over. Inline, since it is the whole story for almost every task.
  [[gnu::always_inline]] Attempt attempt(TaskFn::Invoker invoke, TaskNode& node, TaskResult& result) {
    // Read now, while the slot is being touched anyway: only a slot that did not succeed last time can
    // hold an error or skip causes to clear (a success never leaves either behind).
    const bool stale = result.status != Status::success;
    try {
      invoke(node.fn.storage(), result.result);
    } catch (const PermanentError&) {  // an extra handler costs nothing until something is thrown
      result.error = std::current_exception();
      return Attempt::permanent;
    } catch (...) {
      // Any type, std::exception or not.
      result.error = std::current_exception();
      return Attempt::failure;
    }
    // Stores only what changes: re-running a graph that succeeded then leaves its result slots clean
    // (read, never written back), which saves the slots' write-back traffic on graphs too big for the cache.
    if (stale) [[unlikely]] {  // (a fresh slot, on a first run, is empty already: test before calls)
      result.status = Status::success;
      if (result.error) {
        result.error = nullptr;
      }
      if (result.skipped_by) {
        result.skipped_by.reset();
      }
    }
    if (result.attempts != 1) [[unlikely]] {
      result.attempts = 1;
    }
    return Attempt::success;
  }

  /// Where run_chain stopped: the last task it came to, and whether and how it was attempted.
  struct ChainEnd {
    std::uint32_t task;
    bool attempted;   // false: it needs the general path (cancellation, an extra); it has not started
    Attempt outcome;  // of its first attempt (a failure is the caller's to retry)
  };

  /// Runs `task`, the next index after a task that just succeeded and the one dependent of that task,
  /// which it depends on alone; then, while each task's one dependent is the next index and depends on
  /// it alone (a chain added in order), that dependent. The links before the returned task succeeded (the
  /// caller counts them: tasks are consecutive). `finished` is the caller's count, for progress.
  ///
  /// Why a loop of its own: for a chain, the general loop's lookups are most of the engine's work per
  /// task. Here each link's node and slot are the last one's neighbours, and the links are found ahead,
  /// a block at a time (chain_extent), so the loop around the body calls only steps pointers, and the
  /// CSR loads of the search do not wait on the calls. Not inlined: it gets registers of its own around
  /// the body call, where execute's has too many values live to keep them there.
  template <bool Extras, bool Counted>
  [[gnu::noinline]] ChainEnd run_chain(std::uint32_t task, std::uint32_t finished, std::atomic<std::uint32_t>& live) {
    const std::uint32_t first = task;
    const std::uint32_t last = m_size - 1;  // no next index: never a link that goes on
    const std::size_t construct_from = m_construct_from;
    TaskResult* result = m_results + task;
    TaskNode* node = nullptr;
    const TaskFn::Invoker* invoke = m_invoke + task;
    ChainEnd end{task, true, Attempt::success};
    // Attempts link `task` (at `node`); false (with `end` set) where it was not attempted or did not succeed.
    auto link = [&]() __attribute__((always_inline))->bool {
      if ((Extras && *invoke == nullptr) || m_cancelled.load(std::memory_order_relaxed)) [[unlikely]] {
        end = {task, false, Attempt::success};  // the general path takes it
        return false;
      }
      if (task >= construct_from) [[unlikely]] {
        ::new (static_cast<void*>(result)) TaskResult();
      }
      if constexpr (Counted) {
        live.store(finished + (task - first), std::memory_order_relaxed);
      }
      const Attempt outcome = attempt(*invoke, *node, *result);
      if (outcome != Attempt::success) [[unlikely]] {
        end = {task, true, outcome};
        return false;
      }
      return true;
    };
    for (;;) {
      // Links task..stop-1 go on into the next index, and `stop` is a link too. The search ends at the
      // end of the node chunk (so that the node pointer just steps), after chain_block links (so that the
      // CSR entries it read are still in the first-level cache when the calls get there), or at the last
      // task.
      const auto limit = static_cast<std::uint32_t>(std::min<std::size_t>(
          {std::size_t{task} + chain_block, (std::size_t{task} | ChunkedArray<TaskNode>::mask) + 1, last}));
      const std::uint32_t stop = chain_extent(m_out_begin, m_out, task, limit);
      node = &m_nodes[task];
      for (; task != stop; ++task, ++node, ++result, ++invoke) {
        if (!link()) [[unlikely]] {
          return end;
        }
      }
      if (stop == limit && stop != last) {
        continue;  // the search stopped short of the chain's end: whether `stop` goes on is not known yet
      }
      node = &m_nodes[task];  // the chain's last link (at a chunk's end, `node` has stepped past it)
      link();
      end.task = task;  // (so already where it was not attempted or failed)
      return end;
    }
  }

  /// Links run_chain finds ahead at a time: 2 KiB of CSR entries.
  static constexpr std::uint32_t chain_block = 256;

  /// The first task in [task, limit) whose one dependent is not the next index depending on it alone, or
  /// `limit` if there is none. `limit` is below the task count, so every `out_begin` entry read exists.
  [[gnu::noinline]] static std::uint32_t chain_extent(const std::uint32_t* out_begin, const std::uint32_t* out,
                                                      std::uint32_t task, std::uint32_t limit) noexcept {
    const std::uint32_t* ob = out_begin + task;
    const std::uint32_t* const ob_end = out_begin + limit;
    std::uint32_t begin = *ob;
    std::uint32_t want = (task + 1) | FrozenGraph::sole_dependency;
    // Four links at a time, without a branch each: their CSR offsets first, which, when they are the
    // next four, bound the `out` entries read after them.
    while (ob_end - ob >= 4) {
      if (((ob[1] - begin - 1) | (ob[2] - begin - 2) | (ob[3] - begin - 3) | (ob[4] - begin - 4)) != 0 ||
          ((out[begin] ^ want) | (out[begin + 1] ^ (want + 1)) | (out[begin + 2] ^ (want + 2)) |
           (out[begin + 3] ^ (want + 3))) != 0) {
        break;
      }
      ob += 4;
      begin += 4;
      want += 4;
    }
    for (; ob != ob_end; ++ob, ++want) {
      const std::uint32_t next = ob[1];
      if (next - begin != 1 || out[begin] != want) {
        break;
      }
      begin = next;
    }
    return static_cast<std::uint32_t>(ob - out_begin);
  }

  /// Read before each attempt. Relaxed: it publishes nothing; a task started just after cancel() is
  /// allowed, and the value only ever changes from "not this run" to "this run".
  [[nodiscard]] bool is_cancelled() const noexcept { return m_cancelled.load(std::memory_order_relaxed); }

  /// Attempts 2 .. retries + 1 after a failed first attempt whose exception is in `result.error`.
  bool retry(TaskNode& node, TaskResult& result, std::uint32_t worker, bool permanent);

  /// Everything but the spec's plain attempt: skipping, cancelling, tasks with options or a context,
  /// and every task of an observed run.
  Outcome run_slow(std::uint32_t item, TaskNode& node, TaskResult& result, std::uint32_t worker);

  /// The attempts of a task on the slow path, from the one after `attempts_made` on.
  Outcome attempts(std::uint32_t task, TaskNode& node, TaskResult& result, std::uint32_t worker);

  /// Records a final failure after `attempts` attempts, and counts it against the failure policy.
  void fail(TaskResult& result, int attempts, std::uint32_t worker) noexcept;

  /// Counts a final failure against the failure policy, cancelling the run when it says so.
  void record_failure() noexcept;

  /// Cancels the run, as RunHandle::cancel() does (the failure policy's doing).
  void cancel_run() noexcept;

  /// Records that the run was cancelled after `attempts` attempts. Returns true: a cancelled task does not
  /// poison its dependents, which then see the cancellation themselves and end `cancelled` rather than
  /// `skipped`. (The flag only changes from "another run" to "this run", and whoever readies a dependent
  /// read "this run" before doing so, so the dependent reads it too: coherence.)
  static bool cancelled(TaskResult& result, int attempts) noexcept;

  /// Records the task as skipped, with the failed tasks upstream that caused it. Returns false.
  bool skip(const TaskNode& node, TaskResult& result);

  /// Parks `task` until `due`, when a worker picks it up again.
  void push_retry(Nanos due, std::uint32_t task);
  std::uint32_t pop_retry_slow();

  void notify_ready(std::uint32_t item, std::uint32_t worker);
  void notify_finish(std::uint32_t task, int attempt, const TaskResult& result, std::uint32_t worker);
  [[nodiscard]] TaskEvent event(std::uint32_t task, int attempt, std::uint32_t worker) const noexcept;

  /// Tells dependent `entry` (an `out` entry) that one dependency finished, successfully or not. Returns
  /// its ready item if that was its last unmet dependency, else none.
  std::uint32_t release_dependent(std::uint32_t entry, bool ok) noexcept {
    const std::uint32_t task = entry & ~FrozenGraph::sole_dependency;
    if ((entry & FrozenGraph::sole_dependency) != 0) {
      return ok ? task : (task | poison_bit);
    }
    DepCounter& counter = m_counters_dep[task];
    if (!ok) {
      counter.fetch_or(dep_failed_bit, std::memory_order_relaxed);
    }
    const std::uint64_t old = counter.fetch_sub(1, std::memory_order_acq_rel);
    if ((old & unmet_mask) != 1) {
      return none;
    }
    const bool poisoned = (old & dep_failed_bit) != 0;
    counter.store(restarted(old), std::memory_order_relaxed);
    return poisoned ? (task | poison_bit) : task;
  }

  /// Per-run state of a task on the slow path with TaskExtra (indexed like Graph::extras).
  struct Pending {
    int attempts = 0;          // attempts made so far in this run
    Nanos first_start = 0;     // when the first began
    bool constructed = false;  // its result slot is alive (it may come back to run_slow several times)
    bool parked = false;       // waiting for a retry's due time or for resource units (counted in m_waiting)
    bool holds = false;        // holds its resource units (taken for it, possibly by another thread)
  };

  /// Takes the task's units or parks it until they are granted. Returns whether it may run now.
  bool acquire_units(std::uint32_t task, const TaskExtra& extra, Pending& state);
  /// Gives the task's units back and makes ready the tasks they let start.
  void release_units(const TaskExtra& extra, Pending& state);
  /// Moves every task waiting for units to the ready heap (the run is cancelled: they end cancelled).
  void drain_waiters();

  ChunkedArray<TaskNode>& m_nodes;  // the bodies are called, so not const; the scheduler does not touch them meanwhile
  const ChunkedArray<std::uint32_t>& m_deps;
  const std::vector<TaskExtra>& m_extras;
  const IdTable& m_ids;
  const std::uint32_t* m_out_begin;
  const std::uint32_t* m_out;
  const TaskFn::Invoker* m_invoke;
  DepCounter* m_counters_dep;
  const std::uint32_t* m_roots;  // in the run order's claiming sequence
  std::uint32_t m_root_count;
  const std::uint64_t* m_rank;
  std::uint32_t* m_links;
  Nanos m_order_threshold;
  TaskResult* m_results;
  std::size_t m_construct_from;
  std::uint32_t m_failure_limit;
  std::uint32_t m_workers;
  std::uint64_t m_seed;
  Observer* m_observer;
  Mode m_mode;
  std::stop_source m_stop;
  WorkerPool& m_pool;
  Timekeeper& m_timekeeper;
  std::uint32_t m_size;
  std::uint32_t m_owner;
  std::unique_ptr<WorkerCounters[]> m_counters;
  std::unique_ptr<Pending[]> m_pending;  // one per TaskExtra

  // Shared by all workers: each on its own line so that claiming roots does not slow down finishing.
  alignas(64) std::atomic<std::uint32_t> m_root_cursor{0};
  alignas(64) std::atomic<std::uint32_t> m_remaining;
  // Final failures so far; touched only on the failure path, and only with a failure policy.
  alignas(64) std::atomic<std::uint32_t> m_failures{0};
  // Set once by cancel (or the failure policy); read before every attempt, relaxed: it publishes
  // nothing, a task started just after cancel() is allowed, and it only ever goes from false to true.
  // Seq_cst where it is set, so that parked workers woken afterwards see it (EventCount's argument).
  alignas(64) std::atomic<bool> m_cancelled{false};
  alignas(64) std::atomic<std::uint32_t> m_ready_numbers;  // see next_ready_number()

  // Delayed retries: a min-heap on due time. m_next_due (never when empty) lets workers skip the lock
  // while nothing waits; it is written under the lock, read without it (a stale value delays a pick-up
  // until the next look, and the timer's wake-up covers parked workers).
  alignas(64) std::atomic<Nanos> m_next_due{never};
  std::atomic<std::uint32_t> m_waiting{0};
  Mutex m_retry_mutex;
  std::vector<std::pair<Nanos, std::uint32_t>> m_retry_heap DAGSCHED_GUARDED_BY(m_retry_mutex);

  ResourceBroker m_broker;

  FailedLists& m_failed_lists;
};

}  // namespace dagsched::detail
