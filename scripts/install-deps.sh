#!/usr/bin/env bash
# Installs what building and testing dagsched needs, from Debian 12's packages.
set -euo pipefail

packages=(
  cmake ninja-build g++ clang make git pkg-config
  libgtest-dev   # unit tests
  nlohmann-json3-dev   # the run report's and the Chrome trace's JSON (src/), and parsing them in tests
  graphviz   # CI renders a to_dot() graph with dot, to prove the output valid
  libbenchmark-dev libtbb-dev   # bench/: the oneTBB flow_graph reference engine
  pybind11-dev python3-dev python3-pytest   # the Python module and its tests (Debian's /usr/bin/python3)
)

SUDO=""
if [ "$(id -u)" != 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "install-deps: installed ${packages[*]}"
