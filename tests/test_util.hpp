// Shared helpers for the dagsched test suite: bounded waits (so a broken scheduler fails a test instead of
// hanging it), exception inspection, seeds for the randomised tests, and a random DAG generator with a
// sequential oracle.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dagsched/dagsched.hpp"

namespace dagsched_test {

using namespace std::chrono_literals;

/// Worker counts every parameterised scheduler test runs at (marl-style fixture parameters).
inline constexpr std::size_t kWorkerCounts[] = {1, 2, 4, 8, 64};

/// How long a task body waits for something that a correct scheduler makes happen almost at once. Generous,
/// because ThreadSanitizer builds on a loaded machine are slow; it only matters when the scheduler is broken.
inline constexpr std::chrono::seconds kGenerousTimeout{20};

/// `d` scaled by `f` (for lower bounds with some slack: a timer may round, never fire much early).
inline std::chrono::nanoseconds Scaled(std::chrono::nanoseconds d, double f) {
  return std::chrono::nanoseconds(static_cast<std::chrono::nanoseconds::rep>(static_cast<double>(d.count()) * f));
}

/// Polls `handle.progress()` until `pred` holds, for at most kGenerousTimeout; returns the last snapshot.
template <class Pred>
dagsched::Progress PollProgress(const dagsched::RunHandle& handle, Pred pred) {
  const auto give_up = std::chrono::steady_clock::now() + kGenerousTimeout;
  dagsched::Progress p = handle.progress();
  while (!pred(p) && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    p = handle.progress();
  }
  return p;
}

/// Test-name suffix for a worker-count parameter: "w1", "w64", ...
inline std::string WorkerCountName(const testing::TestParamInfo<std::size_t>& info) {
  return "w" + std::to_string(info.param);
}

/// Describes what an exception_ptr holds: the what() of a std::exception, "int <v>" for a thrown int,
/// "<null>" for none, or "<non-std exception>".
inline std::string DescribeError(const std::exception_ptr& error) {
  if (!error) {
    return "<null>";
  }
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (int v) {
    return "int " + std::to_string(v);
  } catch (...) {
    return "<non-std exception>";
  }
}

/// Whether `error` holds an exception catchable as `E`.
template <class E>
bool ErrorIs(const std::exception_ptr& error) {
  if (!error) {
    return false;
  }
  try {
    std::rethrow_exception(error);
  } catch (const E&) {
    return true;
  } catch (...) {
    return false;
  }
}

/// A one-shot flag another thread can wait on with a timeout.
class Flag {
 public:
  void set() {
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      m_set = true;
    }
    m_cv.notify_all();
  }
  [[nodiscard]] bool is_set() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_set;
  }
  /// True when the flag was set within `timeout`.
  [[nodiscard]] bool wait_for(std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(m_mutex);
    return m_cv.wait_for(lock, timeout, [this] { return m_set; });
  }

 private:
  mutable std::mutex m_mutex;
  mutable std::condition_variable m_cv;
  bool m_set = false;
};

/// A single-use barrier for `parties` threads, with a bounded wait (std::latch has no wait_for).
class Rendezvous {
 public:
  explicit Rendezvous(std::size_t parties) : m_remaining(parties) {}
  /// Arrives, then waits until every party has arrived. False when that did not happen within `timeout`.
  [[nodiscard]] bool arrive_and_wait_for(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(m_mutex);
    if (m_remaining > 0) {
      --m_remaining;
    }
    if (m_remaining == 0) {
      m_cv.notify_all();
      return true;
    }
    return m_cv.wait_for(lock, timeout, [this] { return m_remaining == 0; });
  }

 private:
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::size_t m_remaining;
};

/// Counts bodies in flight and remembers the peak.
class ConcurrencyTracker {
 public:
  void enter() {
    std::lock_guard<std::mutex> lock(m_mutex);
    ++m_in_flight;
    m_peak = std::max(m_peak, m_in_flight);
    m_cv.notify_all();
  }
  void leave() {
    std::lock_guard<std::mutex> lock(m_mutex);
    --m_in_flight;
  }
  [[nodiscard]] std::size_t peak() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_peak;
  }
  /// Waits (bounded) until the peak has reached `target`; returns whether it did.
  [[nodiscard]] bool wait_for_peak(std::size_t target, std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(m_mutex);
    return m_cv.wait_for(lock, timeout, [&] { return m_peak >= target; });
  }

 private:
  mutable std::mutex m_mutex;
  mutable std::condition_variable m_cv;
  std::size_t m_in_flight = 0;
  std::size_t m_peak = 0;
};

/// Aborts the process with a message if it is still alive after `limit`: turns a scheduler that hangs in
/// run() or in its destructor into a prompt, named failure rather than a CTest timeout.
class Watchdog {
 public:
  explicit Watchdog(std::string what, std::chrono::seconds limit = std::chrono::seconds(90))
      : m_what(std::move(what)), m_thread([this, limit] { watch(limit); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      m_done = true;
    }
    m_cv.notify_all();
    m_thread.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  void watch(std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lock(m_mutex);
    if (!m_cv.wait_for(lock, limit, [this] { return m_done; })) {
      std::fprintf(stderr, "dagsched test watchdog: '%s' still running after %lld s; aborting\n", m_what.c_str(),
                   static_cast<long long>(limit.count()));
      std::fflush(stderr);
      std::abort();
    }
  }

  std::string m_what;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  bool m_done = false;
  std::thread m_thread;  // last: started once the other members exist
};

/// Base seed of the randomised tests: DAGSCHED_TEST_SEED when set (a number, or "random" for a fresh one),
/// otherwise a fixed default so that runs are reproducible.
inline std::uint64_t BaseSeed() {
  static const std::uint64_t seed = [] {
    const char* env = std::getenv("DAGSCHED_TEST_SEED");
    if (env == nullptr || *env == '\0') {
      return std::uint64_t{0x5eed'da65'c4ed'0001};
    }
    if (std::string(env) == "random") {
      std::random_device rd;
      return (static_cast<std::uint64_t>(rd()) << 32) ^ static_cast<std::uint64_t>(rd());
    }
    return static_cast<std::uint64_t>(std::strtoull(env, nullptr, 0));
  }();
  return seed;
}

/// Per-case seed derived from the base seed (splitmix64 of base + index).
inline std::uint64_t CaseSeed(std::uint64_t base, std::uint64_t index) {
  std::uint64_t z = base + 0x9e3779b97f4a7c15ULL * (index + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Uniform integer in [lo, hi].
template <class T>
T Uniform(std::mt19937_64& rng, T lo, T hi) {
  return std::uniform_int_distribution<T>(lo, hi)(rng);
}

inline bool Chance(std::mt19937_64& rng, double p) { return std::bernoulli_distribution(p)(rng); }

/// A random DAG over tasks 0..n-1. Every dependency of task i has a smaller index, so index order is
/// topological; tests register the tasks in a shuffled order so dependents often come first.
struct RandomDag {
  std::vector<std::vector<std::size_t>> deps;  // deps[i]: the tasks i depends on, sorted, no duplicates
  [[nodiscard]] std::size_t size() const { return deps.size(); }
};

/// Task count for a random case: mostly small, some medium, a few large (average a few hundred).
inline std::size_t RandomDagSize(std::mt19937_64& rng, std::size_t max_size) {
  const auto roll = Uniform<int>(rng, 0, 99);
  std::size_t n = 0;
  if (roll < 70) {
    n = Uniform<std::size_t>(rng, 0, 100);
  } else if (roll < 96) {
    n = Uniform<std::size_t>(rng, 100, 1000);
  } else {
    n = Uniform<std::size_t>(rng, 1000, 5000);
  }
  return std::min(n, max_size);
}

/// Generates a DAG of `n` tasks in one of several shapes (random, deep/local, wide fan, near-chain).
inline RandomDag MakeRandomDag(std::mt19937_64& rng, std::size_t n) {
  RandomDag dag;
  dag.deps.resize(n);
  const int shape = Uniform<int>(rng, 0, 3);
  const std::size_t fan_roots = std::max<std::size_t>(1, static_cast<std::size_t>(std::sqrt(static_cast<double>(n))));
  for (std::size_t i = 1; i < n; ++i) {
    auto& d = dag.deps[i];
    const std::size_t k = Uniform<std::size_t>(rng, 0, std::min<std::size_t>(i, 4));
    for (std::size_t j = 0; j < k; ++j) {
      switch (shape) {
        case 0:  // anywhere before
          d.push_back(Uniform<std::size_t>(rng, 0, i - 1));
          break;
        case 1:  // recent tasks only: long, deep chains
          d.push_back(Uniform<std::size_t>(rng, i - std::min<std::size_t>(i, 8), i - 1));
          break;
        case 2:  // a few roots with many dependents
          d.push_back(Uniform<std::size_t>(rng, 0, std::min(i, fan_roots) - 1));
          break;
        default:  // mostly the previous task
          d.push_back(Chance(rng, 0.8) ? i - 1 : Uniform<std::size_t>(rng, 0, i - 1));
          break;
      }
    }
    std::sort(d.begin(), d.end());
    d.erase(std::unique(d.begin(), d.end()), d.end());
  }
  return dag;
}

/// dependents[i]: the tasks that depend directly on i.
inline std::vector<std::vector<std::size_t>> Dependents(const std::vector<std::vector<std::size_t>>& deps) {
  std::vector<std::vector<std::size_t>> out(deps.size());
  for (std::size_t i = 0; i < deps.size(); ++i) {
    for (std::size_t d : deps[i]) {
      out[d].push_back(i);
    }
  }
  return out;
}

/// A random permutation of 0..n-1 (the registration order of a case).
inline std::vector<std::size_t> ShuffledOrder(std::mt19937_64& rng, std::size_t n) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) {
    order[i] = i;
  }
  std::shuffle(order.begin(), order.end(), rng);
  return order;
}

inline std::string TaskId(std::size_t i) { return "t" + std::to_string(i); }

}  // namespace dagsched_test
