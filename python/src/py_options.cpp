// dagsched Python module: add_task's and run()'s keyword options, parsed into the engine's option structs.
#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "py_convert.hpp"
#include "py_scheduler.hpp"

namespace py = pybind11;

namespace dagsched_python {

namespace {

std::string type_name(PyObject* obj) { return Py_TYPE(obj)->tp_name; }

// `value` as a float, for an int or float (not a bool); `datetime.timedelta`s too when `duration`.
double number_arg(PyObject* value, const std::string& where, const char* name, bool duration) {
  py::object seconds;
  if (duration && !PyLong_Check(value) && !PyFloat_Check(value) && PyObject_HasAttrString(value, "total_seconds")) {
    seconds = py::reinterpret_steal<py::object>(PyObject_CallMethod(value, "total_seconds", nullptr));
    if (!seconds) {
      throw py::error_already_set();
    }
    value = seconds.ptr();
  }
  if (PyBool_Check(value) || (!PyLong_Check(value) && !PyFloat_Check(value))) {
    throw py::type_error(where + name + " must be " + (duration ? "a number of seconds" : "a number") + ", not " +
                         type_name(value));
  }
  const double d = PyFloat_AsDouble(value);
  if (d == -1.0 && PyErr_Occurred() != nullptr) {
    throw py::error_already_set();  // an int too large for a float
  }
  if (std::isnan(d)) {
    throw py::value_error(where + name + " must not be NaN");
  }
  return d;
}

// Seconds as nanoseconds: at least 1 ns for any positive value (0 means "no limit" to the engine),
// saturating at the largest duration (infinity included).
std::chrono::nanoseconds seconds_arg(PyObject* value, const std::string& where, const char* name, bool positive) {
  const double s = number_arg(value, where, name, true);
  if (positive ? !(s > 0) : !(s >= 0)) {
    throw py::value_error(where + name +
                          (positive ? " must be greater than 0 (None for no limit)" : " must not be negative"));
  }
  const double ns = std::ceil(s * 1e9);
  if (ns >= static_cast<double>(std::numeric_limits<std::int64_t>::max())) {
    return std::chrono::nanoseconds::max();
  }
  return std::chrono::nanoseconds(static_cast<std::int64_t>(ns));
}

bool given(PyObject* arg) noexcept { return arg != nullptr && arg != Py_None; }

// One resource request: `pool` a non-empty str, `units` an int from 1 to 2**32 - 1.
dagsched::ResourceRequest resource_request(PyObject* pool, PyObject* units, const std::string& where) {
  if (!PyUnicode_Check(pool)) {
    throw py::type_error(where + "resources: a pool name must be a str, not " + type_name(pool));
  }
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(pool, &size);
  if (data == nullptr) {
    throw py::error_already_set();
  }
  std::string name(data, static_cast<std::size_t>(size));
  if (name.empty()) {
    throw py::value_error(where + "resources: a pool name must not be empty");
  }
  if (!PyLong_Check(units) || PyBool_Check(units)) {
    throw py::type_error(where + "resources: the units of pool '" + name + "' must be an int, not " + type_name(units));
  }
  int overflow = 0;
  const long long n = PyLong_AsLongLongAndOverflow(units, &overflow);
  if (overflow != 0 || n < 1 || n > UINT32_MAX) {
    throw py::value_error(where + "resources: the units of pool '" + name + "' must be between 1 and " +
                          std::to_string(UINT32_MAX) + ", not " + py::repr(units).cast<std::string>());
  }
  return {std::move(name), static_cast<std::uint32_t>(n)};
}

// add_task's `resources`: a mapping {pool: units}, or an iterable of (pool, units) pairs. The same pool
// named twice (in pairs) adds up, as in the engine.
std::vector<dagsched::ResourceRequest> resources_arg(PyObject* value, const std::string& where) {
  const std::string expected = "resources must be a mapping {pool: units} or a sequence of (pool, units) pairs";
  std::vector<dagsched::ResourceRequest> requests;
  if (PyDict_CheckExact(value)) {
    Py_ssize_t pos = 0;
    PyObject* pool = nullptr;
    PyObject* units = nullptr;
    // No Python code runs in the loop (the checks call no method), so the dict cannot change under it.
    while (PyDict_Next(value, &pos, &pool, &units) != 0) {
      requests.push_back(resource_request(pool, units, where));
    }
    return requests;
  }
  if (PyUnicode_Check(value) || PyBytes_Check(value)) {
    throw py::type_error(where + expected + ", not a single " + type_name(value));
  }
  py::object items;
  if (PyMapping_Check(value) != 0 && PyObject_HasAttrString(value, "keys") != 0) {
    // Any other mapping (a dict subclass, MappingProxyType, a collections.abc.Mapping): its items().
    items = py::reinterpret_steal<py::object>(PyMapping_Items(value));
  } else if (Py_TYPE(value)->tp_iter != nullptr || PySequence_Check(value) != 0) {
    items = py::reinterpret_steal<py::object>(PySequence_List(value));
  } else {
    throw py::type_error(where + expected + ", not " + type_name(value));
  }
  if (!items) {
    throw py::error_already_set();
  }
  // A list of its own: whatever the items' own code does, nothing else holds it.
  for (Py_ssize_t i = 0, n = PyList_GET_SIZE(items.ptr()); i < n; ++i) {
    PyObject* item = PyList_GET_ITEM(items.ptr(), i);
    if (!PyTuple_Check(item) && !PyList_Check(item)) {
      throw py::type_error(where + expected + "; an item is " + type_name(item) + ", not a (pool, units) pair");
    }
    if (PySequence_Fast_GET_SIZE(item) != 2) {
      throw py::type_error(where + expected + "; an item of length " + std::to_string(PySequence_Fast_GET_SIZE(item)) +
                           " is not a (pool, units) pair");
    }
    // Held: the item's own pool and units stay alive while it does, and `items` holds the item.
    PyObject** pair = PySequence_Fast_ITEMS(item);
    requests.push_back(resource_request(pair[0], pair[1], where));
  }
  return requests;
}

// The engine's retry_if: asks the Python predicate about the Python form of the error. Runs on a worker
// thread, taking the GIL. An exception from the predicate is reported to sys.unraisablehook and counts as
// "do not retry", so a broken predicate cannot retry forever.
class PyRetryIf {
 public:
  PyRetryIf(GilRef fn, RunControl* control) noexcept : m_fn(std::move(fn)), m_control(control) {}
  bool operator()(const std::exception_ptr& error) const noexcept {
    GilGuard gil;
    if (m_control->abort_exc) {
      return false;  // the run is being aborted (KeyboardInterrupt, ...): no retry
    }
    try {
      std::rethrow_exception(error);
    } catch (const TaskAborted&) {
      return false;
    } catch (...) {  // a Python exception, or an engine TimeoutError
    }
    PyObject* exc = error_object(error, Access::peek);
    PyObject* verdict = exc != nullptr ? PyObject_CallOneArg(m_fn.get(), exc) : nullptr;
    Py_XDECREF(exc);
    const int again = verdict != nullptr ? PyObject_IsTrue(verdict) : -1;
    Py_XDECREF(verdict);
    if (again < 0) {
      PyErr_WriteUnraisable(m_fn.get());
      return false;
    }
    return again == 1;
  }

 private:
  GilRef m_fn;
  RunControl* m_control;
};

}  // namespace

std::optional<dagsched::TaskOptions> task_options(PyObject* const* args, const std::string& id, RunControl* control) {
  bool any = false;
  for (std::size_t i = arg_retry_delay; i <= arg_cost; ++i) {
    any = any || given(args[i]);
  }
  if (!any) {
    return std::nullopt;
  }
  const std::string where = "add_task('" + id + "'): ";
  dagsched::TaskOptions options;
  dagsched::RetryPolicy& retry = options.retry;
  if (given(args[arg_retry_delay])) {
    retry.delay = seconds_arg(args[arg_retry_delay], where, "retry_delay", false);
  }
  if (given(args[arg_backoff])) {
    retry.backoff = number_arg(args[arg_backoff], where, "backoff", false);
    if (!(retry.backoff >= 1.0) || !std::isfinite(retry.backoff)) {
      throw py::value_error(where + "backoff must be a finite number >= 1");
    }
  }
  if (given(args[arg_max_delay])) {
    retry.max_delay = seconds_arg(args[arg_max_delay], where, "max_delay", false);
  }
  if (given(args[arg_jitter])) {
    retry.jitter = number_arg(args[arg_jitter], where, "jitter", false);
    if (!(retry.jitter >= 0.0 && retry.jitter <= 1.0)) {
      throw py::value_error(where + "jitter must be between 0 and 1");
    }
  }
  if (given(args[arg_timeout])) {
    options.timeout = seconds_arg(args[arg_timeout], where, "timeout", true);
  }
  if (given(args[arg_deadline])) {
    options.deadline = seconds_arg(args[arg_deadline], where, "deadline", true);
  }
  if (PyObject* trigger = args[arg_trigger]; given(trigger)) {
    if (!PyUnicode_Check(trigger)) {
      throw py::type_error(where + "trigger must be 'all_success' or 'all_done', not " + type_name(trigger));
    }
    if (PyUnicode_CompareWithASCIIString(trigger, "all_done") == 0) {
      options.trigger = dagsched::TriggerRule::all_done;
    } else if (PyUnicode_CompareWithASCIIString(trigger, "all_success") != 0) {
      throw py::value_error(where + "trigger must be 'all_success' or 'all_done', not " +
                            py::repr(trigger).cast<std::string>());
    }
  }
  if (PyObject* resources = args[arg_resources]; given(resources)) {
    options.resources = resources_arg(resources, where);
  }
  if (PyObject* priority = args[arg_priority]; given(priority)) {
    if (!PyLong_Check(priority) || PyBool_Check(priority)) {
      throw py::type_error(where + "priority must be an int, not " + type_name(priority));
    }
    int overflow = 0;
    const long long p = PyLong_AsLongLongAndOverflow(priority, &overflow);
    if (overflow != 0 || p < INT_MIN || p > INT_MAX) {
      throw py::value_error(where + "priority must be between " + std::to_string(INT_MIN) + " and " +
                            std::to_string(INT_MAX));
    }
    options.priority = static_cast<int>(p);
  }
  if (given(args[arg_cost])) {
    options.cost = number_arg(args[arg_cost], where, "cost", false);
    if (!(options.cost >= 0.0) || !std::isfinite(options.cost)) {
      throw py::value_error(where + "cost must be a finite number >= 0");
    }
  }
  // Last: nothing after it can fail, so the reference it takes is never dropped here without the engine.
  if (PyObject* retry_if = args[arg_retry_if]; given(retry_if)) {
    if (PyCallable_Check(retry_if) == 0) {
      throw py::type_error(where + "retry_if must be callable, not " + type_name(retry_if));
    }
    retry.retry_if = PyRetryIf(GilRef::borrow(retry_if), control);
  }
  return options;
}

bool takes_context(PyObject* execute_fn, PyObject* context, const std::string& id) {
  if (given(context)) {
    if (!PyBool_Check(context)) {
      throw py::type_error("add_task('" + id + "'): context must be True, False or None, not " + type_name(context));
    }
    return context == Py_True;
  }
  // Plain functions and bound methods, nearly every task: read from the code object, which costs next to
  // nothing. Anything else (partials, callable objects, builtins) asks inspect.signature(), once per add_task.
  PyObject* fn = execute_fn;
  Py_ssize_t bound = 0;
  if (PyMethod_Check(fn) != 0) {
    fn = PyMethod_GET_FUNCTION(fn);
    bound = 1;
  }
  if (PyFunction_Check(fn) != 0) {
    const auto* code = reinterpret_cast<PyCodeObject*>(PyFunction_GET_CODE(fn));
    PyObject* defaults = PyFunction_GET_DEFAULTS(fn);
    const Py_ssize_t n_defaults = defaults != nullptr ? PyTuple_GET_SIZE(defaults) : 0;
    return code->co_argcount - n_defaults - bound == 1;
  }
  static PyObject* const signature = [] {
    PyObject* inspect = PyImport_ImportModule("inspect");
    PyObject* f = inspect != nullptr ? PyObject_GetAttrString(inspect, "signature") : nullptr;
    Py_XDECREF(inspect);
    return f;  // kept for the life of the process
  }();
  if (signature == nullptr) {
    throw py::error_already_set();
  }
  py::object sig = py::reinterpret_steal<py::object>(PyObject_CallOneArg(signature, execute_fn));
  if (!sig) {
    PyErr_Clear();  // no signature to read (some builtins): called with no arguments, as the spec says
    return false;
  }
  const py::object empty = sig.attr("empty");
  int required = 0;
  for (const py::handle param : sig.attr("parameters").attr("values")()) {
    const py::object kind = param.attr("kind");
    if ((kind.equal(param.attr("POSITIONAL_ONLY")) || kind.equal(param.attr("POSITIONAL_OR_KEYWORD"))) &&
        py::object(param.attr("default")).is(empty)) {
      ++required;
    }
  }
  return required == 1;
}

dagsched::RunOptions run_options(const py::object& failure_policy, const py::object& seed, const py::object& order,
                                 const py::object& order_threshold) {
  dagsched::RunOptions options;
  if (given(order_threshold.ptr())) {
    options.order_threshold = seconds_arg(order_threshold.ptr(), "", "order_threshold", false);
  }
  constexpr const char* orders = "'critical_path', 'fifo' or 'depth_first'";
  if (!PyUnicode_Check(order.ptr())) {
    throw py::type_error(std::string("order must be ") + orders + ", not " + type_name(order.ptr()));
  }
  if (PyUnicode_CompareWithASCIIString(order.ptr(), "fifo") == 0) {
    options.order = dagsched::ReadyOrder::fifo;
  } else if (PyUnicode_CompareWithASCIIString(order.ptr(), "depth_first") == 0) {
    options.order = dagsched::ReadyOrder::depth_first;
  } else if (PyUnicode_CompareWithASCIIString(order.ptr(), "critical_path") != 0) {
    throw py::value_error(std::string("order must be ") + orders + ", not " + py::repr(order).cast<std::string>());
  }
  PyObject* policy = failure_policy.ptr();
  if (PyUnicode_Check(policy)) {
    if (PyUnicode_CompareWithASCIIString(policy, "fail_fast") == 0) {
      options.failure_policy = dagsched::FailurePolicy::fail_fast();
    } else if (PyUnicode_CompareWithASCIIString(policy, "keep_going") != 0) {
      throw py::value_error("failure_policy must be 'keep_going', 'fail_fast' or a number of failures, not " +
                            py::repr(policy).cast<std::string>());
    }
  } else if (PyLong_Check(policy) && !PyBool_Check(policy)) {
    int overflow = 0;
    const long long n = PyLong_AsLongLongAndOverflow(policy, &overflow);
    if (overflow < 0 || (overflow == 0 && n < 1)) {
      throw py::value_error("failure_policy: the number of failures must be at least 1");
    }
    options.failure_policy = dagsched::FailurePolicy::max_failures(
        overflow > 0 || n > UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(n));
  } else {
    throw py::type_error("failure_policy must be 'keep_going', 'fail_fast' or an int, not " + type_name(policy));
  }
  if (!PyLong_Check(seed.ptr()) || PyBool_Check(seed.ptr())) {
    throw py::type_error("seed must be an int, not " + type_name(seed.ptr()));
  }
  options.seed = PyLong_AsUnsignedLongLong(seed.ptr());
  if (PyErr_Occurred() != nullptr) {
    PyErr_Clear();
    throw py::value_error("seed must be between 0 and 2**64 - 1");
  }
  return options;
}

}  // namespace dagsched_python
