// dagsched Python module: the extension `dagsched._dagsched`. The package `dagsched` (python/dagsched/)
// re-exports everything here; this file only declares the Python-facing names, docs and errors.
#include <pybind11/eval.h>
#include <pybind11/pybind11.h>

#include <dagsched/dagsched.hpp>

#include <array>
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
using dagsched_python::PyRun;
using dagsched_python::PyScheduler;
using dagsched_python::PyTaskContext;

namespace {

// The exception classes, created at import and owned by the module for the life of the process (the
// translator may run at any later time, so it cannot depend on a module reference).
PyObject* g_graph_error = nullptr;
PyObject* g_duplicate_task_error = nullptr;
PyObject* g_unknown_dependency_error = nullptr;
PyObject* g_cycle_error = nullptr;
PyObject* g_resource_error = nullptr;

// The task-facing exception classes, in Python: users subclass PermanentError, and TimeoutError takes
// keyword attributes, both of which are plainer to write as Python classes than through the C API.
constexpr const char* task_errors_source = R"py(
class PermanentError(Exception):
    """Raised by a task (or a subclass of it raised) to say that retrying cannot help: the task fails at
    once, whatever retries it has left. retry_if is not consulted."""

class TimeoutError(TimeoutError):
    """The error of a task attempt that outlived its `timeout`, or a task whose `deadline` passed.

    A subclass of the builtin TimeoutError. Attributes: task_id, attempt (the attempt that overran,
    1 for the first), limit (the limit that expired, in seconds), deadline (True for the task's total
    deadline, False for the per-attempt timeout) and cause (what the overrunning attempt raised, often
    its reaction to stop_requested(), else None; also set as __cause__)."""

    def __init__(self, *args, task_id=None, attempt=0, limit=0.0, deadline=False, cause=None):
        super().__init__(*args)
        self.task_id = task_id
        self.attempt = attempt
        self.limit = limit
        self.deadline = deadline
        self.cause = cause
)py";

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
  } catch (const dagsched::ResourceError& e) {
    raise_with(g_resource_error, e.what(), {{"task_id", py::str(e.task_id())}, {"pool", py::str(e.pool())}});
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
  using dagsched_python::add_task_arg_names;
  constexpr auto n_params = static_cast<Py_ssize_t>(dagsched_python::add_task_arg_count);
  constexpr auto n_positional = static_cast<Py_ssize_t>(dagsched_python::add_task_positional);
  const auto& names = add_task_arg_names;
  try {
    PyScheduler& scheduler = py::cast<PyScheduler&>(py::handle(self));
    std::array<PyObject*, dagsched_python::add_task_arg_count> values{};
    if (nargs > n_positional) {
      throw py::type_error("add_task() takes at most 4 positional arguments (" + std::to_string(nargs) +
                           " given); the options are keyword-only");
    }
    for (Py_ssize_t i = 0; i < nargs; ++i) {
      values[static_cast<std::size_t>(i)] = args[i];
    }
    const Py_ssize_t n_kw = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < n_kw; ++k) {
      PyObject* name = PyTuple_GET_ITEM(kwnames, k);
      Py_ssize_t slot = 0;
      while (slot < n_params && PyUnicode_CompareWithASCIIString(name, names[static_cast<std::size_t>(slot)]) != 0) {
        ++slot;
      }
      if (slot == n_params) {
        throw py::type_error("add_task() got an unexpected keyword argument '" + py::str(name).cast<std::string>() +
                             "'");
      }
      auto& value = values[static_cast<std::size_t>(slot)];
      if (value != nullptr) {
        throw py::type_error(std::string("add_task() got multiple values for argument '") +
                             names[static_cast<std::size_t>(slot)] + "'");
      }
      value = args[nargs + k];
    }
    for (std::size_t i = 0; i < 2; ++i) {
      if (values[i] == nullptr) {
        throw py::type_error(std::string("add_task() missing required argument '") + names[i] + "'");
      }
    }
    scheduler.add_task(values.data());
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

Runs a DAG of callables (taking no arguments, or one TaskContext) on `max_workers` worker threads of
the dagsched C++ engine.

Tasks are registered with add_task() and all run by run(), which returns {task_id: TaskResult}.
A task starts as soon as every one of its dependencies has succeeded; a task that raises is retried
up to `retries` more times, and when every attempt failed it ends "failed" and everything downstream
of it ends "skipped" without being called, while independent branches complete normally.

The worker threads are created here and reused by every run(); close() (or leaving a `with` block, or
garbage collection) joins them. The GIL is held only while a task's callable runs, so I/O-bound tasks
(sleep, subprocess, sockets) overlap; CPU-bound pure-Python tasks are serialised by the GIL as usual.

Resource pools (add_resource(), add_task(..., resources=...)) cap how many units of a resource running
tasks hold at once; add_task's priority and cost and run(order=...) choose which ready task starts first.

Raises ValueError when max_workers < 1, TypeError when it is not an int.)doc";

constexpr const char* add_task_doc =
    R"doc(add_task($self, /, task_id, execute_fn, dependencies=None, retries=0, *, retry_delay=0, backoff=1, max_delay=None, jitter=0, retry_if=None, timeout=None, deadline=None, trigger='all_success', resources=None, priority=0, cost=1.0, context=None)
--

Registers task `task_id` (a non-empty str) running `execute_fn()` once every task in `dependencies`
(a set, frozenset, list or tuple of ids, or None) has succeeded, attempted at most `retries + 1` times.
Dependencies may name tasks registered later; they are checked by run().

Keyword-only options (durations in seconds, an int, float or datetime.timedelta):
  retry_delay, backoff, max_delay, jitter: wait min(max_delay, retry_delay * backoff**(k-1)) before
    retry k, shortened by up to `jitter` (0..1) of itself. A waiting task holds no worker thread.
  retry_if: a callable given the exception of a failed attempt; a false result fails the task at once.
    An exception it raises goes to sys.unraisablehook and counts as false. A dagsched.PermanentError
    (or subclass) is never retried.
  timeout: longest one attempt may take; deadline: longest all attempts together may take, retry waits
    included. An attempt that overruns counts as failed with a dagsched.TimeoutError, whatever it
    returned (a Python thread cannot be interrupted: a task that can stop early polls
    ctx.stop_requested()).
  trigger: 'all_success' (the default: run once every dependency succeeded) or 'all_done' (run once
    every dependency has finished, whatever its status: for cleanup work).
  resources: units of resource pools (see add_resource) that each attempt holds while it runs, as a
    mapping {pool: units} or a sequence of (pool, units) pairs (units an int >= 1). All are taken at
    once before an attempt starts and given back when it ends; a task waiting for units holds no
    worker thread. A pool never declared, or more units than its capacity, makes run() raise
    ResourceError.
  priority: an int; among ready tasks, a higher priority starts first (whatever the run's `order`,
    except 'depth_first'), and among tasks waiting for the same pool units it is served first.
  cost: the relative cost of one attempt (a finite number >= 0, in any unit all tasks share; 1 by
    default): its weight on the critical paths that run(order='critical_path') follows.
  context: whether execute_fn takes a TaskContext. None (the default) decides from its signature: a
    callable with exactly one required positional parameter gets one, any other is called with no
    arguments. True or False overrides that.

Raises DuplicateTaskError (a ValueError) when `task_id` is already registered; ValueError for an empty
id, negative `retries` or an option out of range; TypeError for a non-str id, a non-callable
`execute_fn`, a malformed `dependencies` or `resources`, or an option of the wrong type; RuntimeError
when called during run() (from a task, for instance) or after close(). A rejected call leaves the
scheduler unchanged.)doc";

constexpr const char* run_doc =
    R"doc(run($self, /, *, failure_policy='keep_going', seed=0, order='critical_path', order_threshold=None)
--

Runs every registered task once and returns {task_id: TaskResult} (a dict, in add_task order). May be
called again: each call starts afresh. Same as start(...).wait().

failure_policy: 'keep_going' (the spec's behaviour: a failure skips its downstream tasks, every
independent branch still runs), 'fail_fast' (the first task that fails for good cancels the rest of
the run: tasks not yet started end 'cancelled'), or an int n >= 1 (cancel at the n-th failure).
seed: seeds the retry jitter, so that runs with the same non-zero seed wait the same; 0 draws a fresh one.
order: which ready tasks start first when there are more than free workers, after each task's
`priority`: 'critical_path' (the default: the task with the most work still ahead of it, the sum of
`cost` along its longest path to a sink, first; ties in add_task order), 'fifo' (in the order tasks
became ready, roots in add_task order) or 'depth_first' (each worker runs next the task it readied
last; no ordering, the least overhead; priorities ignored except among tasks waiting for pool units).
With max_workers=1 the start order is exactly this order.
order_threshold: seconds (or a timedelta); None for the default, 20 microseconds. Ordering costs a little
per task, so with the default order and no priority or cost given, each worker times its tasks in
windows and runs depth-first while they average under this; 0 orders every task, however short.
'fifo', priorities and costs are always kept.

Raises before any task runs: UnknownDependencyError (a ValueError) naming the task and the missing id;
CycleError (a ValueError) naming the cycle (`.cycle` lists it in run order); ResourceError (a
ValueError) for a task needing a pool never declared or more units than its capacity (`.task_id`,
`.pool`); RuntimeError when this scheduler is already running or closed; TypeError or ValueError for a
bad option. A task's own exception (any Exception subclass) never propagates: it is stored as the
TaskResult's `error`, the very object raised, traceback included.

Interruption: Ctrl-C (or any signal handler that raises) during run() cancels the run: tasks not yet
started are never called, tasks running finish their current attempt (threads cannot be interrupted;
a task taking a TaskContext sees stop_requested()), then run() raises the KeyboardInterrupt. The same
happens when a task raises a BaseException that is not an Exception (KeyboardInterrupt, SystemExit,
GeneratorExit, ...): such an exception is a request to stop, not a task failure, so the run is
cancelled, the task is not retried, and run() re-raises that exception object (no results are
returned). Either way the scheduler is ready for another run().

At interpreter exit, a run still in flight in a daemon thread is cancelled and the exit waits for its
running tasks to finish their attempt (as concurrent.futures waits for its workers); that run returns
with the unstarted tasks "cancelled", and run() raises RuntimeError from then on.)doc";

constexpr const char* start_doc =
    R"doc(start($self, /, *, failure_policy='keep_going', seed=0, order='critical_path', order_threshold=None)
--

Starts running every registered task and returns at once with a RunHandle: wait(timeout=None) for
the results, done(), cancel(), progress(). Options and errors as for run(). Until the handle's
wait() has returned (or the handle is garbage-collected, which cancels the run and waits for its
running tasks), add_task(), run(), start() and close() raise RuntimeError.)doc";

constexpr const char* add_resource_doc = R"doc(add_resource($self, /, name, capacity)
--

Declares resource pool `name` (a non-empty str) of `capacity` units (an int >= 1): GPUs, database
connections, licences... Tasks ask for units with add_task(..., resources={name: units}); never more
than `capacity` units are held at once, whatever max_workers is. Pools stay declared for every later
run.

Raises ValueError for an empty name, a name already declared or a capacity < 1; TypeError for a
non-str name or a non-int capacity; RuntimeError when called during run() or after close().)doc";

constexpr const char* run_handle_doc = R"doc(A run started by TaskScheduler.start().

wait(timeout=None) returns the results dict once every task has a final status; done() says whether it
would return at once; cancel() cancels the run from any thread; progress() reports how far it has got.
Dropping the handle before wait() returned cancels the run and waits for its running tasks.)doc";

constexpr const char* wait_doc = R"doc(wait($self, /, timeout=None)
--

Waits, with the GIL released, until every task has a final status, then returns {task_id: TaskResult}:
the same dict object on every later call. With `timeout` (seconds), raises the builtin TimeoutError if
the run is still going by then; the run goes on and wait() may be called again. Only one thread at a
time may wait (RuntimeError otherwise). Ctrl-C, and a task's KeyboardInterrupt or SystemExit, cancel
the run and propagate as in TaskScheduler.run(); later calls return the cancelled run's results.)doc";

constexpr const char* task_context_doc = R"doc(What a task taking one parameter is given for each attempt.

task_id, attempt (1 for the first), last_error (what the previous attempt raised, else None),
stop_requested() (True once the attempt's timeout or the task's deadline expired, or the run was
cancelled), result(dep_id) (a direct dependency's return value, the object itself) and dependency(dep_id)
(its TaskResult). Valid during the call it is given to; afterwards only stop_requested() works and the
other members raise RuntimeError.)doc";

constexpr const char* progress_doc =
    R"doc(How far a run has got: total, finished, running, waiting (for a delayed retry), and of finished:
succeeded, failed, skipped, cancelled. A snapshot that may lag the workers by a task or two until the
run is done. Immutable; compares by value; _asdict() gives a dict.)doc";

py::dict progress_dict(const dagsched::Progress& p) {
  py::dict d;
  d["total"] = p.total;
  d["finished"] = p.finished;
  d["running"] = p.running;
  d["waiting"] = p.waiting;
  d["succeeded"] = p.succeeded;
  d["failed"] = p.failed;
  d["skipped"] = p.skipped;
  d["cancelled"] = p.cancelled;
  return d;
}

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
  g_resource_error = new_exception(m, "ResourceError", g_graph_error,
                                   "run() found a task (`.task_id`) needing resource pool `.pool`, which was never "
                                   "declared with add_resource(), or more units of it than its capacity.");
  {
    py::dict ns;
    ns["__builtins__"] = py::module_::import("builtins");
    ns["__name__"] = "dagsched";
    py::exec(task_errors_source, ns);
    for (const char* name : {"PermanentError", "TimeoutError"}) {
      m.add_object(name, ns[name]);
    }
    // Owned for the life of the process, as the other exception classes are.
    dagsched_python::g_types.permanent_error = py::object(ns["PermanentError"]).release().ptr();
    dagsched_python::g_types.timeout_error = py::object(ns["TimeoutError"]).release().ptr();
  }
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
      .def("run", &PyScheduler::run, py::kw_only(), py::arg("failure_policy") = "keep_going", py::arg("seed") = 0,
           py::arg("order") = "critical_path", py::arg("order_threshold") = py::none(), run_doc)
      .def(
          "start",
          [](py::object self, const py::object& failure_policy, const py::object& seed, const py::object& order,
             const py::object& order_threshold) {
            return self.cast<PyScheduler&>().start(self, failure_policy, seed, order, order_threshold);
          },
          py::kw_only(), py::arg("failure_policy") = "keep_going", py::arg("seed") = 0,
          py::arg("order") = "critical_path", py::arg("order_threshold") = py::none(), start_doc)
      .def("add_resource", &PyScheduler::add_resource, py::arg("name"), py::arg("capacity"), add_resource_doc)
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

  py::class_<PyTaskContext> ctx(m, "TaskContext", task_context_doc);
  ctx.def_property_readonly(
         "task_id", [](const PyTaskContext& c) { return c.task_id; }, "This task's id.")
      .def_property_readonly(
          "attempt", [](const PyTaskContext& c) { return c.attempt; },
          "This attempt's number: 1 for the first, 2 for the first retry, ...")
      .def_property_readonly("last_error", &PyTaskContext::last_error,
                             "What the previous attempt raised (a dagsched.TimeoutError if it overran), or None "
                             "on the first attempt.")
      .def(
          "stop_requested", [](const PyTaskContext& c) { return c.stop.stop_requested(); },
          "stop_requested($self, /)\n--\n\nTrue once this attempt's timeout or the task's deadline has expired, "
          "or the run is cancelled: a task that can stop early should poll it and return or raise. Callable "
          "from any thread.")
      .def("result", &PyTaskContext::result, py::arg("dependency_id"),
           "result($self, /, dependency_id)\n--\n\nThe value direct dependency `dependency_id` returned: the "
           "object itself, not a copy. KeyError if it is not a direct dependency of this task; ValueError if "
           "it did not succeed (possible with trigger='all_done').")
      .def("dependency", &PyTaskContext::dependency, py::arg("dependency_id"),
           "dependency($self, /, dependency_id)\n--\n\nThe TaskResult of direct dependency `dependency_id` (its "
           "`result` and `error` are the objects themselves). KeyError if it is not a direct dependency.")
      .def("__repr__", [](const PyTaskContext& c) {
        return "<TaskContext task_id=" + py::repr(c.task_id).cast<std::string>() +
               " attempt=" + std::to_string(c.attempt) + (c.ctx == nullptr ? " (finished)>" : ">");
      });
  ctx.attr("__module__") = "dagsched";

  py::class_<dagsched::Progress> progress(m, "Progress", progress_doc);
  progress.def_readonly("total", &dagsched::Progress::total, "Tasks in the run.")
      .def_readonly("finished", &dagsched::Progress::finished, "Tasks with a final status.")
      .def_readonly("running", &dagsched::Progress::running, "Tasks inside an attempt right now.")
      .def_readonly("waiting", &dagsched::Progress::waiting, "Tasks waiting for a delayed retry.")
      .def_readonly("succeeded", &dagsched::Progress::succeeded, "Of finished: 'success'.")
      .def_readonly("failed", &dagsched::Progress::failed, "Of finished: 'failed'.")
      .def_readonly("skipped", &dagsched::Progress::skipped, "Of finished: 'skipped'.")
      .def_readonly("cancelled", &dagsched::Progress::cancelled, "Of finished: 'cancelled'.")
      .def(
          "_asdict", [](const dagsched::Progress& p) { return progress_dict(p); },
          "_asdict($self, /)\n--\n\nThe counts as a dict.")
      .def("__eq__",
           [](const dagsched::Progress& a, const py::object& b) -> py::object {
             if (!py::isinstance<dagsched::Progress>(b)) {
               return py::reinterpret_borrow<py::object>(Py_NotImplemented);
             }
             return py::bool_(progress_dict(a).equal(progress_dict(b.cast<const dagsched::Progress&>())));
           })
      .def("__repr__", [](const dagsched::Progress& p) {
        std::string text = "Progress(";
        const char* sep = "";
        for (const auto& [name, value] : progress_dict(p)) {
          text += sep + name.cast<std::string>() + "=" + py::str(value).cast<std::string>();
          sep = ", ";
        }
        return text + ")";
      });
  progress.attr("__hash__") = py::none();
  progress.attr("__module__") = "dagsched";

  py::class_<PyRun> handle(m, "RunHandle", run_handle_doc);
  handle.def("wait", &PyRun::wait, py::arg("timeout") = py::none(), wait_doc)
      .def("done", &PyRun::done,
           "done($self, /)\n--\n\nWhether every task has a final status (wait() then "
           "returns at once).")
      .def("cancel", &PyRun::cancel,
           "cancel($self, /)\n--\n\nCancels the run: tasks not started end 'cancelled' without being called, "
           "tasks waiting for a retry end 'cancelled', running attempts see stop_requested() and finish. "
           "Idempotent, never blocks; callable from any thread, a task included.")
      .def("progress", &PyRun::progress,
           "progress($self, /)\n--\n\nHow far the run has got, as a Progress (a snapshot, exact once done()). "
           "Callable from any thread.")
      .def("__repr__", [](const PyRun& r) {
        const dagsched::Progress p = r.progress();
        return "<RunHandle " + std::to_string(p.finished) + "/" + std::to_string(p.total) + " finished" +
               (r.done() ? ", done>" : ">");
      });
  handle.attr("__module__") = "dagsched";

  py::module_::import("atexit").attr("register")(py::cpp_function(&PyScheduler::cancel_runs_at_exit));
}
