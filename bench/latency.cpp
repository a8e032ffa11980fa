#include "latency.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "dagsched/dagsched.hpp"

namespace dagsched_bench {

namespace {

using Clock = std::chrono::steady_clock;

double us_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

void print_row(std::ostream& out, const char* what, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto at = [&v](double q) { return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))]; };
  std::array<char, 160> buf{};
  std::snprintf(buf.data(), buf.size(), "%-26s %9.1f %9.1f %9.1f %9.1f\n", what, at(0.1), at(0.5), at(0.9), v.back());
  out << buf.data();
}

}  // namespace

void run_latency(std::ostream& out, std::size_t tasks, std::size_t workers, std::size_t reps) {
  tasks = std::max<std::size_t>(tasks, 2);
  dagsched::TaskScheduler scheduler(workers);
  Clock::time_point first_body;
  Clock::time_point last_body;
  dagsched::TaskHandle prev = scheduler.add_task("t0", [&first_body] { first_body = Clock::now(); });
  for (std::size_t i = 1; i + 1 < tasks; ++i) {
    prev = scheduler.add_task("t" + std::to_string(i), [] {}, {prev});
  }
  scheduler.add_task("t" + std::to_string(tasks - 1), [&last_body] { last_body = Clock::now(); }, {prev});
  static_cast<void>(scheduler.run());  // freezes the graph and constructs the result slots

  std::vector<double> start;
  std::vector<double> chain;
  std::vector<double> end;
  std::vector<double> total;
  for (std::size_t rep = 0; rep < reps; ++rep) {
    const Clock::time_point t0 = Clock::now();
    static_cast<void>(scheduler.run());
    const Clock::time_point t1 = Clock::now();
    start.push_back(us_between(t0, first_body));
    chain.push_back(us_between(first_body, last_body));
    end.push_back(us_between(last_body, t1));
    total.push_back(us_between(t0, t1));
  }
  out << "\n== latency: " << reps << " re-runs of a " << tasks << "-task chain (handles, in order), " << workers
      << " workers, microseconds\n";
  out << "                                 p10    median       p90       max\n";
  print_row(out, "run() to the first body", start);
  print_row(out, "first body to the last", chain);
  print_row(out, "last body to run() returned", end);
  print_row(out, "the whole run", total);
}

}  // namespace dagsched_bench
