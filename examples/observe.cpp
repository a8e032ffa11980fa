// Observability on the problem statement's failure example: watch the run's progress live, record it, then
// write its report (report.json), a Chrome/Perfetto trace (trace.json) and the graph coloured by outcome
// (graph.dot, for Graphviz), and print a summary.
//
// Usage: observe [output-directory]   (default: the current directory)
#include <dagsched/dagsched.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : ".";
  std::filesystem::create_directories(dir);

  // The failure example, with bodies that take a little time so that the trace has something to show.
  dagsched::TaskScheduler scheduler(4);
  scheduler.add_task("A", [] {
    std::this_thread::sleep_for(2ms);
    return std::string("result_A");
  });
  scheduler.add_task(
      "B",
      []() -> std::string {
        std::this_thread::sleep_for(1ms);
        throw std::invalid_argument("B broke");
      },
      {"A"}, /*retries=*/2);
  scheduler.add_task("C",
                     [] {
                       std::this_thread::sleep_for(3ms);
                       return std::string("result_C");
                     },
                     {"A"});
  scheduler.add_task("D", [] { return std::string("result_D"); }, {"B", "C"});
  scheduler.add_task("E", [] {
    std::this_thread::sleep_for(1ms);
    return std::string("result_E");
  });

  // Live progress: called at the start, at most every 50 ms while tasks finish, and at the end.
  auto progress = std::make_shared<dagsched::ProgressObserver>(
      [](const dagsched::Progress& p) {
        std::cerr << "progress: " << p.finished << '/' << p.total << " done, " << p.running << " running, " << p.failed
                  << " failed\n";
      },
      50ms);

  // record = true: the results carry a RunReport (results.report()).
  const dagsched::ResultSet results = scheduler.run({.observer = progress, .record = true});
  const dagsched::RunReport& report = *results.report();

  std::ofstream(dir / "report.json") << report.to_json();
  std::ofstream trace(dir / "trace.json");
  report.write_chrome_trace(trace);  // open in ui.perfetto.dev or chrome://tracing
  trace.close();
  std::ofstream(dir / "graph.dot") << scheduler.to_dot(results);  // dot -Tsvg graph.dot -o graph.svg

  std::cout << dagsched::summary(results);
  std::cout << "wrote " << (dir / "report.json").string() << ", " << (dir / "trace.json").string() << ", "
            << (dir / "graph.dot").string() << '\n';

  const bool as_expected = report.at("B").attempts.size() == 3 && report.at("D").status == dagsched::Status::skipped &&
                           report.count(dagsched::Status::success) == 3;
  return as_expected ? 0 : 1;
}
