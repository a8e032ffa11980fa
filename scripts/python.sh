#!/usr/bin/env bash
# From a fresh Debian 12 machine to the Python quickstart: installs the dependencies, builds the dagsched
# Python module into build/python and runs python/examples/quickstart.py with it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build/python -G Ninja -DCMAKE_BUILD_TYPE=Release -DDAGSCHED_BUILD_PYTHON=ON \
  -DDAGSCHED_BUILD_TESTS=OFF -DDAGSCHED_BUILD_EXAMPLES=OFF -DPython3_EXECUTABLE=/usr/bin/python3 >/dev/null
cmake --build build/python --target dagsched_python
PYTHONPATH=build/python/python /usr/bin/python3 python/examples/quickstart.py
