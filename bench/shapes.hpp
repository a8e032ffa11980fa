// dagsched_bench: the benchmark graphs, their generator and the task bodies every engine shares.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dagsched_bench {

/// The splitmix64 generator the benchmark spec prescribes, so every engine (and every reader) gets the
/// same random graph from the same seed.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) noexcept : m_state(seed) {}
  std::uint64_t operator()() noexcept {
    m_state += 0x9E3779B97F4A7C15ULL;
    std::uint64_t z = m_state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t m_state;
};

/// What a task body does.
enum class BodyKind : std::uint8_t {
  empty,   ///< nothing
  spin,    ///< spins `spin_us` microseconds on steady_clock
  faults,  ///< nothing, except the tasks marked `faulty`, which throw on every attempt
};

/// Final status a task must end with, as the spec's skip-on-failure semantics define it.
enum class Expected : std::uint8_t { success, failed, skipped };

/// One benchmark graph. Every dependency of task i has an index below i, so index order is a topological
/// order (the serial engine relies on it). Dependencies are stored in CSR form.
struct Shape {
  std::string name;
  std::uint32_t size = 0;
  std::vector<std::uint32_t> dep_begin;  // size + 1 offsets into deps
  std::vector<std::uint32_t> deps;
  BodyKind body = BodyKind::empty;
  int retries = 0;
  std::vector<std::uint8_t> faulty;  // one flag per task (faults shapes only)

  // Derived facts, computed by finish().
  std::size_t roots = 0;
  std::size_t depth = 0;  // number of levels: tasks on the longest path
  std::vector<std::uint32_t> roots_list;
  std::vector<Expected> expected;
  std::size_t expected_failed = 0;
  std::size_t expected_skipped = 0;

  [[nodiscard]] std::span<const std::uint32_t> deps_of(std::uint32_t task) const noexcept {
    return {deps.data() + dep_begin[task], deps.data() + dep_begin[task + 1]};
  }
  [[nodiscard]] std::size_t edges() const noexcept { return deps.size(); }
  [[nodiscard]] std::size_t expected_success() const noexcept { return size - expected_failed - expected_skipped; }
};

/// Appends `k` distinct dependencies of task `i`, each drawn as `rng() % i` (redrawn on a duplicate): the
/// spec's rule for the `random` shapes, shared by the makespan graph.
void draw_dependencies(SplitMix64& rng, std::uint32_t i, std::uint64_t k, std::vector<std::uint32_t>& deps);

/// Microseconds a `random_spin` body spins.
inline constexpr int spin_us = 10;

/// Names of every shape, in report order.
[[nodiscard]] std::span<const std::string_view> shape_names() noexcept;

/// Builds shape `name`; throws std::invalid_argument for an unknown name.
[[nodiscard]] Shape make_shape(std::string_view name);

/// A chain of `size` tasks (the memory and --huge measurements use longer chains than the `chain` shape).
[[nodiscard]] Shape make_chain(std::uint32_t size);

/// Checks the `random` generator against the numbers the spec gives (20,099 edges, 1,959 roots, depth 35).
/// Returns an empty string when they match, else a description of the mismatch.
[[nodiscard]] std::string check_random_generator();

/// The ids the `ids` API registers: "t0", "t1", ...
[[nodiscard]] std::vector<std::string> make_ids(std::uint32_t size);

// The task bodies, out of line so no engine gets a body the compiler could fold away.

/// Spins `spin_us` microseconds.
void spin_body();

/// Thrown by a faulty body.
struct BenchFault {
  std::uint32_t task;
};

/// Throws BenchFault{task}.
[[noreturn]] void throw_fault(std::uint32_t task);

}  // namespace dagsched_bench
