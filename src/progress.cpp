// ProgressObserver: per-worker counters, summed on demand, and a throttled callback.
#include "dagsched/progress.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <thread>
#include <utility>

namespace dagsched {

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t ticks(Clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// The counters of one reporting thread. Aligned to a cache line of its own so that workers counting at the
// same time never write to the same line (no false sharing); the sums are read by whoever asks for progress.
// Relaxed order throughout: the counts are a snapshot for display, and the final one is read on the thread
// that waited for the run, after the engine's end-of-run synchronisation.
struct alignas(64) Line {
  std::atomic<std::int64_t> started{0};                 // attempts
  std::atomic<std::int64_t> ended{0};                   // attempts
  std::atomic<std::int64_t> waiting{0};                 // retries scheduled minus those that started or ended the task
  std::array<std::atomic<std::int64_t>, 4> finished{};  // by Status

  static void add(std::atomic<std::int64_t>& counter, std::int64_t n) noexcept {
    counter.fetch_add(n, std::memory_order_relaxed);
  }
};

std::size_t clamp(std::int64_t n) noexcept { return n > 0 ? static_cast<std::size_t>(n) : 0; }

}  // namespace

struct ProgressObserver::State {
  State(std::size_t tasks, std::size_t workers_)
      : total(tasks),
        workers(workers_),
        lines(std::make_unique<Line[]>(workers_ + 1)),
        pending_retry(std::make_unique<std::atomic<std::uint8_t>[]>(tasks)) {}

  /// The reporting thread's line: its own for a worker, a shared last one for any other thread.
  Line& line(std::uint32_t worker) noexcept { return lines[std::min<std::size_t>(worker, workers)]; }

  const std::size_t total;
  const std::size_t workers;
  std::unique_ptr<Line[]> lines;
  // Per task: whether a retry is scheduled and has not started yet. Written only on the retry path.
  std::unique_ptr<std::atomic<std::uint8_t>[]> pending_retry;
  std::atomic<std::int64_t> next_due{0};  // steady_clock ticks before which no callback is due
  std::atomic<bool> calling{false};       // a thread is inside the callback
};

ProgressObserver::ProgressObserver(Callback callback, std::chrono::milliseconds interval)
    : m_callback(std::move(callback)), m_interval(interval) {
  if (!m_callback) {
    throw std::invalid_argument("ProgressObserver: the callback is empty");
  }
  if (interval.count() < 0) {
    throw std::invalid_argument("ProgressObserver: the interval must not be negative");
  }
}

ProgressObserver::~ProgressObserver() = default;

Progress ProgressObserver::progress() const noexcept {
  Progress p;
  const State* s = m_state.get();
  if (s == nullptr) {
    return p;
  }
  std::int64_t started = 0;
  std::int64_t ended = 0;
  std::int64_t waiting = 0;
  std::array<std::int64_t, 4> finished{};
  for (std::size_t w = 0; w <= s->workers; ++w) {
    const Line& line = s->lines[w];
    started += line.started.load(std::memory_order_relaxed);
    ended += line.ended.load(std::memory_order_relaxed);
    waiting += line.waiting.load(std::memory_order_relaxed);
    for (std::size_t k = 0; k < finished.size(); ++k) {
      finished[k] += line.finished[k].load(std::memory_order_relaxed);
    }
  }
  p.total = s->total;
  p.running = clamp(started - ended);
  p.waiting = clamp(waiting);
  p.succeeded = clamp(finished[static_cast<std::size_t>(Status::success)]);
  p.failed = clamp(finished[static_cast<std::size_t>(Status::failed)]);
  p.skipped = clamp(finished[static_cast<std::size_t>(Status::skipped)]);
  p.cancelled = clamp(finished[static_cast<std::size_t>(Status::cancelled)]);
  p.finished = p.succeeded + p.failed + p.skipped + p.cancelled;
  return p;
}

void ProgressObserver::on_run_start(std::size_t tasks, std::size_t workers) {
  m_state = std::make_unique<State>(tasks, workers);
  m_state->next_due.store(ticks(Clock::now()) + m_interval.count(), std::memory_order_relaxed);
  report();
}

void ProgressObserver::on_attempt_start(const TaskEvent& event) {
  State& s = *m_state;
  Line& line = s.line(event.worker);
  Line::add(line.started, 1);
  if (event.attempt > 1 && event.index < s.total &&
      s.pending_retry[event.index].exchange(0, std::memory_order_relaxed) != 0) {
    Line::add(line.waiting, -1);
  }
}

void ProgressObserver::on_attempt_end(const TaskEvent& event, const std::exception_ptr& /*error*/) {
  Line::add(m_state->line(event.worker).ended, 1);
}

void ProgressObserver::on_retry_scheduled(const TaskEvent& event, std::chrono::nanoseconds delay) {
  if (delay.count() == 0) {
    return;  // retried at once, by the same worker: never waiting (as in RunHandle::progress())
  }
  State& s = *m_state;
  if (event.index < s.total && s.pending_retry[event.index].exchange(1, std::memory_order_relaxed) == 0) {
    Line::add(s.line(event.worker).waiting, 1);
  }
}

void ProgressObserver::on_task_finish(const TaskEvent& event, const TaskResult& result) {
  State& s = *m_state;
  Line& line = s.line(event.worker);
  Line::add(line.finished[static_cast<std::size_t>(result.status)], 1);
  // A task waiting for a retry can end without it (cancelled, or its deadline passed).
  if (result.attempts > 0 && !result.ok() && event.index < s.total &&
      s.pending_retry[event.index].exchange(0, std::memory_order_relaxed) != 0) {
    Line::add(line.waiting, -1);
  }
  maybe_report(event.time);
}

void ProgressObserver::on_run_end(const ResultSet& /*results*/) {
  State& s = *m_state;
  // Every task event, and so every callback from a worker, has returned by now; the loop only guards against
  // an engine that would still be finishing one.
  while (s.calling.exchange(true, std::memory_order_acquire)) {
    std::this_thread::yield();
  }
  report();
  s.calling.store(false, std::memory_order_release);
}

void ProgressObserver::maybe_report(std::chrono::steady_clock::time_point now) {
  State& s = *m_state;
  const std::int64_t t = ticks(now);
  if (t < s.next_due.load(std::memory_order_relaxed)) {
    return;  // the common case: one load and one compare per finished task
  }
  if (s.calling.exchange(true, std::memory_order_acquire)) {
    return;  // another worker is reporting
  }
  if (t >= s.next_due.load(std::memory_order_relaxed)) {
    s.next_due.store(t + m_interval.count(), std::memory_order_relaxed);
    report();
  }
  s.calling.store(false, std::memory_order_release);
}

void ProgressObserver::report() { m_callback(progress()); }

}  // namespace dagsched
