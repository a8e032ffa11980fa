// Text helpers shared by the run report's writers (summary, DOT).
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace dagsched::detail {

/// A duration for people: "850 ns", "12.3 us", "4.56 ms", "1.23 s" (three significant digits or so).
[[nodiscard]] inline std::string format_duration(std::chrono::nanoseconds d) {
  const auto ns = static_cast<double>(d.count());
  const double magnitude = ns < 0 ? -ns : ns;
  char buffer[32];
  if (magnitude < 1e3) {
    std::snprintf(buffer, sizeof buffer, "%.0f ns", ns);
  } else if (magnitude < 1e6) {
    std::snprintf(buffer, sizeof buffer, "%.3g us", ns / 1e3);
  } else if (magnitude < 1e9) {
    std::snprintf(buffer, sizeof buffer, "%.3g ms", ns / 1e6);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.3g s", ns / 1e9);
  }
  return buffer;
}

}  // namespace dagsched::detail
