// Clang thread-safety annotations (checked by -Wthread-safety) and a mutex that carries them.
// libstdc++'s std::mutex is not annotated, so the engine uses this thin wrapper wherever a lock guards data.
#pragma once

#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define DAGSCHED_TSA(x) __attribute__((x))
#else
#define DAGSCHED_TSA(x)
#endif

#define DAGSCHED_CAPABILITY(x) DAGSCHED_TSA(capability(x))
#define DAGSCHED_SCOPED_CAPABILITY DAGSCHED_TSA(scoped_lockable)
#define DAGSCHED_GUARDED_BY(x) DAGSCHED_TSA(guarded_by(x))
#define DAGSCHED_REQUIRES(...) DAGSCHED_TSA(requires_capability(__VA_ARGS__))
#define DAGSCHED_ACQUIRE(...) DAGSCHED_TSA(acquire_capability(__VA_ARGS__))
#define DAGSCHED_RELEASE(...) DAGSCHED_TSA(release_capability(__VA_ARGS__))

namespace dagsched::detail {

class DAGSCHED_CAPABILITY("mutex") Mutex {
 public:
  void lock() DAGSCHED_ACQUIRE() { m_mutex.lock(); }
  void unlock() DAGSCHED_RELEASE() { m_mutex.unlock(); }

 private:
  friend class Lock;
  std::mutex m_mutex;
};

/// A scoped lock on a Mutex that can also wait on a condition variable.
class DAGSCHED_SCOPED_CAPABILITY Lock {
 public:
  explicit Lock(Mutex& mutex) DAGSCHED_ACQUIRE(mutex) : m_lock(mutex.m_mutex) {}
  ~Lock() DAGSCHED_RELEASE() = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  template <class Predicate>
  void wait(std::condition_variable& cv, Predicate pred) {
    cv.wait(m_lock, pred);
  }
  template <class Rep, class Period, class Predicate>
  bool wait_for(std::condition_variable& cv, const std::chrono::duration<Rep, Period>& timeout, Predicate pred) {
    return cv.wait_for(m_lock, timeout, pred);
  }
  template <class Clock, class Duration>
  void wait_until(std::condition_variable& cv, const std::chrono::time_point<Clock, Duration>& when) {
    cv.wait_until(m_lock, when);
  }
  void wait(std::condition_variable& cv) { cv.wait(m_lock); }

 private:
  std::unique_lock<std::mutex> m_lock;
};

}  // namespace dagsched::detail
