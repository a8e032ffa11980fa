// dagsched Python module: `TaskScheduler`, the C++ engine driven from Python.
#pragma once

#include <pybind11/pybind11.h>

#include <dagsched/dagsched.hpp>

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "py_ref.hpp"

namespace dagsched_python {

/// The module's classes that the task wrappers and results need. Set once, at import (GIL held), and
/// kept for the life of the process.
struct ModuleTypes {
  PyObject* permanent_error = nullptr;  // dagsched.PermanentError
  PyObject* timeout_error = nullptr;    // dagsched.TimeoutError
};
extern ModuleTypes g_types;

/// add_task's parameters, in order: the spec's four (positional or keyword), then the keyword-only options.
enum AddTaskArg : std::size_t {
  arg_task_id,
  arg_execute_fn,
  arg_dependencies,
  arg_retries,
  arg_retry_delay,
  arg_backoff,
  arg_max_delay,
  arg_jitter,
  arg_retry_if,
  arg_timeout,
  arg_deadline,
  arg_trigger,
  arg_resources,
  arg_priority,
  arg_cost,
  arg_context,
  add_task_arg_count,
};
inline constexpr std::size_t add_task_positional = 4;
inline constexpr std::array<const char*, add_task_arg_count> add_task_arg_names = {
    "task_id",  "execute_fn", "dependencies", "retries", "retry_delay", "backoff",  "max_delay", "jitter",
    "retry_if", "timeout",    "deadline",     "trigger", "resources",   "priority", "cost",      "context",
};

class PyRun;
struct RunControl;

/// The RunControl of the scheduler whose task this thread is running, else null: a run must not be
/// waited for from one of its own tasks.
extern thread_local const RunControl* t_current_task;

/// What the task wrappers of one scheduler share with the run in flight. Every field is read and written
/// with the GIL held, which is what synchronises them.
struct RunControl {
  /// The engine handle of the run in flight, while its results have not been taken; null otherwise.
  dagsched::RunHandle* active = nullptr;
  /// A BaseException that is not an Exception (KeyboardInterrupt, SystemExit, ...) raised by a task in
  /// the current run: once set, no further task is called and wait() raises it.
  GilRef abort_exc;

  /// Records `exc` (the first one wins) and cancels the run. GIL held.
  void abort(PyObject* exc) noexcept;
};

/// The engine-side body of one Python task: calls the callable with the GIL held, and hands the engine
/// either the return value or a `PyTaskError` (`PyPermanentError` for a `dagsched.PermanentError`)
/// holding the raised exception. 16 bytes and nothrow-movable, so the engine stores it inline, without a
/// heap allocation.
class PyTask {
 public:
  PyTask(GilRef fn, RunControl* control) noexcept : m_fn(std::move(fn)), m_control(control) {}
  GilRef operator()() const { return call(nullptr); }

 protected:
  /// Calls the callable, with a Python `TaskContext` for `ctx` as its argument when `ctx` is not null.
  GilRef call(dagsched::TaskContext* ctx) const;

 private:
  GilRef m_fn;
  RunControl* m_control;  // owned by the PyScheduler, which outlives the engine holding this task
};

/// A Python task that takes a `TaskContext`: the engine sees a body invocable with `TaskContext&` only.
class PyContextTask : private PyTask {
 public:
  using PyTask::PyTask;
  GilRef operator()(dagsched::TaskContext& ctx) const { return call(&ctx); }
};

/// The Python `TaskContext`: a view of the engine's `TaskContext` for one attempt, valid while the task's
/// callable runs (then `ctx` is null and every method but stop_requested() raises RuntimeError).
struct PyTaskContext {
  const dagsched::TaskContext* ctx = nullptr;
  std::stop_token stop;  // a copy: stop_requested() keeps working on any thread, during the call or after
  pybind11::object task_id;
  int attempt = 0;

  [[nodiscard]] const dagsched::TaskContext& get() const;
  [[nodiscard]] pybind11::object last_error() const;
  [[nodiscard]] pybind11::object dependency(const pybind11::str& dependency_id) const;
  [[nodiscard]] pybind11::object result(const pybind11::str& dependency_id) const;
};

/// The Python `TaskScheduler`. See the docstrings in module.cpp for the Python-facing contract.
class PyScheduler {
 public:
  explicit PyScheduler(const pybind11::object& max_workers);
  ~PyScheduler();
  PyScheduler(const PyScheduler&) = delete;
  PyScheduler& operator=(const PyScheduler&) = delete;

  /// `args` holds add_task_arg_count borrowed references, null for an argument not given.
  void add_task(PyObject* const* args);
  /// add_resource(name, capacity): declares a resource pool.
  void add_resource(const pybind11::object& name, const pybind11::object& capacity);
  /// run(failure_policy=..., seed=..., order=..., order_threshold=...): start() then wait().
  pybind11::object run(const pybind11::object& failure_policy, const pybind11::object& seed,
                       const pybind11::object& order, const pybind11::object& order_threshold);
  /// Starts a run; `owner` is the Python TaskScheduler, kept alive by the returned run.
  std::unique_ptr<PyRun> start(pybind11::object owner, const pybind11::object& failure_policy,
                               const pybind11::object& seed, const pybind11::object& order,
                               const pybind11::object& order_threshold);
  void close();

  [[nodiscard]] std::size_t max_workers() const noexcept { return m_max_workers; }
  [[nodiscard]] std::size_t size() const noexcept { return m_keys.size(); }
  [[nodiscard]] bool contains(const pybind11::object& task_id) const;
  [[nodiscard]] bool closed() const noexcept { return !m_scheduler; }
  /// A run is in flight: started, and its results not yet taken (or an abandoned one not yet reaped).
  [[nodiscard]] bool running() const noexcept {
    return m_run != nullptr || m_orphan.valid() || m_starting || m_reaping;
  }

  /// Garbage-collector support (see module.cpp): a task body that refers back to its scheduler makes a
  /// cycle that only the collector can break. `traverse` reports the engine's reference to each body
  /// (and retry_if predicate); `clear` breaks the cycle by closing the scheduler. GIL held.
  int traverse(visitproc visit, void* arg) const;
  void clear() noexcept;

  /// Registered with `atexit`: cancels every run still in flight, finishes those no thread is waiting
  /// for, and waits until every wait() in progress (only a daemon thread can be in one by then) has
  /// returned, so that no task and no wait is left to meet interpreter finalization, which would end
  /// those threads in the middle of C++ code. Later runs raise RuntimeError, as concurrent.futures
  /// refuses new work after shutdown. GIL held.
  static void cancel_runs_at_exit();

 private:
  friend class PyRun;
  dagsched::TaskScheduler& engine();
  [[nodiscard]] pybind11::dict to_dict(const dagsched::ResultSet& results) const;
  void shut_down() noexcept;
  /// Finishes a run whose handle was dropped inside one of its own tasks (see PyRun::~PyRun). GIL held.
  void reap_orphan() noexcept;

  std::size_t m_max_workers;
  RunControl m_control;
  std::unique_ptr<dagsched::TaskScheduler> m_scheduler;  // null once closed
  // Per registered task, in add_task order: its engine handle and its id as the str the results dict uses.
  std::vector<dagsched::TaskHandle> m_handles;
  std::vector<pybind11::object> m_keys;
  // Borrowed: each is the reference that the engine's copy of a task body or retry_if predicate owns.
  std::vector<PyObject*> m_callables;
  std::vector<std::string_view> m_dep_ids;  // add_task's scratch list, reused to save an allocation per call
  PyRun* m_run = nullptr;                   // the run in flight, if any (GIL-guarded)
  dagsched::RunHandle m_orphan;             // see reap_orphan
  bool m_starting = false;                  // start() is inside the engine's start(), GIL released
  bool m_reaping = false;                   // reap_orphan() is waiting for the orphan, GIL released
};

/// One run, from start() until its results are taken: what `RunHandle` wraps, and what run() waits on.
/// Every method is called with the GIL held.
class PyRun {
 public:
  PyRun(PyScheduler& scheduler, pybind11::object owner, dagsched::RunHandle handle) noexcept;
  ~PyRun();
  PyRun(const PyRun&) = delete;
  PyRun& operator=(const PyRun&) = delete;

  /// Waits (GIL released, signals checked every 25 ms) until the run ends, then returns the results dict,
  /// the same object on every call. Raises builtins.TimeoutError when `timeout` (seconds, None for no
  /// limit) passes first; the run goes on. A signal handler's exception (Ctrl-C) cancels the run, waits
  /// for its running tasks and propagates; so does a task's KeyboardInterrupt or SystemExit. Either way
  /// the (cancelled) results are kept, and later calls return them.
  pybind11::object wait(const pybind11::object& timeout);
  [[nodiscard]] bool done() const noexcept;
  void cancel() noexcept;
  [[nodiscard]] dagsched::Progress progress() const noexcept;

 private:
  /// Takes the results out of the ended engine run into m_results and unregisters the run from its
  /// scheduler; then raises the exception a task aborted the run with, if any and `raise_abort`.
  void collect(bool raise_abort);
  friend class PyScheduler;
  void detach() noexcept;

  PyScheduler* m_scheduler;  // null once detached
  pybind11::object m_owner;  // the Python TaskScheduler (null for run()'s own PyRun, which needs none)
  dagsched::RunHandle m_handle;
  dagsched::Progress m_final{};  // the counts once the run has ended
  pybind11::object m_results;    // the dict, once taken
  bool m_waiting = false;        // a thread is inside wait()
};

/// Parses run()'s and start()'s keywords. Raises TypeError or ValueError.
dagsched::RunOptions run_options(const pybind11::object& failure_policy, const pybind11::object& seed,
                                 const pybind11::object& order, const pybind11::object& order_threshold);

/// Parses add_task's keyword-only options (`args` as for PyScheduler::add_task) for task `id`; empty when
/// none is given (the spec's path). Raises TypeError or ValueError naming the option.
std::optional<dagsched::TaskOptions> task_options(PyObject* const* args, const std::string& id, RunControl* control);

/// Whether `execute_fn` is to be called with a TaskContext: `context` (True or False) if given, else
/// whether `execute_fn` has exactly one required positional parameter. Raises TypeError.
bool takes_context(PyObject* execute_fn, PyObject* context, const std::string& id);

/// A new Python TaskContext for `ctx`, with `view` set to its C++ side; empty with a Python error set on
/// failure. GIL held.
GilRef make_context(dagsched::TaskContext& ctx, PyTaskContext*& view) noexcept;

/// Drops the Python values and exceptions a ResultSet still holds. GIL held.
void release_results(const dagsched::ResultSet& results) noexcept;

}  // namespace dagsched_python
