#include "py_scheduler.hpp"

#include <any>
#include <array>
#include <chrono>
#include <climits>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "task_result_type.hpp"

namespace py = pybind11;

namespace dagsched_python {

namespace {

// How long run() leaves the engine alone between two looks at pending signals: short enough that
// Ctrl-C feels immediate, long enough that the main thread costs nothing. A finished run wakes the
// waiter at once, so this adds no latency to run().
constexpr auto signal_poll_interval = std::chrono::milliseconds(25);

// The schedulers inside run(), and whether interpreter shutdown has begun (see cancel_runs_at_exit).
// Both guarded by the GIL.
std::vector<PyScheduler*> g_running;
bool g_exiting = false;

// Thread states of engine workers that have exited, waiting for a thread holding the GIL to delete them.
std::mutex g_retired_mutex;
std::vector<PyThreadState*> g_retired;  // guarded by g_retired_mutex

class ThreadStatePin {
 public:
  ThreadStatePin() noexcept {
    // A thread Python already knows (the main thread, a threading.Thread) keeps its own thread state.
    if (PyGILState_GetThisThreadState() == nullptr) {
      static_cast<void>(PyGILState_Ensure());  // creates the thread state, holding one GILState count...
      m_tstate = PyEval_SaveThread();          // ...which is never released: the state stays
    }
  }
  ~ThreadStatePin() {
    // The worker is exiting, inside ~TaskScheduler, whose caller holds the GIL: taking it here would
    // deadlock, so the state is left for that caller to delete (delete_retired_thread_states).
    if (m_tstate != nullptr) {
      const std::lock_guard<std::mutex> lock(g_retired_mutex);
      g_retired.push_back(m_tstate);
    }
  }
  ThreadStatePin(const ThreadStatePin&) = delete;
  ThreadStatePin& operator=(const ThreadStatePin&) = delete;

 private:
  PyThreadState* m_tstate = nullptr;
};

// Deletes the thread states of exited workers. GIL held. Their threads are gone, so none is current.
void delete_retired_thread_states() noexcept {
  std::vector<PyThreadState*> retired;
  {
    const std::lock_guard<std::mutex> lock(g_retired_mutex);
    retired.swap(g_retired);
  }
  if (interpreter_finalizing()) {
    return;  // Py_FinalizeEx has already deleted every thread state but its own: these are dangling
  }
  for (PyThreadState* tstate : retired) {
    PyThreadState_Clear(tstate);
    PyThreadState_Delete(tstate);
  }
}

// The exception being raised (a new reference, traceback attached), clearing the error indicator.
PyObject* fetch_raised_exception() noexcept {
#if PY_VERSION_HEX >= 0x030C0000
  PyObject* value = PyErr_GetRaisedException();
#else
  PyObject* type = nullptr;
  PyObject* value = nullptr;
  PyObject* traceback = nullptr;
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_NormalizeException(&type, &value, &traceback);
  // Normalising does not attach the traceback; an `except` clause would, and callers expect it there.
  if (value != nullptr && traceback != nullptr) {
    PyException_SetTraceback(value, traceback);
  }
  Py_XDECREF(type);
  Py_XDECREF(traceback);
#endif
  if (value == nullptr) {
    value = PyObject_CallFunction(PyExc_SystemError, "s", "dagsched: a task failed without an exception set");
  }
  return value;
}

// Interned once at first use (GIL held) and kept for the life of the process.
PyObject* status_string(dagsched::Status status) {
  static const std::array<PyObject*, 4> strings = [] {
    std::array<PyObject*, 4> s{};
    for (std::size_t i = 0; i < s.size(); ++i) {
      const std::string_view name = dagsched::to_string(static_cast<dagsched::Status>(i));
      s[i] = PyUnicode_InternFromString(std::string(name).c_str());
      if (s[i] == nullptr) {
        throw py::error_already_set();
      }
    }
    return s;
  }();
  return strings.at(static_cast<std::size_t>(status));
}

// The Python object a task's stored exception stands for (a new reference).
PyObject* error_object(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const PyTaskError& e) {
    if (PyObject* exc = e.take()) {
      return exc;
    }
    return PyObject_CallFunction(PyExc_RuntimeError, "s", "dagsched: this task's exception was already taken");
  } catch (const std::exception& e) {
    // Only the binding's own C++ failures (bad_alloc, ...) get here; Python tasks raise PyTaskError.
    return PyObject_CallFunction(PyExc_RuntimeError, "s", e.what());
  } catch (...) {
    return PyObject_CallFunction(PyExc_RuntimeError, "s", "dagsched: unknown C++ exception in a task");
  }
}

// Hands the pending Python error to pybind11, which raises it when the call returns to Python.
[[noreturn]] void throw_python_error() { throw py::error_already_set(); }

std::string utf8(PyObject* str) {
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(str, &size);
  if (data == nullptr) {
    throw_python_error();
  }
  return {data, static_cast<std::size_t>(size)};
}

// Ends a run that run() will not return results for (an exception on the way out): cancels it and waits
// for its running tasks, with the GIL released since they need it to finish, then drops what they left.
class RunGuard {
 public:
  RunGuard(dagsched::RunHandle& handle, RunControl& control) noexcept : m_handle(handle), m_control(control) {}
  RunGuard(const RunGuard&) = delete;
  RunGuard& operator=(const RunGuard&) = delete;
  ~RunGuard() {
    if (!m_handle.valid()) {
      return;
    }
    // Unpublished first: a task's abort() must not call cancel() while wait() below changes the handle.
    m_control.active = nullptr;
    m_handle.cancel();
    std::optional<dagsched::ResultSet> results;
    {
      py::gil_scoped_release nogil;
      results.emplace(m_handle.wait());
    }
    release_results(*results);
  }

 private:
  dagsched::RunHandle& m_handle;
  RunControl& m_control;
};

}  // namespace

void pin_thread_state() noexcept { thread_local ThreadStatePin pin; }

void PyScheduler::cancel_runs_at_exit() {
  g_exiting = true;
  for (PyScheduler* scheduler : g_running) {
    if (scheduler->m_control.active != nullptr) {
      scheduler->m_control.active->cancel();
    }
  }
  // Each run() still in flight (in a daemon thread) sees g_exiting within one poll interval, and
  // returns once its running tasks finish their attempt; it needs the GIL to get out.
  while (!g_running.empty()) {
    py::gil_scoped_release nogil;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void park_forever() noexcept {
  for (;;) {
    std::this_thread::sleep_for(std::chrono::hours(1));
  }
}

void release_results(const dagsched::ResultSet& results) noexcept {
  for (const auto& [id, r] : results) {
    if (const auto* value = std::any_cast<GilRef>(&r.result)) {
      Py_XDECREF(value->take());
    }
    if (r.error) {
      try {
        std::rethrow_exception(r.error);
      } catch (const PyTaskError& e) {
        Py_XDECREF(e.take());
      } catch (...) {  // nothing of Python's inside
      }
    }
  }
}

void RunControl::abort(PyObject* exc) noexcept {
  if (!abort_exc) {
    abort_exc = GilRef::borrow(exc);
  }
  if (active != nullptr) {
    active->cancel();
  }
}

GilRef PyTask::operator()() const {
  GilGuard gil;
  if (m_control->abort_exc) {
    throw TaskAborted();
  }
  if (PyObject* value = PyObject_CallNoArgs(m_fn.get())) {
    return GilRef::steal(value);
  }
  GilRef exc = GilRef::steal(fetch_raised_exception());
  // KeyboardInterrupt, SystemExit and the like are requests to stop, not task failures.
  if (PyErr_GivenExceptionMatches(exc.get(), PyExc_Exception) == 0) {
    m_control->abort(exc.get());
  }
  throw PyTaskError(std::move(exc));
}

PyScheduler::PyScheduler(const py::object& max_workers) : m_max_workers(0) {
  if (!PyLong_Check(max_workers.ptr()) || PyBool_Check(max_workers.ptr())) {
    throw py::type_error("max_workers must be an int, not " + std::string(Py_TYPE(max_workers.ptr())->tp_name));
  }
  int overflow = 0;
  const long long n = PyLong_AsLongLongAndOverflow(max_workers.ptr(), &overflow);
  if (overflow > 0) {
    throw py::value_error("max_workers is too large");
  }
  if (overflow < 0 || n < 1) {
    throw py::value_error("max_workers must be greater than 0");
  }
  m_max_workers = static_cast<std::size_t>(n);
  // Starting threads does not need Python; workers register with it only when they first call a task.
  m_scheduler = std::make_unique<dagsched::TaskScheduler>(m_max_workers);
}

PyScheduler::~PyScheduler() { shut_down(); }

void PyScheduler::shut_down() noexcept {
  if (!m_scheduler) {
    return;
  }
  // Joins the workers with the GIL held: no run is in flight, so no worker needs it any more (a task
  // counts as finished only after its last touch of a Python object), and exiting workers leave their
  // thread states to delete below rather than take the GIL.
  m_scheduler.reset();
  delete_retired_thread_states();
  m_handles.clear();
  m_keys.clear();
  m_bodies.clear();
}

dagsched::TaskScheduler& PyScheduler::engine() {
  if (!m_scheduler) {
    throw std::runtime_error("this TaskScheduler is closed");
  }
  return *m_scheduler;
}

void PyScheduler::close() {
  if (m_running) {
    throw std::logic_error("close() called during run() of this TaskScheduler");
  }
  shut_down();
}

bool PyScheduler::contains(const py::object& task_id) const {
  if (!m_scheduler || !PyUnicode_Check(task_id.ptr())) {
    return false;
  }
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(task_id.ptr(), &size);
  if (data == nullptr) {
    PyErr_Clear();  // a str with lone surrogates cannot name a task
    return false;
  }
  return m_scheduler->contains(std::string_view(data, static_cast<std::size_t>(size)));
}

void PyScheduler::add_task(py::handle task_id, py::handle execute_fn, py::handle dependencies, py::handle retries) {
  dagsched::TaskScheduler& scheduler = engine();
  if (!PyUnicode_Check(task_id.ptr())) {
    throw py::type_error("task_id must be a str, not " + std::string(Py_TYPE(task_id.ptr())->tp_name));
  }
  std::string id = utf8(task_id.ptr());
  if (PyCallable_Check(execute_fn.ptr()) == 0) {
    throw py::type_error("add_task('" + id + "'): execute_fn must be callable, not " +
                         std::string(Py_TYPE(execute_fn.ptr())->tp_name));
  }
  if (!PyLong_Check(retries.ptr()) || PyBool_Check(retries.ptr())) {
    throw py::type_error("add_task('" + id + "'): retries must be an int, not " +
                         std::string(Py_TYPE(retries.ptr())->tp_name));
  }
  int overflow = 0;
  const long long r = PyLong_AsLongLongAndOverflow(retries.ptr(), &overflow);
  // Out-of-range values go to the engine as -1 or INT_MAX, which it rejects with its own message.
  const int retry_count = overflow < 0 || r < 0 ? -1 : (overflow > 0 || r > INT_MAX ? INT_MAX : static_cast<int>(r));

  // Dependencies are borrowed as UTF-8 views into the id strs, which the container keeps alive: no
  // Python code runs between here and the engine's copy of them. Anything other than the four builtin
  // collections is first copied into a tuple, so that its iteration (which may run Python code, even
  // call add_task) is over before m_dep_ids is reused.
  py::object materialised;
  PyObject* deps = dependencies.ptr();
  m_dep_ids.clear();
  if (deps != Py_None) {
    if (!PyList_CheckExact(deps) && !PyTuple_CheckExact(deps) && !PyAnySet_CheckExact(deps)) {
      if (PyUnicode_Check(deps) || PyBytes_Check(deps)) {
        // A lone str is iterable, but as characters: almost certainly {"A"} was meant.
        throw py::type_error("add_task('" + id + "'): dependencies must be a collection of task ids (set, list, " +
                             "tuple, frozenset), not a single str");
      }
      if (PyIter_Check(deps) == 0 && Py_TYPE(deps)->tp_iter == nullptr && PySequence_Check(deps) == 0) {
        throw py::type_error("add_task('" + id + "'): dependencies must be a set, list, tuple or frozenset of " +
                             "task ids, or None, not " + std::string(Py_TYPE(deps)->tp_name));
      }
      materialised = py::reinterpret_steal<py::object>(PySequence_Tuple(deps));
      if (!materialised) {
        throw_python_error();
      }
      deps = materialised.ptr();
      m_dep_ids.clear();  // an add_task called by that iteration may have used it
    }
    auto add_dep = [&](PyObject* dep) {
      if (!PyUnicode_Check(dep)) {
        throw py::type_error("add_task('" + id + "'): a dependency must be a str task id, not " +
                             std::string(Py_TYPE(dep)->tp_name));
      }
      Py_ssize_t size = 0;
      const char* data = PyUnicode_AsUTF8AndSize(dep, &size);
      if (data == nullptr) {
        throw_python_error();
      }
      m_dep_ids.emplace_back(data, static_cast<std::size_t>(size));
    };
    if (PyAnySet_Check(deps)) {
      py::iterator it = py::reinterpret_steal<py::iterator>(PyObject_GetIter(deps));
      if (!it) {
        throw_python_error();
      }
      while (PyObject* dep = PyIter_Next(it.ptr())) {
        Py_DECREF(dep);  // still referenced by the set
        add_dep(dep);
      }
    } else {
      PyObject** items = PySequence_Fast_ITEMS(deps);
      for (Py_ssize_t i = 0, n = PySequence_Fast_GET_SIZE(deps); i < n; ++i) {
        add_dep(items[i]);
      }
    }
  }

  // Room for one more, made now so that nothing can fail after the engine took the task. Geometric, as
  // reserve(size + 1) would reallocate on every call.
  if (m_keys.size() == m_keys.capacity()) {
    m_keys.reserve(2 * m_keys.size() + 16);
    m_handles.reserve(m_keys.capacity());
    m_bodies.reserve(m_keys.capacity());
  }
  // The results dict is keyed by an exact str equal to the id (a str subclass is not kept).
  py::object key =
      PyUnicode_CheckExact(task_id.ptr()) ? py::reinterpret_borrow<py::object>(task_id) : py::str(id.data(), id.size());
  // The engine's checks (duplicate id, empty id, retries, running) all happen before it changes anything.
  const dagsched::TaskHandle handle =
      scheduler.add_task(std::move(id), PyTask(GilRef::borrow(execute_fn.ptr()), &m_control), m_dep_ids, retry_count);
  m_handles.push_back(handle);
  m_keys.push_back(std::move(key));
  m_bodies.push_back(execute_fn.ptr());
}

int PyScheduler::traverse(visitproc visit, void* arg) const {
  for (PyObject* body : m_bodies) {
    Py_VISIT(body);
  }
  return 0;
}

void PyScheduler::clear() noexcept {
  // Only unreachable schedulers are cleared, and a running one is reachable (run() holds it), so no
  // run can be in flight here.
  if (!m_running) {
    shut_down();
  }
}

py::dict PyScheduler::run() {
  dagsched::TaskScheduler& scheduler = engine();
  if (m_running) {
    throw std::logic_error("run() called while this TaskScheduler is already running");
  }
  if (g_exiting) {
    throw std::runtime_error("cannot run() after interpreter shutdown has begun");
  }
  m_running = true;
  m_control.abort_exc.reset();
  g_running.push_back(this);
  struct Reset {
    PyScheduler& self;
    ~Reset() {
      self.m_control.active = nullptr;
      self.m_control.abort_exc.reset();
      self.m_running = false;
      std::erase(g_running, &self);
    }
  } reset{*this};

  dagsched::RunHandle handle;
  {
    // Validation (unknown ids, cycles) throws from here, before any task runs; the translator in
    // module.cpp turns it into the Python error.
    py::gil_scoped_release nogil;
    handle = scheduler.start();
  }
  RunGuard guard(handle, m_control);
  m_control.active = &handle;
  if (m_control.abort_exc) {
    handle.cancel();  // a task aborted before `active` was published
  }

  for (;;) {
    bool done = false;
    {
      py::gil_scoped_release nogil;
      done = handle.wait_for(signal_poll_interval);
    }
    if (done) {
      break;
    }
    if (g_exiting) {
      handle.cancel();  // see cancel_runs_at_exit; keeps waiting for the running tasks
    }
    if (PyErr_CheckSignals() != 0) {
      // Typically KeyboardInterrupt. Fetched before anything else runs Python code; RunGuard then
      // cancels the run and waits for its running tasks on the way out.
      throw py::error_already_set();
    }
  }

  // Unpublished before wait() changes the handle; no task is running any more to call abort() anyway.
  m_control.active = nullptr;
  std::optional<dagsched::ResultSet> results;
  {
    py::gil_scoped_release nogil;
    results.emplace(handle.wait());
  }
  if (m_control.abort_exc) {
    release_results(*results);
    PyObject* exc = m_control.abort_exc.take();
    // PyErr_SetObject keeps exc.__traceback__, so the task's frames stay in the report.
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc);
    Py_DECREF(exc);
    throw_python_error();
  }
  return to_dict(*results);
}

py::dict PyScheduler::to_dict(const dagsched::ResultSet& results) const {
  py::dict dict;
  for (std::size_t i = 0; i < m_handles.size(); ++i) {
    const dagsched::TaskResult& r = results.at(m_handles[i]);
    PyObject* value = nullptr;
    if (const auto* stored = std::any_cast<GilRef>(&r.result)) {
      value = stored->take();
    }
    if (value == nullptr) {
      value = Py_NewRef(Py_None);
    }
    PyObject* error = r.error ? error_object(r.error) : Py_NewRef(Py_None);
    if (error == nullptr) {
      Py_DECREF(value);
      release_results(results);
      throw_python_error();
    }
    PyObject* status = Py_NewRef(status_string(r.status));
    py::object item = py::reinterpret_steal<py::object>(make_task_result(status, value, error, r.attempts));
    if (!item || PyDict_SetItem(dict.ptr(), m_keys[i].ptr(), item.ptr()) != 0) {
      release_results(results);
      throw_python_error();
    }
  }
  return dict;
}

}  // namespace dagsched_python
