// dagsched_bench: the dagsched engine, with its two ways of naming dependencies.
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "dagsched/dagsched.hpp"
#include "engines.hpp"

namespace dagsched_bench {

namespace {

dagsched::RunOptions run_options;  // set once by main, before any engine runs

// Handles == true: dependencies are the TaskHandles add_task returned (no string lookup); false: the
// dependencies' string ids.
template <bool Handles>
class DagschedInstance final : public Instance {
 public:
  DagschedInstance(const Shape& shape, const std::vector<std::string>& ids, std::size_t workers)
      : m_shape(shape), m_ids(ids), m_sched(workers) {}

  void build_graph() override {
    if constexpr (Handles) {
      m_handles.resize(m_shape.size);
    }
    for (std::uint32_t i = 0; i < m_shape.size; ++i) {
      switch (m_shape.body) {
        case BodyKind::empty:
          add(i, [] {});
          break;
        case BodyKind::spin:
          add(i, [] { spin_body(); });
          break;
        case BodyKind::faults:
          if (m_shape.faulty[i] != 0) {
            add(i, [i] { throw_fault(i); });
          } else {
            add(i, [] {});
          }
          break;
      }
    }
  }

  void run() override { static_cast<void>(m_sched.run(run_options)); }

  void run_keep() override {
    m_kept = dagsched::ResultSet();
    m_kept = m_sched.run(run_options);
  }

  std::string run_and_check() override {
    const dagsched::ResultSet results = m_sched.run(run_options);
    if (results.size() != m_shape.size) {
      return "run() returned " + std::to_string(results.size()) + " results for " + std::to_string(m_shape.size) +
             " tasks";
    }
    for (std::uint32_t i = 0; i < m_shape.size; ++i) {
      const dagsched::TaskResult* r = results.find(m_ids[i]);
      if (r == nullptr) {
        return "no result for " + m_ids[i];
      }
      dagsched::Status want = dagsched::Status::success;
      int attempts = 1;
      switch (m_shape.expected[i]) {
        case Expected::success:
          break;
        case Expected::failed:
          want = dagsched::Status::failed;
          attempts = m_shape.retries + 1;
          break;
        case Expected::skipped:
          want = dagsched::Status::skipped;
          attempts = 0;
          break;
      }
      if (r->status != want || r->attempts != attempts) {
        return m_ids[i] + " ended " + std::string(dagsched::to_string(r->status)) + " after " +
               std::to_string(r->attempts) + " attempts, expected " + std::string(dagsched::to_string(want)) +
               " after " + std::to_string(attempts);
      }
    }
    return {};
  }

 private:
  [[nodiscard]] dagsched::DependencyRef dep(std::uint32_t task) const noexcept {
    if constexpr (Handles) {
      return m_handles[task];
    } else {
      return m_ids[task];
    }
  }

  // Braced lists for up to four dependencies (every shape here): the initializer_list overload of
  // add_task, which is what a user writing a fixed graph would call, and which never allocates.
  template <class F>
  void add(std::uint32_t i, F&& body) {
    const std::span<const std::uint32_t> d = m_shape.deps_of(i);
    const std::string& id = m_ids[i];
    const int retries = m_shape.retries;
    dagsched::TaskHandle h;
    switch (d.size()) {
      case 0:
        h = m_sched.add_task(id, std::forward<F>(body), {}, retries);
        break;
      case 1:
        h = m_sched.add_task(id, std::forward<F>(body), {dep(d[0])}, retries);
        break;
      case 2:
        h = m_sched.add_task(id, std::forward<F>(body), {dep(d[0]), dep(d[1])}, retries);
        break;
      case 3:
        h = m_sched.add_task(id, std::forward<F>(body), {dep(d[0]), dep(d[1]), dep(d[2])}, retries);
        break;
      case 4:
        h = m_sched.add_task(id, std::forward<F>(body), {dep(d[0]), dep(d[1]), dep(d[2]), dep(d[3])}, retries);
        break;
      default: {
        std::vector<dagsched::DependencyRef> refs;
        refs.reserve(d.size());
        for (std::uint32_t p : d) {
          refs.push_back(dep(p));
        }
        h = m_sched.add_task(id, std::forward<F>(body), refs, retries);
        break;
      }
    }
    if constexpr (Handles) {
      m_handles[i] = h;
    }
  }

  const Shape& m_shape;
  const std::vector<std::string>& m_ids;
  dagsched::TaskScheduler m_sched;
  std::vector<dagsched::TaskHandle> m_handles;
  dagsched::ResultSet m_kept;
};

template <bool Handles>
class DagschedEngine final : public Engine {
 public:
  [[nodiscard]] std::string_view name() const noexcept override { return "dagsched"; }
  [[nodiscard]] std::string_view api() const noexcept override { return Handles ? "handles" : "ids"; }
  [[nodiscard]] std::unique_ptr<Instance> create(const Shape& shape, const std::vector<std::string>& ids,
                                                 std::size_t workers) const override {
    return std::make_unique<DagschedInstance<Handles>>(shape, ids, workers);
  }
};

}  // namespace

std::unique_ptr<Engine> make_dagsched_engine(bool handles) {
  if (handles) {
    return std::make_unique<DagschedEngine<true>>();
  }
  return std::make_unique<DagschedEngine<false>>();
}

bool set_dagsched_order(std::string_view order, double threshold_us) {
  if (order == "critical_path") {
    run_options.order = dagsched::ReadyOrder::critical_path;
  } else if (order == "fifo") {
    run_options.order = dagsched::ReadyOrder::fifo;
  } else if (order == "depth_first") {
    run_options.order = dagsched::ReadyOrder::depth_first;
  } else if (!order.empty()) {
    return false;
  }
  if (threshold_us >= 0) {
    run_options.order_threshold = std::chrono::nanoseconds(static_cast<std::int64_t>(threshold_us * 1000.0));
  }
  return true;
}

}  // namespace dagsched_bench
