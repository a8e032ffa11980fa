// The state of one run: what happens to a task from "ready" to "finished", and how finishing it readies,
// or skips, its dependents.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <new>
#include <vector>

#include "dagsched/task_result.hpp"
#include "graph.hpp"

namespace dagsched::detail {

/// Everything a run shares between the workers. Made by the scheduler for each run() over the
/// scheduler's frozen graph and preallocated result slots; nothing here allocates per task.
///
/// Dependency counters (FrozenGraph::counters), used by tasks with two or more dependencies: the low 31
/// bits count unmet dependencies, the top bit says that some dependency did not succeed. A finishing
/// parent that failed first sets the top bit (fetch_or), then every finishing parent decrements
/// (fetch_sub). Both are read-modify-writes of one atomic by one thread, so the fetch_or precedes that
/// parent's fetch_sub in the counter's modification order, hence precedes the last fetch_sub, which
/// therefore sees the bit. The parent whose fetch_sub takes the count from 1 to 0, and only that one,
/// readies the task, skipped if the bit is set. The fetch_sub is acq_rel, so every parent's writes (its
/// result) happen-before the task runs. That parent then resets the counter to dep_count for the next
/// run: nobody else touches it again in this run.
class RunState {
 public:
  /// Result slots from `constructed` on are raw storage, constructed by whoever finishes their task.
  /// The run is cancelled once `cancelled_run == run`; the run sets it itself at the `failure_limit`-th
  /// final failure (0: never).
  RunState(Graph& graph, const FrozenGraph& frozen, TaskResult* results, std::size_t constructed, std::size_t workers,
           std::atomic<std::uint64_t>& cancelled_run, std::uint64_t run, std::uint32_t failure_limit) noexcept
      : m_nodes(graph.nodes),
        m_out_begin(frozen.out_begin.data()),
        m_out(frozen.out.data()),
        m_counters(frozen.counters.data()),
        m_roots(frozen.order.data()),
        m_root_count(frozen.root_count),
        m_results(results),
        m_construct_from(constructed),
        m_cancelled_run(cancelled_run),
        m_run(run),
        m_failure_limit(failure_limit),
        m_workers(static_cast<std::uint32_t>(workers)),
        m_remaining(frozen.size) {}

  /// Finishes `item` and, without a queue round trip, each dependent it readies last, until a task readies
  /// nothing; the other readied dependents go to `sink.push`. Returns the number of tasks finished.
  /// Sink: `void push(std::uint32_t item)`.
  template <class Sink>
  std::uint32_t execute(std::uint32_t item, Sink& sink) {
    // Locals, not members: the task body is an opaque call, after which the compiler would have to
    // reload every member through `this`; locals stay in callee-saved registers.
    const std::uint32_t* const out_begin = m_out_begin;
    const std::uint32_t* const out = m_out;
    TaskResult* const results = m_results;
    TaskNode* const* const nodes = m_nodes.chunks();
    const std::size_t construct_from = m_construct_from;
    const std::atomic<std::uint64_t>& cancelled_run = m_cancelled_run;
    const std::uint64_t run = m_run;
    std::uint32_t finished = 0;
    for (;;) {
      const std::uint32_t task = item & index_mask;
      TaskResult& result = results[task];
      if (task >= construct_from) [[unlikely]] {
        ::new (static_cast<void*>(&result)) TaskResult();
      }
      bool ok;
      if ((item & poison_bit) != 0) [[unlikely]] {
        ok = skip(result);
      } else if (cancelled_run.load(std::memory_order_relaxed) == run) [[unlikely]] {  // see is_cancelled()
        ok = cancelled(result, 0);
      } else {
        ok = attempt(ChunkedArray<TaskNode>::at(nodes, task), result);
      }
      ++finished;

      const std::uint32_t first = out_begin[task];
      const std::uint32_t end = out_begin[task + 1];
      if (end - first == 1) [[likely]] {  // one dependent (chains, trees' leaves' parents...): no loop
        item = release_dependent(out[first], ok);
        if (item == none) {
          return finished;
        }
        continue;
      }
      std::uint32_t next = none;
      for (std::uint32_t e = first; e < end; ++e) {
        const std::uint32_t ready = release_dependent(out[e], ok);
        if (ready == none) {
          continue;
        }
        if (next != none) {
          sink.push(next);
        }
        next = ready;
      }
      if (next == none) {
        return finished;
      }
      item = next;
    }
  }

  /// Claims a batch of not-yet-started roots: returns one to run now and pushes the rest to `sink`, where
  /// other workers can steal them. Returns none when every root has been claimed.
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
    // Pushed in reverse, so the owner's LIFO pops run them in index order.
    for (std::uint32_t i = last - 1; i > first; --i) {
      sink.push_quiet(m_roots[i]);
    }
    return m_roots[first];
  }

  [[nodiscard]] bool roots_left() const noexcept {
    return m_root_cursor.load(std::memory_order_relaxed) < m_root_count;
  }

  /// Records that `count` more tasks finished. Returns true for the call that finishes the run.
  /// The caller that reaches zero, and anyone who later reads zero, sees every task's result (acquire and
  /// release); seq_cst because ending the run is a publication EventCount's argument relies on.
  bool count_finished(std::uint32_t count) noexcept {
    return m_remaining.fetch_sub(count, std::memory_order_seq_cst) == count;
  }

  [[nodiscard]] bool done() const noexcept { return m_remaining.load(std::memory_order_seq_cst) == 0; }

  static constexpr std::uint32_t none = UINT32_MAX;

 private:
  /// Runs the task's attempts (the caller has checked for cancellation) and records the outcome. Returns
  /// whether it succeeded. The first attempt is inline, since it is the whole story for almost every task;
  /// retries are not.
  [[gnu::always_inline]] bool attempt(TaskNode& node, TaskResult& result) {
    bool threw = false;
    try {
      node.fn(result.result);
    } catch (...) {
      // Any type, std::exception or not.
      result.error = std::current_exception();
      threw = true;
    }
    if (threw) [[unlikely]] {
      return retry(node, result);
    }
    result.status = Status::success;
    result.attempts = 1;
    if (result.error) [[unlikely]] {  // left by an earlier run; clearing an empty one is not free
      result.error = nullptr;
    }
    return true;
  }

  /// Read before each attempt. Relaxed: it publishes nothing; a task started just after cancel() is
  /// allowed, and the value only ever changes from "not this run" to "this run".
  [[nodiscard]] bool is_cancelled() const noexcept { return m_cancelled_run.load(std::memory_order_relaxed) == m_run; }

  /// Attempts 2 .. retries + 1 after a failed first attempt whose exception is in `result.error`.
  bool retry(TaskNode& node, TaskResult& result);

  /// Counts a final failure against the failure policy, cancelling the run when it says so.
  void record_failure() noexcept;

  /// Records that the run was cancelled after `attempts` attempts. Returns true: a cancelled task does not
  /// poison its dependents, which then see the cancellation themselves and end `cancelled` rather than
  /// `skipped`. (The flag only changes from "another run" to "this run", and whoever readies a dependent
  /// read "this run" before doing so, so the dependent reads it too: coherence.)
  static bool cancelled(TaskResult& result, int attempts) noexcept;

  /// Records the task as skipped. Returns false (it did not succeed).
  static bool skip(TaskResult& result) noexcept;

  /// Tells dependent `entry` (an `out` entry) that one dependency finished, successfully or not. Returns
  /// its ready item if that was its last unmet dependency, else none.
  std::uint32_t release_dependent(std::uint32_t entry, bool ok) noexcept {
    const std::uint32_t task = entry & ~FrozenGraph::sole_dependency;
    if ((entry & FrozenGraph::sole_dependency) != 0) {
      return ok ? task : (task | poison_bit);
    }
    constexpr std::uint32_t failed_bit = 1u << 31;
    std::atomic<std::uint32_t>& counter = m_counters[task];
    if (!ok) {
      counter.fetch_or(failed_bit, std::memory_order_relaxed);
    }
    const std::uint32_t old = counter.fetch_sub(1, std::memory_order_acq_rel);
    if ((old & ~failed_bit) != 1) {
      return none;
    }
    const bool poisoned = (old & failed_bit) != 0;
    counter.store(m_nodes[task].dep_count, std::memory_order_relaxed);
    return poisoned ? (task | poison_bit) : task;
  }

  ChunkedArray<TaskNode>& m_nodes;  // the bodies are called, so not const; the scheduler does not touch them meanwhile
  const std::uint32_t* m_out_begin;
  const std::uint32_t* m_out;
  std::atomic<std::uint32_t>* m_counters;
  const std::uint32_t* m_roots;
  std::uint32_t m_root_count;
  TaskResult* m_results;
  std::size_t m_construct_from;
  std::atomic<std::uint64_t>& m_cancelled_run;
  std::uint64_t m_run;
  std::uint32_t m_failure_limit;
  std::uint32_t m_workers;

  // Shared by all workers: each on its own line so that claiming roots does not slow down finishing.
  alignas(64) std::atomic<std::uint32_t> m_root_cursor{0};
  alignas(64) std::atomic<std::uint32_t> m_remaining;
  // Final failures so far; touched only on the failure path, and only with a failure policy.
  alignas(64) std::atomic<std::uint32_t> m_failures{0};
};

}  // namespace dagsched::detail
