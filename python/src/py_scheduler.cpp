#include "py_scheduler.hpp"

#include <any>
#include <array>
#include <chrono>
#include <climits>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "py_convert.hpp"
#include "task_result_type.hpp"

namespace py = pybind11;

namespace dagsched_python {

ModuleTypes g_types;

namespace {

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

}  // namespace

void pin_thread_state() noexcept { thread_local ThreadStatePin pin; }

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
      release_error(r.error);
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

thread_local const RunControl* t_current_task = nullptr;

GilRef PyTask::call(dagsched::TaskContext* ctx) const {
  GilGuard gil;
  if (m_control->abort_exc) {
    throw TaskAborted();
  }
  struct Current {
    const RunControl* saved;
    explicit Current(const RunControl* control) noexcept : saved(std::exchange(t_current_task, control)) {}
    ~Current() { t_current_task = saved; }
    Current(const Current&) = delete;
    Current& operator=(const Current&) = delete;
  } current(m_control);
  PyObject* value = nullptr;
  if (ctx == nullptr) {
    value = PyObject_CallNoArgs(m_fn.get());
  } else {
    PyTaskContext* view = nullptr;
    GilRef arg = make_context(*ctx, view);
    if (arg) {
      value = PyObject_CallOneArg(m_fn.get(), arg.get());
      view->ctx = nullptr;  // the engine's context dies with this attempt; the Python object may not
    }
  }
  if (value != nullptr) {
    return GilRef::steal(value);
  }
  GilRef exc = GilRef::steal(fetch_raised_exception());
  // KeyboardInterrupt, SystemExit and the like are requests to stop, not task failures.
  if (PyErr_GivenExceptionMatches(exc.get(), PyExc_Exception) == 0) {
    m_control->abort(exc.get());
  } else if (PyErr_GivenExceptionMatches(exc.get(), g_types.permanent_error) != 0) {
    throw PyPermanentError(std::move(exc));
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
  m_callables.clear();
}

dagsched::TaskScheduler& PyScheduler::engine() {
  if (!m_scheduler) {
    throw std::runtime_error("this TaskScheduler is closed");
  }
  return *m_scheduler;
}

void PyScheduler::close() {
  reap_orphan();
  if (running()) {
    throw std::logic_error("close() called during a run of this TaskScheduler");
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

void PyScheduler::add_resource(const py::object& name, const py::object& capacity) {
  reap_orphan();
  dagsched::TaskScheduler& scheduler = engine();
  if (running()) {
    throw std::logic_error("add_resource() called while this TaskScheduler is running");
  }
  if (!PyUnicode_Check(name.ptr())) {
    throw py::type_error("add_resource: name must be a str, not " + std::string(Py_TYPE(name.ptr())->tp_name));
  }
  std::string pool = utf8(name.ptr());
  if (!PyLong_Check(capacity.ptr()) || PyBool_Check(capacity.ptr())) {
    throw py::type_error("add_resource('" + pool + "'): capacity must be an int, not " +
                         std::string(Py_TYPE(capacity.ptr())->tp_name));
  }
  int overflow = 0;
  const long long n = PyLong_AsLongLongAndOverflow(capacity.ptr(), &overflow);
  if (overflow > 0 || n > UINT32_MAX) {
    throw py::value_error("add_resource('" + pool + "'): capacity must be at most " + std::to_string(UINT32_MAX));
  }
  // 0 and negative capacities go to the engine as 0, which it rejects with its own message.
  scheduler.add_resource(std::move(pool), overflow < 0 || n < 0 ? 0 : static_cast<std::uint32_t>(n));
}

void PyScheduler::add_task(PyObject* const* args) {
  reap_orphan();
  dagsched::TaskScheduler& scheduler = engine();
  if (running()) {
    throw std::logic_error("add_task() called while this TaskScheduler is running");
  }
  const py::handle task_id(args[arg_task_id]);
  const py::handle execute_fn(args[arg_execute_fn]);
  const py::handle dependencies(args[arg_dependencies] != nullptr ? args[arg_dependencies] : Py_None);
  if (!PyUnicode_Check(task_id.ptr())) {
    throw py::type_error("task_id must be a str, not " + std::string(Py_TYPE(task_id.ptr())->tp_name));
  }
  std::string id = utf8(task_id.ptr());
  if (PyCallable_Check(execute_fn.ptr()) == 0) {
    throw py::type_error("add_task('" + id + "'): execute_fn must be callable, not " +
                         std::string(Py_TYPE(execute_fn.ptr())->tp_name));
  }
  int retry_count = 0;
  if (PyObject* retries = args[arg_retries]) {
    if (!PyLong_Check(retries) || PyBool_Check(retries)) {
      throw py::type_error("add_task('" + id + "'): retries must be an int, not " +
                           std::string(Py_TYPE(retries)->tp_name));
    }
    int overflow = 0;
    const long long r = PyLong_AsLongLongAndOverflow(retries, &overflow);
    // Out-of-range values go to the engine as -1 or INT_MAX, which it rejects with its own message.
    retry_count = overflow < 0 || r < 0 ? -1 : (overflow > 0 || r > INT_MAX ? INT_MAX : static_cast<int>(r));
  }
  // Parsed before the dependencies, whose string views must stay untouched until the engine has copied
  // them, since parsing may run Python code (a timedelta's total_seconds(), inspect.signature()).
  std::optional<dagsched::TaskOptions> options = task_options(args, id, &m_control);
  const bool wants_ctx = takes_context(execute_fn.ptr(), args[arg_context], id);
  if (options) {
    options->retries = retry_count;
  }

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
    m_callables.reserve(2 * m_keys.capacity());
  }
  // The results dict is keyed by an exact str equal to the id (a str subclass is not kept).
  py::object key =
      PyUnicode_CheckExact(task_id.ptr()) ? py::reinterpret_borrow<py::object>(task_id) : py::str(id.data(), id.size());
  // The engine's checks (duplicate id, empty id, options, running) all happen before it changes anything.
  GilRef body = GilRef::borrow(execute_fn.ptr());
  dagsched::TaskHandle handle;
  if (wants_ctx) {
    PyContextTask task(std::move(body), &m_control);
    handle = options ? scheduler.add_task(std::move(id), std::move(task), m_dep_ids, std::move(*options))
                     : scheduler.add_task(std::move(id), std::move(task), m_dep_ids, retry_count);
  } else {
    PyTask task(std::move(body), &m_control);
    handle = options ? scheduler.add_task(std::move(id), std::move(task), m_dep_ids, std::move(*options))
                     : scheduler.add_task(std::move(id), std::move(task), m_dep_ids, retry_count);
  }
  m_handles.push_back(handle);
  m_keys.push_back(std::move(key));
  m_callables.push_back(execute_fn.ptr());
  if (PyObject* retry_if = args[arg_retry_if]; retry_if != nullptr && retry_if != Py_None) {
    m_callables.push_back(retry_if);  // room reserved above
  }
}

int PyScheduler::traverse(visitproc visit, void* arg) const {
  for (PyObject* callable : m_callables) {
    Py_VISIT(callable);
  }
  return 0;
}

void PyScheduler::clear() noexcept {
  // Only unreachable schedulers are cleared, and a running one is reachable (run() or its RunHandle
  // holds it), so no run can be in flight here, bar an orphan (see reap_orphan).
  reap_orphan();
  if (!running()) {
    shut_down();
  }
}

py::dict PyScheduler::to_dict(const dagsched::ResultSet& results) const {
  py::dict dict;
  for (std::size_t i = 0; i < m_handles.size(); ++i) {
    py::object item = py::reinterpret_steal<py::object>(task_result_object(results.at(m_handles[i]), Access::take));
    if (!item || PyDict_SetItem(dict.ptr(), m_keys[i].ptr(), item.ptr()) != 0) {
      release_results(results);
      throw_python_error();
    }
  }
  return dict;
}

}  // namespace dagsched_python
