// Randomised DAGs checked against a sequential oracle: statuses, attempts, results and errors; every edge
// respected; no task attempted more than retries + 1 times or concurrently with itself; skipped tasks are
// exactly the descendants of failed ones. Seeded: DAGSCHED_TEST_SEED=<n> (or "random") picks the base seed,
// which every failure message prints.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "dagsched/dagsched.hpp"
#include "test_util.hpp"

namespace {

using dagsched::ReadyOrder;
using dagsched::ResultSet;
using dagsched::RunOptions;
using dagsched::Status;
using dagsched::TaskHandle;
using dagsched::TaskScheduler;
using dagsched_test::Chance;
using dagsched_test::Uniform;

constexpr int kAlwaysFails = std::numeric_limits<int>::max();

// A thrown type that is not a std::exception.
struct Oops {
  std::size_t task;
  int attempt;
};

// One task of a case: its behaviour, and what its body observed while running.
struct Probe {
  // Behaviour.
  int retries = 0;
  int fail_first = 0;  // attempts that throw before one succeeds; kAlwaysFails: every attempt
  int throw_kind = 0;  // 0: std::runtime_error, 1: int, 2: Oops
  bool returns_string = false;
  // Observations.
  std::atomic<int> calls{0};
  std::atomic<bool> busy{false};
  std::atomic<bool> overlapped{false};
  std::uint64_t first_start = 0;  // written only by the task's own (sequential) attempts
  std::uint64_t last_end = 0;

  void reset() {
    calls = 0;
    busy = false;
    overlapped = false;
    first_start = 0;
    last_end = 0;
  }
};

std::string ValueString(std::size_t i) { return "v" + std::to_string(i); }
std::uint64_t ValueNumber(std::size_t i) { return i * 2654435761ULL + 7; }
std::string ErrorText(std::size_t i, int attempt) {
  return "t" + std::to_string(i) + " attempt " + std::to_string(attempt);
}

// What every body does: records its span and throws for the first `fail_first` attempts.
struct BodyCore {
  Probe* probe;
  std::atomic<std::uint64_t>* seq;
  std::size_t index;

  void run_attempt() const {
    const std::uint64_t start = seq->fetch_add(1);
    if (probe->busy.exchange(true)) {
      probe->overlapped = true;
    }
    const int attempt = probe->calls.fetch_add(1) + 1;
    if (attempt == 1) {
      probe->first_start = start;
    }
    const bool fail = attempt <= probe->fail_first;
    probe->last_end = seq->fetch_add(1);
    probe->busy = false;
    if (fail) {
      switch (probe->throw_kind) {
        case 0:
          throw std::runtime_error(ErrorText(index, attempt));
        case 1:
          throw attempt;
        default:
          throw Oops{index, attempt};
      }
    }
  }
};

struct StringBody {
  BodyCore core;
  std::string operator()() const {
    core.run_attempt();
    return ValueString(core.index);
  }
};

struct NumberBody {
  BodyCore core;
  std::uint64_t operator()() const {
    core.run_attempt();
    return ValueNumber(core.index);
  }
};

struct Expected {
  Status status = Status::skipped;
  int attempts = 0;
};

// The sequential oracle: index order is topological.
std::vector<Expected> Oracle(const dagsched_test::RandomDag& dag, const std::vector<std::unique_ptr<Probe>>& probes) {
  std::vector<Expected> out(dag.size());
  for (std::size_t i = 0; i < dag.size(); ++i) {
    const bool deps_ok = std::all_of(dag.deps[i].begin(), dag.deps[i].end(),
                                     [&](std::size_t d) { return out[d].status == Status::success; });
    const Probe& p = *probes[i];
    if (!deps_ok) {
      out[i] = {Status::skipped, 0};
    } else if (p.fail_first <= p.retries) {
      out[i] = {Status::success, p.fail_first + 1};
    } else {
      out[i] = {Status::failed, p.retries + 1};
    }
  }
  return out;
}

// Checks the error a failed task stored: the exception of its last attempt, of the type it threw.
std::string CheckError(const std::exception_ptr& error, const Probe& p, std::size_t i) {
  const int last = p.retries + 1;
  if (!error) {
    return "failed task has no error";
  }
  try {
    std::rethrow_exception(error);
  } catch (const std::runtime_error& e) {
    if (p.throw_kind != 0 || e.what() != ErrorText(i, last)) {
      return std::string("wrong runtime_error: ") + e.what();
    }
  } catch (int attempt) {
    if (p.throw_kind != 1 || attempt != last) {
      return "wrong int error " + std::to_string(attempt);
    }
  } catch (const Oops& oops) {
    if (p.throw_kind != 2 || oops.task != i || oops.attempt != last) {
      return "wrong Oops error";
    }
  } catch (...) {
    return "unexpected error type";
  }
  return {};
}

// Compares one run's results against the oracle and the recorded spans. Returns the problems found.
std::vector<std::string> Check(const dagsched_test::RandomDag& dag, const std::vector<std::unique_ptr<Probe>>& probes,
                               const std::vector<std::string>& ids, const ResultSet& results) {
  std::vector<std::string> problems;
  auto problem = [&](std::size_t i, const std::string& what) {
    if (problems.size() < 10) {
      problems.push_back(ids[i] + ": " + what);
    }
  };
  const std::size_t n = dag.size();
  if (results.size() != n) {
    problems.push_back("results.size() " + std::to_string(results.size()) + " != " + std::to_string(n));
    return problems;
  }
  std::size_t visited = 0;
  for (const auto& [id, r] : results) {
    (void)r;
    if (results.contains(id)) {
      ++visited;
    }
  }
  if (visited != n) {
    problems.push_back("iteration visited " + std::to_string(visited) + " tasks");
  }

  const std::vector<Expected> expected = Oracle(dag, probes);
  for (std::size_t i = 0; i < n; ++i) {
    const Probe& p = *probes[i];
    const dagsched::TaskResult* r = results.find(ids[i]);
    if (r == nullptr) {
      problem(i, "missing from results");
      continue;
    }
    std::ostringstream msg;
    if (r->status != expected[i].status || r->attempts != expected[i].attempts) {
      msg << "got " << r->status << "/" << r->attempts << " attempts, expected " << expected[i].status << "/"
          << expected[i].attempts << " (retries " << p.retries << ", fail_first " << p.fail_first << ")";
      problem(i, msg.str());
    }
    if (p.calls.load() != r->attempts) {
      problem(i, "called " + std::to_string(p.calls.load()) + " times, attempts " + std::to_string(r->attempts));
    }
    if (p.calls.load() > p.retries + 1) {
      problem(i, "attempted more than retries + 1 times");
    }
    if (p.overlapped.load()) {
      problem(i, "two attempts ran at the same time");
    }
    switch (r->status) {
      case Status::success: {
        if (r->error) {
          problem(i, "success with an error");
        }
        const bool value_ok = p.returns_string ? (r->result.type() == typeid(std::string) &&
                                                  std::any_cast<std::string>(r->result) == ValueString(i))
                                               : (r->result.type() == typeid(std::uint64_t) &&
                                                  std::any_cast<std::uint64_t>(r->result) == ValueNumber(i));
        if (!value_ok) {
          problem(i, "wrong result value");
        }
        break;
      }
      case Status::failed: {
        if (r->result.has_value()) {
          problem(i, "failed with a result");
        }
        if (const std::string e = CheckError(r->error, p, i); !e.empty()) {
          problem(i, e);
        }
        break;
      }
      case Status::skipped:
        if (r->result.has_value() || r->error || r->attempts != 0) {
          problem(i, "skipped with a result, an error or attempts");
        }
        break;
      default:
        problem(i, "unexpected status");
        break;
    }
    // Every edge respected: started only after each dependency's last attempt ended.
    if (p.calls.load() > 0) {
      for (std::size_t d : dag.deps[i]) {
        if (probes[d]->calls.load() == 0) {
          problem(i, "ran although its dependency " + ids[d] + " never ran");
        } else if (probes[d]->last_end >= p.first_start) {
          problem(i, "started before its dependency " + ids[d] + " finished");
        }
      }
    }
  }

  // Skipped == exactly the descendants of failed tasks, computed independently of the oracle.
  const auto dependents = dagsched_test::Dependents(dag.deps);
  std::vector<char> descendant(n, 0);
  std::vector<std::size_t> stack;
  for (std::size_t i = 0; i < n; ++i) {
    const auto* r = results.find(ids[i]);
    if (r != nullptr && r->status == Status::failed) {
      stack.push_back(i);
    }
  }
  while (!stack.empty()) {
    const std::size_t at = stack.back();
    stack.pop_back();
    for (std::size_t child : dependents[at]) {
      if (descendant[child] == 0) {
        descendant[child] = 1;
        stack.push_back(child);
      }
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    const auto* r = results.find(ids[i]);
    if (r != nullptr && (r->status == Status::skipped) != (descendant[i] != 0)) {
      problem(i, descendant[i] != 0 ? "descendant of a failure not skipped" : "skipped without a failed ancestor");
    }
  }
  return problems;
}

// One random case: builds the DAG and its tasks, runs (sometimes twice), checks. Returns false on failure.
bool RunCase(std::uint64_t seed, std::size_t max_size, std::size_t fixed_workers, std::size_t* tasks_run) {
  std::mt19937_64 rng(seed);
  const std::size_t n = dagsched_test::RandomDagSize(rng, max_size);
  const dagsched_test::RandomDag dag = dagsched_test::MakeRandomDag(rng, n);
  const std::size_t workers = fixed_workers != 0 ? fixed_workers : Uniform<std::size_t>(rng, 1, 8);
  const double failure_rate = Uniform<int>(rng, 0, 3) == 0 ? 0.0 : 0.25;

  std::vector<std::unique_ptr<Probe>> probes;
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < n; ++i) {
    auto p = std::make_unique<Probe>();
    p->retries = Chance(rng, 0.5) ? 0 : Uniform<int>(rng, 1, 3);
    if (Chance(rng, failure_rate)) {
      p->fail_first = Chance(rng, 0.3) ? kAlwaysFails : Uniform<int>(rng, 1, 4);
    }
    p->throw_kind = Uniform<int>(rng, 0, 2);
    p->returns_string = Chance(rng, 0.5);
    probes.push_back(std::move(p));
    ids.push_back(dagsched_test::TaskId(i));
  }

  std::atomic<std::uint64_t> seq{1};
  TaskScheduler scheduler(workers);
  std::vector<TaskHandle> handles(n);
  std::vector<char> registered(n, 0);
  for (std::size_t i : dagsched_test::ShuffledOrder(rng, n)) {
    const auto& deps = dag.deps[i];
    const BodyCore core{probes[i].get(), &seq, i};
    const int form = Uniform<int>(rng, 0, 2);
    auto add = [&](const auto& dependencies) {
      if (probes[i]->returns_string) {
        return scheduler.add_task(ids[i], StringBody{core}, dependencies, probes[i]->retries);
      }
      return scheduler.add_task(ids[i], NumberBody{core}, dependencies, probes[i]->retries);
    };
    const bool all_registered =
        std::all_of(deps.begin(), deps.end(), [&](std::size_t d) { return registered[d] != 0; });
    if (form == 0 && all_registered) {
      std::vector<TaskHandle> dep_handles;
      for (std::size_t d : deps) {
        dep_handles.push_back(handles[d]);
      }
      handles[i] = add(dep_handles);
    } else if (form == 1) {
      std::set<std::string> dep_ids;
      for (std::size_t d : deps) {
        dep_ids.insert(ids[d]);
      }
      handles[i] = add(dep_ids);
    } else {
      std::vector<std::string> dep_ids;
      for (std::size_t d : deps) {
        dep_ids.push_back(ids[d]);
      }
      handles[i] = add(dep_ids);
    }
    registered[i] = 1;
  }

  const int runs = Chance(rng, 0.1) ? 2 : 1;
  for (int run = 0; run < runs; ++run) {
    for (auto& p : probes) {
      p->reset();
    }
    // Every ready order, always ordered or adaptive: orders change when tasks start, never the outcome.
    RunOptions options;
    options.order = std::array{ReadyOrder::critical_path, ReadyOrder::fifo,
                               ReadyOrder::depth_first}[Uniform<std::size_t>(rng, 0, 2)];
    if (Chance(rng, 0.5)) {
      options.order_threshold = std::chrono::nanoseconds(0);
    }
    const ResultSet results = scheduler.run(options);
    const std::vector<std::string> problems = Check(dag, probes, ids, results);
    *tasks_run += n;
    if (!problems.empty()) {
      std::ostringstream msg;
      msg << "case seed " << seed << " (" << n << " tasks, " << workers << " workers, run " << run + 1 << "):";
      for (const auto& p : problems) {
        msg << "\n  " << p;
      }
      ADD_FAILURE() << msg.str();
      return false;
    }
  }
  return true;
}

std::string SeedNote() {
  return "base seed " + std::to_string(dagsched_test::BaseSeed()) +
         " (rerun with DAGSCHED_TEST_SEED=" + std::to_string(dagsched_test::BaseSeed()) + ")";
}

TEST(Stress, ThousandRandomDagsAgainstOracle) {
  SCOPED_TRACE(SeedNote());
  constexpr std::uint64_t kCases = 1000;
  std::size_t tasks_run = 0;
  for (std::uint64_t c = 0; c < kCases; ++c) {
    const std::uint64_t seed = dagsched_test::CaseSeed(dagsched_test::BaseSeed(), c);
    if (!RunCase(seed, 5000, 0, &tasks_run)) {
      FAIL() << "case " << c << " failed; stopping";
    }
  }
  RecordProperty("tasks_run", std::to_string(tasks_run));
  std::printf("[ stress   ] %llu random DAGs, %zu task runs, %s\n", static_cast<unsigned long long>(kCases), tasks_run,
              SeedNote().c_str());
}

class StressAtWorkerCount : public testing::TestWithParam<std::size_t> {};

TEST_P(StressAtWorkerCount, RandomDagsAgainstOracle) {
  SCOPED_TRACE(SeedNote());
  std::size_t tasks_run = 0;
  // Fewer cases at 64 workers: each case starts its own 64 threads, which dominates under sanitizers.
  const std::uint64_t cases = GetParam() > 8 ? 25 : 60;
  for (std::uint64_t c = 0; c < cases; ++c) {
    const std::uint64_t seed = dagsched_test::CaseSeed(dagsched_test::BaseSeed() ^ (GetParam() << 40), c);
    if (!RunCase(seed, 1000, GetParam(), &tasks_run)) {
      FAIL() << "case " << c << " failed; stopping";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Workers, StressAtWorkerCount, testing::ValuesIn(dagsched_test::kWorkerCounts),
                         dagsched_test::WorkerCountName);

}  // namespace
