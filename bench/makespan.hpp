// dagsched_bench: the makespan benchmark. A random DAG with heterogeneous bodies and a few long chains, run
// with each ReadyOrder, and compared with the lower bound no schedule can beat.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <span>
#include <string>
#include <vector>

#include "dagsched/task_scheduler.hpp"

namespace dagsched_bench {

/// The makespan graph: `random_tasks` tasks drawn like the `random` shape (each depends on up to 3 earlier
/// ones), then chains of `chain_lengths` tasks, the first much longer than the others. Every body lasts its
/// own duration. Every dependency of task i has an index below i. Deterministic: the same graph on every
/// machine.
struct MakespanGraph {
  std::uint32_t random_tasks = 0;
  std::vector<std::uint32_t> chain_lengths;
  std::uint32_t size = 0;
  std::vector<std::uint32_t> dep_begin;  // size + 1 offsets into deps
  std::vector<std::uint32_t> deps;
  std::vector<std::uint32_t> body_us;  // how long each body lasts (wall clock), and its cost hint
  std::vector<std::uint8_t> gpu;       // 1: needs the gpu pool in the pool variant (20% of the tasks)

  // Derived facts.
  std::size_t roots = 0;
  std::uint64_t total_work_us = 0;
  std::uint64_t gpu_work_us = 0;
  std::uint64_t critical_path_us = 0;  // the most body time along any path
  std::size_t critical_path_tasks = 0;
  std::size_t gpu_tasks = 0;

  [[nodiscard]] std::span<const std::uint32_t> deps_of(std::uint32_t task) const noexcept {
    return {deps.data() + dep_begin[task], deps.data() + dep_begin[task + 1]};
  }
  [[nodiscard]] std::size_t edges() const noexcept { return deps.size(); }
};

/// Builds the makespan graph from a fixed seed.
[[nodiscard]] MakespanGraph make_makespan_graph();

/// The lower bound on the makespan of `g` with `workers` workers, in microseconds: the critical path, the
/// total work spread over every worker, and with the pool, the gpu work on its one unit.
[[nodiscard]] double makespan_bound_us(const MakespanGraph& g, std::size_t workers, bool pool);

/// The makespan, in microseconds, of an ideal list schedule of `g`: no overhead, one global ready set in
/// `order`, and a free worker always starting the first ready task whose pool units are free. What the
/// engine should come close to; not a measurement.
[[nodiscard]] double simulate_makespan_us(const MakespanGraph& g, std::size_t workers, bool pool,
                                          dagsched::ReadyOrder order);

/// What to run.
struct MakespanOptions {
  std::vector<std::size_t> workers;
  std::size_t reps = 5;
  bool samples = false;
};

/// Runs the graph on dagsched (handles API, cost hints set) for every worker count, without and with a
/// gpu = 1 pool, in every ReadyOrder, and prints the human table to `human` and, when `csv` is set, CSV
/// lines to it. Returns an empty string, or the first run whose tasks did not all succeed.
[[nodiscard]] std::string run_makespan(const MakespanOptions& options, std::ostream& human, std::ostream* csv);

}  // namespace dagsched_bench
