// dagsched: per-task settings beyond the spec's `retries`: retry policy, timeouts, trigger rule, resources
// and scheduling priority.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace dagsched {

/// When to wait, and whether to try again at all, after a failed attempt.
///
/// The wait before retry `k` (k = 1 for the first retry) is
/// `min(max_delay, delay * backoff^(k-1))`, then shortened by up to `jitter` of itself (a uniform draw;
/// `jitter = 0.5` gives a wait in [d/2, d]). The arithmetic saturates: no retry count overflows it. A task
/// waiting for its retry holds no worker thread; other tasks run meanwhile.
///
/// An attempt's error is retried unless it is a `PermanentError` (or derives from it), `retry_if` is set
/// and returns false for it, or the task's `deadline` leaves no time for another attempt.
struct RetryPolicy {
  /// Wait before the first retry. Zero retries at once, on the same worker.
  std::chrono::nanoseconds delay{0};
  /// Factor applied to the wait for each further retry (1 keeps it constant). Must be >= 1.
  double backoff = 1.0;
  /// Upper bound on any one wait.
  std::chrono::nanoseconds max_delay = std::chrono::nanoseconds::max();
  /// Fraction in [0, 1] of each wait that is randomised away. The draws come from `RunOptions::seed`, so a
  /// seeded run waits the same every time.
  double jitter = 0.0;
  /// Which errors are worth another attempt; empty retries every error (except `PermanentError`).
  /// Called on a worker thread, possibly on several at once; it must not throw.
  std::function<bool(const std::exception_ptr&)> retry_if = nullptr;

  /// A `retry_if` that retries only errors of (or derived from) the listed types.
  template <class... Errors>
  [[nodiscard]] static std::function<bool(const std::exception_ptr&)> only() {
    return [](const std::exception_ptr& error) { return (caught_as<Errors>(error) || ...); };
  }

  /// The wait before retry `retry` (1 for the first) given a uniform draw `unit` in [0, 1) for the jitter.
  /// Never overflows: it saturates at `max_delay`. Thread-safe.
  [[nodiscard]] std::chrono::nanoseconds delay_before(std::uint64_t retry, double unit) const noexcept;

 private:
  template <class E>
  static bool caught_as(const std::exception_ptr& error) {
    try {
      std::rethrow_exception(error);
    } catch (const E&) {
      return true;
    } catch (...) {
      return false;
    }
  }
};

/// When a task with dependencies may start.
enum class TriggerRule : std::uint8_t {
  /// Once every dependency succeeded (the spec's rule); a failed or skipped dependency skips the task.
  all_success,
  /// Once every dependency has finished, whatever its outcome: for cleanup work (flush a checkpoint,
  /// notify, tear down). The task can look at its dependencies' results through `TaskContext`. Like every
  /// task, it does not start once the run is cancelled.
  all_done,
};

/// Units of a resource pool (`TaskScheduler::add_resource`) that a task holds while an attempt runs.
struct ResourceRequest {
  std::string pool;
  std::uint32_t units = 1;
};

/// Settings for one task, given to `TaskScheduler::add_task`. The defaults give the spec's behaviour: no
/// retries, every error retried at once, no timeouts, `all_success`.
struct TaskOptions {
  /// Attempts after the first one, at most. 0 to INT_MAX - 1.
  int retries = 0;
  /// How to wait between attempts, and which errors to retry.
  RetryPolicy retry = {};
  /// Longest one attempt may take (0: no limit). When it expires the attempt's stop token is requested;
  /// an attempt that returns after it counts as failed with `TimeoutError`, whatever it returned.
  std::chrono::nanoseconds timeout{0};
  /// Longest all attempts together may take, counted from the start of the first (0: no limit),
  /// retry waits included. Enforced like `timeout`; once it has passed no further attempt starts.
  std::chrono::nanoseconds deadline{0};
  /// When the task may start.
  TriggerRule trigger = TriggerRule::all_success;
  /// Pool units each attempt needs, all taken at once before it starts and given back when it ends (not
  /// held during a retry's wait). A task waiting for units holds no worker.
  std::vector<ResourceRequest> resources = {};
  /// Which ready task starts first: a higher priority starts before a lower one, whatever the run's
  /// `ReadyOrder` would otherwise prefer (except `depth_first`, which ignores it), and among tasks waiting
  /// for the same pool units it is served first. Tasks of equal priority follow the run's `ReadyOrder`.
  int priority = 0;
  /// Relative cost of one attempt, in any unit as long as every task uses the same one (seconds, FLOPs,
  /// rows...): the weight of the task on the critical paths that `ReadyOrder::critical_path` follows.
  /// Tasks without a hint count 1. Must be finite and >= 0.
  double cost = 1.0;
};

}  // namespace dagsched
