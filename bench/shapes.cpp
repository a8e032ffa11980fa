// dagsched_bench: the shapes of the benchmark spec, built deterministically.
#include "shapes.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <stdexcept>

namespace dagsched_bench {

namespace {

constexpr std::uint64_t random_seed = 20240607;
constexpr std::uint32_t random_size = 10'000;
constexpr std::uint32_t chain_size = 100'000;
constexpr std::uint32_t independent_size = 100'000;
constexpr std::uint32_t bintree_size = (1U << 17) - 1;
constexpr std::uint32_t wavefront_side = 300;

constexpr std::array<std::string_view, 7> all_names{"chain",  "independent", "bintree",      "wavefront",
                                                    "random", "random_spin", "random_faults"};

// Fills the derived facts: roots, depth, and the status each task must end with.
void finish(Shape& s) {
  s.roots_list.clear();
  std::vector<std::uint32_t> level(s.size, 1);
  s.expected.assign(s.size, Expected::success);
  s.expected_failed = 0;
  s.expected_skipped = 0;
  s.depth = 0;
  for (std::uint32_t i = 0; i < s.size; ++i) {
    bool dep_ok = true;
    for (std::uint32_t p : s.deps_of(i)) {
      level[i] = std::max(level[i], level[p] + 1);
      dep_ok = dep_ok && s.expected[p] == Expected::success;
    }
    if (s.dep_begin[i] == s.dep_begin[i + 1]) {
      s.roots_list.push_back(i);
    }
    s.depth = std::max<std::size_t>(s.depth, level[i]);
    if (!dep_ok) {
      s.expected[i] = Expected::skipped;
      ++s.expected_skipped;
    } else if (!s.faulty.empty() && s.faulty[i] != 0) {
      s.expected[i] = Expected::failed;
      ++s.expected_failed;
    }
  }
  s.roots = s.roots_list.size();
}

// Starts a shape of `size` tasks; the caller appends each task's dependencies then calls close_task.
Shape start(std::string_view name, std::uint32_t size) {
  Shape s;
  s.name = std::string(name);
  s.size = size;
  s.dep_begin.reserve(std::size_t{size} + 1);
  s.dep_begin.push_back(0);
  return s;
}

void close_task(Shape& s) { s.dep_begin.push_back(static_cast<std::uint32_t>(s.deps.size())); }

// The random graph of the spec. The generator is returned too, as the faults draw continues from it.
Shape make_random(std::string_view name, SplitMix64& rng) {
  Shape s = start(name, random_size);
  close_task(s);  // task 0 has no dependency
  for (std::uint32_t i = 1; i < random_size; ++i) {
    draw_dependencies(rng, i, std::min<std::uint64_t>(rng() % 5, i), s.deps);
    close_task(s);
  }
  return s;
}

}  // namespace

std::span<const std::string_view> shape_names() noexcept { return all_names; }

Shape make_chain(std::uint32_t size) {
  Shape s = start("chain", size);
  s.deps.reserve(size);
  for (std::uint32_t i = 0; i < size; ++i) {
    if (i > 0) {
      s.deps.push_back(i - 1);
    }
    close_task(s);
  }
  finish(s);
  return s;
}

Shape make_shape(std::string_view name) {
  if (name == "chain") {
    return make_chain(chain_size);
  }
  Shape s;
  if (name == "independent") {
    s = start(name, independent_size);
    for (std::uint32_t i = 0; i < independent_size; ++i) {
      close_task(s);
    }
  } else if (name == "bintree") {
    s = start(name, bintree_size);
    for (std::uint32_t i = 0; i < bintree_size; ++i) {
      if (i > 0) {
        s.deps.push_back((i - 1) / 2);
      }
      close_task(s);
    }
  } else if (name == "wavefront") {
    s = start(name, wavefront_side * wavefront_side);
    for (std::uint32_t r = 0; r < wavefront_side; ++r) {
      for (std::uint32_t c = 0; c < wavefront_side; ++c) {
        if (c > 0) {
          s.deps.push_back(r * wavefront_side + c - 1);
        }
        if (r > 0) {
          s.deps.push_back((r - 1) * wavefront_side + c);
        }
        close_task(s);
      }
    }
  } else if (name == "random" || name == "random_spin" || name == "random_faults") {
    SplitMix64 rng(random_seed);
    s = make_random(name, rng);
    if (name == "random_spin") {
      s.body = BodyKind::spin;
    } else if (name == "random_faults") {
      // 1% of the tasks, drawn from the same generator after the graph, distinct.
      s.body = BodyKind::faults;
      s.retries = 2;
      s.faulty.assign(s.size, 0);
      std::uint32_t chosen = 0;
      while (chosen < s.size / 100) {
        const auto t = static_cast<std::uint32_t>(rng() % s.size);
        if (s.faulty[t] == 0) {
          s.faulty[t] = 1;
          ++chosen;
        }
      }
    }
  } else {
    throw std::invalid_argument("unknown shape: " + std::string(name));
  }
  finish(s);
  return s;
}

std::string check_random_generator() {
  const Shape s = make_shape("random");
  if (s.edges() == 20'099 && s.roots == 1'959 && s.depth == 35) {
    return {};
  }
  return "random shape mismatch: edges " + std::to_string(s.edges()) + " (want 20099), roots " +
         std::to_string(s.roots) + " (want 1959), depth " + std::to_string(s.depth) + " (want 35)";
}

std::vector<std::string> make_ids(std::uint32_t size) {
  std::vector<std::string> ids;
  ids.reserve(size);
  std::array<char, 16> buf{};
  buf[0] = 't';
  for (std::uint32_t i = 0; i < size; ++i) {
    const auto res = std::to_chars(buf.data() + 1, buf.data() + buf.size(), i);
    ids.emplace_back(buf.data(), res.ptr);
  }
  return ids;
}

void spin_body() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us);
  while (std::chrono::steady_clock::now() < deadline) {
  }
}

void throw_fault(std::uint32_t task) { throw BenchFault{task}; }

void draw_dependencies(SplitMix64& rng, std::uint32_t i, std::uint64_t k, std::vector<std::uint32_t>& deps) {
  const std::size_t first = deps.size();
  while (deps.size() - first < k) {
    const auto p = static_cast<std::uint32_t>(rng() % i);
    if (std::find(deps.begin() + static_cast<std::ptrdiff_t>(first), deps.end(), p) == deps.end()) {
      deps.push_back(p);
    }
  }
}

}  // namespace dagsched_bench
