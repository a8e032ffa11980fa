// dagsched Python module: engine results and errors as Python objects.
#pragma once

#include <Python.h>

#include <dagsched/dagsched.hpp>

#include <exception>

namespace dagsched_python {

/// Whether converting a stored value or exception hands it over (`take`: the results dict, once per run)
/// or leaves it in the engine's slot (`peek`: a TaskContext reading a dependency during the run).
enum class Access : bool { peek, take };

/// The Python object a task's stored exception stands for (a new reference; null with a Python error
/// set on failure): the very exception the callable raised; a new `dagsched.TimeoutError` for an engine
/// TimeoutError (its `cause` converted the same way); a RuntimeError for anything else. GIL held.
PyObject* error_object(const std::exception_ptr& error, Access access);

/// Drops the Python exceptions `error` holds (its TimeoutError cause included). GIL held.
void release_error(const std::exception_ptr& error) noexcept;

/// "success", "failed", "skipped" or "cancelled", interned (a borrowed reference). GIL held.
PyObject* status_string(dagsched::Status status);

/// A new Python TaskResult for `result` (null with a Python error set on failure). GIL held.
PyObject* task_result_object(const dagsched::TaskResult& result, Access access);

}  // namespace dagsched_python
