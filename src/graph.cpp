#include "graph.hpp"

#include <algorithm>
#include <bit>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "dagsched/errors.hpp"

namespace dagsched::detail {

namespace {

[[noreturn]] void throw_unknown_dependency(const Graph& graph, const IdTable& ids) {
  for (std::uint32_t t = 0; t < graph.size(); ++t) {
    const TaskNode& node = graph.nodes[t];
    if (!node.fn) {
      continue;
    }
    for (std::uint32_t e = node.dep_begin; e < node.dep_begin + node.dep_count; ++e) {
      if (!graph.nodes[graph.deps[e]].fn) {
        throw UnknownDependencyError(ids.name(t), ids.name(graph.deps[e]));
      }
    }
  }
  // Only reachable if a placeholder outlived a failed add_task; report it all the same.
  for (std::uint32_t t = 0; t < graph.size(); ++t) {
    if (!graph.nodes[t].fn) {
      throw UnknownDependencyError("?", ids.name(t));
    }
  }
  throw UnknownDependencyError("?", "?");
}

/// Called when Kahn's algorithm left tasks unprocessed (`unmet[t] > 0`): every such task has at least
/// one unprocessed dependency, so walking from one to an unprocessed dependency must revisit a task.
[[noreturn]] void throw_cycle(const Graph& graph, const IdTable& ids, const DepCounter* unmet) {
  const std::uint32_t n = graph.size();
  constexpr std::uint32_t unvisited = UINT32_MAX;
  std::vector<std::uint32_t> position(n, unvisited);  // index of the task on `path`
  std::vector<std::uint32_t> path;

  std::uint32_t t = 0;
  while ((unmet[t].load(std::memory_order_relaxed) & unmet_mask) == 0) {
    ++t;
  }
  while (position[t] == unvisited) {
    position[t] = static_cast<std::uint32_t>(path.size());
    path.push_back(t);
    const TaskNode& node = graph.nodes[t];
    for (std::uint32_t e = node.dep_begin;; ++e) {
      const std::uint32_t dep = graph.deps[e];
      if ((unmet[dep].load(std::memory_order_relaxed) & unmet_mask) != 0) {
        t = dep;
        break;
      }
    }
  }
  // path[k] depends on path[k + 1]; the cycle is path[position[t]..] closed by t. Report it in run order:
  // t first, then its dependents walking back along the path.
  std::vector<std::string> cycle;
  cycle.push_back(ids.name(t));
  for (std::size_t k = path.size() - 1; k > position[t]; --k) {
    cycle.push_back(ids.name(path[k]));
  }
  throw CycleError(std::move(cycle));
}

/// The explicit priority of `t`, biased so that INT_MIN..INT_MAX maps onto 0..UINT32_MAX in order, in
/// the high half of a rank.
std::uint64_t band(const Graph& graph, std::uint32_t t) noexcept {
  const std::int64_t priority = t < graph.priorities.size() ? graph.priorities[t] : 0;
  return static_cast<std::uint64_t>(priority + 0x80000000LL) << 32;
}

/// Fills frozen.rank (see FrozenGraph::rank) in one backward pass over the topological order: a task's
/// critical path is its cost plus the longest of its dependents'. O(tasks + edges). (freeze computes unit
/// paths itself where index order is topological; this is for the other graphs and for cost hints.)
void rank_tasks(const Graph& graph, FrozenGraph& frozen) {
  const std::uint32_t n = frozen.size;
  std::uint64_t* rank = frozen.rank.data();
  const std::uint32_t* order = frozen.order.data();
  // A topological position's task: `order` holds only the roots where index order is topological.
  const auto at = [&](std::uint32_t i) { return frozen.index_ordered ? i : order[i]; };
  const std::uint32_t* out_begin = frozen.out_begin.data();
  const std::uint32_t* out = frozen.out.data();
  constexpr std::uint64_t low = 0xFFFFFFFFULL;
  if (graph.costs.empty()) {
    // Unit costs: integer paths, at most max_tasks < 2^32, so they fit the low half as they are. One pass
    // writes the whole key; a dependent's path is its key's low half.
    const bool banded = !graph.priorities.empty();
    constexpr std::uint64_t no_band = std::uint64_t{0x80000000} << 32;
    for (std::uint32_t i = n; i-- > 0;) {
      const std::uint32_t t = at(i);
      std::uint64_t below = 0;
      for (std::uint32_t e = out_begin[t]; e < out_begin[t + 1]; ++e) {
        below = std::max(below, rank[out[e] & ~FrozenGraph::sole_dependency] & low);
      }
      rank[t] = (banded ? band(graph, t) : no_band) | (below + 1);
    }
  } else {
    // Cost hints: real paths, kept as doubles in the same slots (no second array), then scaled so that the
    // longest maps to 2^32 - 1: order is kept, except between paths closer than 2^-32 of the longest. Sums
    // of finite costs can overflow: paths are capped at the largest double, and scaled by a division (a
    // ratio of at most 1), never by a factor that could overflow when every path is tiny.
    double longest = 0;
    for (std::uint32_t i = n; i-- > 0;) {
      const std::uint32_t t = at(i);
      double below = 0;
      for (std::uint32_t e = out_begin[t]; e < out_begin[t + 1]; ++e) {
        below = std::max(below, std::bit_cast<double>(rank[out[e] & ~FrozenGraph::sole_dependency]));
      }
      const double path =
          std::min(below + (t < graph.costs.size() ? graph.costs[t] : 1.0), std::numeric_limits<double>::max());
      rank[t] = std::bit_cast<std::uint64_t>(path);
      longest = std::max(longest, path);
    }
    for (std::uint32_t t = 0; t < n; ++t) {
      const double scaled = longest > 0 ? std::bit_cast<double>(rank[t]) / longest * 4294967295.0 : 0.0;
      rank[t] = band(graph, t) | static_cast<std::uint64_t>(std::clamp(scaled, 0.0, 4294967295.0));
    }
  }
}

/// Sorts `roots` (in index order) by rank, highest first, ties in index order, where every root has the
/// same band and paths no longer than a few times the root count: by counting, in two passes over the
/// roots and one over the path lengths. Returns false, having done nothing, otherwise.
bool counting_sort_roots(const std::uint64_t* rank, std::vector<std::uint32_t>& roots) {
  constexpr std::uint64_t low = ~FrozenGraph::band_mask;
  const std::uint64_t band = rank[roots.front()] & FrozenGraph::band_mask;
  std::uint64_t longest = 0;
  for (const std::uint32_t r : roots) {
    if ((rank[r] & FrozenGraph::band_mask) != band) {
      return false;
    }
    longest = std::max(longest, rank[r] & low);
  }
  if (longest > 4 * std::uint64_t{roots.size()} + 64) {
    return false;  // cost hints scale paths to 32 bits: a comparison sort then
  }
  // Bucket k holds the roots whose path is longest - k, so that buckets run from the longest path down.
  std::vector<std::uint32_t> start(static_cast<std::size_t>(longest) + 2, 0);
  for (const std::uint32_t r : roots) {
    ++start[static_cast<std::size_t>(longest - (rank[r] & low)) + 1];
  }
  for (std::size_t k = 1; k < start.size(); ++k) {
    start[k] += start[k - 1];
  }
  std::vector<std::uint32_t> sorted(roots.size());
  for (const std::uint32_t r : roots) {  // in index order: each bucket keeps it
    sorted[start[static_cast<std::size_t>(longest - (rank[r] & low))]++] = r;
  }
  roots.swap(sorted);
  return true;
}

/// Fills frozen.roots_by_rank and roots_by_priority from the ranks.
void order_roots(const Graph& graph, FrozenGraph& frozen) {
  const std::uint64_t* rank = frozen.rank.data();
  const std::uint32_t* order = frozen.order.data();
  // Roots in each order's sequence, where it differs from the index order `order` has them in.
  const auto by = [&](std::uint64_t mask) {
    return [rank, mask](std::uint32_t a, std::uint32_t b) { return (rank[a] & mask) > (rank[b] & mask); };
  };
  const std::uint32_t* roots_end = order + frozen.root_count;
  if (!std::is_sorted(order, roots_end, by(~std::uint64_t{0}))) {
    frozen.roots_by_rank.assign(order, roots_end);
    if (!counting_sort_roots(rank, frozen.roots_by_rank)) {
      std::stable_sort(frozen.roots_by_rank.begin(), frozen.roots_by_rank.end(), by(~std::uint64_t{0}));
    }
  }
  // Without explicit priorities every root has the same band: index order is FIFO's.
  if (!graph.priorities.empty() && !std::is_sorted(order, roots_end, by(FrozenGraph::band_mask))) {
    frozen.roots_by_priority.assign(order, roots_end);
    std::stable_sort(frozen.roots_by_priority.begin(), frozen.roots_by_priority.end(), by(FrozenGraph::band_mask));
  }
}

}  // namespace

FrozenGraph freeze(const Graph& graph, const IdTable& ids) {
  const std::uint32_t n = graph.size();
  if (graph.placeholders != 0) {
    throw_unknown_dependency(graph, ids);
  }

  // Every array here is touched once; the first run of a large graph is dominated by faulting in fresh
  // memory, so there are no temporary copies: the CSR is filled in place and the counters serve as
  // Kahn's in-degree array before they are reset for the run.
  FrozenGraph frozen;
  frozen.size = n;

  // Dependents in CSR form, by counting sort: count into out_begin[d], take inclusive prefix sums (so
  // out_begin[d] is the end of d's segment), then fill each segment from its end, which leaves
  // out_begin[d] at the segment's start. Tasks are visited backwards so segments come out ascending.
  frozen.out_begin = BlockArray<std::uint32_t>(static_cast<std::size_t>(n) + 1);
  std::fill_n(frozen.out_begin.data(), frozen.out_begin.size(), 0u);
  for (std::size_t e = 0; e < graph.deps.size(); ++e) {
    ++frozen.out_begin[graph.deps[e]];
  }
  for (std::uint32_t t = 1; t <= n; ++t) {
    frozen.out_begin[t] += frozen.out_begin[t - 1];
  }
  frozen.out = BlockArray<std::uint32_t>(graph.deps.size());
  frozen.counters = BlockArray<DepCounter>(n);
  DepCounter* unmet = frozen.counters.data();  // single-threaded here: relaxed is plain
  frozen.order = BlockArray<std::uint32_t>(graph.roots);
  frozen.root_count = graph.roots;
  frozen.rank = BlockArray<std::uint64_t>(n);
  std::uint64_t* rank = frozen.rank.data();
  frozen.invoke = BlockArray<TaskFn::Invoker>(n);
  TaskFn::Invoker* const invoke = frozen.invoke.data();
  // Unit costs (no cost hints): the critical paths are computed in the same backward pass, on the guess
  // that index order is topological (tasks added after their dependencies, the usual case). A task's
  // dependents then all have larger indices, so when the pass reaches a task its path is final: one more
  // than the longest its dependents pushed into its rank slot, which it pushes on to its dependencies in
  // turn. Where the guess fails, rank_tasks recomputes every path over Kahn's order.
  const bool unit = graph.costs.empty();
  if (unit) {
    std::fill_n(rank, n, std::uint64_t{0});
  }
  const bool banded = !graph.priorities.empty();
  constexpr std::uint64_t no_band = std::uint64_t{0x80000000} << 32;

  // One backward pass over the nodes fills the CSR, the counters (each task's dependency count), the roots
  // (in index order) and the paths, and notes whether every dependency has a smaller index than its task:
  // index order is then a topological order, and the graph is acyclic.
  bool index_ordered = true;
  std::uint32_t roots_left = graph.roots;
  for (std::uint32_t t = n; t-- > 0;) {
    const TaskNode& node = graph.nodes[t];
    std::construct_at(&unmet[t], initial_count(node.dep_count));
    invoke[t] = node.extra != 0 ? nullptr : node.fn.invoker();
    if (node.dep_count == 0) {
      frozen.order[--roots_left] = t;
    }
    const std::uint64_t path = unit ? rank[t] + 1 : 0;
    const std::uint32_t entry = node.dep_count == 1 ? (t | FrozenGraph::sole_dependency) : t;
    for (std::uint32_t e = node.dep_begin + node.dep_count; e-- > node.dep_begin;) {
      const std::uint32_t d = graph.deps[e];
      index_ordered &= d < t;
      frozen.out[--frozen.out_begin[d]] = entry;
      if (unit) {
        rank[d] = std::max(rank[d], path);
      }
    }
    if (unit) {
      rank[t] = (banded ? band(graph, t) : no_band) | path;
    }
  }
  frozen.index_ordered = index_ordered;

  // Where index order is not topological, Kahn's algorithm proves the graph acyclic before anything
  // runs: `order` is its queue, and the counters serve as its in-degrees, then are reset. (Where it is,
  // there is nothing to prove, and Kahn's walk, whose reads jump around the graph, is skipped: it was
  // the hottest part of freeze in a profile of the 10,000-task random graph.)
  if (!index_ordered) {
    BlockArray<std::uint32_t> order(n);
    std::copy_n(frozen.order.data(), graph.roots, order.data());
    frozen.order = std::move(order);
    std::uint32_t tail = graph.roots;
    for (std::uint32_t head = 0; head < tail; ++head) {
      const std::uint32_t t = frozen.order[head];
      for (std::uint32_t e = frozen.out_begin[t]; e < frozen.out_begin[t + 1]; ++e) {
        const std::uint32_t d = frozen.out[e] & ~FrozenGraph::sole_dependency;
        const std::uint64_t left = unmet[d].load(std::memory_order_relaxed) - 1;
        unmet[d].store(left, std::memory_order_relaxed);
        if ((left & unmet_mask) == 0) {
          frozen.order[tail++] = d;
        }
      }
    }
    if (tail != n) {
      throw_cycle(graph, ids, unmet);
    }
    for (std::uint32_t t = 0; t < n; ++t) {
      unmet[t].store(restarted(unmet[t].load(std::memory_order_relaxed)), std::memory_order_relaxed);
    }
  }
  if (!index_ordered || !unit) {
    rank_tasks(graph, frozen);
  }
  order_roots(graph, frozen);
  frozen.links = BlockArray<std::uint32_t>(n);
  return frozen;
}

}  // namespace dagsched::detail
