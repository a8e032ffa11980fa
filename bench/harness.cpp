// dagsched_bench: timing loops, statistics and memory readings.
#include "harness.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <thread>

#include <malloc.h>
#include <unistd.h>

#ifdef DAGSCHED_BENCH_HAVE_CALLGRIND
#include <valgrind/callgrind.h>
#endif

namespace dagsched_bench {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Under callgrind (--collect-atstart=yes, the default), each timed loop becomes its own profile dump named
// after the loop, holding the instructions of every thread, so `callgrind_annotate` on one dump gives the
// cost of that phase alone. What came before a loop is dumped under a "(discard)" label rather than zeroed:
// CALLGRIND_ZERO_STATS leaves the counts of threads that already exited (an earlier scheduler's workers),
// a dump clears them too. Outside valgrind these are a few no-op instructions per loop.
void profile_start([[maybe_unused]] const std::string& label) {
#ifdef DAGSCHED_BENCH_HAVE_CALLGRIND
  CALLGRIND_DUMP_STATS_AT(("(discard) before " + label).c_str());
#endif
}

void profile_dump([[maybe_unused]] const std::string& label) {
#ifdef DAGSCHED_BENCH_HAVE_CALLGRIND
  CALLGRIND_DUMP_STATS_AT(label.c_str());
#endif
}

}  // namespace

double median_of(std::vector<double> samples) {
  if (samples.empty()) {
    return 0;
  }
  std::sort(samples.begin(), samples.end());
  const std::size_t mid = samples.size() / 2;
  if (samples.size() % 2 == 1) {
    return samples[mid];
  }
  return (samples[mid - 1] + samples[mid]) / 2;
}

std::vector<Measurement> measure(const Engine& engine, const Shape& shape, const std::vector<std::string>& ids,
                                 std::size_t workers, std::size_t reps, std::string& problem) {
  std::vector<std::vector<double>> samples(Phase::count);
  for (auto& s : samples) {
    s.reserve(reps);
  }
  const std::string label = std::string(engine.name()) + "/" + std::string(engine.api()) + " " + shape.name;

  // Fresh graphs: build, first run and destroy each timed, and their sum as `once`. Rep 0 warms up the
  // allocator and the page tables and is not recorded.
  for (std::size_t rep = 0; rep <= reps; ++rep) {
    const Clock::time_point t0 = Clock::now();
    std::unique_ptr<Instance> inst = engine.create(shape, ids, workers);
    const Clock::time_point t1 = Clock::now();
    inst->build_graph();
    const Clock::time_point t2 = Clock::now();
    inst->run();
    const Clock::time_point t3 = Clock::now();
    inst.reset();
    const Clock::time_point t4 = Clock::now();
    if (rep == 0) {
      profile_start("once " + label);  // the profile of `once` covers the timed reps only
      continue;
    }
    samples[Phase::build].push_back(ms_between(t0, t2));
    samples[Phase::build_graph].push_back(ms_between(t1, t2));
    samples[Phase::run_first].push_back(ms_between(t2, t3));
    samples[Phase::destroy].push_back(ms_between(t3, t4));
    samples[Phase::once].push_back(ms_between(t0, t4));
  }
  profile_dump("once " + label);

  // Re-runs of one graph. The untimed first run is also the correctness check.
  {
    std::unique_ptr<Instance> inst = engine.create(shape, ids, workers);
    inst->build_graph();
    std::string found = inst->run_and_check();
    if (!found.empty() && problem.empty()) {
      problem = label + ": " + found;
    }
    profile_start("run " + label);
    for (std::size_t rep = 0; rep < reps; ++rep) {
      const Clock::time_point t0 = Clock::now();
      inst->run();
      samples[Phase::run].push_back(ms_between(t0, Clock::now()));
    }
    profile_dump("run " + label);
  }

  std::vector<Measurement> out;
  out.reserve(Phase::count);
  for (std::size_t p = 0; p < Phase::count; ++p) {
    Measurement m;
    m.engine = std::string(engine.name());
    m.shape = shape.name;
    m.api = std::string(engine.api());
    m.phase = phase_names[p];
    m.workers = workers;
    m.median_ms = median_of(samples[p]);
    m.best_ms = samples[p].empty() ? 0 : *std::min_element(samples[p].begin(), samples[p].end());
    m.reps = samples[p].size();
    m.samples_ms = samples[p];
    out.push_back(std::move(m));
  }
  return out;
}

namespace {

// About 5 ms of integer work that the optimiser cannot drop.
std::uint64_t probe_work() {
  SplitMix64 rng(1);
  std::uint64_t acc = 0;
  for (int i = 0; i < 2'000'000; ++i) {
    acc ^= rng();
  }
  return acc;
}

double probe_once(std::size_t threads) {
  std::vector<std::thread> pool;
  std::vector<std::uint64_t> sink(threads);
  const Clock::time_point t0 = Clock::now();
  for (std::size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&sink, t] { sink[t] = probe_work(); });
  }
  for (auto& th : pool) {
    th.join();
  }
  const double ms = ms_between(t0, Clock::now());
  std::uint64_t all = 0;
  for (std::uint64_t v : sink) {
    all ^= v;
  }
  return all == 42 ? ms + 1e-9 : ms;  // keeps the work observable
}

}  // namespace

double parallel_probe(std::size_t threads) {
  std::vector<double> one;
  std::vector<double> many;
  for (int rep = 0; rep < 5; ++rep) {
    one.push_back(probe_once(1));
    many.push_back(probe_once(threads));
  }
  return median_of(many) / median_of(one);
}

std::size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t total_pages = 0;
  std::size_t resident_pages = 0;
  if (!(statm >> total_pages >> resident_pages)) {
    return 0;
  }
  const long page = ::sysconf(_SC_PAGESIZE);
  return resident_pages * static_cast<std::size_t>(page > 0 ? page : 4096);
}

void trim_heap() { ::malloc_trim(0); }

MemoryReading measure_memory(const Engine& engine, const Shape& shape, const std::vector<std::string>& ids,
                             std::size_t workers) {
  MemoryReading r;
  r.engine = std::string(engine.name());
  r.api = std::string(engine.api());
  r.tasks = shape.size;
  trim_heap();
  const std::size_t base = rss_bytes();
  const auto growth = [base] {
    const std::size_t now = rss_bytes();
    return now > base ? now - base : 0;
  };
  const Clock::time_point t0 = Clock::now();
  std::unique_ptr<Instance> inst = engine.create(shape, ids, workers);
  inst->build_graph();
  const Clock::time_point t1 = Clock::now();
  r.after_build_bytes = growth();
  const Clock::time_point t2 = Clock::now();
  inst->run_keep();
  const Clock::time_point t3 = Clock::now();
  r.after_run_bytes = growth();
  const Clock::time_point t4 = Clock::now();
  inst->run_keep();
  const Clock::time_point t5 = Clock::now();
  inst.reset();
  const Clock::time_point t6 = Clock::now();
  r.build_ms = ms_between(t0, t1);
  r.run_ms = ms_between(t2, t3);
  r.rerun_ms = ms_between(t4, t5);
  r.destroy_ms = ms_between(t5, t6);
  return r;
}

}  // namespace dagsched_bench
