// dagsched Python module: `TaskScheduler`, the C++ engine driven from Python.
#pragma once

#include <pybind11/pybind11.h>

#include <dagsched/dagsched.hpp>

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "py_ref.hpp"

namespace dagsched_python {

/// What the task wrappers of one scheduler share with its run() loop. Every field is read and written
/// with the GIL held, which is what synchronises them.
struct RunControl {
  /// The run in flight, while run() is waiting for it; null otherwise.
  dagsched::RunHandle* active = nullptr;
  /// A BaseException that is not an Exception (KeyboardInterrupt, SystemExit, ...) raised by a task in
  /// the current run: once set, no further task is called and run() raises it.
  GilRef abort_exc;

  /// Records `exc` (the first one wins) and cancels the run. GIL held.
  void abort(PyObject* exc) noexcept;
};

/// The engine-side body of one Python task: calls the callable with the GIL held, and hands the engine
/// either the return value or a `PyTaskError` holding the raised exception. 16 bytes and nothrow-movable,
/// so the engine stores it inline, without a heap allocation.
class PyTask {
 public:
  PyTask(GilRef fn, RunControl* control) noexcept : m_fn(std::move(fn)), m_control(control) {}
  GilRef operator()() const;

 private:
  GilRef m_fn;
  RunControl* m_control;  // owned by the PyScheduler, which outlives the engine holding this task
};

/// The Python `TaskScheduler`. See the docstrings in module.cpp for the Python-facing contract.
class PyScheduler {
 public:
  explicit PyScheduler(const pybind11::object& max_workers);
  ~PyScheduler();
  PyScheduler(const PyScheduler&) = delete;
  PyScheduler& operator=(const PyScheduler&) = delete;

  /// The arguments are borrowed; `dependencies` and `retries` are never null (None and 0 by default).
  void add_task(pybind11::handle task_id, pybind11::handle execute_fn, pybind11::handle dependencies,
                pybind11::handle retries);
  pybind11::dict run();
  void close();

  [[nodiscard]] std::size_t max_workers() const noexcept { return m_max_workers; }
  [[nodiscard]] std::size_t size() const noexcept { return m_keys.size(); }
  [[nodiscard]] bool contains(const pybind11::object& task_id) const;
  [[nodiscard]] bool closed() const noexcept { return !m_scheduler; }

  /// Garbage-collector support (see module.cpp): a task body that refers back to its scheduler makes a
  /// cycle that only the collector can break. `traverse` reports the engine's reference to each body;
  /// `clear` breaks the cycle by closing the scheduler. GIL held.
  int traverse(visitproc visit, void* arg) const;
  void clear() noexcept;

  /// Registered with `atexit`: cancels every run still in flight (only a daemon thread can be inside
  /// run() by then) and waits until each has returned, so that no task and no run() is left to meet
  /// interpreter finalization, which would end those threads in the middle of C++ code. Later run()
  /// calls raise RuntimeError, as concurrent.futures refuses new work after shutdown. GIL held.
  static void cancel_runs_at_exit();

 private:
  dagsched::TaskScheduler& engine();
  pybind11::dict to_dict(const dagsched::ResultSet& results) const;
  void shut_down() noexcept;

  std::size_t m_max_workers;
  RunControl m_control;
  std::unique_ptr<dagsched::TaskScheduler> m_scheduler;  // null once closed
  // Per registered task, in add_task order: its engine handle and its id as the str the results dict uses.
  std::vector<dagsched::TaskHandle> m_handles;
  std::vector<pybind11::object> m_keys;
  // Borrowed: each is the reference that the engine's copy of the task (a PyTask) owns.
  std::vector<PyObject*> m_bodies;
  std::vector<std::string_view> m_dep_ids;  // add_task's scratch list, reused to save an allocation per call
  bool m_running = false;  // run() in progress (GIL-guarded), so close() and a second run() are refused
};

/// Drops the Python values and exceptions a ResultSet still holds. GIL held.
void release_results(const dagsched::ResultSet& results) noexcept;

}  // namespace dagsched_python
