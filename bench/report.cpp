// dagsched_bench: the human table, the CSV lines and the target checks of the benchmark spec.
#include "report.hpp"

#include <array>
#include <cstdio>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace dagsched_bench {

namespace {

std::optional<double> median(const std::vector<Measurement>& all, std::string_view engine, std::string_view api,
                             std::string_view shape, std::string_view phase) {
  for (const Measurement& m : all) {
    if (m.engine == engine && m.api == api && m.shape == shape && m.phase == phase && m.reps > 0) {
      return m.median_ms;
    }
  }
  return std::nullopt;
}

std::string fmt_ms(std::optional<double> v) {
  if (!v) {
    return "-";
  }
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%.3f", *v);
  return buf.data();
}

std::string fmt_ratio(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b <= 0) {
    return "-";
  }
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%.2fx", *a / *b);
  return buf.data();
}

constexpr std::array<std::string_view, 5> empty_shapes{"chain", "independent", "bintree", "wavefront", "random"};
constexpr std::array<std::string_view, 2> apis{"ids", "handles"};

// Taskflow build+run+destroy times (ms) the issue quotes for the same shapes, 2 workers.
struct TaskflowOnce {
  std::string_view shape;
  double ms;
};
constexpr std::array<TaskflowOnce, 5> taskflow_once{
    {{"chain", 12.5}, {"independent", 13.4}, {"bintree", 24.0}, {"wavefront", 14.4}, {"random", 2.07}}};

class TargetPrinter {
 public:
  explicit TargetPrinter(std::ostream& os) : m_os(os) {}

  // Prints PASS/FAIL for `pass`, or SKIP when a number is missing.
  void line(std::string_view target, std::string_view subject, std::optional<bool> pass, const std::string& detail) {
    const char* verdict = !pass ? "SKIP" : (*pass ? "PASS" : "FAIL");
    m_os << verdict << "  " << pad_right(target, 34) << pad_right(subject, 22) << detail << '\n';
    if (pass) {
      ++(*pass ? m_pass : m_fail);
    }
  }

  void summary() { m_os << "targets: " << m_pass << " pass, " << m_fail << " fail (informational)\n"; }

 private:
  std::ostream& m_os;
  int m_pass = 0;
  int m_fail = 0;
};

// "1.23 ms vs 4.56 ms = 0.27x", or "not measured".
std::string compare(std::optional<double> a, std::optional<double> b) {
  if (!a || !b) {
    return "not measured";
  }
  return fmt_ms(a) + " ms vs " + fmt_ms(b) + " ms = " + fmt_ratio(a, b);
}

std::optional<bool> at_most(std::optional<double> a, std::optional<double> b, double factor) {
  if (!a || !b) {
    return std::nullopt;
  }
  return *a <= factor * *b;
}

}  // namespace

void print_csv_header(std::ostream& os) { os << "engine,shape,api,phase,workers,median_ms,best_ms,reps\n"; }

void print_csv(std::ostream& os, const std::vector<Measurement>& ms) {
  for (const Measurement& m : ms) {
    std::array<char, 64> nums{};
    std::snprintf(nums.data(), nums.size(), "%.4f,%.4f", m.median_ms, m.best_ms);
    os << m.engine << ',' << m.shape << ',' << m.api << ',' << m.phase << ',' << m.workers << ',' << nums.data() << ','
       << m.reps << '\n';
  }
}

void print_samples(std::ostream& os, const std::vector<Measurement>& ms) {
  for (const Measurement& m : ms) {
    os << "samples " << m.engine << '/' << m.api << ' ' << m.shape << ' ' << m.phase << " (ms):";
    for (double v : m.samples_ms) {
      std::array<char, 32> buf{};
      std::snprintf(buf.data(), buf.size(), " %.3f", v);
      os << buf.data();
    }
    os << '\n';
  }
}

void print_shape_facts(std::ostream& os, const Shape& shape) {
  os << shape.name << ": " << shape.size << " tasks, " << shape.edges() << " edges, " << shape.roots << " roots, depth "
     << shape.depth;
  if (shape.body == BodyKind::spin) {
    os << ", bodies spin " << spin_us << " us";
  }
  if (shape.body == BodyKind::faults) {
    std::size_t faulty = 0;
    for (std::uint8_t f : shape.faulty) {
      faulty += f;
    }
    os << ", " << faulty << " faulty tasks (retries=" << shape.retries << "): expect " << shape.expected_failed
       << " failed, " << shape.expected_skipped << " skipped";
  }
  os << '\n';
}

void print_shape_table(std::ostream& os, const Shape& shape, const std::vector<Measurement>& all) {
  os << "\n== ";
  print_shape_facts(os, shape);
  os << pad_right("phase", 12) << pad("ids ms", 11) << pad("handles ms", 11) << pad("tbb ms", 11)
     << pad("serial ms", 11) << " |" << pad("ids/tbb", 9) << pad("hnd/tbb", 9) << pad("ids/ser", 9) << pad("hnd/ser", 9)
     << '\n';
  for (const char* phase : phase_names) {
    const auto ids = median(all, "dagsched", "ids", shape.name, phase);
    const auto hnd = median(all, "dagsched", "handles", shape.name, phase);
    const auto tbb = median(all, "tbb", "-", shape.name, phase);
    const auto ser = median(all, "serial", "-", shape.name, phase);
    if (!ids && !hnd && !tbb && !ser) {
      continue;
    }
    os << pad_right(phase, 12) << pad(fmt_ms(ids), 11) << pad(fmt_ms(hnd), 11) << pad(fmt_ms(tbb), 11)
       << pad(fmt_ms(ser), 11) << " |" << pad(fmt_ratio(ids, tbb), 9) << pad(fmt_ratio(hnd, tbb), 9)
       << pad(fmt_ratio(ids, ser), 9) << pad(fmt_ratio(hnd, ser), 9) << '\n';
  }
  os.flush();
}

void print_memory(std::ostream& os, const std::vector<MemoryReading>& readings) {
  for (const MemoryReading& r : readings) {
    const double n = static_cast<double>(r.tasks);
    std::array<char, 320> buf{};
    std::snprintf(buf.data(), buf.size(),
                  "%-9s %-8s %9zu tasks: %7.1f B/task after build, %7.1f B/task after one run (results held); "
                  "build %.1f ms, first run %.1f ms, re-run %.1f ms, destroy %.1f ms",
                  r.engine.c_str(), r.api.c_str(), r.tasks, static_cast<double>(r.after_build_bytes) / n,
                  static_cast<double>(r.after_run_bytes) / n, r.build_ms, r.run_ms, r.rerun_ms, r.destroy_ms);
    os << buf.data() << '\n';
  }
  os.flush();
}

void print_targets(std::ostream& os, const std::vector<Measurement>& all, std::size_t workers) {
  os << "\n== targets of the issue (" << workers << " workers; informational, the exit code ignores them)\n";
  TargetPrinter t(os);
  const auto dag = [&all](std::string_view api, std::string_view shape, std::string_view phase) {
    return median(all, "dagsched", api, shape, phase);
  };

  for (std::string_view shape : empty_shapes) {
    for (std::string_view api : apis) {
      const auto d = dag(api, shape, "run");
      const auto tbb = median(all, "tbb", "-", shape, "run");
      t.line("run <= 0.5x tbb", std::string(shape) + " " + std::string(api), at_most(d, tbb, 0.5), compare(d, tbb));
    }
  }
  for (std::string_view api : apis) {
    const auto d = dag(api, "chain", "run");
    const auto ser = median(all, "serial", "-", "chain", "run");
    t.line("chain run <= 3x serial", api, at_most(d, ser, 3.0), compare(d, ser));
  }
  // Ideal: every spin body back to back on `workers` threads, no scheduling cost at all.
  const double ideal_ms = 10'000.0 * spin_us / 1000.0 / static_cast<double>(workers);
  const auto serial_spin = median(all, "serial", "-", "random_spin", "run");
  for (std::string_view api : apis) {
    const auto d = dag(api, "random_spin", "run");
    std::optional<bool> pass;
    std::string detail = "not measured";
    if (d) {
      const double eff = ideal_ms / *d;
      pass = eff >= 0.97;
      std::array<char, 160> buf{};
      std::snprintf(buf.data(), buf.size(), "efficiency %.1f%% (ideal %.1f ms / median %.3f ms)", 100 * eff, ideal_ms,
                    *d);
      detail = buf.data();
      if (serial_spin) {
        std::snprintf(buf.data(), buf.size(), "; vs serial/%zu: %.1f%%", workers,
                      100 * *serial_spin / static_cast<double>(workers) / *d);
        detail += buf.data();
      }
    }
    t.line("random_spin efficiency >= 97%", api, pass, detail);
  }
  for (const TaskflowOnce& ref : taskflow_once) {
    const auto d = dag("handles", ref.shape, "once");
    t.line("once handles < Taskflow", ref.shape, d ? std::optional<bool>(*d < ref.ms) : std::nullopt,
           compare(d, ref.ms));
  }
  for (std::string_view shape : shape_names()) {
    const auto ids = dag("ids", shape, "build");
    const auto hnd = dag("handles", shape, "build");
    t.line("build ids <= 2x build handles", shape, at_most(ids, hnd, 2.0), compare(ids, hnd));
  }
  for (std::string_view api : apis) {
    const auto faults = dag(api, "random_faults", "run");
    const auto plain = dag(api, "random", "run");
    t.line("random_faults run <= 3x random", api, at_most(faults, plain, 3.0), compare(faults, plain));
  }
  t.summary();
  os.flush();
}

std::string pad(const std::string& s, std::size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

std::string pad_right(std::string_view s, std::size_t width) {
  std::string out(s);
  if (out.size() < width) {
    out.append(width - out.size(), ' ');
  }
  return out;
}

}  // namespace dagsched_bench
