// dagsched_bench: the human table, the CSV lines and the target checks of the benchmark spec.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "harness.hpp"
#include "shapes.hpp"

namespace dagsched_bench {

/// Right-aligns `s` in `width` columns (for the human tables).
[[nodiscard]] std::string pad(const std::string& s, std::size_t width);

/// Left-aligns `s` in `width` columns.
[[nodiscard]] std::string pad_right(std::string_view s, std::size_t width);

/// The CSV header: engine,shape,api,phase,workers,median_ms,best_ms,reps
void print_csv_header(std::ostream& os);

/// One CSV line per measurement.
void print_csv(std::ostream& os, const std::vector<Measurement>& ms);

/// Every sample of every measurement, in the order taken (--samples).
void print_samples(std::ostream& os, const std::vector<Measurement>& ms);

/// One line of facts about a shape (tasks, edges, roots, depth, faults).
void print_shape_facts(std::ostream& os, const Shape& shape);

/// For each phase of `shape`: the median of every engine, and dagsched's ratios to tbb and serial.
void print_shape_table(std::ostream& os, const Shape& shape, const std::vector<Measurement>& all);

/// The memory readings, in bytes per task.
void print_memory(std::ostream& os, const std::vector<MemoryReading>& readings);

/// The targets as PASS/FAIL lines (informational), from whatever was measured.
void print_targets(std::ostream& os, const std::vector<Measurement>& all, std::size_t workers);

}  // namespace dagsched_bench
