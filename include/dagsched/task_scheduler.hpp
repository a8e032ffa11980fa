// dagsched: the scheduler. Register tasks with `add_task`, then `run()` them all.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <ranges>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "dagsched/detail/task_fn.hpp"
#include "dagsched/observer.hpp"
#include "dagsched/result_set.hpp"
#include "dagsched/task_context.hpp"
#include "dagsched/task_handle.hpp"
#include "dagsched/task_options.hpp"
#include "dagsched/task_result.hpp"

namespace dagsched {

namespace detail {
class Engine;
struct EngineAccess;
}  // namespace detail

class TaskScheduler;

/// How far a run has got: a snapshot, taken without stopping the run, so the counts may lag the workers
/// by a task or two (and `succeeded` is derived from the others). Once the run is done it is exact.
struct Progress {
  std::size_t total = 0;      ///< Tasks in the run.
  std::size_t finished = 0;   ///< Tasks with a final status.
  std::size_t running = 0;    ///< Workers inside a task right now (each runs one task at a time).
  std::size_t waiting = 0;    ///< Tasks waiting for a delayed retry or for pool units (no worker held).
  std::size_t succeeded = 0;  ///< Of `finished`: Status::success.
  std::size_t failed = 0;     ///< Of `finished`: Status::failed.
  std::size_t skipped = 0;    ///< Of `finished`: Status::skipped.
  std::size_t cancelled = 0;  ///< Of `finished`: Status::cancelled.
};

/// A run started by `TaskScheduler::start()`: wait for it, poll it, or cancel it.
///
/// Cancelling stops the run early: tasks that have not started end `Status::cancelled` without being
/// called, a task between attempts is not retried (it ends `cancelled`, keeping its attempts count and
/// last error), and tasks already running have their stop token requested (see `TaskContext`) and finish
/// their current attempt (dagsched cannot interrupt a body). Tasks skipped because of a failure stay
/// `skipped`.
///
/// The handle must not outlive its scheduler. Destroying a handle whose run has not been waited for
/// cancels the run and waits for it to end. `cancel()`, `done()` and `wait_for()` may be called from any
/// thread, a task body included; `wait()` from one thread only.
class RunHandle {
 public:
  RunHandle() noexcept = default;
  RunHandle(RunHandle&& other) noexcept;
  RunHandle& operator=(RunHandle&& other) noexcept;
  RunHandle(const RunHandle&) = delete;
  RunHandle& operator=(const RunHandle&) = delete;
  ~RunHandle();

  /// Blocks until every task has a final status, then returns the results. Throws `std::logic_error` if
  /// the handle is empty, its results were already taken, or it is called from a task of this scheduler
  /// (which would wait for itself).
  [[nodiscard]] ResultSet wait();

  /// Blocks until the run ends or `timeout` passes. Returns `done()`.
  [[nodiscard]] bool wait_for(std::chrono::nanoseconds timeout) const;

  /// Whether every task has a final status (then `wait()` returns at once).
  [[nodiscard]] bool done() const noexcept;

  /// Requests cancellation (see the class comment): also requests the stop token of every running
  /// attempt, and ends every task waiting for a retry. Idempotent; never blocks.
  void cancel() noexcept;

  /// How far the run has got. Cheap (it reads a few counters per worker); callable from any thread, a task
  /// or an observer included. An empty handle reports zeros.
  [[nodiscard]] Progress progress() const noexcept;

  /// Whether this handle refers to a run whose results have not been taken yet.
  [[nodiscard]] bool valid() const noexcept { return m_scheduler.load(std::memory_order_acquire) != nullptr; }

 private:
  friend class TaskScheduler;
  RunHandle(TaskScheduler* scheduler, std::uint64_t run) noexcept : m_scheduler(scheduler), m_run(run) {}
  // Atomic because cancel(), done() and wait_for() may run on other threads (a task's, say) while wait()
  // gives the run up. m_run tells this run's cancellation apart from a later run's.
  std::atomic<TaskScheduler*> m_scheduler{nullptr};
  std::uint64_t m_run = 0;
};

/// What a run does once tasks fail for good (all their attempts threw).
///
/// `keep_going()` (the default) is the spec's behaviour: a failure skips its downstream cone and every
/// independent branch still runs. `fail_fast()` cancels the rest of the run at the first failure, like
/// make without -k; `max_failures(n)` at the n-th. Cancelling means what `RunHandle::cancel()` does: tasks
/// not yet started end `Status::cancelled`, running ones finish their attempt, and the failed tasks'
/// own dependents still end `skipped`.
class FailurePolicy {
 public:
  /// Never cancel because of failures.
  [[nodiscard]] static constexpr FailurePolicy keep_going() noexcept { return FailurePolicy(0); }
  /// Cancel the run at the first task that fails for good.
  [[nodiscard]] static constexpr FailurePolicy fail_fast() noexcept { return FailurePolicy(1); }
  /// Cancel the run once `n` tasks have failed for good. Throws `std::invalid_argument` for 0.
  [[nodiscard]] static FailurePolicy max_failures(std::uint32_t n);

  /// The number of failures that cancels the run; 0 for keep_going().
  [[nodiscard]] constexpr std::uint32_t limit() const noexcept { return m_limit; }

  friend constexpr bool operator==(FailurePolicy, FailurePolicy) noexcept = default;

 private:
  constexpr explicit FailurePolicy(std::uint32_t limit) noexcept : m_limit(limit) {}
  std::uint32_t m_limit;
};

/// In what order ready tasks start when there are more of them than free workers.
enum class ReadyOrder : std::uint8_t {
  /// Longest remaining path first: the task with the most work still ahead of it on any path to a sink
  /// (the sum of `TaskOptions::cost` along the path, 1 per task without a hint) starts first, so that the
  /// longest chains are never left for last. Explicit `TaskOptions::priority` comes before it. Among
  /// equal tasks the one readied last goes first (depth-first, cache-warm); roots are claimed in the order
  /// they were added. Computed once per graph, in O(tasks + edges).
  critical_path,
  /// The order in which tasks became ready (roots in the order they were added, then tasks readied by
  /// the same finishing task in the order they were added), after explicit priorities: predictable, and
  /// the order most workflow schedulers use. Kept for every task, however short.
  fifo,
  /// Each worker runs next the task it readied last, with no ordering at all: the least overhead for
  /// very fine-grained tasks (microseconds), and the best cache locality. Priorities are ignored, except
  /// among tasks waiting for pool units.
  depth_first,
};

/// Per-run settings, given to `run()` or `start()`. New settings are added here, with defaults.
struct RunOptions {
  FailurePolicy failure_policy = FailurePolicy::keep_going();
  /// Which ready tasks start first when workers are scarce (see `ReadyOrder`). With one worker the start
  /// order is exactly this order; with several, each worker follows it over its own ready tasks and
  /// takes another worker's best (looking at up to 8 others) when that beats its own.
  ReadyOrder order = ReadyOrder::critical_path;
  /// For the default order on a graph without explicit priorities or cost hints (a guess from unit
  /// costs): each worker keeps the order while its recent tasks take at least this long on average
  /// (measured over windows of 64 tasks, the first of 8), and below it runs depth-first until they grow
  /// longer. Ordering costs 0.1 to 0.2 us per task, as much as a tiny task, while what it can win is
  /// bounded by the tasks' length: at 20 us it costs under 1%. A worker in a depth-first spell looks again
  /// only at its next window, so tiny tasks followed by long ones may start up to a window of them
  /// depth-first. FIFO, explicit priorities and cost hints are kept for every task. 0 orders every task.
  std::chrono::nanoseconds order_threshold = std::chrono::microseconds(20);
  /// Seeds the retry jitter (`RetryPolicy::jitter`): runs with the same non-zero seed wait the same. 0 draws
  /// a fresh seed for each run.
  std::uint64_t seed = 0;
  /// Told about every step of the run (see `Observer`); null for none, which costs nothing. Shared so that
  /// it lives as long as the run.
  std::shared_ptr<Observer> observer = nullptr;
  /// Records when and where every attempt ran, for `ResultSet::report()` (a `RunReport`). Costs about
  /// a microsecond per task, building the report included.
  bool record = false;
};

/// Scheduler-wide settings. New settings are added here, with defaults, rather than as constructor
/// parameters.
struct SchedulerOptions {
  /// Number of worker threads, and so the most task bodies that run at once. Must be at least 1.
  std::size_t max_workers = 4;
};

namespace detail {
template <class Fn, class... Args>
concept BodyWith = std::invocable<Fn&, Args...> &&
    (std::is_void_v<std::invoke_result_t<Fn&, Args...>> ||
     std::copy_constructible<std::decay_t<std::invoke_result_t<Fn&, Args...>>>);
}  // namespace detail

/// A task body: a callable taking no parameters or a `TaskContext&`, invocable more than once (retries,
/// repeated runs). Its return value, if any, is stored in a `std::any`, so it must be copy-constructible.
template <class F>
concept TaskBody = std::move_constructible<std::decay_t<F>> &&
    (detail::BodyWith<std::decay_t<F>> || detail::BodyWith<std::decay_t<F>, TaskContext&>);

/// A range whose elements can name a dependency: strings, string views, C strings or `TaskHandle`s.
template <class R>
concept DependencyRange =
    std::ranges::input_range<R> && std::constructible_from<DependencyRef, std::ranges::range_reference_t<R>>;

/// Runs a DAG of tasks on a fixed pool of worker threads, surviving task failures.
///
/// Semantics of `run()`:
/// - every task whose dependencies have all succeeded starts at once, on one of `max_workers` threads
///   (never on the thread that called `run()`); idle workers sleep until work appears;
/// - a task that throws is retried at once, up to `retries` more times; if every attempt throws it ends
///   `failed` with the last exception, and every task downstream of it, directly or transitively, ends
///   `skipped` without being called; independent branches complete normally;
/// - the call returns when every task has a final status.
///
/// Thread-safety: `add_task` and `run` must not be called concurrently with each other from several
/// threads (they are not synchronised); calling either while a `run()` is in progress, from a task body or
/// any other thread, throws `std::logic_error`. Worker threads are created by the constructor, reused by
/// every run, and joined by the destructor.
class TaskScheduler {
 public:
  /// Starts `max_workers` worker threads. Throws `std::invalid_argument` when `max_workers` is 0.
  explicit TaskScheduler(std::size_t max_workers = 4);

  /// Starts `options.max_workers` worker threads. Throws `std::invalid_argument` when it is 0.
  explicit TaskScheduler(SchedulerOptions options);

  /// Joins the worker threads. Must not run concurrently with `run()`; a run started with `start()` whose
  /// handle is still alive is cancelled and waited for first.
  ~TaskScheduler();

  TaskScheduler(const TaskScheduler&) = delete;
  TaskScheduler& operator=(const TaskScheduler&) = delete;
  TaskScheduler(TaskScheduler&&) = delete;
  TaskScheduler& operator=(TaskScheduler&&) = delete;

  /// Registers task `task_id` running `execute_fn`, which starts only after every task in `dependencies`
  /// has succeeded, and is attempted at most `retries + 1` times.
  ///
  /// Dependencies may be ids or handles, and may name tasks registered later (they are resolved by
  /// `run()`). Returns a handle usable as a dependency of later tasks.
  ///
  /// Throws, leaving the scheduler unchanged: `DuplicateTaskError` (a `std::invalid_argument`) when
  /// `task_id` is already registered; `std::invalid_argument` when `task_id` is empty, `retries` is
  /// negative, or a handle does not belong to this scheduler; `std::logic_error` during `run()`.
  template <TaskBody F>
  TaskHandle add_task(std::string task_id, F&& execute_fn, std::initializer_list<DependencyRef> dependencies = {},
                      int retries = 0) {
    return add_erased(std::move(task_id), detail::TaskFn(std::forward<F>(execute_fn)),
                      std::span<const DependencyRef>(dependencies.begin(), dependencies.size()), retries, nullptr);
  }

  /// As above, with the dependencies given as a range (`std::set<std::string>`,
  /// `std::vector<std::string>`, `std::vector<TaskHandle>`, ...).
  template <TaskBody F, DependencyRange Deps>
  TaskHandle add_task(std::string task_id, F&& execute_fn, Deps&& dependencies, int retries = 0) {
    return add_range(std::move(task_id), std::forward<F>(execute_fn), std::forward<Deps>(dependencies), retries,
                     nullptr);
  }

  /// As above, with `options` for retries, retry policy, timeouts and trigger rule (see `TaskOptions`).
  /// Also throws `std::invalid_argument` for an option out of range (negative durations, `backoff` < 1,
  /// `jitter` outside [0, 1]).
  template <TaskBody F>
  TaskHandle add_task(std::string task_id, F&& execute_fn, std::initializer_list<DependencyRef> dependencies,
                      TaskOptions options) {
    return add_erased(std::move(task_id), detail::TaskFn(std::forward<F>(execute_fn)),
                      std::span<const DependencyRef>(dependencies.begin(), dependencies.size()), options.retries,
                      &options);
  }

  /// As above, with the dependencies given as a range.
  template <TaskBody F, DependencyRange Deps>
  TaskHandle add_task(std::string task_id, F&& execute_fn, Deps&& dependencies, TaskOptions options) {
    return add_range(std::move(task_id), std::forward<F>(execute_fn), std::forward<Deps>(dependencies), options.retries,
                     &options);
  }

  /// Validates the graph, then runs every registered task once (see the class comment) and returns one
  /// result per task. `options` may change what failures do (`RunOptions::failure_policy`). May be called again: each
  /// call starts from scratch with fresh results.
  ///
  /// Throws, before any task body runs: `UnknownDependencyError` (a `std::invalid_argument`) naming the
  /// task and the missing id; `CycleError` (a `std::invalid_argument`) naming one cycle in order;
  /// `std::logic_error` when called during another `run()` of this scheduler. A task's own exception is
  /// never thrown from here: it is stored in its `TaskResult`.
  [[nodiscard]] ResultSet run(const RunOptions& options = {});

  /// Validates the graph and starts running it without blocking (`run()` is `start().wait()`). Throws as
  /// `run()` does, before anything runs. Until the returned handle's `wait()` has returned (or the handle
  /// is destroyed), `add_task`, `run` and `start` throw `std::logic_error`.
  [[nodiscard]] RunHandle start(const RunOptions& options = {});

  /// Declares a resource pool of `capacity` units (GPUs, database connections, licences...) that tasks
  /// can require through `TaskOptions::resources`. Never more than `capacity` units are in use at once.
  /// Throws `std::invalid_argument` for an empty name, a name already declared, or a capacity of 0;
  /// `std::logic_error` during a run.
  void add_resource(std::string name, std::uint32_t capacity);

  /// Number of worker threads.
  [[nodiscard]] std::size_t max_workers() const noexcept;

  /// Number of registered tasks (ids named only as dependencies are not counted).
  [[nodiscard]] std::size_t size() const noexcept;

  /// Whether a task `task_id` is registered.
  [[nodiscard]] bool contains(std::string_view task_id) const noexcept;

  /// The graph in Graphviz DOT: one node per task, one edge per dependency (from the dependency to its
  /// dependent). Unknown dependencies are drawn dashed. Must not be called during a run.
  [[nodiscard]] std::string to_dot() const;

  /// As above, with each task coloured by its status in `results` and labelled with its attempts and,
  /// when the run was recorded, its duration.
  [[nodiscard]] std::string to_dot(const ResultSet& results) const;

 private:
  friend class RunHandle;
  friend struct detail::EngineAccess;
  template <class F, class Deps>
  TaskHandle add_range(std::string task_id, F&& execute_fn, Deps&& dependencies, int retries, TaskOptions* options) {
    // Short lists (the common case) are converted on the stack: no allocation per call.
    constexpr std::size_t inline_deps = 8;
    if constexpr (std::ranges::sized_range<Deps>) {
      if (std::ranges::size(dependencies) <= inline_deps) {
        std::array<DependencyRef, inline_deps> refs{};
        std::size_t n = 0;
        for (auto&& dep : dependencies) {
          refs[n++] = DependencyRef(dep);
        }
        return add_erased(std::move(task_id), detail::TaskFn(std::forward<F>(execute_fn)),
                          std::span<const DependencyRef>(refs.data(), n), retries, options);
      }
    }
    std::vector<DependencyRef> refs;
    for (auto&& dep : dependencies) {
      refs.emplace_back(dep);
    }
    return add_erased(std::move(task_id), detail::TaskFn(std::forward<F>(execute_fn)), refs, retries, options);
  }

  RunHandle start_run(const RunOptions& options, bool counted);

  // `options` is null for the spec's overloads; when set, its fields other than `retries` are moved from.
  // The id by reference: a short id's move is a copy of its characters, made once, into the id table.
  TaskHandle add_erased(std::string&& task_id, detail::TaskFn execute_fn, std::span<const DependencyRef> dependencies,
                        int retries, TaskOptions* options);

  std::unique_ptr<detail::Engine> m_engine;
};

}  // namespace dagsched
