// dagsched_bench: timing loops, statistics and memory readings.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engines.hpp"
#include "shapes.hpp"

namespace dagsched_bench {

/// One line of the CSV: a phase of one engine on one shape.
struct Measurement {
  std::string engine;
  std::string shape;
  std::string api;
  std::string phase;
  std::size_t workers = 0;
  double median_ms = 0;
  double best_ms = 0;
  std::size_t reps = 0;
  std::vector<double> samples_ms;  // in the order taken
};

/// The phases, in report order:
/// - build: engine set-up (dagsched: TaskScheduler constructor, which starts the worker threads; tbb:
///   task_arena + flow::graph) and every add_task / node + edge;
/// - build_graph: the same without the set-up (add_task calls only);
/// - run_first: the first run of a freshly built graph;
/// - run: a re-run of an already-run graph (results dropped);
/// - destroy: the destructor, after one run (dagsched: joins the workers);
/// - once: build + run + destroy of a fresh graph.
struct Phase {
  enum : std::size_t { build, build_graph, run_first, run, destroy, once, count };
};
inline constexpr std::array<const char*, Phase::count> phase_names{"build", "build_graph", "run_first",
                                                                   "run",   "destroy",     "once"};

/// Times every phase of `engine` on `shape`, `reps` samples each after one untimed warm-up. Checks the
/// outcome of one run against the shape's expected statuses; a disagreement goes to `problem`.
[[nodiscard]] std::vector<Measurement> measure(const Engine& engine, const Shape& shape,
                                               const std::vector<std::string>& ids, std::size_t workers,
                                               std::size_t reps, std::string& problem);

/// Median (mean of the two middle samples for an even count) and minimum.
[[nodiscard]] double median_of(std::vector<double> samples);

/// Resident set size of this process in bytes, from /proc/self/statm (0 if unreadable).
[[nodiscard]] std::size_t rss_bytes();

/// Gives freed heap memory back to the system (glibc malloc_trim) so that an RSS growth measured next
/// is not hidden by memory an earlier measurement freed.
void trim_heap();

/// How free the cores are: the wall time of `threads` threads each doing the same fixed CPU work, over the
/// time of one thread doing it alone (median of 5). Near 1.0 on idle cores; near `threads` when another
/// process holds all but one core, in which case parallel timings (random_spin above all) mean little.
[[nodiscard]] double parallel_probe(std::size_t threads);

/// RSS growth of one graph in one engine.
struct MemoryReading {
  std::string engine;
  std::string api;
  std::size_t tasks = 0;
  double build_ms = 0;
  double run_ms = 0;    // the first run (includes the engine's first-run preparation)
  double rerun_ms = 0;  // a second run of the same graph
  double destroy_ms = 0;
  std::size_t after_build_bytes = 0;  // RSS growth after create + build_graph
  std::size_t after_run_bytes = 0;    // RSS growth after one run, its results still held
};

/// Builds `shape` in `engine`, runs it twice, and reports the RSS growth after the build and after the
/// first run, and the time of each step.
[[nodiscard]] MemoryReading measure_memory(const Engine& engine, const Shape& shape,
                                           const std::vector<std::string>& ids, std::size_t workers);

}  // namespace dagsched_bench
