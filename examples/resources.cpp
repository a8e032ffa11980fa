// Resource pools: eight training jobs share two GPUs and a database that takes three connections; a job
// that needs both GPUs is not starved by the single-GPU ones, and no job ever finds its GPU taken.
#include <dagsched/dagsched.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

using namespace std::chrono_literals;

int main() {
  dagsched::TaskScheduler scheduler(4);
  scheduler.add_resource("gpu", 2);
  scheduler.add_resource("db", 3);

  std::atomic<int> gpus_in_use{0};
  std::atomic<int> peak{0};
  auto train = [&](int gpus) {
    return [&, gpus] {
      const int now = gpus_in_use += gpus;
      int seen = peak.load();
      while (now > seen && !peak.compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(5ms);
      gpus_in_use -= gpus;
    };
  };

  dagsched::TaskOptions loader;
  loader.resources = {{"db", 1}};
  scheduler.add_task(
      "load_data", [] { std::this_thread::sleep_for(1ms); }, {}, loader);
  for (int i = 0; i < 8; ++i) {
    // Each job needs one GPU while it runs, and a database connection; higher priority first.
    dagsched::TaskOptions job;
    job.resources = {{"gpu", 1}, {"db", 1}};
    job.priority = i % 3;
    scheduler.add_task("train_" + std::to_string(i), train(1), {"load_data"}, job);
  }
  dagsched::TaskOptions large;
  large.resources = {{"gpu", 2}};
  scheduler.add_task("train_large", train(2), {"load_data"}, large);

  const dagsched::ResultSet results = scheduler.run();
  std::cout << "tasks: " << results.size() << ", all succeeded: " << std::boolalpha << results.all_succeeded()
            << ", most GPUs in use at once: " << peak.load() << " of 2\n";
  return results.all_succeeded() && peak.load() <= 2 ? 0 : 1;
}
