#!/usr/bin/env bash
# The whole test suite, as CI runs it: the release, ThreadSanitizer and AddressSanitizer+UBSan builds each
# run every test; then the examples run, a consumer project builds against the installed package (and via
# add_subdirectory and FetchContent), and the benchmark does one smoke repetition.
# Prerequisites: scripts/install-deps.sh (once).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=${DAGSCHED_JOBS:-$(nproc)}

step() { printf '\n=== %s (%s)\n' "$*" "$(date +%T)"; }

export TSAN_OPTIONS="suppressions=$root/tests/tsan.supp halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
export ASAN_OPTIONS="detect_leaks=1 halt_on_error=1 ${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1 halt_on_error=1 ${UBSAN_OPTIONS:-}"

step "clang: -Wthread-safety over the library (syntax only)"
for src in src/*.cpp; do
  clang++ -std=c++20 -Iinclude -Isrc -Wall -Wextra -Wthread-safety -Werror -fsyntax-only "$src"
done
echo "clang -Wthread-safety: clean"

for preset in ${DAGSCHED_PRESETS:-release tsan asan}; do
  step "configure + build: $preset"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  step "ctest: $preset"
  ctest --preset "$preset" -j "$jobs"
done

step "examples (release)"
for example in quickstart failure fault_tolerance resources priorities; do
  build/release/examples/$example
done

step "observability example: report, trace and graph; Graphviz renders the graph"
rm -rf build/observe
build/release/examples/observe build/observe
python3 -m json.tool build/observe/report.json >/dev/null
python3 -m json.tool build/observe/trace.json >/dev/null
dot -Tsvg build/observe/graph.dot -o build/observe/graph.svg
echo "report.json and trace.json parse; dot rendered build/observe/graph.svg"

step "consumer project: find_package after install, add_subdirectory, FetchContent"
prefix=$root/build/install
rm -rf "$prefix" build/package-*
cmake --install build/release --prefix "$prefix" >/dev/null
cmake -S tests/package -B build/package-find -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build build/package-find >/dev/null
build/package-find/consumer
for mode in add_subdirectory fetchcontent; do
  cmake -S tests/package -B build/package-$mode -G Ninja -DDAGSCHED_CONSUME=$mode -DDAGSCHED_SOURCE_DIR="$root" >/dev/null
  cmake --build build/package-$mode >/dev/null
  build/package-$mode/consumer
done

if [ -x build/release/bench/dagsched_bench ]; then
  step "benchmark smoke run (one repetition, no timing assertions)"
  build/release/bench/dagsched_bench --reps 1 >/dev/null
  echo "dagsched_bench --reps 1: ok"
  build/release/bench/dagsched_bench --makespan --reps 1 >/dev/null
  echo "dagsched_bench --makespan --reps 1: ok"
  build/release/bench/dagsched_bench --latency --reps 3 >/dev/null
  echo "dagsched_bench --latency --reps 3: ok"
fi

step "all passed"
