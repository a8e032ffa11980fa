// dagsched Python module: a run in flight, from start() (or run()) until its results are taken, and what
// becomes of runs at interpreter exit.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "py_convert.hpp"
#include "py_scheduler.hpp"

namespace py = pybind11;

namespace dagsched_python {

namespace {

// How long wait() leaves the engine alone between two looks at pending signals: short enough that
// Ctrl-C feels immediate, long enough that the waiting thread costs nothing. A finished run wakes the
// waiter at once, so this adds no latency.
constexpr auto signal_poll_interval = std::chrono::milliseconds(25);

// The schedulers with a run in flight, and whether interpreter shutdown has begun (see
// cancel_runs_at_exit). Both guarded by the GIL.
std::vector<PyScheduler*> g_running;
bool g_exiting = false;

void unregister_if_idle(PyScheduler* scheduler) {
  if (!scheduler->running()) {
    std::erase(g_running, scheduler);
  }
}

}  // namespace

PyRun::PyRun(PyScheduler& scheduler, py::object owner, dagsched::RunHandle handle) noexcept
    : m_scheduler(&scheduler), m_owner(std::move(owner)), m_handle(std::move(handle)) {}

PyRun::~PyRun() {
  if (m_scheduler == nullptr) {
    return;  // collected
  }
  m_scheduler->m_control.active = nullptr;
  m_handle.cancel();
  if (t_current_task == &m_scheduler->m_control) {
    // Dropped by one of the run's own tasks: waiting here would wait for that task. The scheduler finishes
    // the run later, on a thread that is not one of its tasks.
    m_scheduler->m_orphan = std::move(m_handle);
    detach();
    return;
  }
  std::optional<dagsched::ResultSet> results;
  {
    py::gil_scoped_release nogil;
    results.emplace(m_handle.wait());
  }
  release_results(*results);
  detach();
}

void PyRun::detach() noexcept {
  PyScheduler* scheduler = std::exchange(m_scheduler, nullptr);
  scheduler->m_control.active = nullptr;
  if (!scheduler->m_orphan.valid()) {
    scheduler->m_control.abort_exc.reset();
  }
  scheduler->m_run = nullptr;
  unregister_if_idle(scheduler);
}

void PyRun::collect(bool raise_abort) {
  PyScheduler& scheduler = *m_scheduler;
  // Unpublished before wait() changes the handle; no task is running any more to call abort() anyway.
  scheduler.m_control.active = nullptr;
  m_final = m_handle.progress();
  std::optional<dagsched::ResultSet> results;
  {
    py::gil_scoped_release nogil;
    results.emplace(m_handle.wait());
  }
  GilRef abort = std::move(scheduler.m_control.abort_exc);
  struct Detach {
    PyRun& run;
    ~Detach() { run.detach(); }
  } detach_at_exit{*this};
  m_results = scheduler.to_dict(*results);  // releases what it has not taken if it throws
  if (abort && raise_abort) {
    PyObject* exc = abort.get();
    // PyErr_SetObject keeps exc.__traceback__, so the task's frames stay in the report.
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc);
    throw py::error_already_set();
  }
}

py::object PyRun::wait(const py::object& timeout) {
  if (m_results) {
    return m_results;
  }
  if (m_scheduler == nullptr) {
    throw std::runtime_error("this run's results are gone (converting them failed)");
  }
  if (t_current_task == &m_scheduler->m_control) {
    throw std::logic_error("RunHandle.wait() called from a task of the same run: it would wait for itself");
  }
  if (m_waiting) {
    throw std::logic_error("RunHandle.wait() is already in progress in another thread");
  }
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (!timeout.is_none()) {
    if (PyBool_Check(timeout.ptr()) || (!PyLong_Check(timeout.ptr()) && !PyFloat_Check(timeout.ptr()))) {
      throw py::type_error("timeout must be a number of seconds or None");
    }
    const double seconds = PyFloat_AsDouble(timeout.ptr());
    if (!(seconds >= 0)) {
      throw py::value_error("timeout must not be negative");
    }
    deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                      std::chrono::duration<double>(std::min(seconds, 1e9)));
  }
  m_waiting = true;
  struct Reset {
    bool& flag;
    ~Reset() { flag = false; }
  } reset{m_waiting};

  for (;;) {
    auto slice = std::chrono::duration_cast<std::chrono::nanoseconds>(signal_poll_interval);
    if (deadline) {
      slice =
          std::clamp(std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline - std::chrono::steady_clock::now()),
                     std::chrono::nanoseconds(0), slice);
    }
    bool done = false;
    {
      py::gil_scoped_release nogil;
      done = m_handle.wait_for(slice);
    }
    if (done) {
      break;
    }
    if (g_exiting) {
      m_handle.cancel();  // see cancel_runs_at_exit; keeps waiting for the running tasks
    }
    if (PyErr_CheckSignals() != 0) {
      // Typically KeyboardInterrupt, fetched before anything else runs Python code: the run is cancelled,
      // its running tasks finish their attempt, and the signal's exception wins over a task's abort.
      py::error_already_set error;
      m_handle.cancel();
      collect(false);
      throw std::move(error);
    }
    if (deadline && std::chrono::steady_clock::now() >= *deadline) {
      PyErr_SetString(PyExc_TimeoutError, "the run has not finished within the timeout");
      throw py::error_already_set();
    }
  }
  collect(true);
  return m_results;
}

bool PyRun::done() const noexcept { return m_scheduler == nullptr || m_handle.done(); }

void PyRun::cancel() noexcept {
  if (m_scheduler != nullptr) {
    m_handle.cancel();
  }
}

dagsched::Progress PyRun::progress() const noexcept { return m_scheduler != nullptr ? m_handle.progress() : m_final; }

std::unique_ptr<PyRun> PyScheduler::start(py::object owner, const py::object& failure_policy, const py::object& seed,
                                          const py::object& order, const py::object& order_threshold) {
  reap_orphan();
  dagsched::TaskScheduler& scheduler = engine();
  if (running()) {
    throw std::logic_error("run() or start() called while this TaskScheduler is already running");
  }
  if (g_exiting) {
    throw std::runtime_error("cannot run() after interpreter shutdown has begun");
  }
  const dagsched::RunOptions options = run_options(failure_policy, seed, order, order_threshold);
  m_control.abort_exc.reset();
  m_starting = true;  // close(), add_task() and another start() are refused while the GIL is released
  dagsched::RunHandle handle;
  try {
    // Validation (unknown ids, cycles, resource requests) throws from here, before any task runs; the
    // translator in module.cpp turns it into the Python error.
    py::gil_scoped_release nogil;
    handle = scheduler.start(options);
  } catch (...) {
    m_starting = false;
    throw;
  }
  m_starting = false;
  auto run = std::make_unique<PyRun>(*this, std::move(owner), std::move(handle));
  m_run = run.get();
  m_control.active = &run->m_handle;
  if (std::find(g_running.begin(), g_running.end(), this) == g_running.end()) {
    g_running.push_back(this);
  }
  if (m_control.abort_exc) {
    run->m_handle.cancel();  // a task aborted before `active` was published
  }
  return run;
}

py::object PyScheduler::run(const py::object& failure_policy, const py::object& seed, const py::object& order,
                            const py::object& order_threshold) {
  const std::unique_ptr<PyRun> run = start(py::object(), failure_policy, seed, order, order_threshold);
  return run->wait(py::none());  // on the way out, ~PyRun cancels and finishes a run wait() did not
}

void PyScheduler::reap_orphan() noexcept {
  if (!m_orphan.valid() || t_current_task == &m_control || m_reaping) {
    return;
  }
  m_reaping = true;  // running() stays true meanwhile: the engine still has the run
  m_orphan.cancel();
  std::optional<dagsched::ResultSet> results;
  {
    py::gil_scoped_release nogil;
    results.emplace(m_orphan.wait());
  }
  release_results(*results);
  m_control.abort_exc.reset();
  m_reaping = false;
  unregister_if_idle(this);
}

void PyScheduler::cancel_runs_at_exit() {
  g_exiting = true;
  const std::vector<PyScheduler*> running = g_running;
  for (PyScheduler* scheduler : running) {
    if (scheduler->m_run != nullptr) {
      scheduler->m_run->cancel();
    }
    if (scheduler->m_orphan.valid()) {
      scheduler->m_orphan.cancel();
    }
  }
  // Runs no thread waits for (a RunHandle kept but never waited on) are finished here; the GIL is released
  // while they end, so g_running is looked at afresh each time.
  for (PyScheduler* scheduler : running) {
    if (std::find(g_running.begin(), g_running.end(), scheduler) == g_running.end()) {
      continue;
    }
    scheduler->reap_orphan();
    if (PyRun* run = scheduler->m_run; run != nullptr && !run->m_waiting) {
      try {
        run->collect(false);
      } catch (py::error_already_set& e) {
        e.discard_as_unraisable("dagsched: finishing a run at exit");
      } catch (...) {  // nothing to report it to
      }
    }
  }
  // Each wait() still in flight (in a daemon thread) sees g_exiting within one poll interval, and
  // returns once its running tasks finish their attempt; it needs the GIL to get out.
  while (!g_running.empty()) {
    py::gil_scoped_release nogil;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace dagsched_python
