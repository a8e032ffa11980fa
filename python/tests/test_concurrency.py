"""Threads, the GIL, lifetimes: what makes the module safe and worth using from Python."""

from __future__ import annotations

import gc
import os
import random
import subprocess
import sys
import threading
import time
import weakref

import pytest

from dagsched import TaskScheduler


def os_thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


def random_graph(rng: random.Random, n: int, max_deps: int = 4) -> list[list[int]]:
    return [rng.sample(range(i), min(i, rng.randrange(max_deps + 1))) for i in range(n)]


@pytest.mark.parametrize("workers", [1, 2, 4, 8, 64])
def test_random_dag_respects_every_edge(workers):
    seed = 1000 + workers
    rng = random.Random(seed)
    graph = random_graph(rng, 1500)
    finished: set[int] = set()
    violations: list[tuple[int, int]] = []
    lock = threading.Lock()

    def body(i):
        with lock:
            violations.extend((i, d) for d in graph[i] if d not in finished)
        with lock:
            finished.add(i)
        return i

    scheduler = TaskScheduler(max_workers=workers)
    for i, deps in enumerate(graph):
        scheduler.add_task(f"n{i}", lambda i=i: body(i), dependencies={f"n{d}" for d in deps})
    results = scheduler.run()
    assert violations == [], f"seed {seed}: tasks started before their dependencies: {violations[:5]}"
    assert len(results) == len(graph) and all(r.status == "success" for r in results.values())
    assert [results[f"n{i}"].result for i in range(len(graph))] == list(range(len(graph)))


@pytest.mark.parametrize("workers", [1, 3, 8])
def test_random_faults_skip_exactly_the_downstream_cone(workers):
    seed = 77 + workers
    rng = random.Random(seed)
    graph = random_graph(rng, 800)
    faulty = {i for i in range(len(graph)) if rng.random() < 0.03}
    retries = {i: rng.randrange(3) for i in range(len(graph))}
    calls = [0] * len(graph)

    def body(i):
        calls[i] += 1  # one task never runs twice at once, so no lock needed
        if i in faulty:
            raise RuntimeError(f"task {i} fails")
        return i

    expected = {}
    for i, deps in enumerate(graph):  # index order is a topological order
        if any(expected[d] != "success" for d in deps):
            expected[i] = "skipped"
        else:
            expected[i] = "failed" if i in faulty else "success"

    scheduler = TaskScheduler(max_workers=workers)
    for i, deps in enumerate(graph):
        scheduler.add_task(f"n{i}", lambda i=i: body(i), dependencies=[f"n{d}" for d in deps], retries=retries[i])
    results = scheduler.run()
    for i in range(len(graph)):
        r = results[f"n{i}"]
        assert r.status == expected[i], f"seed {seed}: task {i}"
        want_attempts = {"success": 1, "failed": retries[i] + 1, "skipped": 0}[expected[i]]
        assert r.attempts == calls[i] == want_attempts, f"seed {seed}: task {i}"


def test_worker_count_bounds_concurrency():
    running = 0
    peak = 0
    lock = threading.Lock()

    def body():
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01)
        with lock:
            running -= 1

    scheduler = TaskScheduler(max_workers=3)
    for i in range(30):
        scheduler.add_task(f"t{i}", body)
    scheduler.run()
    assert peak == 3


def test_tasks_run_on_worker_threads():
    main = threading.get_ident()
    scheduler = TaskScheduler(max_workers=4)
    for i in range(100):
        scheduler.add_task(f"t{i}", threading.get_ident)
    idents = {r.result for r in scheduler.run().values()}
    assert main not in idents
    assert 1 <= len(idents) <= 4


def test_many_threads():
    scheduler = TaskScheduler(max_workers=64)
    barrier = threading.Barrier(64, timeout=10)
    for i in range(64):
        scheduler.add_task(f"b{i}", barrier.wait)  # only completes if all 64 run at once
    for i in range(2000):
        scheduler.add_task(f"t{i}", lambda i=i: i * i, dependencies={f"b{i % 64}"})
    results = scheduler.run()
    assert all(r.status == "success" for r in results.values())
    assert results["t1999"].result == 1999 * 1999


def test_run_releases_the_gil_while_waiting():
    stop = threading.Event()
    spins = 0

    def spinner():
        nonlocal spins
        while not stop.is_set():
            spins += 1

    scheduler = TaskScheduler(max_workers=2)
    scheduler.add_task("a", lambda: time.sleep(0.3))
    scheduler.add_task("b", lambda: time.sleep(0.3), dependencies={"a"})
    thread = threading.Thread(target=spinner)
    thread.start()
    try:
        start = time.monotonic()
        scheduler.run()
        elapsed = time.monotonic() - start
    finally:
        stop.set()
        thread.join()
    assert elapsed < 1.5
    # Holding the GIL in run() would have frozen the spinner for the whole 0.6 s.
    assert spins > 10_000


def test_subprocess_tasks_overlap():
    scheduler = TaskScheduler(max_workers=4)
    for i in range(4):
        scheduler.add_task(f"p{i}", lambda: subprocess.run(["sleep", "0.4"], check=True).returncode)
    start = time.monotonic()
    results = scheduler.run()
    elapsed = time.monotonic() - start
    assert [r.result for r in results.values()] == [0, 0, 0, 0]
    assert elapsed < 1.2, f"4 x 0.4 s subprocesses took {elapsed:.2f} s on 4 workers"


def test_schedulers_in_several_python_threads():
    outcomes = {}

    def worker(k):
        scheduler = TaskScheduler(max_workers=2)
        for i in range(300):
            scheduler.add_task(f"t{i}", lambda i=i: i + k, dependencies={f"t{i - 1}"} if i else None)
        outcomes[k] = [r.result for r in scheduler.run().values()]
        scheduler.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == list(range(6))
    for k, values in outcomes.items():
        assert values == [i + k for i in range(300)]


def test_concurrent_run_of_one_scheduler_is_refused():
    scheduler = TaskScheduler(max_workers=2)
    started = threading.Event()
    scheduler.add_task("slow", lambda: started.set() or time.sleep(0.3))
    errors = []

    def second():
        started.wait(5)
        try:
            scheduler.run()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    results = scheduler.run()
    thread.join(10)
    assert results["slow"].status == "success"
    assert len(errors) == 1 and "running" in str(errors[0])


def test_nested_scheduler_inside_a_task():
    def inner():
        with TaskScheduler(max_workers=2) as nested:
            nested.add_task("x", lambda: 20)
            nested.add_task("y", lambda: 22)
            nested.add_task("sum", lambda: None, dependencies={"x", "y"})
            r = nested.run()
            return r["x"].result + r["y"].result

    scheduler = TaskScheduler(max_workers=2)
    scheduler.add_task("outer", inner)
    assert scheduler.run()["outer"].result == 42


def test_threads_are_joined_on_close_and_collection():
    gc.collect()  # schedulers of earlier tests still waiting in reference cycles
    before = os_thread_count()
    for _ in range(20):
        scheduler = TaskScheduler(max_workers=8)
        scheduler.add_task("t", lambda: None)
        scheduler.run()
        assert os_thread_count() == before + 8
        scheduler.close()
        assert os_thread_count() == before
    for _ in range(20):
        scheduler = TaskScheduler(max_workers=4)
        scheduler.add_task("t", lambda: None)
        scheduler.run()
        del scheduler  # reference counting destroys it at once
    gc.collect()
    assert os_thread_count() == before


def test_scheduler_in_a_reference_cycle_is_collected():
    def make_cycle():
        scheduler = TaskScheduler(max_workers=4)
        # scheduler -> its task -> the lambda -> the closure cell -> scheduler
        scheduler.add_task("self_aware", lambda: len(scheduler))
        assert scheduler.run()["self_aware"].result == 1

    gc.collect()
    before = os_thread_count()
    gc.disable()  # so that the cycles demonstrably outlive make_cycle
    try:
        for _ in range(10):
            make_cycle()
        assert os_thread_count() == before + 40
    finally:
        gc.enable()
    gc.collect()
    assert os_thread_count() == before


class Payload:
    """Weak-referenceable stand-in for a task's value."""


def test_results_and_errors_are_not_kept_alive_by_the_scheduler():
    class Boom(Exception):
        pass

    scheduler = TaskScheduler(max_workers=2)
    scheduler.add_task("value", Payload)

    def fail():
        raise Boom()

    scheduler.add_task("error", fail, retries=2)
    results = scheduler.run()
    value_ref = weakref.ref(results["value"].result)
    error_ref = weakref.ref(results["error"].error)
    del results
    gc.collect()
    assert value_ref() is None and error_ref() is None
    scheduler.close()


def test_task_callables_released_on_close():
    class Body:
        def __call__(self):
            return 1

    body = Body()
    ref = weakref.ref(body)
    scheduler = TaskScheduler(max_workers=2)
    scheduler.add_task("t", body)
    del body
    scheduler.run()
    assert ref() is not None  # the scheduler keeps its tasks for later runs
    scheduler.close()
    assert ref() is None


def test_reference_counts_are_balanced():
    value = object()
    error = ValueError("x")

    def ok():
        return value

    def bad():
        raise error

    base_value, base_error = sys.getrefcount(value), sys.getrefcount(error)
    scheduler = TaskScheduler(max_workers=3)
    for i in range(50):
        scheduler.add_task(f"ok{i}", ok)
        scheduler.add_task(f"bad{i}", bad, retries=1)
    for _ in range(5):
        results = scheduler.run()
        assert all(results[f"ok{i}"].result is value for i in range(50))
        del results
    scheduler.close()
    error.__traceback__ = None  # the traceback's frames reference `error` via bad's closure cell
    gc.collect()
    assert sys.getrefcount(value) == base_value
    assert sys.getrefcount(error) == base_error


def test_task_result_cycles_are_collected():
    box = Payload()
    ref = weakref.ref(box)
    scheduler = TaskScheduler(max_workers=1)
    scheduler.add_task("t", lambda: box)
    results = scheduler.run()
    box.me = results["t"]  # box -> TaskResult -> box
    del box, results
    scheduler.close()
    del scheduler
    gc.collect()
    assert ref() is None


def test_repeated_runs_with_failures_stress():
    scheduler = TaskScheduler(max_workers=4)
    rng = random.Random(5)
    graph = random_graph(rng, 200, 3)
    for i, deps in enumerate(graph):
        fn = (lambda i=i: 1 / 0) if i % 17 == 5 else (lambda i=i: [i] * 3)
        scheduler.add_task(f"n{i}", fn, dependencies=[f"n{d}" for d in deps], retries=i % 3)
    first = scheduler.run()
    for _ in range(100):
        again = scheduler.run()
        assert {k: (r.status, r.attempts) for k, r in again.items()} == {
            k: (r.status, r.attempts) for k, r in first.items()
        }
