// The task graph: how it is built by add_task, and the flat, validated form a run executes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "block_cache.hpp"
#include "chunked_array.hpp"
#include "dagsched/detail/task_fn.hpp"
#include "dagsched/task_options.hpp"
#include "id_table.hpp"
#include "resource_broker.hpp"

namespace dagsched::detail {

/// Ready items carry a task index in the low 31 bits; the top bit says the task must be skipped.
inline constexpr std::uint32_t poison_bit = 1u << 31;
inline constexpr std::uint32_t index_mask = poison_bit - 1;
/// Most tasks (and named-but-unregistered ids) one scheduler holds.
inline constexpr std::uint32_t max_tasks = index_mask;
/// Most dependencies of one task: counters keep a flag in their low half's top bit.
inline constexpr std::uint32_t max_dependencies = (1u << 31) - 1;

/// A dependency counter (FrozenGraph::counters; see RunState for its use in a run): the unmet count in the
/// low 31 bits, a flag in bit 31, and the task's dependency count in the high half, from which the parent
/// that readies the task resets the counter for the next run. The count is kept here, not read from the
/// node, so that workers never read the nodes the building thread writes (see FrozenGraph::invoke).
using DepCounter = std::atomic<std::uint64_t>;
inline constexpr std::uint64_t unmet_mask = 0x7FFFFFFFULL;
inline constexpr std::uint64_t dep_failed_bit = std::uint64_t{1} << 31;
[[nodiscard]] constexpr std::uint64_t initial_count(std::uint32_t dep_count) noexcept {
  return (std::uint64_t{dep_count} << 32) | dep_count;
}
/// The value a counter that held `value` starts the next run from (its high half is never changed).
[[nodiscard]] constexpr std::uint64_t restarted(std::uint64_t value) noexcept {
  return initial_count(static_cast<std::uint32_t>(value >> 32));
}

/// One task as add_task recorded it. An id named as a dependency before being registered has a node
/// with an empty `fn` (a placeholder) until its own add_task.
struct TaskNode {
  TaskFn fn;
  std::int32_t retries = 0;
  std::uint32_t dep_count = 0;  // in-degree; the dependencies are deps[dep_begin, dep_begin + dep_count)
  std::uint32_t dep_begin = 0;
  /// 0 for a task run the spec's way; otherwise 1 + its index in Graph::extras (a task with options or a
  /// body taking a TaskContext), which sends it down the run's slow path. Fits in the node's padding.
  std::uint32_t extra = 0;
};

/// What a task beyond the spec's (TaskOptions, or a body taking a TaskContext) needs at run time.
struct TaskExtra {
  std::uint32_t task = 0;  // its index
  RetryPolicy retry;
  std::chrono::nanoseconds timeout{0};
  std::chrono::nanoseconds deadline{0};
  TriggerRule trigger = TriggerRule::all_success;
  bool takes_context = false;
  std::vector<ResourceRequest> resources;  // as given
  std::vector<Need> needs;                 // the same, resolved against Graph::pools by start()
};

/// The graph under construction. Indices are those of the scheduler's IdTable.
struct Graph {
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  ~Graph() {
    if (owning_bodies == 0) {
      nodes.clear_trivially();  // nothing to destroy: skip the pass over the nodes
    }
  }

  ChunkedArray<TaskNode> nodes;
  std::uint32_t value_bodies = 0;    // bodies that return a value (see ResultBlock::empty_slots)
  std::uint32_t owning_bodies = 0;   // nodes whose body's destructor does something (see TaskFn)
  ChunkedArray<std::uint32_t> deps;  // every task's dependency indices, one segment per task
  std::uint32_t placeholders = 0;    // nodes with an empty fn
  std::uint32_t roots = 0;           // registered tasks without dependencies
  std::vector<TaskExtra> extras;     // see TaskNode::extra
  std::uint32_t context_tasks = 0;   // extras whose body takes a TaskContext (they need stop tokens)
  std::vector<std::pair<std::string, std::uint32_t>> pools;  // add_resource: name, capacity
  // TaskOptions::priority and ::cost by task index, for the tasks that gave one: indices past the end
  // have the defaults (0 and 1), so a graph without them keeps both empty.
  std::vector<int> priorities;
  std::vector<double> costs;

  [[nodiscard]] std::uint32_t size() const noexcept { return static_cast<std::uint32_t>(nodes.size()); }
};

/// The executable form of a validated graph, built once per change of the graph and reused by every run.
struct FrozenGraph {
  /// Set on an `out` entry whose dependent has exactly one dependency: such a dependent is readied by its
  /// parent directly, without touching a counter.
  static constexpr std::uint32_t sole_dependency = 1u << 31;

  std::uint32_t size = 0;
  BlockArray<std::uint32_t> out_begin;  // CSR: dependents of t are out[out_begin[t], out_begin[t + 1])
  BlockArray<std::uint32_t> out;
  /// A topological order; its first root_count entries are the tasks without dependencies, in index order.
  /// Where `index_ordered`, index order is itself topological and this holds only the roots.
  BlockArray<std::uint32_t> order;
  std::uint32_t root_count = 0;
  /// Every dependency has a smaller index than its task (tasks were added after their dependencies).
  bool index_ordered = false;
  /// Each task's ready-queue key (ReadyOrder::critical_path; a higher key starts first): its explicit
  /// priority in the high 32 bits (biased so that unsigned order is signed order), its critical path (the
  /// longest cost-weighted path to a sink, itself included) scaled to 32 bits in the low ones. FIFO runs
  /// keep only the high half (see band_mask).
  BlockArray<std::uint64_t> rank;
  static constexpr std::uint64_t band_mask = 0xFFFFFFFF00000000ULL;
  /// The roots in critical_path order (rank descending, then index), and in fifo order (explicit priority
  /// descending, then index). Empty where that is already `order`'s, as it is for most graphs.
  std::vector<std::uint32_t> roots_by_rank;
  std::vector<std::uint32_t> roots_by_priority;
  /// Per task, its body's invoker (TaskFn::invoker). Workers call it with the closure's address, which they
  /// compute without reading the node: a body that captures nothing never brings its node's cache line to
  /// a worker. Why that matters: the next graph is built in the same recycled blocks, and the building
  /// thread's writes to lines another core has read each wait for that core to give them up. In a loop of
  /// build, run, destroy on this project's 2-core VM, that made the build of the 10,000-task random graph
  /// take 1.6x as long as a build in blocks no worker had read (docs/design.md, section 2).
  /// Null for a task with options or a context (TaskNode::extra != 0): the run's fast path sends it to the
  /// slow path, which calls the node's TaskFn, so that test too reads no node.
  BlockArray<TaskFn::Invoker> invoke;
  /// Per task, the next task below it in a ready queue's stack (see ReadyQueue); scratch for ordered runs.
  BlockArray<std::uint32_t> links;
  /// Unmet-dependency counters (used for tasks with two or more dependencies); see RunState for the
  /// encoding. Between runs each holds initial_count(its task's dep_count).
  BlockArray<DepCounter> counters;
};

/// Validates `graph` and builds its executable form, in O(tasks + edges) time and without recursion.
/// Throws UnknownDependencyError or CycleError naming ids from `ids`.
[[nodiscard]] FrozenGraph freeze(const Graph& graph, const IdTable& ids);

}  // namespace dagsched::detail
