// dagsched_bench: times dagsched against oneTBB flow_graph and a serial floor on the DAG shapes of the
// benchmark spec. Run with --help for the options; docs/performance.md explains the output.
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "dagsched/version.hpp"
#include "engines.hpp"
#include "harness.hpp"
#include "latency.hpp"
#include "makespan.hpp"
#include "report.hpp"
#include "shapes.hpp"

namespace {

using namespace dagsched_bench;

// A bad command line (as opposed to a dagsched::GraphError, also an invalid_argument, from the engine).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

constexpr std::uint32_t memory_chain_size = 1'000'000;
constexpr std::uint32_t huge_chain_size = 10'000'000;

// The makespan benchmark is not one of the spec's shapes: it measures the order of ready tasks, not the
// engine's overhead, and takes seconds, so only --makespan or --shape makespan runs it.
constexpr std::string_view makespan_shape = "makespan";
constexpr std::size_t makespan_default_reps = 5;

struct Options {
  std::size_t reps = 11;
  std::size_t workers = 2;
  bool reps_given = false;
  bool workers_given = false;
  std::vector<std::string> shapes;   // empty: all of the spec's (not makespan)
  std::vector<std::string> engines;  // "dagsched", "tbb", "serial" or "dagsched/ids"...; empty: all
  std::vector<std::string> apis;     // "ids", "handles"; empty: both
  bool csv = false;
  bool huge = false;
  bool latency = false;
  bool memory = true;
  bool samples = false;
  std::string order;           // --order: the dagsched engines' ready order on the spec's shapes
  double threshold_us = -1.0;  // --order-threshold-us (negative: the default)
};

constexpr std::string_view usage =
    "usage: dagsched_bench [options]\n"
    "  --reps N        timed repetitions of each phase (default 11, makespan 5; one untimed warm-up besides)\n"
    "  --workers N     worker threads of every engine (default 2; makespan: 2 and 4)\n"
    "  --shape NAME    only this shape (repeatable, or comma-separated): chain, independent, bintree,\n"
    "                  wavefront, random, random_spin, random_faults; or makespan (never in the default run)\n"
    "  --makespan      the makespan benchmark alone (= --shape makespan --no-memory): a fixed 420-task DAG\n"
    "                  (180 random tasks, then chains of 120, 40, 40 and 40) of 0.1-5 ms bodies, run by\n"
    "                  dagsched/handles in each ready order (fifo, critical_path, depth_first), without\n"
    "                  and with a gpu = 1 pool on 20% of the tasks; makespans against the lower bound\n"
    "                  max(critical path, work / workers[, gpu work]). Its defaults: --reps 5, and\n"
    "                  workers 2 and 4 unless --workers is given. About 6 s per rep, plus 6 s of warm-up\n"
    "  --engine NAME   only this engine (repeatable, or comma-separated): dagsched, tbb, serial,\n"
    "                  dagsched/ids, dagsched/handles\n"
    "  --api NAME      only this dagsched API: ids or handles\n"
    "  --csv           print CSV on stdout (engine,shape,api,phase,workers,median_ms,best_ms,reps);\n"
    "                  the human report then goes to stderr\n"
    "  --samples       also print every timed sample, in the order taken\n"
    "  --no-memory     skip the bytes-per-task measurement (1,000,000-task chain)\n"
    "  --order NAME    the dagsched engines' RunOptions::order on the spec's shapes: critical_path (the\n"
    "                  default), fifo or depth_first\n"
    "  --order-threshold-us X   their RunOptions::order_threshold in microseconds (default 20; 0 orders\n"
    "                  every task)\n"
    "  --huge          also build and run a 10,000,000-task chain with handles (time and RSS)\n"
    "  --latency       only this: 2,001 re-runs (or --reps) of a 100,000-task chain with handles, timing\n"
    "                  run() to the first body, the chain, and the last body to run() returning\n";

// Appends the comma-separated items of `value` to `out`.
void split_into(std::string_view value, std::vector<std::string>& out) {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    const std::string_view item = value.substr(0, comma);
    if (!item.empty()) {
      out.emplace_back(item);
    }
    if (comma == std::string_view::npos) {
      break;
    }
    value.remove_prefix(comma + 1);
  }
}

std::size_t parse_count(std::string_view flag, std::string_view value) {
  std::size_t n = 0;
  const auto res = std::from_chars(value.data(), value.data() + value.size(), n);
  if (res.ec != std::errc() || res.ptr != value.data() + value.size() || n == 0) {
    throw UsageError(std::string(flag) + " needs a positive number, got '" + std::string(value) + "'");
  }
  return n;
}

bool wanted(const std::vector<std::string>& filter, std::string_view a, std::string_view b = {}) {
  if (filter.empty()) {
    return true;
  }
  for (const std::string& f : filter) {
    if (f == a || (!b.empty() && f == b)) {
      return true;
    }
  }
  return false;
}

// The first three fields of /proc/loadavg: on a shared machine, a load near the core count while the
// benchmark runs means the parallel numbers (random_spin above all) are not to be trusted.
std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  std::string five;
  std::string fifteen;
  if (!(in >> one >> five >> fifteen)) {
    return "unknown";
  }
  return one + " " + five + " " + fifteen;
}

Options parse(int argc, char** argv) {
  Options o;
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    const auto value = [&]() -> std::string_view {
      if (i + 1 >= args.size()) {
        throw UsageError(std::string(a) + " needs a value");
      }
      return args[++i];
    };
    if (a == "--reps") {
      o.reps = parse_count(a, value());
      o.reps_given = true;
    } else if (a == "--workers") {
      o.workers = parse_count(a, value());
      o.workers_given = true;
    } else if (a == "--makespan") {
      o.shapes.emplace_back(makespan_shape);
      o.memory = false;
    } else if (a == "--shape") {
      split_into(value(), o.shapes);
    } else if (a == "--engine") {
      split_into(value(), o.engines);
    } else if (a == "--api") {
      split_into(value(), o.apis);
    } else if (a == "--csv") {
      o.csv = true;
    } else if (a == "--huge") {
      o.huge = true;
    } else if (a == "--latency") {
      o.latency = true;
    } else if (a == "--samples") {
      o.samples = true;
    } else if (a == "--no-memory") {
      o.memory = false;
    } else if (a == "--order") {
      o.order = value();
    } else if (a == "--order-threshold-us") {
      o.threshold_us = std::stod(std::string(value()));
      if (!(o.threshold_us >= 0)) {
        throw UsageError("--order-threshold-us takes a number >= 0");
      }
    } else if (a == "--help" || a == "-h") {
      std::cout << usage;
      std::exit(0);
    } else {
      throw UsageError("unknown option '" + std::string(a) + "'");
    }
  }
  if (!set_dagsched_order(o.order, o.threshold_us)) {
    throw UsageError("unknown order '" + o.order + "' (critical_path, fifo or depth_first)");
  }
  for (const std::string& s : o.shapes) {
    bool known = s == makespan_shape;
    for (std::string_view name : shape_names()) {
      known = known || name == s;
    }
    if (!known) {
      throw UsageError("unknown shape '" + s + "'");
    }
  }
  return o;
}

std::vector<std::unique_ptr<Engine>> select_engines(const Options& o) {
  std::vector<std::unique_ptr<Engine>> all;
  all.push_back(make_dagsched_engine(false));
  all.push_back(make_dagsched_engine(true));
  if (std::unique_ptr<Engine> tbb = make_tbb_engine()) {  // absent without oneTBB: the header says so
    all.push_back(std::move(tbb));
  }
  all.push_back(make_serial_engine());
  std::vector<std::unique_ptr<Engine>> chosen;
  for (auto& e : all) {
    const std::string full = std::string(e->name()) + "/" + std::string(e->api());
    const bool api_ok = e->name() != "dagsched" || wanted(o.apis, e->api());
    if (api_ok && wanted(o.engines, e->name(), full)) {
      chosen.push_back(std::move(e));
    }
  }
  return chosen;
}

const Engine* find_engine(const std::vector<std::unique_ptr<Engine>>& engines, std::string_view name,
                          std::string_view api) {
  for (const auto& e : engines) {
    if (e->name() == name && e->api() == api) {
      return e.get();
    }
  }
  return nullptr;
}

int run_benchmark(const Options& o) {
  std::ostream& human = o.csv ? std::cerr : std::cout;
  bool spec_shapes = false;
  for (std::string_view name : shape_names()) {
    spec_shapes = spec_shapes || wanted(o.shapes, name);
  }
  const bool makespan = !o.shapes.empty() && wanted(o.shapes, makespan_shape);
  if (spec_shapes || o.memory) {
    human << "dagsched_bench: dagsched " << dagsched::version_string << ", " << o.workers << " workers, " << o.reps
          << " reps (median of reps after 1 warm-up), hardware threads " << std::thread::hardware_concurrency()
          << ", load average " << load_average() << "\n"
          << tbb_description() << "\n";
  } else {
    human << "dagsched_bench: dagsched " << dagsched::version_string << ", makespan benchmark, hardware threads "
          << std::thread::hardware_concurrency() << ", load average " << load_average() << "\n";
  }
#ifndef NDEBUG
  human << "WARNING: assertions are on (not a Release build); timings are not representative\n";
#endif

  const auto probe = [&human, &o](const char* when) {
    std::array<char, 200> buf{};
    std::snprintf(buf.data(), buf.size(),
                  "core check %s: %zu threads doing the same work took %.2fx the time of one (1.00 = idle cores)\n",
                  when, o.workers, parallel_probe(o.workers));
    human << buf.data();
  };
  probe("at the start");

  if (const std::string bad = check_random_generator(); !bad.empty()) {
    std::cerr << "error: " << bad << '\n';
    return 1;
  }
  human << "random generator check: 20099 edges, 1959 roots, depth 35 reproduced\n";

  const std::vector<std::unique_ptr<Engine>> engines = select_engines(o);
  std::string problem;

  if (o.memory) {
    human << "\n== memory: RSS growth for a " << memory_chain_size << "-task chain, empty bodies\n";
    const Shape chain = make_chain(memory_chain_size);
    const std::vector<std::string> ids = make_ids(memory_chain_size);
    std::vector<MemoryReading> readings;
    for (const auto& e : engines) {
      readings.push_back(measure_memory(*e, chain, ids, o.workers));
      print_memory(human, {readings.back()});
    }
  }

  if (o.csv) {
    print_csv_header(std::cout);
  }
  std::vector<Measurement> all;
  for (std::string_view name : shape_names()) {
    if (!wanted(o.shapes, name)) {
      continue;
    }
    const Shape shape = make_shape(name);
    const std::vector<std::string> ids = make_ids(shape.size);
    std::vector<Measurement> shape_results;
    for (const auto& e : engines) {
      if (!e->supports(shape)) {
        continue;
      }
      std::vector<Measurement> ms = measure(*e, shape, ids, o.workers, o.reps, problem);
      if (o.csv) {
        print_csv(std::cout, ms);
        std::cout.flush();
      }
      if (o.samples) {
        print_samples(human, ms);
      }
      shape_results.insert(shape_results.end(), ms.begin(), ms.end());
    }
    print_shape_table(human, shape, shape_results);
    all.insert(all.end(), shape_results.begin(), shape_results.end());
  }

  if (spec_shapes) {
    print_targets(human, all, o.workers);
  }

  if (makespan) {
    if (find_engine(engines, "dagsched", "handles") != nullptr) {
      MakespanOptions mo;
      mo.workers = o.workers_given ? std::vector<std::size_t>{o.workers} : std::vector<std::size_t>{2, 4};
      mo.reps = o.reps_given ? o.reps : makespan_default_reps;
      mo.samples = o.samples;
      human << "\n== makespan benchmark: " << mo.reps << " reps of each order after 1 warm-up, median and best\n";
      std::string found = run_makespan(mo, human, o.csv ? &std::cout : nullptr);
      if (!found.empty() && problem.empty()) {
        problem = std::move(found);
      }
    } else {
      human << "\nthe makespan benchmark needs the dagsched/handles engine, which the filters exclude\n";
    }
  }

  if (o.huge) {
    if (const Engine* handles = find_engine(engines, "dagsched", "handles")) {
      human << "\n== --huge: " << huge_chain_size << "-task chain, handles, empty bodies\n";
      const Shape chain = make_chain(huge_chain_size);
      const std::vector<std::string> ids = make_ids(huge_chain_size);
      print_memory(human, {measure_memory(*handles, chain, ids, o.workers)});
    } else {
      human << "\n--huge needs the dagsched/handles engine, which the filters exclude\n";
    }
  }

  probe("at the end");

  if (!problem.empty()) {
    std::cerr << "\nCHECK FAILED (an engine's results differ from the spec's semantics): " << problem << '\n';
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    if (o.latency) {
      run_latency(std::cout, 100'000, o.workers, o.reps_given ? o.reps : 2001);
      return 0;
    }
    return run_benchmark(o);
  } catch (const UsageError& e) {
    std::cerr << "dagsched_bench: " << e.what() << "\n\n" << usage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "dagsched_bench: unexpected error: " << e.what() << '\n';
    return 2;
  }
}
