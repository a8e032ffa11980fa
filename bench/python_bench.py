#!/usr/bin/env python3
"""The dagsched Python module against a plain-Python scheduler, on the C++ benchmark's random DAG.

The graph is bench/'s "random" shape, rebuilt here from the same splitmix64 generator and seed: 10,000
tasks, 20,099 edges, 1,959 roots, 35 levels (checked before anything is timed). Task bodies are trivial
(`lambda: None`), so what is measured is the scheduling cost per task. For each implementation and
worker count, every repetition times add_task() for all tasks ("add_task") and the first run() of a fresh
scheduler ("run"), the two implementations taking turns so that both see the same machine load; the
table shows medians (and the best run). The baseline is bench/pure_python_scheduler.py, the
straightforward ThreadPoolExecutor implementation of the spec.

Run (with the module built, see python/README.md):
    PYTHONPATH=build/python/python /usr/bin/python3 bench/python_bench.py --reps 5
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pure_python_scheduler  # noqa: E402

import dagsched  # noqa: E402

MASK64 = (1 << 64) - 1
SEED = 20240607
SIZE = 10_000
EXPECTED = {"edges": 20_099, "roots": 1_959, "depth": 35}
TARGET_RATIO = 20.0


def splitmix64(seed: int) -> Callable[[], int]:
    state = seed

    def next_value() -> int:
        nonlocal state
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    return next_value


def random_dag() -> list[list[int]]:
    """deps[i]: the dependencies of task i, all below i, as bench/shapes.cpp draws them."""
    rng = splitmix64(SEED)
    deps: list[list[int]] = [[]]
    for i in range(1, SIZE):
        k = min(rng() % 5, i)
        mine: list[int] = []
        while len(mine) < k:
            p = rng() % i
            if p not in mine:
                mine.append(p)
        deps.append(mine)
    return deps


def check_shape(deps: list[list[int]]) -> None:
    level = [1] * len(deps)
    for i, mine in enumerate(deps):
        for p in mine:
            level[i] = max(level[i], level[p] + 1)
    got = {
        "edges": sum(len(d) for d in deps),
        "roots": sum(1 for d in deps if not d),
        "depth": max(level),
    }
    assert got == EXPECTED, f"random DAG mismatch: got {got}, want {EXPECTED}"


def time_once(module, workers: int, ids: list[str], dep_sets: list[set[str]]) -> tuple[float, float]:
    """Seconds for the add_task calls and for run(), on a fresh scheduler."""
    body = lambda: None  # noqa: E731 - the trivial task body of the benchmark
    scheduler = module.TaskScheduler(max_workers=workers)
    gc.collect()
    t0 = time.perf_counter()
    add = scheduler.add_task
    for task_id, deps in zip(ids, dep_sets):
        add(task_id, body, dependencies=deps)
    t1 = time.perf_counter()
    results = scheduler.run()
    t2 = time.perf_counter()
    if len(results) != len(ids) or any(r.status != "success" for r in results.values()):
        raise AssertionError(f"{module.__name__}: not every task succeeded")
    if hasattr(scheduler, "close"):
        scheduler.close()
    return t1 - t0, t2 - t1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per configuration (median shown)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed repetitions first")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4], help="max_workers values")
    parser.add_argument(
        "--require-ratio", type=float, default=None, help="exit 1 unless every run() ratio is at least this"
    )
    args = parser.parse_args()

    deps = random_dag()
    check_shape(deps)
    ids = [f"t{i}" for i in range(SIZE)]
    dep_sets = [{ids[p] for p in d} for d in deps]

    impls = [("dagsched", dagsched), ("pure-python", pure_python_scheduler)]
    print(
        f"random DAG: {SIZE} tasks, {EXPECTED['edges']} edges, {EXPECTED['roots']} roots, depth {EXPECTED['depth']} "
        f"(checked); bodies `lambda: None`; median of {args.reps} reps after {args.warmup} warm-up"
    )
    print(f"python {sys.version.split()[0]}, dagsched {dagsched.__version__}, {os.cpu_count()} CPUs\n")
    header = (
        f"{'implementation':<14} {'workers':>7} {'add_task ms':>12} {'run ms':>9} {'best run':>9} {'total ms':>9} "
        f"{'run us/task':>12}"
    )
    print(header)
    print("-" * len(header))

    medians: dict[tuple[str, int], tuple[float, float]] = {}
    for workers in args.workers:
        for _ in range(args.warmup):
            for _name, module in impls:
                time_once(module, workers, ids, dep_sets)
        # Interleaved, so that on a shared machine both implementations see the same load over time.
        samples_of: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in impls}
        for _ in range(args.reps):
            for name, module in impls:
                samples_of[name].append(time_once(module, workers, ids, dep_sets))
        for name, _module in impls:
            samples = samples_of[name]
            add = statistics.median(s[0] for s in samples)
            run = statistics.median(s[1] for s in samples)
            best = min(s[1] for s in samples)
            total = statistics.median(s[0] + s[1] for s in samples)
            medians[(name, workers)] = (run, total)
            print(
                f"{name:<14} {workers:>7} {add * 1e3:>12.2f} {run * 1e3:>9.2f} {best * 1e3:>9.2f} {total * 1e3:>9.2f} "
                f"{run / SIZE * 1e6:>12.2f}"
            )

    print(f"\nspeed-up of dagsched over pure-python, ratio of medians (target: run >= {TARGET_RATIO:.0f}x)")
    ok = True
    for workers in args.workers:
        d_run, d_total = medians[("dagsched", workers)]
        p_run, p_total = medians[("pure-python", workers)]
        ratio = p_run / d_run
        met = ratio >= TARGET_RATIO
        if args.require_ratio is not None and ratio < args.require_ratio:
            ok = False
        print(
            f"  max_workers={workers}: run {ratio:6.1f}x   add_task+run {p_total / d_total:6.1f}x   "
            f"{'target met' if met else 'BELOW TARGET'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
