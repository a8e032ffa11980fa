#include "worker_pool.hpp"

#include <stdexcept>
#include <thread>

#include "work_deque.hpp"

namespace dagsched::detail {

namespace {

constexpr std::uint32_t none = RunState::none;

/// Rounds of looking for work before parking: long enough to catch work that a busy worker is about to
/// push (a futex wake costs microseconds), short enough not to burn a core a user's task could use.
constexpr int spin_rounds = 64;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#else
  std::this_thread::yield();
#endif
}

}  // namespace

struct alignas(64) WorkerPool::Worker {
  WorkDeque deque;
  WorkerPool* pool = nullptr;
  std::uint64_t rng = 0;  // xorshift state for victim selection
  std::uint32_t index = 0;
  std::thread thread;

  // The sink RunState pushes readied tasks into.
  void push(std::uint32_t item) {
    deque.push(item);
    pool->m_idle.notify_one();
  }
  void push_quiet(std::uint32_t item) { deque.push_quiet(item); }

  std::uint32_t next_random() noexcept {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return static_cast<std::uint32_t>(rng);
  }
};

WorkerPool::WorkerPool(std::size_t workers) {
  if (workers == 0) {
    throw std::invalid_argument("max_workers must be at least 1");
  }
  m_workers.reserve(workers);
  for (std::size_t i = 0; i < workers; ++i) {
    auto worker = std::make_unique<Worker>();
    worker->pool = this;
    worker->index = static_cast<std::uint32_t>(i);
    worker->rng = 0x9E3779B97F4A7C15ULL * (i + 1);
    m_workers.push_back(std::move(worker));
  }
  try {
    for (auto& worker : m_workers) {
      worker->thread = std::thread([this, w = worker.get()] { thread_main(*w); });
    }
  } catch (...) {
    stop_and_join();
    throw;
  }
}

WorkerPool::~WorkerPool() { stop_and_join(); }

void WorkerPool::stop_and_join() noexcept {
  m_stop.store(true, std::memory_order_relaxed);
  m_epoch.fetch_add(1, std::memory_order_release);
  m_epoch.notify_all();
  for (auto& worker : m_workers) {
    if (worker->thread.joinable()) {
      worker->thread.join();
    }
  }
}

void WorkerPool::start(RunState& state) {
  {
    Lock lock(m_done_mutex);
    m_finished = false;
  }
  m_state = &state;
  m_active.store(static_cast<std::uint32_t>(m_workers.size()), std::memory_order_relaxed);
  m_epoch.fetch_add(1, std::memory_order_release);
  m_epoch.notify_all();
}

void WorkerPool::wait() {
  Lock lock(m_done_mutex);
  lock.wait(m_done_cv, [this]() DAGSCHED_REQUIRES(m_done_mutex) { return m_finished; });
}

bool WorkerPool::wait_for(std::chrono::nanoseconds timeout) {
  Lock lock(m_done_mutex);
  return lock.wait_for(m_done_cv, timeout, [this]() DAGSCHED_REQUIRES(m_done_mutex) { return m_finished; });
}

bool WorkerPool::finished() {
  Lock lock(m_done_mutex);
  return m_finished;
}

namespace {
thread_local const WorkerPool* current_pool = nullptr;  // the pool whose worker this thread is, if any
}  // namespace

bool WorkerPool::is_worker_thread() const noexcept { return current_pool == this; }

void WorkerPool::thread_main(Worker& worker) {
  current_pool = this;
  std::uint32_t seen = 0;
  for (;;) {
    std::uint32_t epoch;
    while ((epoch = m_epoch.load(std::memory_order_acquire)) == seen) {
      m_epoch.wait(seen, std::memory_order_acquire);
    }
    seen = epoch;
    if (m_stop.load(std::memory_order_relaxed)) {
      return;
    }
    // One instantiation per mode a run can have (an observed run takes the slow path for everything).
    const RunState::Mode mode = m_state->mode();
    if (mode.observed) {
      work<true, true, true>(worker, *m_state);
    } else if (mode.extras) {
      mode.counted ? work<false, true, true>(worker, *m_state) : work<false, true, false>(worker, *m_state);
    } else {
      mode.counted ? work<false, false, true>(worker, *m_state) : work<false, false, false>(worker, *m_state);
    }
    if (m_active.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      {
        Lock lock(m_done_mutex);
        m_finished = true;
      }
      m_done_cv.notify_all();
    }
  }
}

template <bool Observed, bool Extras, bool Counted>
void WorkerPool::work(Worker& worker, RunState& state) {
  // No thief can hold a pointer into this deque's old rings: the previous run has fully ended.
  worker.deque.reclaim();

  // Finished tasks are counted locally and published only when this worker runs dry: the run cannot
  // end while this worker still holds work, so nothing is lost, and the shared counter is touched once
  // per idle transition instead of once per task.
  std::uint32_t finished = 0;
  WorkerCounters& counters = state.counters(worker.index);
  std::uint64_t finished_total = 0;  // this run's, for progress reports
  bool busy = false;
  for (;;) {
    std::uint32_t item = find_work(worker, state);
    if (item == none && busy) {
      busy = false;
      counters.busy.store(0, std::memory_order_relaxed);
    }
    for (int round = 0; item == none && round < spin_rounds; ++round) {
      if (finished != 0) {
        const bool last = state.count_finished(finished);
        finished = 0;
        if (last) {
          m_idle.notify_all();
          return;
        }
      }
      if (state.done()) {
        return;
      }
      cpu_relax();
      item = find_work(worker, state);
    }
    if (item != none) {
      if (!busy) {
        busy = true;
        counters.busy.store(1, std::memory_order_relaxed);
      }
      const std::uint32_t n = state.execute<Observed, Extras, Counted>(item, worker);
      finished += n;
      // Live first, then the total: a concurrent report may briefly undercount, never count twice. (An
      // uncounted run publishes its total per call only: progress() cannot be asked for, but the final
      // counts still come from here.)
      if constexpr (Counted) {
        counters.live.store(0, std::memory_order_relaxed);
      }
      finished_total += n;
      counters.finished.store(finished_total, std::memory_order_relaxed);
      continue;
    }

    const std::uint32_t key = m_idle.prepare_wait();
    if (state.done() || work_visible(state)) {
      m_idle.cancel_wait();
      continue;
    }
    m_idle.commit_wait(key);
  }
}

std::uint32_t WorkerPool::find_work(Worker& worker, RunState& state) {
  std::uint32_t item = worker.deque.pop();
  if (item != none) {
    return item;
  }
  item = state.pop_retry();
  if (item != none) {
    return item;
  }
  item = state.claim_roots(worker);
  if (item != none) {
    if (!worker.deque.looks_empty()) {
      worker.deque.publish();
      m_idle.notify_one();  // the rest of the batch is up for stealing
    }
    return item;
  }
  return steal(worker);
}

std::uint32_t WorkerPool::steal(Worker& worker) {
  const auto n = static_cast<std::uint32_t>(m_workers.size());
  if (n == 1) {
    return none;
  }
  const std::uint32_t start = worker.next_random() % n;
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint32_t v = (start + i) % n;
    if (v == worker.index) {
      continue;
    }
    WorkDeque& victim = m_workers[v]->deque;
    const std::uint32_t item = victim.steal();
    if (item != none) {
      if (!victim.looks_empty()) {
        m_idle.notify_one();  // more where that came from: let another sleeper help
      }
      return item;
    }
  }
  return none;
}

void WorkerPool::timer_wake() noexcept {
  m_timer_signal.fetch_add(1, std::memory_order_seq_cst);
  m_idle.notify_all();
}

bool WorkerPool::work_visible(const RunState& state) const noexcept {
  if (state.roots_left()) {
    return true;
  }
  static_cast<void>(m_timer_signal.load(std::memory_order_seq_cst));  // see m_timer_signal
  if (state.retry_ready()) {
    return true;
  }
  for (const auto& worker : m_workers) {
    if (!worker->deque.looks_empty()) {
      return true;
    }
  }
  return false;
}

}  // namespace dagsched::detail
