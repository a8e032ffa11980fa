// dagsched Python module: owning Python references that any thread may copy or destroy.
//
// The engine keeps a task's return value in a std::any and its exception in a std::exception_ptr, and
// it overwrites or destroys both on its worker threads, which never hold the GIL (a retry replaces the
// previous attempt's exception; a later run overwrites last run's slots). A bare py::object there would
// drop its reference without the GIL. `GilRef` takes the GIL itself whenever it touches a reference
// count, so it is safe wherever the engine puts it.
#pragma once

#include <Python.h>

#include <dagsched/errors.hpp>

#include <exception>
#include <utility>

namespace dagsched_python {

/// Gives the calling thread a Python thread state for the rest of its life, unless it already has one.
///
/// Why: PyGILState_Ensure on a thread without a thread state creates one and PyGILState_Release deletes
/// it again, costing microseconds on each of the engine worker's per-task GIL acquisitions. Pinning one
/// per worker makes every later acquisition a plain GIL take. When the worker exits (joined by the
/// scheduler's destructor, GIL held), its thread state is handed to that destructor to delete.
void pin_thread_state() noexcept;

/// Whether Py_FinalizeEx has begun. From then on, the thread states of every thread but the finalizing
/// one are deleted, ours included.
inline bool interpreter_finalizing() noexcept {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing() != 0;
#else
  return _Py_IsFinalizing() != 0;
#endif
}

/// Called by a thread that needs the GIL once the interpreter is finalizing and the thread's state is
/// gone: it can never run Python again. Like CPython's own daemon threads, it stops here for good.
/// A last resort: the atexit hook (PyScheduler::cancel_runs_at_exit) ends every run before finalization.
[[noreturn]] void park_forever() noexcept;

/// Holds the GIL for its scope, from any thread (the engine's workers included). Reentrant.
class GilGuard {
 public:
  GilGuard() noexcept {
    if (interpreter_finalizing()) {
#if PY_VERSION_HEX >= 0x030D0000
      PyThreadState* const holder = PyThreadState_GetUnchecked();
#else
      PyThreadState* const holder = _PyThreadState_UncheckedGet();
#endif
      if (PyGILState_GetThisThreadState() != holder) {  // not the finalizing thread, which holds the GIL
        park_forever();
      }
    }
    pin_thread_state();
    m_state = PyGILState_Ensure();
  }
  ~GilGuard() { PyGILState_Release(m_state); }
  GilGuard(const GilGuard&) = delete;
  GilGuard& operator=(const GilGuard&) = delete;

 private:
  PyGILState_STATE m_state;
};

/// One strong reference to a Python object (or none). Copy and destruction take the GIL when they must,
/// so a `GilRef` may live in engine-owned storage and die on any thread. Moves never touch Python.
///
/// `take()` hands the reference to the caller (GIL held) and leaves this empty: the results dict takes
/// each value out of the engine's result slots, so the scheduler does not keep the last run's values
/// alive and the next run overwrites empty slots without needing the GIL. It is `const` because the
/// engine hands its slots out as const; the slot is the binding's own, read once, by one thread.
class GilRef {
 public:
  GilRef() noexcept = default;

  /// Adopts a new reference (`obj` may be null). No GIL needed.
  static GilRef steal(PyObject* obj) noexcept {
    GilRef ref;
    ref.m_obj = obj;
    return ref;
  }
  /// Takes a new reference to `obj`. The caller holds the GIL.
  static GilRef borrow(PyObject* obj) noexcept {
    Py_XINCREF(obj);
    return steal(obj);
  }

  GilRef(const GilRef& other) noexcept : m_obj(other.m_obj) {
    if (m_obj != nullptr) {
      GilGuard gil;
      Py_INCREF(m_obj);
    }
  }
  GilRef(GilRef&& other) noexcept : m_obj(std::exchange(other.m_obj, nullptr)) {}
  GilRef& operator=(GilRef other) noexcept {
    std::swap(m_obj, other.m_obj);
    return *this;
  }
  ~GilRef() { reset(); }

  void reset() noexcept {
    if (PyObject* obj = std::exchange(m_obj, nullptr)) {
      // After Py_Finalize there is no GIL to take: leaking is the only safe choice.
      if (Py_IsInitialized() != 0) {
        GilGuard gil;
        Py_DECREF(obj);
      }
    }
  }

  [[nodiscard]] PyObject* get() const noexcept { return m_obj; }
  [[nodiscard]] explicit operator bool() const noexcept { return m_obj != nullptr; }

  /// Returns the reference (a new one for the caller; null if empty) and leaves this empty.
  [[nodiscard]] PyObject* take() const noexcept { return std::exchange(m_obj, nullptr); }

 private:
  mutable PyObject* m_obj = nullptr;
};

/// The Python exception object inside a C++ exception thrown by a task wrapper. Not itself a
/// std::exception: each wrapper exception derives from this and from exactly one std::exception, so that
/// `catch (const std::exception&)` stays unambiguous while `catch (const PyExceptionRef&)` finds the
/// Python object in either.
class PyExceptionRef {
 public:
  explicit PyExceptionRef(GilRef exc) noexcept : m_exc(std::move(exc)) {}
  /// The exception object (a new reference), or null if already taken. GIL held.
  [[nodiscard]] PyObject* take() const noexcept { return m_exc.take(); }
  /// The exception object, borrowed (null if taken), left in place: for a TaskContext, which reads a
  /// dependency's error while the run still owns it. GIL held.
  [[nodiscard]] PyObject* peek() const noexcept { return m_exc.get(); }

 protected:
  ~PyExceptionRef() = default;
  PyExceptionRef(const PyExceptionRef&) = default;
  PyExceptionRef& operator=(const PyExceptionRef&) = default;

 private:
  GilRef m_exc;
};

/// What a task wrapper throws into the engine when the Python callable raised: the exception object
/// itself (its __traceback__ set), so `TaskResult.error` is the very object that was raised.
class PyTaskError : public std::exception, public PyExceptionRef {
 public:
  explicit PyTaskError(GilRef exc) noexcept : PyExceptionRef(std::move(exc)) {}
  [[nodiscard]] const char* what() const noexcept override { return "dagsched: a Python task raised an exception"; }
};

/// As PyTaskError, for an instance of the Python `dagsched.PermanentError`: derives from the engine's
/// `PermanentError`, which tells the engine not to retry.
class PyPermanentError : public dagsched::PermanentError, public PyExceptionRef {
 public:
  explicit PyPermanentError(GilRef exc)
      : dagsched::PermanentError("dagsched: a Python task raised PermanentError"), PyExceptionRef(std::move(exc)) {}
};

/// Thrown by a task wrapper that refuses to call its Python callable because the run is being aborted
/// (a task raised KeyboardInterrupt, SystemExit, ...). Never reaches Python: run() raises the abort
/// exception instead of returning results.
class TaskAborted : public std::exception {
 public:
  [[nodiscard]] const char* what() const noexcept override { return "dagsched: run aborted"; }
};

}  // namespace dagsched_python
