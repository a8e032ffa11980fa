// The state of one run: what happens to a task from "ready" to "finished", and how finishing it readies,
// or skips, its dependents.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "dagsched/task_result.hpp"
#include "graph.hpp"

namespace dagsched::detail {

/// Everything a run shares between the workers. Made by the scheduler for each run() over the
/// scheduler's frozen graph and preallocated result slots; nothing here allocates per task.
///
/// Dependency counters (FrozenGraph::counters), one per task with two or more dependencies: the low 32
/// bits count unmet dependencies, the high 32 bits count dependencies that did not succeed. A finishing
/// parent applies both changes in one fetch_add (-1, or +2^32 - 1 if it failed: the low half never
/// borrows because it is at least 1 before the parent's decrement). The parent that brings the low half
/// to zero, and only that one, readies the task, skipped if the high half is non-zero. The fetch_add is
/// acq_rel, so every parent's writes (its result) happen-before the task runs. That parent then resets the
/// counter to dep_count for the next run: nobody else touches it again in this run.
class RunState {
 public:
  RunState(Graph& graph, const FrozenGraph& frozen, TaskResult* results, std::size_t workers) noexcept
      : m_nodes(graph.nodes.data()),
        m_out_begin(frozen.out_begin.data()),
        m_out(frozen.out.data()),
        m_counters(frozen.counters.get()),
        m_roots(frozen.roots.data()),
        m_root_count(static_cast<std::uint32_t>(frozen.roots.size())),
        m_results(results),
        m_workers(static_cast<std::uint32_t>(workers)),
        m_remaining(frozen.size) {}

  /// Finishes `item` and, without a queue round trip, each dependent it readies last, until a task readies
  /// nothing; the other readied dependents go to `sink.push`. Returns the number of tasks finished.
  /// Sink: `void push(std::uint32_t item)`.
  template <class Sink>
  std::uint32_t execute(std::uint32_t item, Sink& sink) {
    std::uint32_t finished = 0;
    for (;;) {
      const std::uint32_t task = item & index_mask;
      const bool ok = (item & poison_bit) == 0 ? attempt(task) : skip(task);
      ++finished;

      std::uint32_t next = none;
      for (std::uint32_t e = m_out_begin[task], end = m_out_begin[task + 1]; e < end; ++e) {
        const std::uint32_t ready = release_dependent(m_out[e], ok);
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
  /// acq_rel: the caller that reaches zero, and anyone who later reads zero with acquire, sees every
  /// task's result.
  bool count_finished(std::uint32_t count) noexcept {
    return m_remaining.fetch_sub(count, std::memory_order_acq_rel) == count;
  }

  [[nodiscard]] bool done() const noexcept { return m_remaining.load(std::memory_order_acquire) == 0; }

  static constexpr std::uint32_t none = UINT32_MAX;

 private:
  /// Runs the task's attempts and records the outcome. Returns whether it succeeded.
  bool attempt(std::uint32_t task);
  /// Records the task as skipped. Returns false (it did not succeed).
  bool skip(std::uint32_t task) noexcept;

  /// Tells dependent `entry` (an `out` entry) that one dependency finished, successfully or not. Returns
  /// its ready item if that was its last unmet dependency, else none.
  std::uint32_t release_dependent(std::uint32_t entry, bool ok) noexcept {
    const std::uint32_t task = entry & ~FrozenGraph::sole_dependency;
    if ((entry & FrozenGraph::sole_dependency) != 0) {
      return ok ? task : (task | poison_bit);
    }
    constexpr std::uint64_t one_done = ~std::uint64_t{0};               // -1
    constexpr std::uint64_t one_failed = (std::uint64_t{1} << 32) - 1;  // +2^32 - 1
    std::atomic<std::uint64_t>& counter = m_counters[task];
    const std::uint64_t old = counter.fetch_add(ok ? one_done : one_failed, std::memory_order_acq_rel);
    if (static_cast<std::uint32_t>(old) != 1) {
      return none;
    }
    const bool poisoned = !ok || (old >> 32) != 0;
    counter.store(m_nodes[task].dep_count, std::memory_order_relaxed);
    return poisoned ? (task | poison_bit) : task;
  }

  TaskNode* m_nodes;  // the bodies are called, so not const; the scheduler does not touch them meanwhile
  const std::uint32_t* m_out_begin;
  const std::uint32_t* m_out;
  std::atomic<std::uint64_t>* m_counters;
  const std::uint32_t* m_roots;
  std::uint32_t m_root_count;
  TaskResult* m_results;
  std::uint32_t m_workers;

  // Shared by all workers: each on its own line so that claiming roots does not slow down finishing.
  alignas(64) std::atomic<std::uint32_t> m_root_cursor{0};
  alignas(64) std::atomic<std::uint32_t> m_remaining;
};

}  // namespace dagsched::detail
