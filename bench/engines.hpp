// dagsched_bench: the engines compared, behind one small interface so the harness times them alike.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shapes.hpp"

namespace dagsched_bench {

/// One graph in one engine. Its lifetime is the benchmark's phases: the constructor is the engine's
/// set-up (thread pool, arena), `build_graph` adds the tasks, `run` executes them, the destructor tears
/// everything down.
class Instance {
 public:
  Instance() = default;
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;
  Instance(Instance&&) = delete;
  Instance& operator=(Instance&&) = delete;
  virtual ~Instance() = default;

  /// Registers every task and dependency of the shape.
  virtual void build_graph() = 0;

  /// Executes the graph once and drops whatever results the engine returns.
  virtual void run() = 0;

  /// Executes the graph once and compares each task's outcome with `Shape::expected` where the engine
  /// reports outcomes. Returns an empty string when they agree (or nothing can be checked), else the
  /// first disagreement.
  [[nodiscard]] virtual std::string run_and_check() = 0;

  /// Executes the graph once and keeps the engine's results alive until the next call or destruction
  /// (the memory measurement counts them).
  virtual void run_keep() { run(); }
};

/// A way of executing a graph: a library and, for dagsched, one of its two dependency APIs.
class Engine {
 public:
  Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  Engine(Engine&&) = delete;
  Engine& operator=(Engine&&) = delete;
  virtual ~Engine() = default;

  /// "dagsched", "tbb" or "serial".
  [[nodiscard]] virtual std::string_view name() const noexcept = 0;

  /// "ids" or "handles" for dagsched; "-" for the others.
  [[nodiscard]] virtual std::string_view api() const noexcept = 0;

  /// Whether the engine takes part in `shape` (tbb skips none, but an engine may).
  [[nodiscard]] virtual bool supports(const Shape& /*shape*/) const noexcept { return true; }

  /// Sets up the engine for `shape` with `workers` threads. `ids` are the task ids ("t0", ...), made
  /// outside the timed region; `shape` and `ids` must outlive the instance.
  [[nodiscard]] virtual std::unique_ptr<Instance> create(const Shape& shape, const std::vector<std::string>& ids,
                                                         std::size_t workers) const = 0;
};

/// How the dagsched engines run the spec's shapes (--order, --order-threshold-us): the ready order by name
/// ("critical_path", "fifo" or "depth_first"; empty keeps the default) and RunOptions::order_threshold in
/// microseconds (negative keeps the default). Returns false for an unknown order.
bool set_dagsched_order(std::string_view order, double threshold_us);

/// dagsched with string ids (`handles == false`) or with TaskHandles as dependencies.
[[nodiscard]] std::unique_ptr<Engine> make_dagsched_engine(bool handles);

/// One thread calling `std::function<void()>` bodies in index order, the floor.
[[nodiscard]] std::unique_ptr<Engine> make_serial_engine();

/// oneTBB flow_graph in a task_arena of `workers` concurrency; nullptr when built without oneTBB.
[[nodiscard]] std::unique_ptr<Engine> make_tbb_engine();

/// A line describing the tbb engine's library version, or why it is absent.
[[nodiscard]] std::string tbb_description();

}  // namespace dagsched_bench
