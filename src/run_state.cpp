#include "run_state.hpp"

#include <cmath>
#include <exception>
#include <iterator>
#include <stdexcept>
#include <string>

#include "dagsched/errors.hpp"
#include "dagsched/task_scheduler.hpp"
#include "worker_pool.hpp"

namespace dagsched::detail {

namespace {

/// splitmix64's finaliser: a well-mixed 64-bit value from any input.
std::uint64_t mix(std::uint64_t z) noexcept {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// A uniform draw in [0, 1) that depends only on the seed, the task and the retry, so that a seeded run
/// waits the same whatever the interleaving of the workers.
double jitter_draw(std::uint64_t seed, std::uint32_t task, std::uint64_t retry) noexcept {
  const std::uint64_t bits = mix(seed ^ mix(task ^ (retry << 32)));
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

/// The roots in the sequence `order` claims them in.
const std::uint32_t* roots_in_order(const FrozenGraph& frozen, ReadyOrder order) noexcept {
  if (order == ReadyOrder::critical_path && !frozen.roots_by_rank.empty()) {
    return frozen.roots_by_rank.data();
  }
  if (order == ReadyOrder::fifo && !frozen.roots_by_priority.empty()) {
    return frozen.roots_by_priority.data();
  }
  return frozen.order.data();
}

}  // namespace

RunState::RunState(const RunSetup& setup)
    : m_nodes(setup.graph.nodes),
      m_deps(setup.graph.deps),
      m_extras(setup.graph.extras),
      m_ids(setup.ids),
      m_out_begin(setup.frozen.out_begin.data()),
      m_out(setup.frozen.out.data()),
      m_invoke(setup.frozen.invoke.data()),
      m_counters_dep(setup.frozen.counters.data()),
      m_roots(roots_in_order(setup.frozen, setup.order)),
      m_root_count(setup.frozen.root_count),
      m_rank(setup.frozen.rank.data()),
      m_links(setup.frozen.links.data()),
      m_order_threshold(setup.order_threshold),
      m_results(setup.results),
      m_construct_from(setup.constructed),
      m_failure_limit(setup.failure_limit),
      m_workers(static_cast<std::uint32_t>(setup.pool.size())),
      m_seed(setup.seed),
      m_observer(setup.observer),
      m_mode{setup.observer != nullptr, !setup.graph.extras.empty(), setup.counted || setup.observer != nullptr,
             setup.order},
      m_stop(setup.stop),
      m_pool(setup.pool),
      m_timekeeper(setup.timekeeper),
      m_size(setup.frozen.size),
      m_owner(setup.owner),
      m_counters(std::make_unique<WorkerCounters[]>(setup.pool.size())),
      m_pending(setup.graph.extras.empty() ? nullptr : std::make_unique<Pending[]>(setup.graph.extras.size())),
      m_remaining(setup.frozen.size),
      m_ready_numbers(setup.frozen.root_count),
      m_failed_lists(setup.failed_lists) {
  if (!setup.graph.pools.empty()) {
    std::vector<std::uint32_t> capacities;
    for (const auto& pool : setup.graph.pools) {
      capacities.push_back(pool.second);
    }
    m_broker.reset(capacities);
  }
}

RunState::~RunState() = default;

bool RunState::retry(TaskNode& node, TaskResult& result, std::uint32_t worker, bool permanent) {
  // 64-bit, so that the increment after attempt INT_MAX (retries may be INT_MAX - 1) cannot overflow.
  std::int64_t attempt = 2;
  for (; !permanent && attempt <= std::int64_t{node.retries} + 1; ++attempt) {
    if (is_cancelled()) {
      WorkerCounters::bump(m_counters[worker].cancelled);
      return cancelled(result, static_cast<int>(attempt - 1));
    }
    try {
      node.fn(result.result);
      result.status = Status::success;
      result.attempts = static_cast<int>(attempt);
      result.error = nullptr;
      result.skipped_by.reset();
      return true;
    } catch (const PermanentError&) {
      result.error = std::current_exception();
      permanent = true;
    } catch (...) {
      result.error = std::current_exception();  // only the last attempt's exception is kept
    }
  }
  fail(result, static_cast<int>(attempt - 1), worker);
  return false;
}

void RunState::fail(TaskResult& result, int attempts, std::uint32_t worker) noexcept {
  result.status = Status::failed;
  result.attempts = attempts;
  result.result.reset();
  result.skipped_by.reset();
  WorkerCounters::bump(m_counters[worker].failed);
  record_failure();
}

void RunState::record_failure() noexcept {
  if (m_failure_limit != 0 && m_failures.fetch_add(1, std::memory_order_relaxed) + 1 >= m_failure_limit) {
    cancel_run();
  }
}

void RunState::cancel_run() noexcept {
  mark_cancelled();
  m_stop.request_stop();
  m_pool.wake_all();
}

void RunState::mark_cancelled() noexcept {
  // seq_cst, then (the caller) a notify: parked workers must wake to end the tasks waiting for a retry.
  m_cancelled.store(true, std::memory_order_seq_cst);
  drain_waiters();
}

void RunState::drain_waiters() {
  std::vector<std::uint32_t> drained;
  m_broker.drain(drained);
  for (const std::uint32_t task : drained) {
    push_retry(0, task);  // due at once: a worker ends it cancelled
  }
}

bool RunState::acquire_units(std::uint32_t task, const TaskExtra& extra, Pending& state) {
  // Parked before it can be queued: once queued, another thread may grant it the units and a third resume
  // it, so this thread must not touch `state` after a failed acquire (the broker's lock orders these writes
  // before the grant, and the retry heap's lock the grant before the resumption).
  state.parked = true;
  m_waiting.fetch_add(1, std::memory_order_relaxed);
  // Waiters are served by the run order's key: explicit priority, then (critical_path) the longest path.
  const std::uint64_t rank = m_rank[task];
  const std::uint64_t key = m_mode.order == ReadyOrder::critical_path ? rank : rank & FrozenGraph::band_mask;
  if (m_broker.acquire(task, extra.needs, key)) {
    state.parked = false;
    m_waiting.fetch_sub(1, std::memory_order_relaxed);
    state.holds = true;
    return true;
  }
  // A cancel that drained the waiters just before this task queued would leave it there for good: look
  // again. (The cancel flag is set before the drain takes the broker's lock, which this task's acquire
  // took after, or the drain found the task queued.)
  if (m_cancelled.load(std::memory_order_seq_cst)) {
    drain_waiters();
  }
  return false;
}

void RunState::release_units(const TaskExtra& extra, Pending& state) {
  state.holds = false;
  std::vector<std::uint32_t> granted;
  m_broker.release(extra.needs, granted);
  for (const std::uint32_t task : granted) {
    m_pending[m_nodes[task].extra - 1].holds = true;  // published by the retry heap's lock
    push_retry(0, task);
  }
  if (!granted.empty()) {
    m_pool.timer_wake();  // as a due retry would: parked workers look at the heap
  }
}

bool RunState::cancelled(TaskResult& result, int attempts) noexcept {
  result.status = Status::cancelled;
  result.attempts = attempts;
  result.result.reset();
  result.skipped_by.reset();
  if (attempts == 0) {
    result.error = nullptr;  // otherwise it keeps the last attempt's exception
  }
  return true;
}

bool RunState::skip(const TaskNode& node, TaskResult& result) {
  // Stores only what differs from what the slot holds: a task skipped again for the same causes, run after
  // run, leaves its slot unwritten (and the shared lists' reference counts untouched).
  if (result.status != Status::skipped) {
    result.status = Status::skipped;
  }
  if (result.attempts != 0) {
    result.attempts = 0;
  }
  result.result.reset();
  if (result.error) {
    result.error = nullptr;
  }
  // The causes: failed dependencies themselves, and the causes of skipped ones. Every dependency has
  // finished (this task is ready), so their results are final. A chain of skips shares one list; only a
  // task whose non-succeeded dependencies bring different lists pays for a merged one.
  const SkipCauses* single = nullptr;
  std::vector<std::string> merged;  // sorted and unique, like every list
  std::vector<std::string> scratch;
  bool merging = false;
  auto add = [&](const SkipCauses& list) {
    if (list.empty() || (single != nullptr && list.same_list(*single))) {
      return;
    }
    if (!merging && single == nullptr) {
      single = &list;
      return;
    }
    if (!merging) {
      merged.assign(single->begin(), single->end());
      merging = true;
    }
    // Both sorted: a linear merge, no sort.
    scratch.clear();
    std::set_union(merged.begin(), merged.end(), list.begin(), list.end(), std::back_inserter(scratch));
    merged.swap(scratch);
  };
  for (std::uint32_t i = 0; i < node.dep_count; ++i) {
    const std::uint32_t dep = m_deps[node.dep_begin + i];
    const TaskResult& r = m_results[dep];
    if (r.status == Status::failed) {
      add(m_failed_lists.get(dep, m_ids));
    } else if (r.status == Status::skipped) {
      add(r.skipped_by);
    }
  }
  if (merging) {
    if (!std::ranges::equal(result.skipped_by.ids(), merged)) {
      result.skipped_by = SkipCauses(std::move(merged));
    }
  } else if (single == nullptr) {
    result.skipped_by.reset();
  } else if (!result.skipped_by.same_list(*single)) {
    result.skipped_by = *single;
  }
  return false;
}

const SkipCauses& FailedLists::get(std::uint32_t task, const IdTable& ids) {
  Lock lock(m_mutex);
  auto [it, inserted] = m_lists.try_emplace(task);
  if (inserted) {
    it->second = SkipCauses(std::vector<std::string>{ids.name(task)});
  }
  return it->second;
}

RunState::Outcome RunState::run_slow(std::uint32_t item, TaskNode& node, TaskResult& result, std::uint32_t worker) {
  const std::uint32_t task = item & index_mask;
  const TaskExtra* extra = node.extra != 0 ? &m_extras[node.extra - 1] : nullptr;
  Pending* pending = extra != nullptr ? &m_pending[node.extra - 1] : nullptr;
  if (task >= m_construct_from && (pending == nullptr || !pending->constructed)) {
    ::new (static_cast<void*>(&result)) TaskResult();
  }
  if (pending != nullptr) {
    pending->constructed = true;
    if (pending->parked) {  // back from the retry heap (a due retry, or granted units)
      pending->parked = false;
      m_waiting.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  const int made = pending != nullptr ? pending->attempts : 0;
  WorkerCounters& counters = m_counters[worker];
  if ((item & poison_bit) != 0 && (extra == nullptr || extra->trigger != TriggerRule::all_done)) {
    skip(node, result);
    WorkerCounters::bump(counters.skipped);
    if (m_observer != nullptr) {
      notify_finish(task, 0, result, worker);
    }
    return Outcome::failure;
  }
  if (is_cancelled()) {
    if (pending != nullptr && pending->holds) {
      release_units(*extra, *pending);
    }
    cancelled(result, made);
    WorkerCounters::bump(counters.cancelled);
    if (m_observer != nullptr) {
      notify_finish(task, made, result, worker);
    }
    return Outcome::success;  // see cancelled()
  }
  const Outcome outcome = attempts(task, node, result, worker);
  if (outcome != Outcome::pending && m_observer != nullptr) {
    notify_finish(task, result.attempts, result, worker);
  }
  return outcome;
}

RunState::Outcome RunState::attempts(std::uint32_t task, TaskNode& node, TaskResult& result, std::uint32_t worker) {
  const TaskExtra* extra = node.extra != 0 ? &m_extras[node.extra - 1] : nullptr;
  Pending local;
  Pending& state = extra != nullptr ? m_pending[node.extra - 1] : local;
  const std::int64_t max_attempts = std::int64_t{node.retries} + 1;
  for (;;) {
    if (state.attempts != 0 && is_cancelled()) {
      WorkerCounters::bump(m_counters[worker].cancelled);
      cancelled(result, state.attempts);
      return Outcome::success;
    }
    if (extra != nullptr && !extra->needs.empty() && !state.holds && !acquire_units(task, *extra, state)) {
      return Outcome::pending;  // parked until its units are granted
    }
    const int attempt = ++state.attempts;
    // The limit on this attempt: its own timeout, or what is left of the task's deadline.
    Nanos limit_at = never;
    bool limit_is_deadline = false;
    std::chrono::nanoseconds limit{0};
    // Starts the attempt's clock. Called right before the body, after any setup (and after the observer),
    // so that neither eats into the task's time.
    auto begin = [&] {
      if (m_observer != nullptr) {
        m_observer->on_attempt_start(event(task, attempt, worker));
      }
      const Nanos start = clock_now();
      if (attempt == 1) {
        state.first_start = start;
      }
      if (extra != nullptr) {
        if (extra->timeout.count() != 0) {
          limit_at = add_saturated(start, extra->timeout);
          limit = extra->timeout;
        }
        if (extra->deadline.count() != 0) {
          const Nanos deadline_at = add_saturated(state.first_start, extra->deadline);
          if (deadline_at < limit_at) {
            limit_at = deadline_at;
            limit_is_deadline = true;
            limit = extra->deadline;
          }
        }
      }
    };

    std::exception_ptr error;
    bool permanent = false;
    try {
      if (extra != nullptr && extra->takes_context) {
        std::stop_source stop;  // per attempt: a requested source cannot be reset
        // Cancelling the run stops the attempt; so does its limit, from the timer thread.
        std::stop_callback on_cancel(m_stop.get_token(), [&stop]() noexcept { stop.request_stop(); });
        begin();
        const Timekeeper::Ticket ticket =
            limit_at != never ? m_timekeeper.stop_at(limit_at, stop) : Timekeeper::Ticket{};
        struct Untimer {
          Timekeeper& timekeeper;
          Timekeeper::Ticket ticket;
          ~Untimer() { timekeeper.cancel(ticket); }
        } untimer{m_timekeeper, ticket};
        TaskContext ctx(*this, task, m_ids.name(task), attempt, result.error, stop.get_token());
        node.fn(result.result, ctx);
      } else {
        begin();
        node.fn(result.result);
      }
    } catch (const PermanentError&) {
      error = std::current_exception();
      permanent = true;
    } catch (...) {
      error = std::current_exception();
    }
    const Nanos end = clock_now();
    if (state.holds) {
      release_units(*extra, state);  // not held across a retry's wait
    }
    if (limit_at != never && end >= limit_at) {
      error = std::make_exception_ptr(TimeoutError(m_ids.name(task), attempt, limit, limit_is_deadline, error));
      permanent = false;
    }
    if (m_observer != nullptr) {
      m_observer->on_attempt_end(event(task, attempt, worker), error);
    }
    if (!error) {
      result.status = Status::success;
      result.attempts = attempt;
      result.error = nullptr;
      result.skipped_by.reset();
      return Outcome::success;
    }
    result.result.reset();
    result.error = error;

    // Another attempt? Not after the last, a PermanentError, a "no" from retry_if, or the deadline.
    bool again = attempt < max_attempts && !permanent;
    if (again && extra != nullptr && extra->retry.retry_if) {
      try {
        again = extra->retry.retry_if(error);
      } catch (...) {
        again = false;  // a broken predicate must not retry forever; the task's own error is kept
      }
    }
    std::chrono::nanoseconds delay{0};
    if (again && extra != nullptr) {
      if (extra->retry.delay.count() != 0) {
        const auto retry = static_cast<std::uint64_t>(attempt);
        delay = extra->retry.delay_before(retry, jitter_draw(m_seed, task, retry));
      }
      if (extra->deadline.count() != 0) {
        const Nanos deadline_at = add_saturated(state.first_start, extra->deadline);
        if (add_saturated(end, delay) >= deadline_at) {
          // No time left for another attempt: the deadline, not the last error, ends the task.
          if (!(limit_is_deadline && end >= limit_at)) {
            result.error =
                std::make_exception_ptr(TimeoutError(m_ids.name(task), attempt, extra->deadline, true, error));
          }
          again = false;
        }
      }
    }
    if (!again) {
      fail(result, attempt, worker);
      return Outcome::failure;
    }
    if (m_observer != nullptr) {
      m_observer->on_retry_scheduled(event(task, attempt, worker), delay);
    }
    if (delay.count() != 0) {
      state.parked = true;
      m_waiting.fetch_add(1, std::memory_order_relaxed);
      push_retry(add_saturated(end, delay), task);
      return Outcome::pending;
    }
  }
}

void RunState::push_retry(Nanos due, std::uint32_t task) {
  due = std::min(due, never - 1);  // `never` means "nothing waits"; a saturated due time still waits
  {
    Lock lock(m_retry_mutex);
    m_retry_heap.emplace_back(due, task);
    std::push_heap(m_retry_heap.begin(), m_retry_heap.end(), std::greater<>());
    m_next_due.store(m_retry_heap.front().first, std::memory_order_relaxed);
  }
  if (due > clock_now()) {
    m_timekeeper.wake_at(due, m_pool);
  } else {
    m_pool.timer_wake();  // due already: no need for the timer thread
  }
}

std::uint32_t RunState::pop_retry_slow() {
  const bool all = m_cancelled.load(std::memory_order_seq_cst);
  const Nanos now = all ? never : clock_now();
  if (m_next_due.load(std::memory_order_relaxed) > now) {
    return none;
  }
  Lock lock(m_retry_mutex);
  if (m_retry_heap.empty() || m_retry_heap.front().first > now) {
    return none;
  }
  std::pop_heap(m_retry_heap.begin(), m_retry_heap.end(), std::greater<>());
  const std::uint32_t task = m_retry_heap.back().second;
  m_retry_heap.pop_back();
  m_next_due.store(m_retry_heap.empty() ? never : m_retry_heap.front().first, std::memory_order_relaxed);
  return task;
}

bool RunState::retry_ready() const noexcept {
  const Nanos next = m_next_due.load(std::memory_order_seq_cst);
  if (next == never) {
    return false;
  }
  return m_cancelled.load(std::memory_order_seq_cst) || next <= clock_now();
}

TaskEvent RunState::event(std::uint32_t task, int attempt, std::uint32_t worker) const noexcept {
  return TaskEvent{task, m_ids.name(task), attempt, worker, std::chrono::steady_clock::now()};
}

void RunState::notify_ready(std::uint32_t item, std::uint32_t worker) {
  const std::uint32_t task = item & index_mask;
  if ((item & poison_bit) != 0) {
    const TaskNode& node = m_nodes[task];
    if (node.extra == 0 || m_extras[node.extra - 1].trigger != TriggerRule::all_done) {
      return;  // it will be skipped, not run
    }
  }
  if (is_cancelled()) {
    return;
  }
  m_observer->on_task_ready(event(task, 0, worker));
}

void RunState::notify_finish(std::uint32_t task, int attempt, const TaskResult& result, std::uint32_t worker) {
  m_observer->on_task_finish(event(task, attempt, worker), result);
}

void RunState::announce_start() {
  if (m_observer == nullptr) {
    return;
  }
  m_observer->on_run_start(m_size, m_workers);
  for (std::uint32_t i = 0; i < m_root_count; ++i) {
    m_observer->on_task_ready(event(m_roots[i], 0, m_workers));
  }
}

void RunState::progress(Progress& p) const noexcept {
  p.total = m_size;
  for (std::uint32_t w = 0; w < m_workers; ++w) {
    const WorkerCounters& c = m_counters[w];
    p.finished += c.finished.load(std::memory_order_relaxed) + c.live.load(std::memory_order_relaxed);
    p.failed += c.failed.load(std::memory_order_relaxed);
    p.skipped += c.skipped.load(std::memory_order_relaxed);
    p.cancelled += c.cancelled.load(std::memory_order_relaxed);
    p.running += c.busy.load(std::memory_order_relaxed);
  }
  p.waiting = m_waiting.load(std::memory_order_relaxed);
  // A task is counted failed, skipped or cancelled just before it is counted finished (and a worker's
  // finished count can lag by its last call): a failed task has finished all the same.
  const std::size_t other = p.failed + p.skipped + p.cancelled;
  p.finished = std::min<std::size_t>(std::max(p.finished, other), p.total);
  p.succeeded = p.finished > other ? p.finished - other : 0;
}

const TaskResult& RunState::dependency_result(std::uint32_t task, std::uint32_t dep) const {
  const TaskNode& node = m_nodes[task];
  for (std::uint32_t i = 0; i < node.dep_count; ++i) {
    if (m_deps[node.dep_begin + i] == dep) {
      return m_results[dep];
    }
  }
  const std::string dep_name = dep < m_ids.size() ? "'" + m_ids.name(dep) + "'" : "#" + std::to_string(dep);
  throw std::out_of_range("TaskContext: task '" + m_ids.name(task) + "' does not depend on " + dep_name);
}

const TaskResult& RunState::dependency_result(std::uint32_t task, std::string_view dep) const {
  const std::uint32_t index = m_ids.find(dep);
  if (index == IdTable::npos) {
    throw std::out_of_range("TaskContext: task '" + m_ids.name(task) + "' does not depend on '" + std::string(dep) +
                            "' (no such task)");
  }
  return dependency_result(task, index);
}

}  // namespace dagsched::detail

namespace dagsched {

const TaskResult& TaskContext::dependency(std::string_view dependency_id) const {
  return m_run->dependency_result(m_task, dependency_id);
}

const TaskResult& TaskContext::dependency(TaskHandle dependency) const {
  if (dependency.m_owner != m_run->owner()) {
    throw std::out_of_range("TaskContext: task '" + id() + "' was given a handle " +
                            (dependency.valid() ? "of another scheduler" : "that refers to no task"));
  }
  return m_run->dependency_result(m_task, dependency.index());
}

std::size_t TaskContext::dependency_count() const noexcept { return m_run->dependency_count(m_task); }

std::chrono::nanoseconds RetryPolicy::delay_before(std::uint64_t retry, double unit) const noexcept {
  if (delay.count() <= 0 || retry == 0) {
    return std::chrono::nanoseconds(0);
  }
  // In double, where a huge power is +inf rather than undefined behaviour, then clamped before any
  // conversion back to integers (Airflow's #47971 overflowed exactly here).
  const double cap = static_cast<double>(max_delay.count());
  double wait = static_cast<double>(delay.count()) * std::pow(backoff, static_cast<double>(retry - 1));
  if (!(wait < cap)) {  // also catches inf and nan
    wait = cap;
  }
  if (jitter > 0.0) {
    wait -= wait * jitter * std::clamp(unit, 0.0, 1.0);
  }
  // 2^63 is exactly representable and one past INT64_MAX: anything at or above it saturates.
  constexpr double limit = 9223372036854775808.0;
  if (wait >= limit) {
    return std::chrono::nanoseconds::max();
  }
  return std::chrono::nanoseconds(static_cast<std::int64_t>(wait));
}

}  // namespace dagsched
