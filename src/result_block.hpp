// Storage for the results of a run, shared with the ResultSets that expose it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <new>

#include "block_cache.hpp"
#include "dagsched/task_result.hpp"

namespace dagsched::detail {

/// Raw storage for `capacity` TaskResults, of which the first `constructed` are alive.
///
/// A run does not construct the slots up front: the worker that finishes a task constructs its slot
/// first if needed (RunState::execute). On a large graph's first run this spreads the cost of faulting
/// in fresh memory over the workers, where each slot is written anyway, instead of a serial
/// zero-filling pass in run(). A block is reused by later runs while no ResultSet holds it.
class ResultBlock {
 public:
  explicit ResultBlock(std::size_t capacity)
      : m_data(static_cast<TaskResult*>(acquire_block(capacity * sizeof(TaskResult)))), m_capacity(capacity) {}
  ~ResultBlock() {
    if (!empty_slots) {
      for (std::size_t i = 0; i < constructed; ++i) {
        m_data[i].~TaskResult();
      }
    }
    release_block(m_data, m_capacity * sizeof(TaskResult));
  }
  ResultBlock(const ResultBlock&) = delete;
  ResultBlock& operator=(const ResultBlock&) = delete;

  [[nodiscard]] TaskResult* data() const noexcept { return m_data; }
  [[nodiscard]] std::size_t capacity() const noexcept { return m_capacity; }

  /// Slots [0, constructed) are alive. Written by the scheduler between runs only.
  std::size_t constructed = 0;
  /// Records that a run over `n` tasks has ended: it finalised every task, so slots [0, n) are alive.
  void run_ended(std::size_t n) noexcept { constructed = std::max(constructed, n); }
  /// Every alive slot holds nothing to release (no value, error or skip causes), as a run of void bodies
  /// that all succeeded leaves them: destroying them does nothing, and the pass over them is skipped.
  /// Cleared when a run starts, set when one ends that way.
  bool empty_slots = false;

 private:
  TaskResult* m_data;
  std::size_t m_capacity;
};

}  // namespace dagsched::detail
