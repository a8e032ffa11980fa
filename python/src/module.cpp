// dagsched Python module: the extension `dagsched._dagsched`. The package `dagsched` (python/dagsched/)
// re-exports everything here; this file only declares the Python-facing names, docs and errors.
#include <pybind11/pybind11.h>

#include <dagsched/dagsched.hpp>

#include <exception>
#include <initializer_list>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "py_scheduler.hpp"
#include "task_result_type.hpp"

namespace py = pybind11;
using dagsched_python::PyScheduler;

namespace {

// The exception classes, created at import and owned by the module for the life of the process (the
// translator may run at any later time, so it cannot depend on a module reference).
PyObject* g_graph_error = nullptr;
PyObject* g_duplicate_task_error = nullptr;
PyObject* g_unknown_dependency_error = nullptr;
PyObject* g_cycle_error = nullptr;

PyObject* new_exception(py::module_& m, const char* name, PyObject* base, const char* doc) {
  const std::string qualified = std::string("dagsched.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, base, nullptr);
  if (type == nullptr) {
    throw py::error_already_set();
  }
  m.add_object(name, py::reinterpret_borrow<py::object>(type));
  return type;  // the reference PyErr_NewExceptionWithDoc returned is kept by the global
}

// Raises `type(message)` with the given attributes set on the instance.
void raise_with(PyObject* type, const char* message, std::initializer_list<std::pair<const char*, py::object>> attrs) {
  try {
    py::object exc = py::reinterpret_borrow<py::object>(type)(message);
    for (const auto& [name, value] : attrs) {
      exc.attr(name) = value;
    }
    PyErr_SetObject(type, exc.ptr());
  } catch (py::error_already_set& e) {
    e.restore();  // could not even build the exception: report that instead
  }
}

py::list to_list(const std::vector<std::string>& ids) {
  py::list list;
  for (const std::string& id : ids) {
    list.append(py::str(id));
  }
  return list;
}

// Engine errors -> Python: graph errors to the dagsched classes (all ValueError), other misuse to
// ValueError (bad argument) or RuntimeError (wrong moment, such as run() from inside a task).
void translate_engine_errors(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const dagsched::CycleError& e) {
    raise_with(g_cycle_error, e.what(), {{"cycle", to_list(e.cycle())}});
  } catch (const dagsched::UnknownDependencyError& e) {
    raise_with(g_unknown_dependency_error, e.what(),
               {{"task_id", py::str(e.task_id())}, {"dependency", py::str(e.dependency())}});
  } catch (const dagsched::DuplicateTaskError& e) {
    raise_with(g_duplicate_task_error, e.what(), {{"task_id", py::str(e.task_id())}});
  } catch (const dagsched::GraphError& e) {
    PyErr_SetString(g_graph_error, e.what());
  } catch (const std::out_of_range& e) {
    PyErr_SetString(PyExc_IndexError, e.what());
  } catch (const std::invalid_argument& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::length_error& e) {  // too many tasks or dependencies for one scheduler
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::logic_error& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
}

// Sets the Python error for a C++ exception escaping add_task_fast, as pybind11's dispatcher would.
void set_error_from_current_exception() noexcept {
  try {
    throw;
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const py::builtin_exception& e) {
    e.set_error();
  } catch (...) {
    try {
      translate_engine_errors(std::current_exception());
    } catch (const std::bad_alloc&) {
      PyErr_NoMemory();
    } catch (const std::exception& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    } catch (...) {
      PyErr_SetString(PyExc_RuntimeError, "dagsched: unknown C++ exception");
    }
  }
}

// TaskScheduler.add_task, called straight through CPython's vectorcall protocol. Building a 10,000-task
// graph is add_task-bound, and pybind11's generic dispatcher (argument vectors, keyword matching by
// dict) costs more than the rest of the call, engine included.
PyObject* add_task_fast(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) noexcept {
  static constexpr const char* names[] = {"task_id", "execute_fn", "dependencies", "retries"};
  constexpr Py_ssize_t n_params = 4;
  try {
    PyScheduler& scheduler = py::cast<PyScheduler&>(py::handle(self));
    PyObject* values[n_params] = {nullptr, nullptr, nullptr, nullptr};
    if (nargs > n_params) {
      throw py::type_error("add_task() takes at most 4 arguments (" + std::to_string(nargs) + " given)");
    }
    for (Py_ssize_t i = 0; i < nargs; ++i) {
      values[i] = args[i];
    }
    const Py_ssize_t n_kw = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < n_kw; ++k) {
      PyObject* name = PyTuple_GET_ITEM(kwnames, k);
      Py_ssize_t slot = 0;
      while (slot < n_params && PyUnicode_CompareWithASCIIString(name, names[slot]) != 0) {
        ++slot;
      }
      if (slot == n_params) {
        throw py::type_error("add_task() got an unexpected keyword argument '" + py::str(name).cast<std::string>() +
                             "'");
      }
      if (values[slot] != nullptr) {
        throw py::type_error(std::string("add_task() got multiple values for argument '") + names[slot] + "'");
      }
      values[slot] = args[nargs + k];
    }
    for (Py_ssize_t i = 0; i < 2; ++i) {
      if (values[i] == nullptr) {
        throw py::type_error(std::string("add_task() missing required argument '") + names[i] + "'");
      }
    }
    static PyObject* const zero = PyLong_FromLong(0);  // a cached small int: never fails, never freed
    scheduler.add_task(values[0], values[1], values[2] != nullptr ? values[2] : Py_None,
                       values[3] != nullptr ? values[3] : zero);
    Py_RETURN_NONE;
  } catch (...) {
    set_error_from_current_exception();
    return nullptr;
  }
}

// The PyScheduler inside a TaskScheduler instance, or null before __init__ has built it (the collector
// may visit an instance in between).
PyScheduler* scheduler_of(PyObject* self) noexcept {
  auto* inst = reinterpret_cast<py::detail::instance*>(self);
  py::detail::value_and_holder v_h = inst->get_value_and_holder();
  return v_h.holder_constructed() ? v_h.template holder<std::unique_ptr<PyScheduler>>().get() : nullptr;
}

constexpr const char* module_doc =
    "Run a DAG of Python callables on a pool of worker threads, with retries and skip-on-failure.\n\n"
    "The compiled half of the `dagsched` package; import from `dagsched` instead.";

// Docstrings start with the signature in the form inspect.signature() reads from a builtin's __doc__
// (pybind11's generated signatures are turned off: they name the private module).
constexpr const char* scheduler_doc = R"doc(TaskScheduler(max_workers=4)
--

Runs a DAG of zero-argument callables on `max_workers` worker threads of the dagsched C++ engine.

Tasks are registered with add_task() and all run by run(), which returns {task_id: TaskResult}.
A task starts as soon as every one of its dependencies has succeeded; a task that raises is retried
up to `retries` more times, and when every attempt failed it ends "failed" and everything downstream
of it ends "skipped" without being called, while independent branches complete normally.

The worker threads are created here and reused by every run(); close() (or leaving a `with` block, or
garbage collection) joins them. The GIL is held only while a task's callable runs, so I/O-bound tasks
(sleep, subprocess, sockets) overlap; CPU-bound pure-Python tasks are serialised by the GIL as usual.

Raises ValueError when max_workers < 1, TypeError when it is not an int.)doc";

constexpr const char* add_task_doc = R"doc(add_task($self, /, task_id, execute_fn, dependencies=None, retries=0)
--

Registers task `task_id` (a non-empty str) running `execute_fn()` once every task in `dependencies`
(a set, frozenset, list or tuple of ids, or None) has succeeded, attempted at most `retries + 1` times.
Dependencies may name tasks registered later; they are checked by run().

Raises DuplicateTaskError (a ValueError) when `task_id` is already registered; ValueError for an empty
id or negative `retries`; TypeError for a non-str id, a non-callable `execute_fn` or a malformed
`dependencies`; RuntimeError when called during run() (from a task, for instance) or after close().
A rejected call leaves the scheduler unchanged.)doc";

constexpr const char* run_doc = R"doc(run($self, /)
--

Runs every registered task once and returns {task_id: TaskResult} (a dict, in add_task order). May be
called again: each call starts afresh.

Raises before any task runs: UnknownDependencyError (a ValueError) naming the task and the missing id;
CycleError (a ValueError) naming the cycle (`.cycle` lists it in run order); RuntimeError when this
scheduler is already running or closed. A task's own exception (any Exception subclass) never
propagates: it is stored as the TaskResult's `error`, the very object raised, traceback included.

Interruption: Ctrl-C (or any signal handler that raises) during run() cancels the run: tasks not yet
started are never called, tasks running finish their current attempt (threads cannot be interrupted),
then run() raises the KeyboardInterrupt. The same happens when a task raises a BaseException that is
not an Exception (KeyboardInterrupt, SystemExit, GeneratorExit, ...): such an exception is a request
to stop, not a task failure, so the run is cancelled, the task is not retried, and run() re-raises
that exception object (no results are returned). Either way the scheduler is ready for another run().

At interpreter exit, a run still in flight in a daemon thread is cancelled and the exit waits for its
running tasks to finish their attempt (as concurrent.futures waits for its workers); that run returns
with the unstarted tasks "cancelled", and run() raises RuntimeError from then on.)doc";

}  // namespace

PYBIND11_MODULE(_dagsched, m) {
  py::options options;
  options.disable_function_signatures();
  m.doc() = module_doc;
  m.attr("__version__") = dagsched::version_string;

  if (!dagsched_python::add_task_result_type(m.ptr())) {
    throw py::error_already_set();
  }

  g_graph_error = new_exception(m, "GraphError", PyExc_ValueError,
                                "The task graph is malformed. Raised before any task runs; a ValueError.");
  g_duplicate_task_error = new_exception(m, "DuplicateTaskError", g_graph_error,
                                         "add_task() was given an id already registered (`.task_id`).");
  g_unknown_dependency_error =
      new_exception(m, "UnknownDependencyError", g_graph_error,
                    "run() found a dependency on an id never registered (`.task_id` depends on `.dependency`).");
  g_cycle_error = new_exception(m, "CycleError", g_graph_error,
                                "run() found a dependency cycle. `.cycle` lists its task ids in the order they would "
                                "have had to run; the message reads 'cycle: a -> b -> a'.");
  // Module-local: the catch-alls for std::invalid_argument and std::logic_error must not change how other
  // pybind11 modules in the process translate their exceptions.
  py::register_local_exception_translator(translate_engine_errors);

  // The collector must see the task bodies a scheduler owns: `scheduler.add_task("t", lambda:
  // scheduler...)` is a cycle (scheduler -> engine -> body -> closure -> scheduler) that would otherwise
  // keep the scheduler, and its worker threads, alive for good.
  auto gc_support = py::custom_type_setup([](PyHeapTypeObject* heap_type) {
    PyTypeObject* type = &heap_type->ht_type;
    type->tp_flags |= Py_TPFLAGS_HAVE_GC;
    type->tp_traverse = [](PyObject* self, visitproc visit, void* arg) -> int {
      Py_VISIT(Py_TYPE(self));  // instances of a heap type own a reference to it
      const auto* scheduler = scheduler_of(self);
      return scheduler != nullptr ? scheduler->traverse(visit, arg) : 0;
    };
    type->tp_clear = [](PyObject* self) -> int {
      if (auto* scheduler = scheduler_of(self)) {
        scheduler->clear();
      }
      return 0;
    };
  });
  py::class_<PyScheduler> cls(m, "TaskScheduler", scheduler_doc, gc_support);
  cls.def(py::init<const py::object&>(), py::arg("max_workers") = 4,
          "__init__($self, /, max_workers=4)\n--\n\nStarts `max_workers` worker threads.")
      .def("run", &PyScheduler::run, run_doc)
      .def("close", &PyScheduler::close,
           "close($self, /)\n--\n\nJoins the worker threads and drops every task. Later add_task() and run() "
           "raise RuntimeError. Idempotent; RuntimeError during run().")
      .def(
          "__enter__", [](py::object self) { return self; }, "__enter__($self, /)\n--\n\nReturns self.")
      .def(
          "__exit__",
          [](PyScheduler& self, const py::args&) {
            self.close();
            return false;
          },
          "__exit__($self, /, *exc_info)\n--\n\nCalls close().")
      .def_property_readonly("max_workers", &PyScheduler::max_workers, "Number of worker threads.")
      .def_property_readonly("closed", &PyScheduler::closed, "Whether close() was called.")
      .def("__len__", &PyScheduler::size, "__len__($self, /)\n--\n\nNumber of registered tasks.")
      .def("__contains__", &PyScheduler::contains,
           "__contains__($self, task_id, /)\n--\n\nWhether a task with this id is registered.")
      .def("__repr__", [](const PyScheduler& self) {
        return "TaskScheduler(max_workers=" + std::to_string(self.max_workers()) +
               ", tasks=" + std::to_string(self.size()) + (self.closed() ? ", closed" : "") + ")";
      });
  cls.attr("__module__") = "dagsched";

  // add_task as a plain method descriptor with METH_FASTCALL (see add_task_fast); `static` because the
  // descriptor keeps pointing at this definition.
  static PyMethodDef add_task_def = {"add_task",
                                     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(add_task_fast)),
                                     METH_FASTCALL | METH_KEYWORDS, add_task_doc};
  py::object add_task =
      py::reinterpret_steal<py::object>(PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), &add_task_def));
  if (!add_task) {
    throw py::error_already_set();
  }
  cls.attr("add_task") = add_task;

  py::module_::import("atexit").attr("register")(py::cpp_function(&PyScheduler::cancel_runs_at_exit));
}
