// dagsched_bench: where the time of a chain's re-run goes, between run() and the first body, between
// the bodies, and between the last body and run() returning.
#pragma once

#include <cstddef>
#include <iosfwd>

namespace dagsched_bench {

/// Re-runs a `tasks`-task chain (handles, added in order, empty bodies except the first and the last,
/// which read the clock) `reps` times on `workers` workers and prints percentiles of: the start latency
/// (run() called to the first body), the chain itself (first body to last), the end latency (last body
/// to run() returned) and the whole run.
void run_latency(std::ostream& out, std::size_t tasks, std::size_t workers, std::size_t reps);

}  // namespace dagsched_bench
