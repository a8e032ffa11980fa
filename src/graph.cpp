#include "graph.hpp"

#include <algorithm>
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
[[noreturn]] void throw_cycle(const Graph& graph, const IdTable& ids, const std::vector<std::uint32_t>& unmet) {
  const std::uint32_t n = graph.size();
  constexpr std::uint32_t unvisited = UINT32_MAX;
  std::vector<std::uint32_t> position(n, unvisited);  // index of the task on `path`
  std::vector<std::uint32_t> path;

  std::uint32_t t = 0;
  while (unmet[t] == 0) {
    ++t;
  }
  while (position[t] == unvisited) {
    position[t] = static_cast<std::uint32_t>(path.size());
    path.push_back(t);
    const TaskNode& node = graph.nodes[t];
    for (std::uint32_t e = node.dep_begin;; ++e) {
      const std::uint32_t dep = graph.deps[e];
      if (unmet[dep] != 0) {
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

}  // namespace

FrozenGraph freeze(const Graph& graph, const IdTable& ids) {
  const std::uint32_t n = graph.size();
  if (graph.placeholders != 0) {
    throw_unknown_dependency(graph, ids);
  }

  FrozenGraph frozen;
  frozen.size = n;

  // Dependents in CSR form, by counting sort over the dependency lists.
  frozen.out_begin.assign(static_cast<std::size_t>(n) + 1, 0);
  for (std::uint32_t dep : graph.deps) {
    ++frozen.out_begin[dep + 1];
  }
  for (std::uint32_t t = 0; t < n; ++t) {
    frozen.out_begin[t + 1] += frozen.out_begin[t];
  }
  frozen.out.resize(graph.deps.size());
  {
    std::vector<std::uint32_t> cursor(frozen.out_begin.begin(), frozen.out_begin.end() - 1);
    for (std::uint32_t t = 0; t < n; ++t) {
      const TaskNode& node = graph.nodes[t];
      const std::uint32_t entry = node.dep_count == 1 ? (t | FrozenGraph::sole_dependency) : t;
      for (std::uint32_t e = node.dep_begin; e < node.dep_begin + node.dep_count; ++e) {
        frozen.out[cursor[graph.deps[e]]++] = entry;
      }
    }
  }

  // Kahn's algorithm, to prove the graph acyclic before anything runs. `order` doubles as the queue.
  std::vector<std::uint32_t> unmet(n);
  std::vector<std::uint32_t> order;
  order.reserve(n);
  for (std::uint32_t t = 0; t < n; ++t) {
    unmet[t] = graph.nodes[t].dep_count;
    if (unmet[t] == 0) {
      order.push_back(t);
    }
  }
  frozen.roots.assign(order.begin(), order.end());
  for (std::size_t head = 0; head < order.size(); ++head) {
    const std::uint32_t t = order[head];
    for (std::uint32_t e = frozen.out_begin[t]; e < frozen.out_begin[t + 1]; ++e) {
      const std::uint32_t d = frozen.out[e] & ~FrozenGraph::sole_dependency;
      if (--unmet[d] == 0) {
        order.push_back(d);
      }
    }
  }
  if (order.size() != n) {
    throw_cycle(graph, ids, unmet);
  }

  frozen.counters = std::make_unique<std::atomic<std::uint64_t>[]>(n);
  for (std::uint32_t t = 0; t < n; ++t) {
    frozen.counters[t].store(graph.nodes[t].dep_count, std::memory_order_relaxed);
  }
  return frozen;
}

}  // namespace dagsched::detail
