#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running example: installs the dependencies, builds the release
# preset and runs examples/quickstart.cpp.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target dagsched_example_quickstart dagsched_example_failure
build/release/examples/quickstart
