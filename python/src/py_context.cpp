// dagsched Python module: the Python `TaskContext`, a view of the engine's context for one attempt.
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "py_convert.hpp"
#include "py_scheduler.hpp"

namespace py = pybind11;

namespace dagsched_python {

namespace {

std::string_view view_of(const py::str& id) {
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(id.ptr(), &size);
  if (data == nullptr) {
    throw py::error_already_set();
  }
  return {data, static_cast<std::size_t>(size)};
}

}  // namespace

GilRef make_context(dagsched::TaskContext& ctx, PyTaskContext*& view) noexcept {
  try {
    auto holder = std::make_unique<PyTaskContext>();
    holder->ctx = &ctx;
    holder->stop = ctx.stop_token();
    holder->task_id = py::str(ctx.id());
    holder->attempt = ctx.attempt();
    view = holder.get();
    py::object obj = py::cast(std::move(holder));
    return GilRef::steal(obj.release().ptr());
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  return {};
}

const dagsched::TaskContext& PyTaskContext::get() const {
  if (ctx == nullptr) {
    throw std::runtime_error("this TaskContext's attempt has returned; a TaskContext is only valid during its call");
  }
  return *ctx;
}

py::object PyTaskContext::last_error() const {
  const std::exception_ptr& error = get().last_error();
  if (!error) {
    return py::none();
  }
  PyObject* exc = error_object(error, Access::peek);
  if (exc == nullptr) {
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::object>(exc);
}

py::object PyTaskContext::dependency(const py::str& dependency_id) const {
  const dagsched::TaskContext& c = get();
  const dagsched::TaskResult* result = nullptr;
  try {
    result = &c.dependency(view_of(dependency_id));
  } catch (const std::out_of_range& e) {
    throw py::key_error(e.what());
  }
  PyObject* obj = task_result_object(*result, Access::peek);
  if (obj == nullptr) {
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::object>(obj);
}

py::object PyTaskContext::result(const py::str& dependency_id) const {
  const dagsched::TaskContext& c = get();
  const dagsched::TaskResult* result = nullptr;
  try {
    result = &c.dependency(view_of(dependency_id));
  } catch (const std::out_of_range& e) {
    throw py::key_error(e.what());
  }
  if (result->status != dagsched::Status::success) {
    throw py::value_error("task '" + c.id() + "': dependency '" + std::string(view_of(dependency_id)) +
                          "' did not succeed (it is " + std::string(dagsched::to_string(result->status)) +
                          "); use dependency() to see its TaskResult");
  }
  const auto* stored = std::any_cast<GilRef>(&result->result);
  return py::reinterpret_borrow<py::object>(stored != nullptr && stored->get() != nullptr ? stored->get() : Py_None);
}

}  // namespace dagsched_python
