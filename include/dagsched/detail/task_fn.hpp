// dagsched internal: a type-erased, move-only task body.
//
// Not part of the public API. `TaskScheduler::add_task` wraps any callable in a `TaskFn`, so the engine
// stores every task body in one flat array without a heap allocation for small closures. Why not
// std::function: it needs copyable callables, and std::move_only_function is C++23.
#pragma once

#include <any>
#include <cstddef>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace dagsched {
class TaskContext;
}

namespace dagsched::detail {

class TaskFn {
 public:
  TaskFn() noexcept = default;

  template <class F>
  requires(!std::is_same_v<std::decay_t<F>, TaskFn>) explicit TaskFn(F&& f) {
    using Fn = std::decay_t<F>;
    if constexpr (fits_inline<Fn>) {
      ::new (static_cast<void*>(m_buf)) Fn(std::forward<F>(f));
    } else {
      ::new (static_cast<void*>(m_buf)) Fn*(new Fn(std::forward<F>(f)));
    }
    m_vt = &vtable_for<Fn>;
  }

  TaskFn(TaskFn&& other) noexcept : m_vt(other.m_vt) {
    if (m_vt != nullptr) {
      relocate_from(other);
    }
  }

  TaskFn& operator=(TaskFn&& other) noexcept {
    if (this != &other) {
      reset();
      m_vt = other.m_vt;
      if (m_vt != nullptr) {
        relocate_from(other);
      }
    }
    return *this;
  }

  TaskFn(const TaskFn&) = delete;
  TaskFn& operator=(const TaskFn&) = delete;
  ~TaskFn() { reset(); }

  /// Calls the body once. A value it returns is stored in `out`; a void body leaves `out` empty.
  /// Whatever the body throws propagates. `ctx` must be non-null for a body that takes a context.
  void operator()(std::any& out) { m_vt->invoke(m_buf, out); }
  /// As above, for a body that may take a context (`takes_context()`); `ctx` is passed to it.
  void operator()(std::any& out, TaskContext& ctx) { m_vt->invoke_with(m_buf, out, ctx); }

  /// The call operator's target, apart: `invoker()(storage(), out)` is `(*this)(out)`. A run copies the
  /// invokers into an array of their own, so that calling an empty closure reads nothing in the node.
  using Invoker = void (*)(void* self, std::any& out);
  [[nodiscard]] Invoker invoker() const noexcept { return m_vt->invoke; }
  [[nodiscard]] void* storage() noexcept { return m_buf; }

  [[nodiscard]] explicit operator bool() const noexcept { return m_vt != nullptr; }

  /// Whether the body takes a `TaskContext&`.
  [[nodiscard]] bool takes_context() const noexcept { return m_vt != nullptr && m_vt->takes_context; }

  /// Whether the body returns a value (stored in the result slot); false for void bodies and when empty.
  [[nodiscard]] bool returns_value() const noexcept { return m_vt != nullptr && m_vt->returns_value; }

  /// Whether destroying this does nothing (empty, or a closure stored inline with a trivial destructor:
  /// lambdas capturing references, pointers or numbers). Its owner may then end its lifetime without
  /// calling the destructor, which saves a large graph's teardown a pass over its nodes.
  [[nodiscard]] bool trivially_destructible() const noexcept { return m_vt == nullptr || m_vt->destroy == nullptr; }

 private:
  static constexpr std::size_t inline_size = 2 * sizeof(void*);

  template <class Fn>
  static constexpr bool fits_inline = sizeof(Fn) <= inline_size &&
                                      alignof(Fn) <= alignof(void*) && std::is_nothrow_move_constructible_v<Fn>;

  // `relocate` is null where a copy of the inline bytes is the move (trivially copyable closures), and
  // `destroy` where destruction does nothing: no indirect call for the common lambdas.
  struct VTable {
    void (*invoke)(void* self, std::any& out);
    void (*invoke_with)(void* self, std::any& out, TaskContext& ctx);
    void (*relocate)(void* dst, void* src) noexcept;
    void (*destroy)(void* self) noexcept;
    bool takes_context;
    bool returns_value;
  };

  template <class Fn>
  static constexpr bool copied_as_bytes = fits_inline<Fn> ? std::is_trivially_copyable_v<Fn> : false;
  template <class Fn>
  static constexpr bool nothing_to_destroy = fits_inline<Fn> ? std::is_trivially_destructible_v<Fn> : false;

  // A body invocable both ways gets no context: the spec's form wins.
  template <class Fn>
  static constexpr bool wants_context = !std::is_invocable_v<Fn&> && std::is_invocable_v<Fn&, TaskContext&>;

  template <class Fn>
  static Fn& target(void* self) noexcept {
    if constexpr (fits_inline<Fn>) {
      return *std::launder(static_cast<Fn*>(self));
    } else {
      return **std::launder(static_cast<Fn**>(self));
    }
  }

  // The fast path's entry: no context argument to pass. A body that wants a context is always called
  // through invoke_with (the engine checks takes_context() first), so this one never runs for it.
  template <class Fn>
  static void invoke_impl(void* self, std::any& out) {
    if constexpr (wants_context<Fn>) {
      std::terminate();
    } else {
      using R = std::invoke_result_t<Fn&>;
      if constexpr (std::is_void_v<R>) {
        std::invoke(target<Fn>(self));
        out.reset();
      } else {
        out = std::invoke(target<Fn>(self));
      }
    }
  }

  template <class Fn>
  static void invoke_with_impl(void* self, std::any& out, [[maybe_unused]] TaskContext& ctx) {
    if constexpr (wants_context<Fn>) {
      using R = std::invoke_result_t<Fn&, TaskContext&>;
      if constexpr (std::is_void_v<R>) {
        std::invoke(target<Fn>(self), ctx);
        out.reset();
      } else {
        out = std::invoke(target<Fn>(self), ctx);
      }
    } else {
      invoke_impl<Fn>(self, out);
    }
  }

  template <class Fn>
  static void relocate_impl(void* dst, void* src) noexcept {
    if constexpr (fits_inline<Fn>) {
      Fn& from = *std::launder(static_cast<Fn*>(src));
      ::new (dst) Fn(std::move(from));
      from.~Fn();
    } else {
      ::new (dst) Fn*(*std::launder(static_cast<Fn**>(src)));
    }
  }

  template <class Fn>
  static void destroy_impl(void* self) noexcept {
    if constexpr (fits_inline<Fn>) {
      std::launder(static_cast<Fn*>(self))->~Fn();
    } else {
      delete *std::launder(static_cast<Fn**>(self));
    }
  }

  template <class Fn>
  static constexpr bool non_void = [] {
    if constexpr (wants_context<Fn>) {
      return !std::is_void_v<std::invoke_result_t<Fn&, TaskContext&>>;
    } else {
      return !std::is_void_v<std::invoke_result_t<Fn&>>;
    }
  }();

  template <class Fn>
  static constexpr VTable vtable_for{&invoke_impl<Fn>,
                                     &invoke_with_impl<Fn>,
                                     copied_as_bytes<Fn> ? nullptr : &relocate_impl<Fn>,
                                     nothing_to_destroy<Fn> ? nullptr : &destroy_impl<Fn>,
                                     wants_context<Fn>,
                                     non_void<Fn>};

  // `m_vt` is set and `other.m_vt` is the same: moves the closure here and empties `other`.
  void relocate_from(TaskFn& other) noexcept {
    if (m_vt->relocate != nullptr) {
      m_vt->relocate(m_buf, other.m_buf);
    } else {
      std::memcpy(m_buf, other.m_buf, inline_size);
    }
    other.m_vt = nullptr;
  }

  void reset() noexcept {
    if (m_vt != nullptr) {
      if (m_vt->destroy != nullptr) {
        m_vt->destroy(m_buf);
      }
      m_vt = nullptr;
    }
  }

  const VTable* m_vt = nullptr;
  alignas(void*) unsigned char m_buf[inline_size];
};

}  // namespace dagsched::detail
