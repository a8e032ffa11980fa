// Fault-tolerance controls on a small training pipeline: a flaky download retried with backoff, a training
// step that reads its input through TaskContext and adapts after a failure, a per-attempt timeout, an
// error that retrying cannot fix, a cleanup task that runs whatever happened, and why a task was skipped.
#include <dagsched/dagsched.hpp>

#include <atomic>
#include <chrono>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

int main() {
  dagsched::TaskScheduler scheduler(2);
  std::atomic<int> downloads{0};

  // Fails twice (a flaky network), then succeeds. Waits 10 ms, then 20 ms, before its retries (backoff 2,
  // with up to 20% jitter). While it waits it holds no worker: "tokenizer" runs meanwhile.
  scheduler.add_task(
      "download",
      [&] {
        if (++downloads < 3) {
          throw std::runtime_error("connection reset");
        }
        return std::vector<float>(1000, 0.5f);
      },
      {},
      dagsched::TaskOptions{.retries = 4, .retry = {.delay = 10ms, .backoff = 2.0, .max_delay = 1s, .jitter = 0.2}});
  scheduler.add_task("tokenizer", [] { return std::string("bpe-32k"); });

  // Reads the download's result in place, adapts its batch size on a retry, and gives up cooperatively
  // when its 2 s per-attempt timeout expires (its stop token is requested).
  scheduler.add_task(
      "train",
      [](dagsched::TaskContext& ctx) {
        const auto& data = ctx.result<std::vector<float>>("download");
        const std::size_t batch = ctx.attempt() == 1 ? 1024 : 256;  // first attempt "runs out of memory"
        if (batch > 512) {
          throw std::length_error("out of memory at batch " + std::to_string(batch));
        }
        double loss = 0;
        for (float x : data) {
          if (ctx.stop_requested()) {
            throw std::runtime_error("stopped");
          }
          loss += x / static_cast<double>(batch);
        }
        return loss;
      },
      {"download", "tokenizer"}, dagsched::TaskOptions{.retries = 1, .timeout = 2s});

  // A configuration error: retrying cannot help, so it fails at once despite retries = 5.
  scheduler.add_task(
      "deploy", []() -> int { throw dagsched::PermanentError("no deployment target configured"); }, {"train"}, 5);
  scheduler.add_task("notify", [] { return 0; }, {"deploy"});

  // Runs once "train" and "deploy" have finished, whatever their outcome.
  scheduler.add_task(
      "cleanup",
      [](dagsched::TaskContext& ctx) {
        return std::string("deploy was ") + std::string(to_string(ctx.dependency("deploy").status));
      },
      {"train", "deploy"}, dagsched::TaskOptions{.trigger = dagsched::TriggerRule::all_done});

  dagsched::RunHandle run = scheduler.start({.seed = 42});
  while (!run.wait_for(5ms)) {
    const dagsched::Progress p = run.progress();
    std::cout << "progress: " << p.finished << "/" << p.total << " finished, " << p.waiting << " waiting for a retry\n";
  }
  const dagsched::ResultSet results = run.wait();

  for (const auto& [id, r] : results) {
    std::cout << id << ": " << r.status << " after " << r.attempts << " attempt(s)";
    for (const std::string& cause : r.skip_causes()) {
      std::cout << ", skipped because " << cause << " failed";
    }
    std::cout << '\n';
  }
  std::cout << "cleanup says: " << results.at("cleanup").value<std::string>() << '\n';

  const bool as_expected = results.at("download").attempts == 3 && results.at("train").ok() &&
                           results.at("train").attempts == 2 && results.at("deploy").attempts == 1 &&
                           results.at("deploy").status == dagsched::Status::failed &&
                           results.at("notify").skip_causes().size() == 1 && results.at("cleanup").ok();
  return as_expected ? 0 : 1;
}
