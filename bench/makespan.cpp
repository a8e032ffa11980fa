// dagsched_bench: the makespan benchmark. See makespan.hpp.
#include "makespan.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <ostream>
#include <queue>
#include <set>
#include <string_view>
#include <thread>
#include <utility>

#include "dagsched/dagsched.hpp"
#include "harness.hpp"
#include "report.hpp"
#include "shapes.hpp"

namespace dagsched_bench {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint64_t makespan_seed = 20240611;
constexpr std::uint32_t random_task_count = 180;
constexpr std::array<std::uint32_t, 4> chain_lengths{120, 40, 40, 40};
constexpr std::uint32_t min_body_us = 100;
constexpr std::uint32_t max_body_us = 5'000;
constexpr std::uint32_t gpu_share = 5;  // one task in 5 needs the gpu in the pool variant

constexpr std::array<dagsched::ReadyOrder, 3> orders{dagsched::ReadyOrder::fifo, dagsched::ReadyOrder::critical_path,
                                                     dagsched::ReadyOrder::depth_first};
constexpr std::array<std::string_view, 3> order_names{"fifo", "critical_path", "depth_first"};
constexpr std::size_t fifo_index = 0;
constexpr std::size_t critical_path_index = 1;

// The targets for critical-path order: a median makespan within this factor of the lower bound,
// and better than fifo's, by a margin the noise of a shared machine does not reach (the ideal schedules
// differ by 20-40%).
constexpr double target_ratio = 1.1;
constexpr double target_vs_fifo = 0.95;

double ms(double us) { return us / 1000.0; }

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// The last part of a body, spun rather than slept, so that a late wake-up from the sleep does not lengthen it.
constexpr std::chrono::microseconds spin_tail{200};

// Nanoseconds that bodies lasted beyond their duration, summed: the part of a makespan over the bound
// that is the machine's doing (a late wake-up, a worker kept off a core) rather than the order's. One
// relaxed add per task, a few hundred per run: no contention worth measuring.
std::atomic<std::int64_t> overrun_ns{0};

// Takes `us` of wall-clock time: sleeps until `spin_tail` before the deadline, then spins on steady_clock,
// yielding the core on every turn. What the benchmark measures is the order tasks start in, so a body
// must last its own duration whatever else wants the cores: with more workers than cores (4 workers on
// the project's 2-core machine) or other processes busy, a pure spin was stretched by up to a time slice
// per body (makespans 2-4x the bound), and a spin that only yields still varied with the machine's load.
// A sleeping body leaves the cores to the engine and to the other workers' tails.
void run_body(std::uint32_t us) {
  const Clock::time_point deadline = Clock::now() + std::chrono::microseconds(us);
  if (std::chrono::microseconds(us) > spin_tail) {
    std::this_thread::sleep_until(deadline - spin_tail);
  }
  Clock::time_point now = Clock::now();
  while (now < deadline) {
    std::this_thread::yield();
    now = Clock::now();
  }
  overrun_ns.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(now - deadline).count(),
                       std::memory_order_relaxed);
}

// Dependents in CSR form (out[out_begin[t] .. out_begin[t + 1]) depend on t), in index order.
struct Dependents {
  std::vector<std::uint32_t> begin;
  std::vector<std::uint32_t> out;
};

Dependents dependents_of(const MakespanGraph& g) {
  Dependents d;
  d.begin.assign(std::size_t{g.size} + 1, 0);
  for (std::uint32_t p : g.deps) {
    ++d.begin[p + 1];
  }
  for (std::uint32_t t = 0; t < g.size; ++t) {
    d.begin[t + 1] += d.begin[t];
  }
  d.out.resize(g.deps.size());
  std::vector<std::uint32_t> fill(d.begin.begin(), d.begin.end() - 1);
  for (std::uint32_t t = 0; t < g.size; ++t) {
    for (std::uint32_t p : g.deps_of(t)) {
      d.out[fill[p]++] = t;
    }
  }
  return d;
}

// For each task, the most body time on any path from it to a sink, itself included: what critical_path order
// ranks ready tasks by.
std::vector<std::uint64_t> bottom_levels(const MakespanGraph& g, const Dependents& d) {
  std::vector<std::uint64_t> level(g.size, 0);
  for (std::uint32_t t = g.size; t-- > 0;) {
    std::uint64_t after = 0;
    for (std::uint32_t i = d.begin[t]; i < d.begin[t + 1]; ++i) {
      after = std::max(after, level[d.out[i]]);
    }
    level[t] = g.body_us[t] + after;
  }
  return level;
}

}  // namespace

MakespanGraph make_makespan_graph() {
  MakespanGraph g;
  g.random_tasks = random_task_count;
  g.chain_lengths.assign(chain_lengths.begin(), chain_lengths.end());
  g.size = random_task_count;
  for (std::uint32_t length : chain_lengths) {
    g.size += length;
  }
  g.dep_begin.reserve(std::size_t{g.size} + 1);
  g.dep_begin.push_back(0);
  SplitMix64 rng(makespan_seed);

  // The random part, drawn as the `random` shape draws it (with at most 3 dependencies per task).
  for (std::uint32_t i = 0; i < random_task_count; ++i) {
    draw_dependencies(rng, i, std::min<std::uint64_t>(rng() % 4, i), g.deps);
    g.dep_begin.push_back(static_cast<std::uint32_t>(g.deps.size()));
  }
  // The chains come last in index order, so their heads are the last roots added: an order that starts
  // ready tasks as they came (fifo) reaches them only after every root of the random part. The first
  // chain is the critical path, about 30% of the work: above work / 4, so at 4 workers it is the bound,
  // and at 2 it must run all along beside the rest for the makespan to reach work / 2. With four equal
  // chains of 40 instead, the order hardly mattered: every order's ideal schedule came within 2% of the
  // bound without the pool.
  for (std::uint32_t length : chain_lengths) {
    for (std::uint32_t j = 0; j < length; ++j) {
      if (j > 0) {
        g.deps.push_back(static_cast<std::uint32_t>(g.dep_begin.size()) - 2);
      }
      g.dep_begin.push_back(static_cast<std::uint32_t>(g.deps.size()));
    }
  }

  g.body_us.resize(g.size);
  for (std::uint32_t& us : g.body_us) {
    us = min_body_us + static_cast<std::uint32_t>(rng() % (max_body_us - min_body_us + 1));
  }
  // Exactly a fifth of the tasks, chains included, distinct.
  g.gpu.assign(g.size, 0);
  while (g.gpu_tasks < g.size / gpu_share) {
    const auto t = static_cast<std::uint32_t>(rng() % g.size);
    if (g.gpu[t] == 0) {
      g.gpu[t] = 1;
      ++g.gpu_tasks;
    }
  }

  for (std::uint32_t t = 0; t < g.size; ++t) {
    g.roots += g.dep_begin[t] == g.dep_begin[t + 1] ? 1U : 0U;
    g.total_work_us += g.body_us[t];
    g.gpu_work_us += g.gpu[t] != 0 ? g.body_us[t] : 0;
  }
  const Dependents d = dependents_of(g);
  const std::vector<std::uint64_t> level = bottom_levels(g, d);
  auto at = static_cast<std::uint32_t>(std::max_element(level.begin(), level.end()) - level.begin());
  g.critical_path_us = level[at];
  // Walks the critical path down, to count its tasks.
  for (;;) {
    ++g.critical_path_tasks;
    if (d.begin[at] == d.begin[at + 1]) {
      break;
    }
    std::uint32_t next = d.out[d.begin[at]];
    for (std::uint32_t i = d.begin[at]; i < d.begin[at + 1]; ++i) {
      next = level[d.out[i]] > level[next] ? d.out[i] : next;
    }
    at = next;
  }
  return g;
}

double makespan_bound_us(const MakespanGraph& g, std::size_t workers, bool pool) {
  double bound = std::max(static_cast<double>(g.critical_path_us),
                          static_cast<double>(g.total_work_us) / static_cast<double>(workers));
  if (pool) {
    bound = std::max(bound, static_cast<double>(g.gpu_work_us));
  }
  return bound;
}

double simulate_makespan_us(const MakespanGraph& g, std::size_t workers, bool pool, dagsched::ReadyOrder order) {
  const Dependents d = dependents_of(g);
  const std::vector<std::uint64_t> level = bottom_levels(g, d);
  std::vector<std::uint32_t> waiting(g.size);
  for (std::uint32_t t = 0; t < g.size; ++t) {
    waiting[t] = g.dep_begin[t + 1] - g.dep_begin[t];
  }

  // The ready set, first to start first; ties go to the lower index (the order tasks were added).
  std::set<std::pair<std::int64_t, std::uint32_t>> ready;
  std::int64_t sequence = 0;
  const auto make_ready = [&](std::uint32_t t) {
    std::int64_t key = sequence;
    if (order == dagsched::ReadyOrder::critical_path) {
      key = -static_cast<std::int64_t>(level[t]);
    } else if (order == dagsched::ReadyOrder::depth_first) {
      key = -sequence;  // the task readied last
    }
    ++sequence;
    ready.emplace(key, t);
  };
  for (std::uint32_t t = 0; t < g.size; ++t) {
    if (waiting[t] == 0) {
      make_ready(t);
    }
  }

  using Event = std::pair<std::uint64_t, std::uint32_t>;  // (end time, task)
  std::priority_queue<Event, std::vector<Event>, std::greater<>> running;
  std::uint64_t now = 0;
  bool gpu_busy = false;
  std::size_t finished = 0;
  while (finished < g.size) {
    for (auto it = ready.begin(); running.size() < workers && it != ready.end();) {
      const std::uint32_t t = it->second;
      const bool needs_gpu = pool && g.gpu[t] != 0;
      if (needs_gpu && gpu_busy) {
        ++it;
        continue;
      }
      gpu_busy = gpu_busy || needs_gpu;
      running.emplace(now + g.body_us[t], t);
      it = ready.erase(it);
    }
    now = running.top().first;
    while (!running.empty() && running.top().first == now) {
      const std::uint32_t t = running.top().second;
      running.pop();
      ++finished;
      if (pool && g.gpu[t] != 0) {
        gpu_busy = false;
      }
      for (std::uint32_t i = d.begin[t]; i < d.begin[t + 1]; ++i) {
        if (--waiting[d.out[i]] == 0) {
          make_ready(d.out[i]);
        }
      }
    }
  }
  return static_cast<double>(now);
}

namespace {

// The graph in a scheduler of `workers` threads, with the gpu pool declared and required when `pool`.
struct MakespanInstance {
  MakespanInstance(const MakespanGraph& g, const std::vector<std::string>& ids, std::size_t workers, bool pool)
      : sched(workers) {
    if (pool) {
      sched.add_resource("gpu", 1);
    }
    std::vector<dagsched::TaskHandle> handles(g.size);
    std::vector<dagsched::TaskHandle> deps;
    for (std::uint32_t t = 0; t < g.size; ++t) {
      deps.clear();
      for (std::uint32_t p : g.deps_of(t)) {
        deps.push_back(handles[p]);
      }
      // Named options, not a designated-initializer temporary: GCC 12 at -O3 warns falsely on the
      // std::function member of such a temporary.
      dagsched::TaskOptions options;
      // The body's duration is the estimate a real scheduler would be given; the unit (ms) is the same for
      // every task, which is all the hint needs.
      options.cost = static_cast<double>(g.body_us[t]) / 1000.0;
      if (pool && g.gpu[t] != 0) {
        options.resources = {{"gpu", 1}};
      }
      const std::uint32_t us = g.body_us[t];
      handles[t] = sched.add_task(
          ids[t], [us] { run_body(us); }, deps, std::move(options));
    }
  }

  dagsched::TaskScheduler sched;
};

// One run in `order`: its wall time in ms, and a note in `problem` (the first only) unless every task
// succeeded.
double timed_run(dagsched::TaskScheduler& sched, dagsched::ReadyOrder order, const std::string& label,
                 std::string& problem) {
  dagsched::RunOptions options;
  options.order = order;
  const Clock::time_point t0 = Clock::now();
  const dagsched::ResultSet results = sched.run(options);
  const double elapsed = ms_between(t0, Clock::now());
  if (!results.all_succeeded() && problem.empty()) {
    problem = label + ": " + std::to_string(results.count(dagsched::Status::success)) + " of " +
              std::to_string(results.size()) + " tasks succeeded";
  }
  return elapsed;
}

std::string fmt(const char* format, double v) {
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), format, v);
  return buf.data();
}

// One worker count and pool setting: the measurements of every order, and what they are compared with.
struct Variant {
  std::size_t workers = 0;
  bool pool = false;
  double bound_ms = 0;
  std::array<Measurement, orders.size()> measured;
  std::array<double, orders.size()> ideal_ms{};
  double overrun_share = 0;  // bodies' time beyond their durations, over their durations, in the timed runs
};

void print_graph_facts(std::ostream& os, const MakespanGraph& g) {
  std::string chains;
  for (std::uint32_t length : g.chain_lengths) {
    chains += (chains.empty() ? "" : ", ") + std::to_string(length);
  }
  os << "\n== makespan: " << g.size << " tasks (" << g.random_tasks << " random, up to 3 dependencies each, then "
     << "chains of " << chains << "), " << g.edges() << " edges, " << g.roots << " roots; each body lasts "
     << fmt("%.1f", ms(min_body_us)) << "-" << fmt("%.0f", ms(max_body_us))
     << " ms of wall-clock time (a sleep, then a spin for the last " << spin_tail.count()
     << " us), given as the task's TaskOptions::cost\n"
     << "total work " << fmt("%.1f", ms(static_cast<double>(g.total_work_us))) << " ms, critical path "
     << fmt("%.1f", ms(static_cast<double>(g.critical_path_us))) << " ms (" << g.critical_path_tasks
     << " tasks); gpu pool variant: gpu = 1, " << g.gpu_tasks << " tasks need it, "
     << fmt("%.1f", ms(static_cast<double>(g.gpu_work_us))) << " ms of their work\n"
     << "bound = max(critical path, total work / workers[, gpu work / 1]); ideal = the makespan of a list "
        "schedule with no overhead in that order (a model, not a measurement)\n";
}

void print_variant(std::ostream& os, const Variant& v) {
  const std::string pool = v.pool ? "gpu=1" : "none";
  for (std::size_t o = 0; o < orders.size(); ++o) {
    const Measurement& m = v.measured[o];
    os << pad(std::to_string(v.workers), 7) << "  " << pad_right(pool, 6) << pad_right(order_names[o], 14)
       << pad(fmt("%.1f", m.median_ms), 10) << pad(fmt("%.1f", m.best_ms), 9) << pad(fmt("%.1f", v.bound_ms), 9)
       << pad(fmt("%.2fx", m.median_ms / v.bound_ms), 12) << pad(fmt("%.1f", v.ideal_ms[o]), 10)
       << pad(fmt("%.2fx", v.ideal_ms[o] / v.bound_ms), 11) << '\n';
  }
  os << pad_right("", 9) << pad_right(pool, 6) << "fifo / critical_path: "
     << fmt("%.2fx", v.measured[fifo_index].median_ms / v.measured[critical_path_index].median_ms) << " (ideal "
     << fmt("%.2fx", v.ideal_ms[fifo_index] / v.ideal_ms[critical_path_index]) << "); bodies overran by "
     << fmt("%.1f%%", 100 * v.overrun_share) << '\n';
  os.flush();
}

void print_makespan_targets(std::ostream& os, const std::vector<Variant>& variants) {
  os << "\n== makespan targets of the issue (informational, the exit code ignores them)\n";
  int pass = 0;
  int fail = 0;
  const auto line = [&](std::string_view target, const std::string& subject, bool ok, const std::string& detail) {
    os << (ok ? "PASS" : "FAIL") << "  " << pad_right(target, 34) << pad_right(subject, 22) << detail << '\n';
    ++(ok ? pass : fail);
  };
  for (const Variant& v : variants) {
    const std::string subject = std::to_string(v.workers) + " workers, " + (v.pool ? "gpu=1" : "no pool");
    const double cp = v.measured[critical_path_index].median_ms;
    const double fifo = v.measured[fifo_index].median_ms;
    line("critical_path <= 1.1x bound", subject, cp <= target_ratio * v.bound_ms,
         fmt("%.1f", cp) + " ms vs " + fmt("%.1f", v.bound_ms) + " ms = " + fmt("%.2fx", cp / v.bound_ms));
    line("critical_path <= 0.95x fifo", subject, cp <= target_vs_fifo * fifo,
         fmt("%.1f", cp) + " ms vs " + fmt("%.1f", fifo) + " ms = " + fmt("%.2fx", cp / fifo));
  }
  os << "makespan targets: " << pass << " pass, " << fail << " fail\n";
  os.flush();
}

}  // namespace

std::string run_makespan(const MakespanOptions& options, std::ostream& human, std::ostream* csv) {
  const MakespanGraph g = make_makespan_graph();
  const std::vector<std::string> ids = make_ids(g.size);
  print_graph_facts(human, g);
  for (std::size_t workers : options.workers) {
    if (workers > std::thread::hardware_concurrency()) {
      human << "note: " << workers << " workers on " << std::thread::hardware_concurrency()
            << " hardware threads: the bodies still take their wall-clock time, but the engine's own work "
               "competes for the cores\n";
      break;
    }
  }
  human << "workers  pool  order          median ms  best ms  bound ms  median/bound  ideal ms  ideal/bound\n";

  std::string problem;
  std::vector<Variant> variants;
  for (std::size_t workers : options.workers) {
    for (bool pool : {false, true}) {
      Variant v;
      v.workers = workers;
      v.pool = pool;
      v.bound_ms = ms(makespan_bound_us(g, workers, pool));
      const std::string shape = pool ? "makespan_gpu1" : "makespan";
      MakespanInstance inst(g, ids, workers, pool);
      std::array<std::vector<double>, orders.size()> samples;
      std::array<std::string, orders.size()> labels;
      for (std::size_t o = 0; o < orders.size(); ++o) {
        labels[o] = shape + " " + std::string(order_names[o]) + " " + std::to_string(workers) + " workers";
        static_cast<void>(timed_run(inst.sched, orders[o], labels[o], problem));  // warm-up
        v.ideal_ms[o] = ms(simulate_makespan_us(g, workers, pool, orders[o]));
      }
      // The orders take turns within each repetition, so that a change in the machine's load (it is shared)
      // falls on all of them alike rather than on whichever ran last.
      overrun_ns.store(0, std::memory_order_relaxed);
      for (std::size_t rep = 0; rep < options.reps; ++rep) {
        for (std::size_t o = 0; o < orders.size(); ++o) {
          samples[o].push_back(timed_run(inst.sched, orders[o], labels[o], problem));
        }
      }
      // run() returning is after every body ended, so every add is visible here.
      v.overrun_share =
          static_cast<double>(overrun_ns.load(std::memory_order_relaxed)) /
          (1000.0 * static_cast<double>(g.total_work_us) * static_cast<double>(options.reps * orders.size()));
      for (std::size_t o = 0; o < orders.size(); ++o) {
        Measurement& m = v.measured[o];
        m.engine = "dagsched/" + std::string(order_names[o]);
        m.shape = shape;
        m.api = "handles";
        m.phase = "run";
        m.workers = workers;
        m.median_ms = median_of(samples[o]);
        m.best_ms = *std::min_element(samples[o].begin(), samples[o].end());
        m.reps = samples[o].size();
        m.samples_ms = samples[o];
      }
      const std::vector<Measurement> lines(v.measured.begin(), v.measured.end());
      if (csv != nullptr) {
        print_csv(*csv, lines);
        csv->flush();
      }
      if (options.samples) {
        print_samples(human, lines);
      }
      print_variant(human, v);
      variants.push_back(std::move(v));
    }
  }
  print_makespan_targets(human, variants);
  return problem;
}

}  // namespace dagsched_bench
