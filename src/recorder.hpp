// The hooks between the engine and run recording (RunOptions::record): the engine installs the recorder
// as an observer, and turns it into the ResultSet's report once the run has ended.
#pragma once

#include <memory>

#include "dagsched/observer.hpp"
#include "dagsched/result_set.hpp"
#include "dagsched/task_scheduler.hpp"

namespace dagsched::detail {

class Engine;

/// A fresh recorder for one run.
[[nodiscard]] std::shared_ptr<Observer> make_recorder();

/// The report of the ended run `recorder` watched (its on_run_end has been called with `results`).
/// `engine` still holds the run's graph.
[[nodiscard]] std::shared_ptr<const RunReport> take_report(Observer& recorder, const ResultSet& results,
                                                           const Engine& engine);

/// Access to a scheduler's engine for the library's own free functions.
struct EngineAccess {
  static const Engine& of(const TaskScheduler& scheduler) noexcept { return *scheduler.m_engine; }
};

}  // namespace dagsched::detail
