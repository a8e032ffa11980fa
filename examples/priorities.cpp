// Ready-task order: which of the tasks that could start does start first. By default the one with the
// longest (cost-weighted) path still ahead of it, so that a long training chain is not left for last behind
// quick reporting jobs; an explicit priority comes before that; FIFO is one option away.
#include <dagsched/dagsched.hpp>

#include <chrono>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

/// Builds the pipeline on one worker, so that the start order is exactly the run's order, and returns it.
std::vector<std::string> StartOrder(const dagsched::RunOptions& options) {
  dagsched::TaskScheduler scheduler(1);
  std::mutex m;
  std::vector<std::string> started;
  auto job = [&](std::string id) {
    return [&, id] {
      {
        std::lock_guard<std::mutex> lock(m);
        started.push_back(id);
      }
      std::this_thread::sleep_for(1ms);
    };
  };

  // Six quick reports, added first (FIFO would start them first)...
  for (int i = 0; i < 6; ++i) {
    const std::string id = "report_" + std::to_string(i);
    scheduler.add_task(id, job(id));
  }
  // ...and a training chain whose steps are known to be long: the cost hints say so (any unit will do,
  // as long as every task uses the same; tasks without a hint count 1).
  dagsched::TaskOptions heavy;
  heavy.cost = 30.0;
  scheduler.add_task("fetch_dataset", job("fetch_dataset"), {}, heavy);
  scheduler.add_task("train", job("train"), {"fetch_dataset"}, heavy);
  scheduler.add_task("evaluate", job("evaluate"), {"train"});
  // An alert that must go out first, whatever the paths say.
  dagsched::TaskOptions urgent;
  urgent.priority = 1;
  scheduler.add_task("page_oncall", job("page_oncall"), {}, urgent);

  const dagsched::ResultSet results = scheduler.run(options);
  if (!results.all_succeeded()) {
    return {};
  }
  return started;
}

void Print(const char* name, const std::vector<std::string>& order) {
  std::cout << name << ":";
  for (const std::string& id : order) {
    std::cout << ' ' << id;
  }
  std::cout << '\n';
}

}  // namespace

int main() {
  // The default: ReadyOrder::critical_path.
  const std::vector<std::string> critical = StartOrder({});
  Print("critical_path", critical);

  dagsched::RunOptions fifo;
  fifo.order = dagsched::ReadyOrder::fifo;
  const std::vector<std::string> arrival = StartOrder(fifo);
  Print("fifo         ", arrival);

  // Either way the explicit priority goes first; then the critical path starts the training chain,
  // while FIFO starts the reports, in the order they were added.
  const bool ok = critical.size() == 10 && arrival.size() == 10 && critical[0] == "page_oncall" &&
                  critical[1] == "fetch_dataset" && arrival[0] == "page_oncall" && arrival[1] == "report_0";
  return ok ? 0 : 1;
}
