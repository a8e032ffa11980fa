#include "task_result_type.hpp"

#include <structmember.h>

#include <cstddef>

namespace dagsched_python {

namespace {

struct TaskResultObject {
  PyObject_HEAD PyObject* status;  // never null once constructed
  PyObject* result;
  PyObject* error;
  PyObject* skip_causes;  // a tuple of str
  int attempts;
};

// Set once by add_task_result_type, during module import (the GIL serialises it); kept for the life of
// the process, as the module object holds a reference too.
PyTypeObject* g_type = nullptr;

TaskResultObject* as_result(PyObject* self) noexcept { return reinterpret_cast<TaskResultObject*>(self); }

int tr_traverse(PyObject* self, visitproc visit, void* arg) {
  TaskResultObject* r = as_result(self);
  Py_VISIT(r->status);
  Py_VISIT(r->result);
  Py_VISIT(r->error);
  Py_VISIT(r->skip_causes);
  Py_VISIT(Py_TYPE(self));  // instances of a heap type own a reference to it
  return 0;
}

int tr_clear(PyObject* self) {
  TaskResultObject* r = as_result(self);
  Py_CLEAR(r->status);
  Py_CLEAR(r->result);
  Py_CLEAR(r->error);
  Py_CLEAR(r->skip_causes);
  return 0;
}

void tr_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  tr_clear(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyObject* tr_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"status", "result", "error", "attempts", "skip_causes", nullptr};
  PyObject* status = nullptr;
  PyObject* result = Py_None;
  PyObject* error = Py_None;
  PyObject* causes_arg = nullptr;
  int attempts = 0;
  if (PyArg_ParseTupleAndKeywords(args, kwargs, "U|OOiO:TaskResult", const_cast<char**>(keywords), &status, &result,
                                  &error, &attempts, &causes_arg) == 0) {
    return nullptr;
  }
  if (attempts < 0) {
    PyErr_SetString(PyExc_ValueError, "TaskResult: attempts must not be negative");
    return nullptr;
  }
  PyObject* causes = causes_arg == nullptr ? PyTuple_New(0) : PySequence_Tuple(causes_arg);
  if (causes == nullptr) {
    return nullptr;
  }
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(causes); ++i) {
    if (!PyUnicode_Check(PyTuple_GET_ITEM(causes, i))) {
      Py_DECREF(causes);
      PyErr_SetString(PyExc_TypeError, "TaskResult: skip_causes must be task ids (str)");
      return nullptr;
    }
  }
  PyObject* self = type->tp_alloc(type, 0);
  if (self == nullptr) {
    Py_DECREF(causes);
    return nullptr;
  }
  TaskResultObject* r = as_result(self);
  r->status = Py_NewRef(status);
  r->result = Py_NewRef(result);
  r->error = Py_NewRef(error);
  r->skip_causes = causes;
  r->attempts = attempts;
  return self;
}

PyObject* tr_repr(PyObject* self) {
  const TaskResultObject* r = as_result(self);
  // skip_causes only where there are some: the spec's results read as they always did.
  if (PyTuple_GET_SIZE(r->skip_causes) != 0) {
    return PyUnicode_FromFormat("TaskResult(status=%R, result=%R, error=%R, attempts=%d, skip_causes=%R)", r->status,
                                r->result, r->error, r->attempts, r->skip_causes);
  }
  return PyUnicode_FromFormat("TaskResult(status=%R, result=%R, error=%R, attempts=%d)", r->status, r->result, r->error,
                              r->attempts);
}

// Value equality over the four fields, like a dataclass. `error` objects compare as exceptions do, by
// identity, so results of two runs whose tasks raised equal-looking exceptions are not equal.
PyObject* tr_richcompare(PyObject* self, PyObject* other, int op) {
  if ((op != Py_EQ && op != Py_NE) || !PyObject_TypeCheck(other, g_type)) {
    Py_RETURN_NOTIMPLEMENTED;
  }
  const TaskResultObject* a = as_result(self);
  const TaskResultObject* b = as_result(other);
  int equal = a->attempts == b->attempts ? 1 : 0;
  PyObject* const fields_a[] = {a->status, a->result, a->error, a->skip_causes};
  PyObject* const fields_b[] = {b->status, b->result, b->error, b->skip_causes};
  for (std::size_t i = 0; i < 4 && equal == 1; ++i) {
    equal = PyObject_RichCompareBool(fields_a[i], fields_b[i], Py_EQ);
  }
  if (equal < 0) {
    return nullptr;
  }
  return PyBool_FromLong((equal == 1) == (op == Py_EQ) ? 1 : 0);
}

PyObject* tr_reduce(PyObject* self, PyObject* /*unused*/) {
  const TaskResultObject* r = as_result(self);
  return Py_BuildValue("(O(OOOiO))", reinterpret_cast<PyObject*>(Py_TYPE(self)), r->status, r->result, r->error,
                       r->attempts, r->skip_causes);
}

PyMethodDef tr_methods[] = {
    {"__reduce__", tr_reduce, METH_NOARGS, "Pickle support: TaskResult(status, result, error, attempts, skip_causes)."},
    {nullptr, nullptr, 0, nullptr},
};

// structmember's offsetof on a standard-layout struct; the casts are what the C API's PyMemberDef wants.
PyMemberDef tr_members[] = {
    {"status", T_OBJECT_EX, offsetof(TaskResultObject, status), READONLY,
     "'success', 'failed', 'skipped' or 'cancelled'."},
    {"result", T_OBJECT_EX, offsetof(TaskResultObject, result), READONLY,
     "The task's return value if it succeeded, else None."},
    {"error", T_OBJECT_EX, offsetof(TaskResultObject, error), READONLY,
     "The exception object the last attempt raised if the task failed, else None."},
    {"attempts", T_INT, offsetof(TaskResultObject, attempts), READONLY,
     "How many times the task was called: 1 for an immediate success, retries + 1 when every attempt failed, "
     "0 when skipped."},
    {"skip_causes", T_OBJECT_EX, offsetof(TaskResultObject, skip_causes), READONLY,
     "For a skipped task, the ids of the failed tasks upstream whose failure skipped it (a sorted tuple); "
     "else ()."},
    {nullptr, 0, 0, 0, nullptr},
};

constexpr const char* tr_doc =
    "TaskResult(status, result=None, error=None, attempts=0, skip_causes=())\n"
    "--\n\n"
    "The outcome of one task in one TaskScheduler.run(): status ('success', 'failed', 'skipped' or "
    "'cancelled': in a run cancelled by RunHandle.cancel(), a failure policy or interpreter shutdown), "
    "result, error (the exception object itself, traceback included; a dagsched.TimeoutError when the "
    "task overran its timeout or deadline), attempts and skip_causes. Immutable; compares by value; not "
    "hashable.";

PyType_Slot tr_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(tr_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(tr_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(tr_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(tr_clear)},
    {Py_tp_repr, reinterpret_cast<void*>(tr_repr)},
    {Py_tp_richcompare, reinterpret_cast<void*>(tr_richcompare)},
    {Py_tp_hash, reinterpret_cast<void*>(PyObject_HashNotImplemented)},
    {Py_tp_methods, tr_methods},
    {Py_tp_members, tr_members},
    {Py_tp_doc, const_cast<char*>(tr_doc)},
    {0, nullptr},
};

PyType_Spec tr_spec = {
    "dagsched.TaskResult", sizeof(TaskResultObject), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, tr_slots,
};

}  // namespace

bool add_task_result_type(PyObject* module) {
  PyObject* type = PyType_FromSpec(&tr_spec);
  if (type == nullptr) {
    return false;
  }
  // For `match r: case TaskResult(status, result, error, attempts)`.
  PyObject* match_args = Py_BuildValue("(ssss)", "status", "result", "error", "attempts");
  if (match_args == nullptr || PyObject_SetAttrString(type, "__match_args__", match_args) != 0) {
    Py_XDECREF(match_args);
    Py_DECREF(type);
    return false;
  }
  Py_DECREF(match_args);
  if (PyModule_AddObjectRef(module, "TaskResult", type) != 0) {
    Py_DECREF(type);
    return false;
  }
  g_type = reinterpret_cast<PyTypeObject*>(type);  // keeps the reference PyType_FromSpec returned
  return true;
}

PyObject* make_task_result(PyObject* status, PyObject* result, PyObject* error, int attempts, PyObject* skip_causes) {
  TaskResultObject* r = PyObject_GC_New(TaskResultObject, g_type);
  if (r == nullptr) {
    Py_DECREF(status);
    Py_DECREF(result);
    Py_DECREF(error);
    Py_DECREF(skip_causes);
    return nullptr;
  }
  r->status = status;
  r->result = result;
  r->error = error;
  r->skip_causes = skip_causes;
  r->attempts = attempts;
  PyObject_GC_Track(r);
  return reinterpret_cast<PyObject*>(r);
}

}  // namespace dagsched_python
