// RunReport's queries, its JSON form and the human-readable summary (the Chrome trace is in chrome_trace.cpp).
#include "dagsched/run_report.hpp"

#include <algorithm>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "dagsched/result_set.hpp"
#include "id_table.hpp"
#include "report_format.hpp"

namespace dagsched {

std::string error_message(const std::exception_ptr& error) {
  if (!error) {
    return {};
  }
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "(unknown exception)";
  }
}

const TaskRecord* RunReport::find(std::string_view id) const noexcept {
  if (!m_ids) {
    return nullptr;
  }
  const std::uint32_t index = m_ids->find(id);
  return index < m_tasks.size() ? &m_tasks[index] : nullptr;
}

const TaskRecord& RunReport::at(std::string_view id) const {
  if (const TaskRecord* record = find(id)) {
    return *record;
  }
  throw std::out_of_range("RunReport::at: no task '" + std::string(id) + "' in this run");
}

std::size_t RunReport::count(Status status) const noexcept {
  return static_cast<std::size_t>(
      std::count_if(m_tasks.begin(), m_tasks.end(), [&](const TaskRecord& t) { return t.status == status; }));
}

std::string RunReport::to_json(int indent) const {
  using nlohmann::ordered_json;
  auto offset = [&](std::chrono::steady_clock::time_point t) { return (t - m_start).count(); };

  std::size_t retries = 0;
  ordered_json tasks = ordered_json::array();
  for (const TaskRecord& t : m_tasks) {
    ordered_json attempts = ordered_json::array();
    for (const AttemptRecord& a : t.attempts) {
      ordered_json attempt = {{"number", a.number},
                              {"worker", a.worker},
                              {"start_ns", a.start_offset.count()},
                              {"end_ns", a.end_offset.count()},
                              {"duration_ns", a.duration().count()},
                              {"ok", a.ok}};
      if (!a.ok) {
        attempt["error"] = a.error;
      }
      if (a.retried) {
        attempt["retry_delay_ns"] = a.retry_delay.count();
        ++retries;
      }
      attempts.push_back(std::move(attempt));
    }
    ordered_json dependencies = ordered_json::array();
    for (std::uint32_t d : t.dependencies) {
      dependencies.push_back(d < m_tasks.size() ? m_tasks[d].id : std::string());
    }
    tasks.push_back({{"index", t.index},
                     {"id", t.id},
                     {"status", to_string(t.status)},
                     {"attempts", std::move(attempts)},
                     {"error", t.error.empty() ? ordered_json(nullptr) : ordered_json(t.error)},
                     {"skipped_by", t.skipped_by},
                     {"dependencies", std::move(dependencies)},
                     {"ready_ns", t.ready ? ordered_json(offset(*t.ready)) : ordered_json(nullptr)},
                     {"finish_ns", t.finish_offset.count()},
                     {"queue_wait_ns", t.queue_wait.count()},
                     {"busy_ns", t.busy.count()},
                     {"elapsed_ns", t.elapsed().count()}});
  }

  ordered_json path = ordered_json::array();
  for (std::uint32_t i : m_critical_path) {
    path.push_back(m_tasks[i].id);
  }
  const ordered_json report = {
      {"format", "dagsched.run_report.v1"},
      {"workers", m_workers},
      {"start_steady_ns", m_start.time_since_epoch().count()},
      {"makespan_ns", makespan().count()},
      {"counts",
       {{"success", count(Status::success)},
        {"failed", count(Status::failed)},
        {"skipped", count(Status::skipped)},
        {"cancelled", count(Status::cancelled)}}},
      {"totals",
       {{"tasks", m_tasks.size()},
        {"attempts", m_attempts},
        {"retries", retries},
        {"busy_ns", m_busy.count()},
        {"queue_wait_ns", m_queue_wait.count()}}},
      {"critical_path", std::move(path)},
      {"tasks", std::move(tasks)},
  };
  // Replace, not throw, on invalid UTF-8 in an id or an error message: a report must always be writable.
  return report.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

namespace {

/// What the summary needs to know of a task, from a report or from a result set alone.
struct Outcome {
  const std::string* id;
  Status status;
  std::size_t attempts;
  std::string error;
  std::span<const std::string> skipped_by;
};

constexpr std::size_t max_listed = 20;  // longer lists end with "... and N more"

void write_counts(std::ostream& out, const std::vector<Outcome>& outcomes) {
  std::size_t counts[4] = {};
  std::size_t attempts = 0;
  std::size_t started = 0;
  for (const Outcome& o : outcomes) {
    ++counts[static_cast<std::size_t>(o.status)];
    attempts += o.attempts;
    started += o.attempts > 0 ? 1 : 0;
  }
  out << counts[0] << " succeeded, " << counts[1] << " failed, " << counts[2] << " skipped, " << counts[3]
      << " cancelled; " << attempts << (attempts == 1 ? " attempt" : " attempts") << " (" << attempts - started
      << (attempts - started == 1 ? " retry)" : " retries)");
}

void write_failures(std::ostream& out, const std::vector<Outcome>& outcomes) {
  std::size_t listed = 0;
  std::size_t failed = 0;
  for (const Outcome& o : outcomes) {
    if (o.status != Status::failed) {
      continue;
    }
    if (++failed == 1) {
      out << "failed:\n";
    }
    if (listed < max_listed) {
      ++listed;
      out << "  " << *o.id << " after " << o.attempts << (o.attempts == 1 ? " attempt" : " attempts") << ": "
          << (o.error.empty() ? "(no error)" : o.error) << '\n';
    }
  }
  if (failed > listed) {
    out << "  ... and " << failed - listed << " more\n";
  }

  listed = 0;
  std::size_t skipped = 0;
  for (const Outcome& o : outcomes) {
    if (o.status != Status::skipped) {
      continue;
    }
    if (++skipped == 1) {
      out << "skipped:\n";
    }
    if (listed < max_listed) {
      ++listed;
      out << "  " << *o.id;
      if (!o.skipped_by.empty()) {
        out << ", because ";
        for (std::size_t i = 0; i < o.skipped_by.size(); ++i) {
          out << (i == 0 ? "" : i + 1 == o.skipped_by.size() ? " and " : ", ") << o.skipped_by[i];
        }
        out << " failed";
      }
      out << '\n';
    }
  }
  if (skipped > listed) {
    out << "  ... and " << skipped - listed << " more\n";
  }
}

}  // namespace

std::string RunReport::summary(std::size_t slowest) const {
  std::vector<Outcome> outcomes;
  outcomes.reserve(m_tasks.size());
  for (const TaskRecord& t : m_tasks) {
    outcomes.push_back({&t.id, t.status, t.attempts.size(), t.error, t.skipped_by});
  }
  std::ostringstream out;
  out << m_tasks.size() << (m_tasks.size() == 1 ? " task" : " tasks") << " on " << m_workers
      << (m_workers == 1 ? " worker" : " workers") << " in " << detail::format_duration(makespan()) << ": ";
  write_counts(out, outcomes);
  out << '\n';
  write_failures(out, outcomes);

  std::vector<const TaskRecord*> ran;
  for (const TaskRecord& t : m_tasks) {
    if (!t.attempts.empty()) {
      ran.push_back(&t);
    }
  }
  const std::size_t shown = std::min(slowest, ran.size());
  std::partial_sort(ran.begin(), ran.begin() + static_cast<std::ptrdiff_t>(shown), ran.end(),
                    [](const TaskRecord* a, const TaskRecord* b) { return a->busy > b->busy; });
  if (shown > 0) {
    out << "slowest (time in the body):\n";
    std::size_t width = 0;
    for (std::size_t i = 0; i < shown; ++i) {
      width = std::max(width, ran[i]->id.size());
    }
    for (std::size_t i = 0; i < shown; ++i) {
      const TaskRecord& t = *ran[i];
      out << "  " << t.id << std::string(width - t.id.size(), ' ') << "  " << detail::format_duration(t.busy) << ", "
          << t.attempts.size() << (t.attempts.size() == 1 ? " attempt" : " attempts") << ", worker "
          << t.attempts.back().worker << ", waited " << detail::format_duration(t.queue_wait) << '\n';
    }
  }
  if (!m_critical_path.empty()) {
    const TaskRecord& first = m_tasks[m_critical_path.front()];
    const auto from = first.attempts.empty() ? m_start : first.attempts.front().start;
    const TaskRecord& last = m_tasks[m_critical_path.back()];
    out << "critical path (" << detail::format_duration(last.finish - from) << "): ";
    for (std::size_t i = 0; i < m_critical_path.size(); ++i) {
      out << (i == 0 ? "" : " -> ") << m_tasks[m_critical_path[i]].id;
    }
    out << '\n';
  }
  return out.str();
}

std::string summary(const ResultSet& results, std::size_t slowest) {
  if (const RunReport* report = results.report()) {
    return report->summary(slowest);
  }
  std::vector<Outcome> outcomes;
  outcomes.reserve(results.size());
  for (const auto& [id, r] : results) {
    outcomes.push_back(
        {&id, r.status, static_cast<std::size_t>(std::max(r.attempts, 0)), error_message(r.error), r.skip_causes()});
  }
  std::ostringstream out;
  out << results.size() << (results.size() == 1 ? " task: " : " tasks: ");
  write_counts(out, outcomes);
  out << '\n';
  write_failures(out, outcomes);
  return out.str();
}

}  // namespace dagsched
