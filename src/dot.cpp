// TaskScheduler::to_dot: the graph, or a finished run of it, in Graphviz DOT.
//
// Nodes are named n<index> and carry the task id in their label, so that no id (quotes, backslashes,
// newlines, DOT keywords, anything) can break the file: the label is the only place an id appears, escaped
// as a DOT escString.
#include <cstddef>
#include <cstdint>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#include "dagsched/result_set.hpp"
#include "dagsched/run_report.hpp"
#include "dagsched/task_scheduler.hpp"
#include "engine.hpp"
#include "report_format.hpp"

namespace dagsched {

namespace {

/// `text` as the inside of a double-quoted DOT escString: quotes and backslashes escaped, a newline as the
/// centred line break \n, other control characters as spaces.
std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c;
        break;
    }
  }
  return out;
}

struct Style {
  const char* fill;
  const char* border;
  const char* extra;  // more attributes, each with a leading ", "
};

Style style_of(Status status) {
  switch (status) {
    case Status::success:
      return {"#c8e6c9", "#2e7d32", ""};
    case Status::failed:
      return {"#ffcdd2", "#c62828", ", penwidth=2"};
    case Status::skipped:
      return {"#eeeeee", "#9e9e9e", ", style=\"rounded,filled,dashed\", fontcolor=\"#616161\""};
    case Status::cancelled:
      return {"#fff3c4", "#f9a825", ""};
  }
  return {"white", "black", ""};
}

std::string render(const detail::Engine& engine, const ResultSet* results) {
  const detail::Graph& graph = engine.graph;
  const detail::IdTable& ids = *engine.ids;
  const RunReport* report = results != nullptr ? results->report() : nullptr;

  // Consecutive tasks of the critical path, whose edge is drawn bold.
  std::set<std::pair<std::uint32_t, std::uint32_t>> critical;
  if (report != nullptr) {
    const auto& path = report->critical_path();
    for (std::size_t i = 0; i + 1 < path.size(); ++i) {
      critical.emplace(path[i], path[i + 1]);
    }
  }
  // The status of task i in `results`, looked up by id (the results may come from an earlier version of
  // the graph), or null.
  auto result_of = [&](std::uint32_t i) -> const TaskResult* {
    return results != nullptr ? results->find(ids.name(i)) : nullptr;
  };

  std::ostringstream out;
  out << "digraph dagsched {\n"
         "  rankdir=LR;\n"
         "  node [shape=box, style=\"rounded,filled\", fillcolor=\"white\", fontname=\"Helvetica\", fontsize=11];\n"
         "  edge [color=\"#616161\", arrowsize=0.7];\n";

  const std::uint32_t n = graph.size();
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::string& id = ids.name(i);
    out << "  n" << i << " [label=\"" << escape(id);
    if (!graph.nodes[i].fn) {
      out << "\\n(not registered)\", style=\"rounded,dashed\", color=\"#c62828\", fontcolor=\"#c62828\"];\n";
      continue;
    }
    const TaskResult* r = result_of(i);
    if (r == nullptr) {
      out << "\"];\n";
      continue;
    }
    out << "\\n" << to_string(r->status) << ", " << r->attempts << (r->attempts == 1 ? " attempt" : " attempts");
    const TaskRecord* record = report != nullptr ? report->find(id) : nullptr;
    if (record != nullptr && !record->attempts.empty()) {
      out << ", " << detail::format_duration(record->elapsed());
    }
    out << '"';
    const Style style = style_of(r->status);
    out << ", fillcolor=\"" << style.fill << "\", color=\"" << style.border << '"' << style.extra;
    std::string tooltip;
    if (r->error) {
      tooltip = error_message(r->error);
    } else if (!r->skip_causes().empty()) {
      tooltip = "skipped because of:";
      for (const std::string& cause : r->skip_causes()) {
        tooltip += ' ' + cause;
      }
    }
    if (!tooltip.empty()) {
      out << ", tooltip=\"" << escape(tooltip) << '"';
    }
    out << "];\n";
  }

  for (std::uint32_t i = 0; i < n; ++i) {
    const detail::TaskNode& node = graph.nodes[i];
    const TaskResult* r = result_of(i);
    for (std::uint32_t k = 0; k < node.dep_count; ++k) {
      const std::uint32_t d = graph.deps[node.dep_begin + k];
      out << "  n" << d << " -> n" << i;
      const TaskResult* dep = result_of(d);
      // Dashed red: an unknown dependency, or the failure that skipped the dependent. Bold: the critical path.
      const bool red =
          !graph.nodes[d].fn || (r != nullptr && dep != nullptr && r->status == Status::skipped && !dep->ok());
      const bool bold = critical.contains({d, i});
      if (red) {
        out << " [style=dashed, color=\"#c62828\"" << (bold ? ", penwidth=2.5]" : "]");
      } else if (bold) {
        out << " [penwidth=2.5, color=\"#1565c0\"]";
      }
      out << ";\n";
    }
  }

  if (results != nullptr) {
    out << "  labelloc=\"b\";\n  fontname=\"Helvetica\";\n  fontsize=11;\n  label=\"" << results->size()
        << (results->size() == 1 ? " task: " : " tasks: ") << results->count(Status::success) << " succeeded, "
        << results->count(Status::failed) << " failed, " << results->count(Status::skipped) << " skipped, "
        << results->count(Status::cancelled) << " cancelled";
    if (report != nullptr) {
      out << "; makespan " << detail::format_duration(report->makespan()) << "; bold: critical path";
    }
    out << "\";\n";
  }
  out << "}\n";
  return out.str();
}

}  // namespace

std::string TaskScheduler::to_dot() const { return render(*m_engine, nullptr); }

std::string TaskScheduler::to_dot(const ResultSet& results) const { return render(*m_engine, &results); }

}  // namespace dagsched
