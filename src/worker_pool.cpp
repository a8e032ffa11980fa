#include "worker_pool.hpp"

#include <stdexcept>
#include <thread>

#include "ready_queue.hpp"
#include "work_deque.hpp"

namespace dagsched::detail {

namespace {

constexpr std::uint32_t none = RunState::none;

/// Rounds of looking for work before parking: long enough to catch work that a busy worker is about to
/// push (a futex wake costs microseconds), short enough not to burn a core a user's task could use.
constexpr int spin_rounds = 64;

}  // namespace

struct alignas(64) WorkerPool::Worker {
  WorkDeque deque;   // depth_first runs
  ReadyQueue queue;  // ordered runs
  WorkerPool* pool = nullptr;
  std::uint64_t rng = 0;  // xorshift state for victim selection
  std::uint32_t index = 0;
  std::thread thread;

  std::uint32_t next_random() noexcept {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return static_cast<std::uint32_t>(rng);
  }
};

/// How long a worker's recent tasks took, in an ordered run (see RunOptions::order_threshold): measured
/// over windows of `window` counted tasks, so that the clock is read once per window. `fast` says the
/// last window's tasks were too short to be worth ordering: the worker then runs depth-first.
///
/// Counted where work is picked: each execute() call, and within one (which can run a whole graph) each
/// task that went through the queue (ordered) or was pushed (fast). A fast spell thus counts fewer tasks
/// than it runs, which errs toward ordering again; a chain, the one shape whose tasks are never counted
/// there, has nothing to order.
struct WorkerPool::Grain {
  static constexpr std::uint32_t window = 64;
  // The first window is short: a run of tiny tasks leaves the (costlier) ordered mode after a few, while
  // a run of long ones has measured them before many decisions were made.
  static constexpr std::uint32_t first_window = 8;
  std::uint32_t left = first_window;
  std::uint32_t counted = first_window;
  bool fast = false;
  Nanos start = 0;
  Nanos threshold;

  explicit Grain(const RunState& state) : threshold(state.order_threshold()) {
    if (threshold != 0) {
      start = clock_now();
    }
  }

  /// Counts a task; every `window` of them, decides whether the next ones are ordered.
  void count() noexcept {
    if (--left == 0) [[unlikely]] {
      if (threshold != 0) {
        const Nanos now = clock_now();
        fast = (now - start) / static_cast<Nanos>(counted) < threshold;
        start = now;
      }
      left = counted = window;
    }
  }
};

/// What RunState::execute hands readied tasks to (see there), in a run in `Order`.
///
/// Not `Queued` (depth_first runs, and fast spells of ordered ones): the last readied task runs next and
/// the others go to the deque, whose owner pops the newest (cache-warm) while thieves take the oldest. No
/// key is ever computed.
///
/// `Queued` (critical_path and fifo): readied tasks go to the worker's ReadyQueue, keyed by their rank
/// (critical_path) or by their explicit priority and a sequence number (fifo), and the task run next is
/// the best of what was readied, what the queue holds and the next unclaimed root. Where the queue is
/// empty and the roots are claimed, which is whenever a task readies only dependents it runs itself (a
/// chain), that is the depth-first path plus two loads.
template <ReadyOrder Order, bool Queued>
struct WorkerPool::Sink {
  static constexpr bool ordered_run = Order != ReadyOrder::depth_first;
  static constexpr bool queued = Queued;
  static_assert(ordered_run || !Queued);

  struct Ready {
    std::uint32_t item;
    std::uint64_t key = 0;  // fifo only: fixed when readied (critical_path reads the rank when needed)
  };

  Worker& worker;
  RunState& state;
  Grain& grain;
  const std::uint64_t* rank;
  std::uint32_t index;

  Sink(Worker& w, RunState& s, Grain& g) : worker(w), state(s), grain(g), rank(s.ranks()), index(w.index) {}

  [[nodiscard]] Ready ready(std::uint32_t item) noexcept {
    if constexpr (Queued && Order == ReadyOrder::fifo) {
      return {item, (rank[item & index_mask] & FrozenGraph::band_mask) | (UINT32_MAX - state.next_ready_number())};
    } else {
      return {item};
    }
  }

  [[nodiscard]] std::uint64_t key(const Ready& r) const noexcept {
    if constexpr (Order == ReadyOrder::fifo) {
      return r.key;
    } else {
      return rank[r.item & index_mask];
    }
  }

  [[nodiscard]] bool before(const Ready& a, const Ready& b) const noexcept {
    if constexpr (Queued) {
      return key(a) >= key(b);  // ties: the newest, as in the queue's buckets
    } else {
      return true;  // the newest
    }
  }

  [[gnu::always_inline]] void push(const Ready& r) {
    if constexpr (Queued) {
      worker.queue.push({key(r), r.item});
    } else {
      worker.deque.push(r.item);
      if constexpr (ordered_run) {
        grain.count();
      }
    }
    worker.pool->m_idle.notify_one();
  }

  [[nodiscard]] std::uint32_t next(const Ready& r) {
    if constexpr (Queued) {
      grain.count();
      std::uint64_t root_key = 0;
      const std::uint64_t mine = key(r);
      const bool root_first = state.next_root(root_key) != none && root_key > mine;
      if (grain.fast || root_first || state.urgent() ||
          worker.pool->better_elsewhere(worker, std::max(mine, worker.queue.top_key())) != none) {
        // Back to the work loop: to switch to depth-first, to claim the root that starts first, to run a
        // task that holds pool units, or to take another worker's better task.
        if (grain.fast) {
          worker.deque.push(r.item);
        } else {
          worker.queue.push({key(r), r.item});
        }
        worker.pool->m_idle.notify_one();
        return none;
      }
      if (!worker.queue.owner_sees_empty()) {
        const std::uint32_t item = worker.queue.exchange({key(r), r.item});
        if (item != r.item) {
          worker.pool->m_idle.notify_one();  // r went into the queue
        }
        return item;
      }
    }
    return r.item;
  }

  // Roots at claiming positions position, position + 1, ...; published by the caller.
  void push_roots(const std::uint32_t* roots, std::uint32_t count, std::uint32_t position) {
    if constexpr (Queued) {
      // In reverse too: roots of equal key share a LIFO bucket.
      worker.queue.push_many(count, [&](std::uint32_t i) {
        const std::uint32_t k = count - 1 - i;
        return ReadyQueue::Entry{state.root_key(position + k), roots[k]};
      });
    } else {
      // Pushed in reverse, so the owner's LIFO pops run them in claiming order.
      for (std::uint32_t i = count; i-- > 0;) {
        worker.deque.push_quiet(roots[i]);
      }
    }
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
  m_idle.notify_all();  // workers parked when their last run ended (they leave it, then see m_stop)
  for (auto& worker : m_workers) {
    if (worker->thread.joinable()) {
      worker->thread.join();
    }
  }
}

void WorkerPool::start(RunState& state) {
  // Only this thread moves the epoch while the pool lives (the destructor does not overlap a run). The
  // run counts as started, and not finished, before any worker can see it.
  const std::uint32_t epoch = m_epoch.load(std::memory_order_relaxed) + 1;
  {
    Lock lock(m_done_mutex);
    m_started = epoch;
  }
  m_state = &state;
  m_epoch.fetch_add(1, std::memory_order_seq_cst);
  m_epoch.notify_all();
  // Workers still parked from the last run (see leave()): they are not waiting on m_epoch. The
  // epoch's seq_cst bump above is the publication EventCount asks for.
  m_idle.notify_all();
}

void WorkerPool::wait() {
  Lock lock(m_done_mutex);
  lock.wait(m_done_cv, [this]() DAGSCHED_REQUIRES(m_done_mutex) { return finished_locked(); });
}

bool WorkerPool::wait_for(std::chrono::nanoseconds timeout) {
  Lock lock(m_done_mutex);
  return lock.wait_for(m_done_cv, timeout, [this]() DAGSCHED_REQUIRES(m_done_mutex) { return finished_locked(); });
}

bool WorkerPool::finished() {
  Lock lock(m_done_mutex);
  return finished_locked();
}

// Runs are sequential: run e + 1 starts only after run e was given back, so m_ended is the current run's
// epoch or the one before, and `ended - epoch` (mod 2^32) tells whether run `epoch` has ended.
namespace {
[[nodiscard]] bool has_ended(std::uint32_t ended, std::uint32_t epoch) noexcept {
  return static_cast<std::int32_t>(ended - epoch) >= 0;
}
}  // namespace

/// Enters run `epoch`: returns true, and then the worker may touch the run's state until leave(), unless
/// the run has already ended. Why a worker that enters cannot meet a destroyed state (every operation on
/// m_active and m_ended is seq_cst, so they sit in one total order S): if its load of m_ended misses the
/// end, that load precedes in S the store of the end (by the worker that finished the last task, from
/// inside the run), hence so does its increment of m_active, which therefore comes before that worker's
/// own decrement: m_active cannot reach zero, and nobody can give the run back, before this worker
/// leaves.
bool WorkerPool::enter(std::uint32_t epoch) noexcept {
  m_active.fetch_add(1, std::memory_order_seq_cst);
  if (!has_ended(m_ended.load(std::memory_order_seq_cst), epoch)) {
    return true;
  }
  leave(epoch);
  return false;
}

/// Leaves run `epoch`: from here on the worker does not touch its state. The one that takes m_active to
/// zero once the run has ended gives the run back. The store of the end precedes, in m_active's
/// modification order, the decrement of the worker that made it (it is inside the run), so the
/// decrement to zero reads the end (acquire on the chain of read-modify-writes). A late worker, from a
/// run before the one that ended, may give back that later run: m_active at zero means nobody is
/// inside any run. Giving back the same run twice changes nothing.
void WorkerPool::leave(std::uint32_t epoch) noexcept {
  if (m_active.fetch_sub(1, std::memory_order_seq_cst) != 1) {
    return;
  }
  const std::uint32_t ended = m_ended.load(std::memory_order_seq_cst);
  if (!has_ended(ended, epoch)) {
    return;  // every worker is parked inside a run that goes on (waiting for a retry's due time)
  }
  {
    Lock lock(m_done_mutex);
    if (has_ended(ended, m_done + 1)) {
      m_done = ended;
    }
  }
  m_done_cv.notify_all();
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
    if (!enter(epoch)) {
      continue;  // it ended before this worker woke up
    }
    // One instantiation per mode a run can have (an observed run takes the slow path for everything;
    // fifo, never the fastest, always checks for options and counts). Each leaves the run on returning.
    const RunState::Mode mode = m_state->mode();
    switch (mode.order) {
      case ReadyOrder::critical_path:
        run_mode<ReadyOrder::critical_path, true>(worker, mode, epoch);
        break;
      case ReadyOrder::fifo:
        run_mode<ReadyOrder::fifo, false>(worker, mode, epoch);
        break;
      case ReadyOrder::depth_first:
        run_mode<ReadyOrder::depth_first, true>(worker, mode, epoch);
        break;
    }
  }
}

template <ReadyOrder Order, bool Specialised>
void WorkerPool::run_mode(Worker& worker, RunState::Mode mode, std::uint32_t epoch) {
  RunState& state = *m_state;
  if (mode.observed) {
    work<true, true, true, Order>(worker, state, epoch);
  } else if (!Specialised) {
    work<false, true, true, Order>(worker, state, epoch);
  } else if (mode.extras) {
    mode.counted ? work<false, true, true, Order>(worker, state, epoch)
                 : work<false, true, false, Order>(worker, state, epoch);
  } else {
    mode.counted ? work<false, false, true, Order>(worker, state, epoch)
                 : work<false, false, false, Order>(worker, state, epoch);
  }
}

template <bool Observed, bool Extras, bool Counted, ReadyOrder Order>
void WorkerPool::work(Worker& worker, RunState& state, std::uint32_t epoch) {
  constexpr bool ordered = Order != ReadyOrder::depth_first;
  // No thief can hold a pointer into this deque's old rings: the previous run has fully ended.
  worker.deque.reclaim();
  if constexpr (ordered) {
    worker.queue.attach(state.links());
  }
  Grain grain(state);
  Sink<Order, ordered> sink(worker, state, grain);
  Sink<Order, false> fast_sink(worker, state, grain);  // an ordered run's depth-first spells

  // Finished tasks are counted locally and published only when this worker runs dry: the run cannot
  // end while this worker still holds work, so nothing is lost, and the shared counter is touched once
  // per idle transition instead of once per task.
  std::uint32_t finished = 0;
  WorkerCounters& counters = state.counters(worker.index);
  std::uint64_t finished_total = 0;  // this run's, for progress reports
  bool busy = false;
  auto find = [&] { return ordered && grain.fast ? find_work(fast_sink, state) : find_work(sink, state); };
  for (;;) {
    std::uint32_t item = find();
    if (item == none && busy) {
      busy = false;
      counters.busy.store(0, std::memory_order_relaxed);
    }
    for (int round = 0; item == none && round < spin_rounds; ++round) {
      if (finished != 0) {
        const bool last = state.count_finished(finished);
        finished = 0;
        if (last) {
          // Workers parked in the run stay parked: the next start() (or the destructor) wakes them.
          m_ended.store(epoch, std::memory_order_seq_cst);
          leave(epoch);
          return;
        }
      }
      if (state.done()) {
        leave(epoch);
        return;
      }
      cpu_relax();
      item = find();
    }
    if (item != none) {
      if (!busy) {
        busy = true;
        counters.busy.store(1, std::memory_order_relaxed);
      }
      std::uint32_t n;
      if constexpr (ordered) {
        grain.count();
        n = grain.fast ? state.execute<Observed, Extras, Counted>(item, fast_sink)
                       : state.execute<Observed, Extras, Counted>(item, sink);
      } else {
        n = state.execute<Observed, Extras, Counted>(item, sink);
      }
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
    // Parked outside the run: the run can end, and be given back, without waking this worker.
    leave(epoch);
    m_idle.commit_wait(key);
    if (!enter(epoch)) {
      return;
    }
  }
}

template <ReadyOrder Order, bool Queued>
std::uint32_t WorkerPool::find_work(Sink<Order, Queued>& sink, RunState& state) {
  constexpr bool ordered = Order != ReadyOrder::depth_first;
  Worker& worker = sink.worker;
  std::uint32_t item;
  if constexpr (Queued) {
    // First a task that was granted pool units (it holds them until it runs) or a due retry. (Depth-first
    // sinks, whose tasks are tiny or unordered, look after their own deque, as before ordering existed.)
    item = state.pop_retry();
    if (item != none) {
      return item;
    }
    // The best of this worker's own tasks, unless an unclaimed root starts before it (with one worker,
    // this makes the start order exactly the run's order), or another worker holds a better one (tasks
    // here are long enough for a look at every worker's best). Then what a fast spell left in the deque.
    std::uint64_t key = 0;
    const std::uint32_t root = state.next_root(key);
    const std::uint32_t victim = better_elsewhere(worker, std::max(worker.queue.top_key(), root == none ? 0 : key));
    if (victim != none) {
      item = m_workers[victim]->queue.steal();
      if (item != none) {
        return item;
      }
    }
    item = root == none ? worker.queue.pop() : worker.queue.pop_before({key, root});
    if (item == none && (root == none || worker.queue.owner_sees_empty())) {
      item = worker.deque.pop();
    }
  } else {
    item = worker.deque.pop();
    if constexpr (ordered) {
      if (item == none) {
        item = worker.queue.pop();  // left by an ordered spell
      }
    }
    if (item == none) {
      item = state.pop_retry();
    }
  }
  if (item != none) {
    return item;
  }
  item = state.claim_roots(sink);
  if (item != none) {
    const bool more = Queued ? !worker.queue.owner_sees_empty() : !worker.deque.looks_empty();
    if (more) {
      if constexpr (!Queued) {
        worker.deque.publish();  // (a ReadyQueue publishes under its lock)
      }
      m_idle.notify_one();  // the rest of the batch is up for stealing
    }
    return item;
  }
  if constexpr (Queued) {
    item = worker.queue.pop();  // a root was claimed by another worker between the looks above
    if (item != none) {
      return item;
    }
  }
  return steal<Order>(worker);
}

std::uint32_t WorkerPool::better_elsewhere(Worker& worker, std::uint64_t bound) noexcept {
  // All the others up to max_peers of them; beyond, max_peers from a random one (a look per task must
  // stay cheap at 64 workers).
  constexpr std::uint32_t max_peers = 8;
  const auto n = static_cast<std::uint32_t>(m_workers.size());
  const std::uint32_t peers = std::min(n - 1, max_peers);
  const std::uint32_t first = n - 1 <= max_peers ? worker.index + 1 : worker.next_random();
  std::uint32_t best = none;
  for (std::uint32_t i = 0; i < peers; ++i) {
    std::uint32_t v = (first + i) % n;
    if (v == worker.index) {
      v = (v + 1) % n;  // (only when sampling: the scan of all others never meets itself)
    }
    const std::uint64_t top = m_workers[v]->queue.top_key();
    if (top > bound) {
      bound = top;
      best = v;
    }
  }
  return best;
}

template <ReadyOrder Order>
std::uint32_t WorkerPool::steal(Worker& worker) {
  constexpr bool ordered = Order != ReadyOrder::depth_first;
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
    Worker& victim = *m_workers[v];
    // Ordered runs: the best the victim queued, else what it readied in a fast spell.
    std::uint32_t item = ordered ? victim.queue.steal() : none;
    if (item == none) {
      item = victim.deque.steal();
    }
    if (item != none) {
      if (!victim.deque.looks_empty() || (ordered && !victim.queue.looks_empty())) {
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
    if (!worker->deque.looks_empty() || !worker->queue.looks_empty()) {
      return true;
    }
  }
  return false;
}

}  // namespace dagsched::detail
