// dagsched_bench: the serial floor. One thread calls the bodies in index order, which every shape makes a
// topological order; with faults it also does what the spec asks of a scheduler: retries, then skips the
// descendants of a failed task.
#include <cstdint>
#include <functional>
#include <string>

#include "engines.hpp"

namespace dagsched_bench {

namespace {

class SerialInstance final : public Instance {
 public:
  explicit SerialInstance(const Shape& shape) : m_shape(shape) {}

  void build_graph() override {
    const std::uint32_t n = m_shape.size;
    m_bodies.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) {
      switch (m_shape.body) {
        case BodyKind::empty:
          m_bodies.emplace_back([] {});
          break;
        case BodyKind::spin:
          m_bodies.emplace_back([] { spin_body(); });
          break;
        case BodyKind::faults:
          if (m_shape.faulty[i] != 0) {
            m_bodies.emplace_back([i] { throw_fault(i); });
          } else {
            m_bodies.emplace_back([] {});
          }
          break;
      }
    }
    // The serial engine owns its copy of the graph, as the others do; only the faults path reads it.
    m_dep_begin = m_shape.dep_begin;
    m_deps = m_shape.deps;
    m_status.assign(n, Expected::skipped);
  }

  void run() override {
    if (m_shape.body != BodyKind::faults) {
      for (auto& body : m_bodies) {
        body();
      }
      return;
    }
    run_with_faults();
  }

  std::string run_and_check() override {
    run();
    if (m_shape.body != BodyKind::faults) {
      return {};
    }
    for (std::uint32_t i = 0; i < m_shape.size; ++i) {
      if (m_status[i] != m_shape.expected[i]) {
        return "serial status of task " + std::to_string(i) + " differs from the expected one";
      }
    }
    return {};
  }

 private:
  void run_with_faults() {
    const std::size_t n = m_bodies.size();
    for (std::size_t i = 0; i < n; ++i) {
      bool deps_ok = true;
      for (std::uint32_t k = m_dep_begin[i]; k < m_dep_begin[i + 1]; ++k) {
        if (m_status[m_deps[k]] != Expected::success) {
          deps_ok = false;
          break;
        }
      }
      if (!deps_ok) {
        m_status[i] = Expected::skipped;
        continue;
      }
      m_status[i] = Expected::failed;
      for (int attempt = 0; attempt <= m_shape.retries; ++attempt) {
        try {
          m_bodies[i]();
          m_status[i] = Expected::success;
          break;
        } catch (const BenchFault&) {
          // retried, then left failed
        }
      }
    }
  }

  const Shape& m_shape;
  std::vector<std::function<void()>> m_bodies;
  std::vector<std::uint32_t> m_dep_begin;
  std::vector<std::uint32_t> m_deps;
  std::vector<Expected> m_status;
};

class SerialEngine final : public Engine {
 public:
  [[nodiscard]] std::string_view name() const noexcept override { return "serial"; }
  [[nodiscard]] std::string_view api() const noexcept override { return "-"; }
  [[nodiscard]] std::unique_ptr<Instance> create(const Shape& shape, const std::vector<std::string>& /*ids*/,
                                                 std::size_t /*workers*/) const override {
    return std::make_unique<SerialInstance>(shape);
  }
};

}  // namespace

std::unique_ptr<Engine> make_serial_engine() { return std::make_unique<SerialEngine>(); }

}  // namespace dagsched_bench
