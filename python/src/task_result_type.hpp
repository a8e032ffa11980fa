// dagsched Python module: the `TaskResult` type.
//
// A small CPython type written against the C API rather than a pybind11 class: run() builds one per task
// (10,000 for the benchmark graph), and a C type costs one allocation and four stores, where a pybind11
// instance also registers itself in pybind11's instance map.
#pragma once

#include <Python.h>

namespace dagsched_python {

/// Creates the type and adds it to `module` as `TaskResult`. Returns false with a Python error set.
bool add_task_result_type(PyObject* module);

/// A new `TaskResult`. Steals the references to `status`, `result`, `error` and `skip_causes` (a tuple of
/// str; none may be null). Returns null with a Python error set if allocation fails (the stolen references
/// are released).
PyObject* make_task_result(PyObject* status, PyObject* result, PyObject* error, int attempts, PyObject* skip_causes);

}  // namespace dagsched_python
