#include "dagsched/task_scheduler.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "dagsched/errors.hpp"
#include "engine.hpp"
#include "observer_tee.hpp"
#include "recorder.hpp"
#include "run_state.hpp"

namespace dagsched {

namespace detail {

namespace {
std::uint32_t next_serial() noexcept {
  static std::atomic<std::uint32_t> counter{0};
  std::uint32_t serial;
  do {
    serial = counter.fetch_add(1, std::memory_order_relaxed) + 1;
  } while (serial == 0);  // 0 marks a default-constructed handle
  return serial;
}
}  // namespace

Engine::Engine(std::size_t workers) : serial(next_serial()), pool(workers) {}

void Engine::cancel(std::uint64_t which) noexcept {
  std::stop_source stop(std::nostopstate);
  {
    Lock lock(run_mutex);
    if (which != run_serial || !run.has_value()) {
      return;  // that run has ended: nothing left to stop
    }
    run->mark_cancelled();  // also ends the tasks waiting for resource units
    stop = run_stop;
  }
  // Then a notify: parked workers must wake to end the tasks waiting for a retry (see
  // RunState::retry_ready). The stop request runs tasks' stop callbacks, so no lock is held.
  stop.request_stop();
  pool.wake_all();
}

}  // namespace detail

namespace {

/// Clears `flag` on every exit from run() or add_task().
class RunningGuard {
 public:
  explicit RunningGuard(std::atomic<bool>& flag, const char* what) : m_flag(flag) {
    if (m_flag.exchange(true, std::memory_order_acquire)) {
      throw std::logic_error(std::string(what) +
                             " called while this TaskScheduler is running (or being changed by another thread)");
    }
  }
  ~RunningGuard() { m_flag.store(false, std::memory_order_release); }
  RunningGuard(const RunningGuard&) = delete;
  RunningGuard& operator=(const RunningGuard&) = delete;

 private:
  std::atomic<bool>& m_flag;
};

}  // namespace

TaskScheduler::TaskScheduler(std::size_t max_workers) : TaskScheduler(SchedulerOptions{max_workers}) {}

TaskScheduler::TaskScheduler(SchedulerOptions options) {
  if (options.max_workers == 0) {
    throw std::invalid_argument("TaskScheduler: max_workers must be at least 1");
  }
  m_engine = std::make_unique<detail::Engine>(options.max_workers);
}

TaskScheduler::~TaskScheduler() {
  // A started run whose handle was never waited for: stop it before the workers go away. (Using that
  // handle afterwards is undefined; it must not outlive the scheduler.)
  detail::Engine& e = *m_engine;
  std::uint64_t live = 0;
  {
    detail::Lock lock(e.run_mutex);
    if (e.run.has_value() && e.graph.size() != 0) {
      live = e.run_serial;
    }
  }
  if (live != 0) {
    e.cancel(live);
    e.pool.wait();
    e.results->run_ended(e.graph.size());  // as wait() would: the block then destroys what the slots hold
  }
}

std::size_t TaskScheduler::max_workers() const noexcept { return m_engine->pool.size(); }

std::size_t TaskScheduler::size() const noexcept { return m_engine->graph.size() - m_engine->graph.placeholders; }

bool TaskScheduler::contains(std::string_view task_id) const noexcept {
  const std::uint32_t index = m_engine->ids->find(task_id);
  return index != detail::IdTable::npos && static_cast<bool>(m_engine->graph.nodes[index].fn);
}

namespace {

/// Throws std::invalid_argument naming the task and the field when `options` holds an impossible value.
void validate(const std::string& task_id, const TaskOptions& options) {
  auto reject = [&](const char* what) { throw std::invalid_argument("add_task: task '" + task_id + "': " + what); };
  const RetryPolicy& r = options.retry;
  if (r.delay.count() < 0) reject("retry.delay must not be negative");
  if (r.max_delay.count() < 0) reject("retry.max_delay must not be negative");
  if (!(r.backoff >= 1.0) || !std::isfinite(r.backoff)) reject("retry.backoff must be a finite number >= 1");
  if (!(r.jitter >= 0.0 && r.jitter <= 1.0)) reject("retry.jitter must be between 0 and 1");
  if (options.timeout.count() < 0) reject("timeout must not be negative");
  if (options.deadline.count() < 0) reject("deadline must not be negative");
  if (!(options.cost >= 0.0) || !std::isfinite(options.cost)) reject("cost must be a finite number >= 0");
  for (const ResourceRequest& request : options.resources) {
    if (request.pool.empty()) reject("a resource request names no pool");
    if (request.units == 0) reject("a resource request asks for 0 units");
  }
}

/// Whether `options` asks for anything the spec's fast path does not do (retries alone it does).
bool needs_slow_path(const TaskOptions& options) noexcept {
  return options.retry.delay.count() != 0 || static_cast<bool>(options.retry.retry_if) || !options.resources.empty() ||
         options.timeout.count() != 0 || options.deadline.count() != 0 || options.trigger != TriggerRule::all_success;
}

}  // namespace

TaskHandle TaskScheduler::add_erased(std::string&& task_id, detail::TaskFn execute_fn,
                                     std::span<const DependencyRef> dependencies, int retries, TaskOptions* options) {
  detail::Engine& e = *m_engine;
  RunningGuard guard(e.running, "add_task");
  detail::Graph& graph = e.graph;

  // Validate everything before changing anything, so a rejected call leaves the scheduler unchanged.
  if (task_id.empty()) {
    throw std::invalid_argument("add_task: task id must not be empty");
  }
  if (retries < 0 || retries == INT_MAX) {
    throw std::invalid_argument("add_task: task '" + task_id + "': retries must be between 0 and " +
                                std::to_string(INT_MAX - 1) + ", not " + std::to_string(retries));
  }
  if (options != nullptr) {
    validate(task_id, *options);
  }
  const bool extra = execute_fn.takes_context() || (options != nullptr && needs_slow_path(*options));
  const detail::IdTable::Lookup where = e.ids->lookup(task_id);
  std::uint32_t index = where.index;
  if (index != detail::IdTable::npos && graph.nodes[index].fn) {
    throw DuplicateTaskError(std::move(task_id));
  }
  std::size_t new_ids = index == detail::IdTable::npos ? 1 : 0;
  for (const DependencyRef& dep : dependencies) {
    if (dep.is_handle()) {
      const TaskHandle h = dep.handle();
      if (h.m_owner != e.serial || h.index() >= graph.size()) {
        throw std::invalid_argument("add_task: task '" + task_id +
                                    "': a dependency handle does not belong to this scheduler");
      }
    } else if (dep.id().empty()) {
      throw std::invalid_argument("add_task: task '" + task_id + "': a dependency id is empty");
    } else {
      ++new_ids;  // a bound: the id may exist already. Looking it up here would cost a second probe.
    }
  }
  if (graph.size() + new_ids > detail::max_tasks || graph.deps.size() + dependencies.size() > UINT32_MAX ||
      dependencies.size() > detail::max_dependencies) {
    throw std::length_error("add_task: too many tasks or dependencies for one TaskScheduler");
  }

  // A ResultSet may share the id table: copy it rather than change what it sees.
  if (e.ids.use_count() > 1) {
    e.ids = std::make_shared<detail::IdTable>(*e.ids);
  }
  detail::IdTable& ids = *e.ids;
  // Room first: past this point only the id table can still fail (out of memory), before the graph changes.
  graph.nodes.reserve_more(new_ids);
  graph.deps.reserve_more(dependencies.size());
  if (extra && graph.extras.size() == graph.extras.capacity()) {
    graph.extras.reserve(std::max<std::size_t>(16, 2 * graph.extras.capacity()));
  }
  const bool prioritised = options != nullptr && options->priority != 0;
  const bool costed = options != nullptr && options->cost != 1.0;
  // Grown geometrically, as push_back would, to at least every index this call can create.
  auto make_room = [&](auto& v) {
    const std::size_t need = graph.size() + new_ids;
    if (v.capacity() < need) {
      v.reserve(std::max(need, 2 * v.capacity()));
    }
  };
  if (prioritised) {
    make_room(graph.priorities);
  }
  if (costed) {
    make_room(graph.costs);
  }
  auto intern = [&](std::string_view id) {
    const std::uint32_t i = ids.intern(id);
    if (i == graph.size()) {
      graph.nodes.emplace_back();  // a placeholder until its own add_task
      ++graph.placeholders;
    }
    return i;
  };

  if (index == detail::IdTable::npos) {
    index = ids.add(std::move(task_id), where);  // valid: the table has not changed (a copy is the same)
    graph.nodes.emplace_back();
  } else {
    --graph.placeholders;
  }
  const auto dep_begin = static_cast<std::uint32_t>(graph.deps.size());
  for (const DependencyRef& dep : dependencies) {
    graph.deps.push_back(dep.is_handle() ? dep.handle().index() : intern(dep.id()));
  }
  detail::TaskNode& node = graph.nodes[index];
  node.fn = std::move(execute_fn);
  graph.owning_bodies += node.fn.trivially_destructible() ? 0U : 1U;
  graph.value_bodies += node.fn.returns_value() ? 1U : 0U;
  node.retries = retries;
  node.dep_begin = dep_begin;
  node.dep_count = static_cast<std::uint32_t>(graph.deps.size()) - dep_begin;
  graph.roots += node.dep_count == 0 ? 1 : 0;
  if (extra) {
    detail::TaskExtra& x = graph.extras.emplace_back();  // cannot throw: reserved above
    x.task = index;
    x.takes_context = node.fn.takes_context();
    if (options != nullptr) {
      x.retry = std::move(options->retry);
      x.timeout = options->timeout;
      x.deadline = options->deadline;
      x.trigger = options->trigger;
      x.resources = std::move(options->resources);
    }
    graph.context_tasks += x.takes_context ? 1 : 0;
    node.extra = static_cast<std::uint32_t>(graph.extras.size());
  }
  // Cannot throw: room was made above.
  if (prioritised) {
    graph.priorities.resize(std::max<std::size_t>(graph.priorities.size(), index + 1), 0);
    graph.priorities[index] = options->priority;
  }
  if (costed) {
    graph.costs.resize(std::max<std::size_t>(graph.costs.size(), index + 1), 1.0);
    graph.costs[index] = options->cost;
  }
  e.frozen_valid = false;
  return TaskHandle(index, e.serial);
}

void TaskScheduler::add_resource(std::string name, std::uint32_t capacity) {
  detail::Engine& e = *m_engine;
  RunningGuard guard(e.running, "add_resource");
  if (name.empty()) {
    throw std::invalid_argument("add_resource: the pool needs a name");
  }
  if (capacity == 0) {
    throw std::invalid_argument("add_resource: pool '" + name + "' needs a capacity of at least 1");
  }
  for (const auto& pool : e.graph.pools) {
    if (pool.first == name) {
      throw std::invalid_argument("add_resource: pool '" + name + "' is already declared");
    }
  }
  e.graph.pools.emplace_back(std::move(name), capacity);
}

namespace {

/// Resolves every task's resource requests against the declared pools (the same pool named twice adds up).
/// Throws ResourceError before anything runs.
void resolve_resources(detail::Graph& graph, const detail::IdTable& ids) {
  for (detail::TaskExtra& x : graph.extras) {
    x.needs.clear();
    for (const ResourceRequest& r : x.resources) {
      const auto it =
          std::find_if(graph.pools.begin(), graph.pools.end(), [&](const auto& pool) { return pool.first == r.pool; });
      if (it == graph.pools.end()) {
        throw ResourceError(ids.name(x.task), r.pool, "no such pool (see TaskScheduler::add_resource)");
      }
      const auto pool = static_cast<std::uint32_t>(it - graph.pools.begin());
      auto need = std::find_if(x.needs.begin(), x.needs.end(), [&](const detail::Need& n) { return n.pool == pool; });
      if (need == x.needs.end()) {
        need = x.needs.insert(x.needs.end(), detail::Need{pool, 0});
      }
      if (it->second - need->units < r.units) {
        throw ResourceError(ids.name(x.task), r.pool,
                            "asks for more units than the pool's capacity of " + std::to_string(it->second));
      }
      need->units += r.units;
    }
  }
}

}  // namespace

FailurePolicy FailurePolicy::max_failures(std::uint32_t n) {
  if (n == 0) {
    throw std::invalid_argument("FailurePolicy::max_failures: the limit must be at least 1");
  }
  return FailurePolicy(n);
}

// run() keeps its handle to itself, so nobody can ask it for progress: its workers skip the per-task count.
ResultSet TaskScheduler::run(const RunOptions& options) { return start_run(options, false).wait(); }

RunHandle TaskScheduler::start(const RunOptions& options) { return start_run(options, true); }

RunHandle TaskScheduler::start_run(const RunOptions& options, bool counted) {
  detail::Engine& e = *m_engine;
  if (e.running.exchange(true, std::memory_order_acquire)) {
    throw std::logic_error("run/start called while this TaskScheduler is running (or being changed by another thread)");
  }
  std::uint64_t serial = 0;
  try {
    if (options.order != ReadyOrder::critical_path && options.order != ReadyOrder::fifo &&
        options.order != ReadyOrder::depth_first) {
      throw std::invalid_argument("run/start: RunOptions::order is not a ReadyOrder");
    }
    if (options.order_threshold.count() < 0) {
      throw std::invalid_argument("run/start: RunOptions::order_threshold must not be negative");
    }
    if (!e.frozen_valid) {
      e.frozen = detail::freeze(e.graph, *e.ids);  // throws on a bad graph, before anything runs
      e.frozen_valid = true;
    }
    resolve_resources(e.graph, *e.ids);  // throws on an impossible request, before anything runs
    for (const detail::TaskExtra& x : e.graph.extras) {
      if (x.timeout.count() != 0 || x.deadline.count() != 0 || x.retry.delay.count() != 0) {
        e.timekeeper.ensure_started();  // before any attempt's clock starts
        break;
      }
    }
    const std::uint32_t n = e.graph.size();
    if (!e.results || e.results.use_count() > 1 || e.results->capacity() < n) {
      e.results = std::make_shared<detail::ResultBlock>(n);
    }
    e.results->empty_slots = false;  // until this run ends with nothing in them
    e.observer = options.observer;
    e.recorder.reset();
    if (options.record) {
      e.recorder = detail::make_recorder();
      e.observer = e.observer ? std::make_shared<detail::ObserverTee>(std::move(e.observer), e.recorder) : e.recorder;
    }
    Observer* observer = e.observer.get();
    // Only tasks taking a TaskContext have stop tokens; without them a run needs no stop state.
    std::stop_source stop = e.graph.context_tasks != 0 ? std::stop_source() : std::stop_source(std::nostopstate);
    detail::Lock lock(e.run_mutex);
    serial = ++e.run_serial;
    // Only the default order's unit-cost guess gives way to depth-first spells: FIFO, explicit priorities
    // and cost hints are requests, kept for every task (see RunOptions::order_threshold).
    const bool adaptive =
        options.order == ReadyOrder::critical_path && e.graph.priorities.empty() && e.graph.costs.empty();
    const detail::Nanos threshold = adaptive ? options.order_threshold.count() : 0;
    const std::uint64_t seed =
        options.seed != 0 ? options.seed : static_cast<std::uint64_t>(detail::clock_now()) ^ (serial << 32) ^ e.serial;
    e.run_stop = stop;
    e.final_progress = Progress{};
    e.run.emplace(detail::RunSetup{e.graph, e.frozen, *e.ids, e.results->data(), e.results->constructed, e.pool,
                                   e.timekeeper, options.failure_policy.limit(), seed, observer, counted, options.order,
                                   threshold, std::move(stop), e.serial, e.failed_lists});
  } catch (...) {
    e.observer.reset();
    e.recorder.reset();
    e.running.store(false, std::memory_order_release);
    throw;
  }
  detail::RunState* state;
  {
    detail::Lock lock(e.run_mutex);
    state = &*e.run;
  }
  state->announce_start();  // observer events, before any task's
  if (e.graph.size() != 0) {
    e.pool.start(*state);
  }
  return RunHandle(this, serial);
}

// RunHandle: the run it stands for lives in the scheduler's engine; the handle only points at the
// scheduler, and gives up the run (waits, takes the results, clears `running`) exactly once.

RunHandle::RunHandle(RunHandle&& other) noexcept
    : m_scheduler(other.m_scheduler.exchange(nullptr, std::memory_order_acq_rel)), m_run(other.m_run) {}

RunHandle& RunHandle::operator=(RunHandle&& other) noexcept {
  if (this != &other) {
    if (valid()) {
      cancel();
      static_cast<void>(wait());
    }
    m_scheduler.store(other.m_scheduler.exchange(nullptr, std::memory_order_acq_rel), std::memory_order_release);
    m_run = other.m_run;
  }
  return *this;
}

RunHandle::~RunHandle() {
  if (valid()) {
    cancel();
    static_cast<void>(wait());
  }
}

ResultSet RunHandle::wait() {
  TaskScheduler* scheduler = m_scheduler.load(std::memory_order_acquire);
  if (scheduler == nullptr) {
    throw std::logic_error("RunHandle::wait: no run (empty handle, or its results were already taken)");
  }
  detail::Engine& e = *scheduler->m_engine;
  if (e.pool.is_worker_thread()) {
    throw std::logic_error("RunHandle::wait called from a task of the same scheduler: it would wait for itself");
  }
  const auto n = e.graph.size();
  if (n != 0) {
    e.pool.wait();
  }
  bool all_succeeded;
  {
    detail::Lock lock(e.run_mutex);
    e.run->progress(e.final_progress);
    e.run.reset();
    all_succeeded = e.final_progress.failed == 0 && e.final_progress.skipped == 0 && e.final_progress.cancelled == 0;
  }
  e.results->run_ended(n);
  // A success leaves its slot without an error or skip causes, and a void body leaves no value.
  e.results->empty_slots = all_succeeded && e.graph.value_bodies == 0;
  ResultSet results(e.ids, e.results, e.results->data(), n, e.serial);
  if (std::shared_ptr<Observer> observer = std::move(e.observer)) {
    [&]() noexcept { observer->on_run_end(results); }();  // a throwing observer ends the process, as documented
  }
  if (std::shared_ptr<Observer> recorder = std::move(e.recorder)) {
    results.m_report = detail::take_report(*recorder, results, e);
  }
  // Only now: until the run ended, tasks and observers may still cancel() or poll through this handle.
  m_scheduler.store(nullptr, std::memory_order_release);
  e.running.store(false, std::memory_order_release);
  return results;
}

bool RunHandle::wait_for(std::chrono::nanoseconds timeout) const {
  TaskScheduler* scheduler = m_scheduler.load(std::memory_order_acquire);
  if (scheduler == nullptr) {
    return false;
  }
  detail::Engine& e = *scheduler->m_engine;
  return e.graph.size() == 0 || e.pool.wait_for(timeout);
}

bool RunHandle::done() const noexcept {
  TaskScheduler* scheduler = m_scheduler.load(std::memory_order_acquire);
  if (scheduler == nullptr) {
    return false;
  }
  detail::Engine& e = *scheduler->m_engine;
  return e.graph.size() == 0 || e.pool.finished();
}

void RunHandle::cancel() noexcept {
  if (TaskScheduler* scheduler = m_scheduler.load(std::memory_order_acquire)) {
    scheduler->m_engine->cancel(m_run);
  }
}

Progress RunHandle::progress() const noexcept {
  Progress p;
  if (TaskScheduler* scheduler = m_scheduler.load(std::memory_order_acquire)) {
    detail::Engine& e = *scheduler->m_engine;
    detail::Lock lock(e.run_mutex);
    if (e.run_serial == m_run) {
      if (e.run.has_value()) {
        e.run->progress(p);
      } else {
        p = e.final_progress;
      }
    }
  }
  return p;
}

}  // namespace dagsched
