"""The example and the benchmark script run, so they cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO

import dagsched

MODULE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(dagsched.__file__)))


def run_script(*args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [MODULE_DIR, env.get("PYTHONPATH", "")] if p)
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=120)


def test_quickstart_example():
    proc = run_script(os.path.join(REPO, "python", "examples", "quickstart.py"))
    assert proc.returncode == 0, proc.stderr
    assert "B: failed   attempts=3  error=ValueError('B broke')" in proc.stdout
    assert "D: skipped  attempts=0" in proc.stdout


def test_benchmark_smoke_run():
    # One repetition, no timing assertion: checks the random DAG (20,099 edges, 1,959 roots, depth 35)
    # and that both implementations complete it.
    proc = run_script(os.path.join(REPO, "bench", "python_bench.py"), "--reps", "1", "--warmup", "0", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert "20099 edges, 1959 roots, depth 35 (checked)" in proc.stdout
    assert "max_workers=2: run" in proc.stdout


def test_fault_tolerance_example():
    proc = run_script(os.path.join(REPO, "python", "examples", "fault_tolerance.py"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "notify: skipped after 0 attempt(s), skipped because deploy failed" in proc.stdout
    assert "cleanup says: deploy was failed" in proc.stdout


def test_resources_example():
    proc = run_script(os.path.join(REPO, "python", "examples", "resources.py"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rejected: task 'train_huge' asks too much of pool 'gpu'" in proc.stdout
    assert "tasks: 10, all succeeded: True, most GPUs in use at once: " in proc.stdout
