// RunReport::write_chrome_trace: the run in Chrome's trace-event format, for Perfetto and chrome://tracing.
//
// Format: https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU (JSON object form).
// Times ("ts", "dur") are microseconds, here relative to the run's start. One thread track per worker
// (tid = worker index) holds that worker's attempts as complete ("X") slices; one more track (tid =
// workers) holds the run as a whole and the tasks that never started. Events are written one at a time,
// so a large run does not build its whole trace in memory.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "dagsched/run_report.hpp"

namespace dagsched {

namespace {

using nlohmann::json;

double micros(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e3; }

class TraceWriter {
 public:
  explicit TraceWriter(std::ostream& out) : m_out(out) { m_out << "{\"traceEvents\":[\n"; }

  void event(const json& e) {
    m_out << (m_first ? "" : ",\n")
          << e.dump(-1, ' ', false, json::error_handler_t::replace);  // ids need not be valid UTF-8
    m_first = false;
  }

  void finish(const json& other) {
    m_out << "\n],\"displayTimeUnit\":\"ms\",\"otherData\":"
          << other.dump(-1, ' ', false, json::error_handler_t::replace) << "}\n";
  }

 private:
  std::ostream& m_out;
  bool m_first = true;
};

json metadata(const char* name, std::size_t tid, json args) {
  return {{"name", name}, {"ph", "M"}, {"pid", 1}, {"tid", tid}, {"args", std::move(args)}};
}

}  // namespace

void RunReport::write_chrome_trace(std::ostream& out) const {
  TraceWriter trace(out);
  const std::size_t run_track = m_workers;

  trace.event(metadata("process_name", 0, {{"name", "dagsched run"}}));
  for (std::size_t w = 0; w < m_workers; ++w) {
    trace.event(metadata("thread_name", w, {{"name", "worker " + std::to_string(w)}}));
    trace.event(metadata("thread_sort_index", w, {{"sort_index", w}}));
  }
  trace.event(metadata("thread_name", run_track, {{"name", "run"}}));
  trace.event(metadata("thread_sort_index", run_track, {{"sort_index", run_track}}));

  trace.event({{"name", "run"},
               {"cat", "run"},
               {"ph", "X"},
               {"ts", 0.0},
               {"dur", micros(makespan())},
               {"pid", 1},
               {"tid", run_track},
               {"args",
                {{"tasks", m_tasks.size()},
                 {"succeeded", count(Status::success)},
                 {"failed", count(Status::failed)},
                 {"skipped", count(Status::skipped)},
                 {"cancelled", count(Status::cancelled)}}}});

  for (const TaskRecord& t : m_tasks) {
    for (std::size_t k = 0; k < t.attempts.size(); ++k) {
      const AttemptRecord& a = t.attempts[k];
      json args = {{"task", t.id},
                   {"attempt", a.number},
                   {"outcome", a.ok ? "returned" : "threw"},
                   {"task_status", to_string(t.status)}};
      if (!a.ok) {
        args["error"] = a.error;
      }
      if (k == 0) {
        args["queue_wait_us"] = micros(t.queue_wait);
      }
      trace.event({{"name", t.id},
                   {"cat", a.ok ? "attempt" : "attempt,failed"},
                   {"ph", "X"},
                   {"ts", micros(a.start_offset)},
                   {"dur", micros(a.duration())},
                   {"pid", 1},
                   {"tid", a.worker},
                   {"cname", a.ok ? "good" : "terrible"},
                   {"args", std::move(args)}});
      if (a.retried) {
        trace.event({{"name", "retry " + t.id},
                     {"cat", "retry"},
                     {"ph", "i"},
                     {"s", "t"},
                     {"ts", micros(a.end_offset)},
                     {"pid", 1},
                     {"tid", a.worker},
                     {"cname", "yellow"},
                     {"args", {{"task", t.id}, {"after_attempt", a.number}, {"delay_us", micros(a.retry_delay)}}}});
      }
    }
    if (t.attempts.empty()) {
      // Never started: skipped because of a failure upstream, or cancelled.
      json args = {{"task", t.id}, {"task_status", to_string(t.status)}};
      if (!t.skipped_by.empty()) {
        args["skipped_by"] = t.skipped_by;
      }
      trace.event({{"name", std::string(to_string(t.status)) + " " + t.id},
                   {"cat", to_string(t.status)},
                   {"ph", "i"},
                   {"s", "t"},
                   {"ts", micros(t.finish_offset)},
                   {"pid", 1},
                   {"tid", run_track},
                   {"cname", "grey"},
                   {"args", std::move(args)}});
    }
  }

  // The critical path as flow arrows between the slices of consecutive tasks on it (each event binds to the
  // slice around its timestamp, so it is put in the middle of the slice).
  for (std::size_t i = 0; i + 1 < m_critical_path.size(); ++i) {
    const TaskRecord& from = m_tasks[m_critical_path[i]];
    const TaskRecord& to = m_tasks[m_critical_path[i + 1]];
    if (from.attempts.empty() || to.attempts.empty()) {
      continue;
    }
    const AttemptRecord& a = from.attempts.back();
    const AttemptRecord& b = to.attempts.front();
    trace.event({{"name", "critical path"},
                 {"cat", "critical_path"},
                 {"ph", "s"},
                 {"id", i},
                 {"ts", micros(a.start_offset + a.duration() / 2)},
                 {"pid", 1},
                 {"tid", a.worker}});
    trace.event({{"name", "critical path"},
                 {"cat", "critical_path"},
                 {"ph", "f"},
                 {"bp", "e"},
                 {"id", i},
                 {"ts", micros(b.start_offset + b.duration() / 2)},
                 {"pid", 1},
                 {"tid", b.worker}});
  }

  trace.finish({{"generator", "dagsched"},
                {"workers", m_workers},
                {"makespan_us", micros(makespan())},
                {"attempts", m_attempts}});
}

}  // namespace dagsched
