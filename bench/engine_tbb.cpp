// dagsched_bench: oneTBB flow_graph, the reference engine. Built only when CMake found oneTBB.
#include <string>

#include "engines.hpp"

#ifdef DAGSCHED_BENCH_HAVE_TBB

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>

#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/version.h>

namespace dagsched_bench {

namespace {

using Msg = tbb::flow::continue_msg;
using Node = tbb::flow::continue_node<Msg>;

// Nodes live in one array (placement new) rather than one heap block each: that is the stronger baseline,
// as tbb still allocates the body and the edge caches of each node itself.
struct alignas(Node) NodeSlot {
  unsigned char bytes[sizeof(Node)];
};

class TbbInstance final : public Instance {
 public:
  // The arena's concurrency counts the thread that calls execute(): arena(2) runs bodies on the calling
  // thread plus one tbb worker, as dagsched(2) runs them on two workers while the caller waits.
  TbbInstance(const Shape& shape, std::size_t workers) : m_shape(shape), m_arena(static_cast<int>(workers)) {
    m_arena.initialize();
    // A graph made inside execute() attaches to this arena, so its tasks run there.
    m_arena.execute([this] { m_graph.emplace(); });
  }

  ~TbbInstance() override {
    for (std::uint32_t i = m_built; i > 0; --i) {
      node(i - 1).~Node();
    }
    m_graph.reset();
  }

  TbbInstance(const TbbInstance&) = delete;
  TbbInstance& operator=(const TbbInstance&) = delete;
  TbbInstance(TbbInstance&&) = delete;
  TbbInstance& operator=(TbbInstance&&) = delete;

  void build_graph() override {
    m_slots = std::make_unique<NodeSlot[]>(m_shape.size);
    tbb::flow::graph& g = *m_graph;
    for (std::uint32_t i = 0; i < m_shape.size; ++i) {
      void* where = m_slots[i].bytes;
      switch (m_shape.body) {
        case BodyKind::empty:
          ::new (where) Node(g, [](const Msg&) {});
          break;
        case BodyKind::spin:
          ::new (where) Node(g, [](const Msg&) { spin_body(); });
          break;
        case BodyKind::faults:
          // tbb has no retries: the body makes its retries+1 attempts itself; its successors still run.
          if (m_shape.faulty[i] != 0) {
            ::new (where) Node(g, [i, attempts = m_shape.retries + 1](const Msg&) {
              for (int a = 0; a < attempts; ++a) {
                try {
                  throw_fault(i);
                } catch (const BenchFault&) {
                  // every attempt fails
                }
              }
            });
          } else {
            ::new (where) Node(g, [](const Msg&) {});
          }
          break;
      }
      m_built = i + 1;
      for (std::uint32_t p : m_shape.deps_of(i)) {
        tbb::flow::make_edge(node(p), node(i));
      }
    }
  }

  void run() override {
    m_arena.execute([this] {
      for (std::uint32_t r : m_shape.roots_list) {
        node(r).try_put(Msg());
      }
      m_graph->wait_for_all();
    });
  }

  std::string run_and_check() override {
    run();
    return {};
  }

 private:
  Node& node(std::uint32_t i) noexcept { return *std::launder(reinterpret_cast<Node*>(m_slots[i].bytes)); }

  const Shape& m_shape;
  tbb::task_arena m_arena;
  std::optional<tbb::flow::graph> m_graph;
  std::unique_ptr<NodeSlot[]> m_slots;
  std::uint32_t m_built = 0;
};

class TbbEngine final : public Engine {
 public:
  [[nodiscard]] std::string_view name() const noexcept override { return "tbb"; }
  [[nodiscard]] std::string_view api() const noexcept override { return "-"; }
  [[nodiscard]] std::unique_ptr<Instance> create(const Shape& shape, const std::vector<std::string>& /*ids*/,
                                                 std::size_t workers) const override {
    return std::make_unique<TbbInstance>(shape, workers);
  }
};

}  // namespace

std::unique_ptr<Engine> make_tbb_engine() { return std::make_unique<TbbEngine>(); }

std::string tbb_description() {
  return "oneTBB " TBB_VERSION_STRING " (runtime " + std::to_string(TBB_runtime_interface_version()) +
         "), flow_graph continue_node";
}

}  // namespace dagsched_bench

#else  // !DAGSCHED_BENCH_HAVE_TBB

namespace dagsched_bench {

std::unique_ptr<Engine> make_tbb_engine() { return nullptr; }

std::string tbb_description() {
  return "oneTBB not found at configure time: the tbb engine is not built (apt-get install libtbb-dev)";
}

}  // namespace dagsched_bench

#endif
