#include "py_convert.hpp"

#include <algorithm>
#include <any>
#include <array>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "py_ref.hpp"
#include "py_scheduler.hpp"
#include "task_result_type.hpp"

namespace dagsched_python {

namespace {

// A new dagsched.TimeoutError for `e`, with attributes task_id, attempt, limit (seconds), deadline and
// cause, and `cause` also as __cause__, so a traceback shows what the overrunning attempt raised.
PyObject* timeout_error_object(const dagsched::TimeoutError& e, Access access) {
  PyObject* cause = e.cause() ? error_object(e.cause(), access) : Py_NewRef(Py_None);
  if (cause == nullptr) {
    return nullptr;
  }
  PyObject* exc = PyObject_CallFunction(g_types.timeout_error, "s", e.what());
  // Sets attribute `name` to `value` (a new reference, null when making it failed).
  auto set = [&exc](const char* name, PyObject* value) {
    if (exc != nullptr && (value == nullptr || PyObject_SetAttrString(exc, name, value) != 0)) {
      Py_CLEAR(exc);
    }
    Py_XDECREF(value);
  };
  set("task_id", PyUnicode_FromStringAndSize(e.task_id().data(), static_cast<Py_ssize_t>(e.task_id().size())));
  set("attempt", PyLong_FromLong(e.attempt()));
  set("limit", PyFloat_FromDouble(std::chrono::duration<double>(e.limit()).count()));
  set("deadline", PyBool_FromLong(e.deadline() ? 1 : 0));
  set("cause", Py_NewRef(cause));
  if (exc == nullptr) {
    Py_DECREF(cause);
    return nullptr;
  }
  if (cause != Py_None) {
    PyException_SetCause(exc, cause);  // steals the reference
  } else {
    Py_DECREF(cause);
  }
  return exc;
}

// The skip causes of a skipped task as a tuple of ids, sorted (the engine's order is arbitrary). A tuple,
// not a list, as TaskResult is immutable.
PyObject* skip_causes_object(const dagsched::TaskResult& result) {
  static PyObject* const empty = PyTuple_New(0);  // the immortal-in-practice empty tuple
  const std::span<const std::string> causes = result.skip_causes();
  if (causes.empty()) {
    return Py_NewRef(empty);
  }
  std::vector<std::string_view> ids(causes.begin(), causes.end());
  std::sort(ids.begin(), ids.end());
  PyObject* tuple = PyTuple_New(static_cast<Py_ssize_t>(ids.size()));
  if (tuple == nullptr) {
    return nullptr;
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    PyObject* id = PyUnicode_FromStringAndSize(ids[i].data(), static_cast<Py_ssize_t>(ids[i].size()));
    if (id == nullptr) {
      Py_DECREF(tuple);
      return nullptr;
    }
    PyTuple_SET_ITEM(tuple, static_cast<Py_ssize_t>(i), id);
  }
  return tuple;
}

}  // namespace

PyObject* error_object(const std::exception_ptr& error, Access access) {
  try {
    std::rethrow_exception(error);
  } catch (const PyExceptionRef& e) {
    PyObject* exc = access == Access::take ? e.take() : Py_XNewRef(e.peek());
    if (exc != nullptr) {
      return exc;
    }
    return PyObject_CallFunction(PyExc_RuntimeError, "s", "dagsched: this task's exception was already taken");
  } catch (const dagsched::TimeoutError& e) {
    return timeout_error_object(e, access);
  } catch (const std::exception& e) {
    // Only the binding's own C++ failures (bad_alloc, ...) get here; Python tasks raise PyTaskError.
    return PyObject_CallFunction(PyExc_RuntimeError, "s", e.what());
  } catch (...) {
    return PyObject_CallFunction(PyExc_RuntimeError, "s", "dagsched: unknown C++ exception in a task");
  }
}

void release_error(const std::exception_ptr& error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const PyExceptionRef& e) {
    Py_XDECREF(e.take());
  } catch (const dagsched::TimeoutError& e) {
    if (e.cause()) {
      release_error(e.cause());
    }
  } catch (...) {  // nothing of Python's inside
  }
}

PyObject* status_string(dagsched::Status status) {
  static const std::array<PyObject*, 4> strings = [] {
    std::array<PyObject*, 4> s{};
    for (std::size_t i = 0; i < s.size(); ++i) {
      const std::string_view name = dagsched::to_string(static_cast<dagsched::Status>(i));
      s[i] = PyUnicode_InternFromString(std::string(name).c_str());
      if (s[i] == nullptr) {
        throw std::bad_alloc();
      }
    }
    return s;
  }();
  return strings.at(static_cast<std::size_t>(status));
}

PyObject* task_result_object(const dagsched::TaskResult& r, Access access) {
  PyObject* value = nullptr;
  if (const auto* stored = std::any_cast<GilRef>(&r.result)) {
    value = access == Access::take ? stored->take() : Py_XNewRef(stored->get());
  }
  if (value == nullptr) {
    value = Py_NewRef(Py_None);
  }
  PyObject* error = r.error ? error_object(r.error, access) : Py_NewRef(Py_None);
  if (error == nullptr) {
    Py_DECREF(value);
    return nullptr;
  }
  PyObject* causes = skip_causes_object(r);
  if (causes == nullptr) {
    Py_DECREF(value);
    Py_DECREF(error);
    return nullptr;
  }
  return make_task_result(Py_NewRef(status_string(r.status)), value, error, r.attempts, causes);
}

}  // namespace dagsched_python
