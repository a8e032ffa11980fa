"""Shared fixtures for the dagsched Python tests.

Run with the built module on the path, e.g.
    PYTHONPATH=build/python/python /usr/bin/python3 -m pytest python/tests
"""

from __future__ import annotations

import faulthandler
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "bench"))  # pure_python_scheduler, the benchmark's baseline

try:
    import dagsched  # noqa: F401
except ImportError as exc:  # pragma: no cover - a setup problem, said clearly
    raise ImportError(
        f"cannot import the dagsched module ({exc}); build it with -DDAGSCHED_BUILD_PYTHON=ON and put "
        "<build dir>/python on PYTHONPATH (see python/README.md)"
    ) from exc

import pure_python_scheduler  # noqa: E402

# Longest any single test may take. A deadlock (in C++, GIL held or not) would otherwise block the run
# forever; faulthandler's watchdog is a C thread that needs no GIL, prints every thread's stack and exits.
TEST_TIMEOUT_S = float(os.environ.get("DAGSCHED_TEST_TIMEOUT", "60"))


@pytest.fixture(autouse=True)
def hang_guard():
    faulthandler.dump_traceback_later(TEST_TIMEOUT_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(params=["dagsched", "pure_python"])
def impl(request):
    """The module under test: dagsched, or the plain-Python baseline (which must obey the spec too)."""
    return dagsched if request.param == "dagsched" else pure_python_scheduler
