"""Every behaviour the spec states, run against dagsched and the plain-Python baseline alike."""

from __future__ import annotations

import threading
import time
import traceback

import pytest


def diamond(impl, b_fn=lambda: "result_B", b_retries=0):
    scheduler = impl.TaskScheduler(max_workers=4)
    scheduler.add_task("A", lambda: "result_A")
    scheduler.add_task("B", b_fn, dependencies={"A"}, retries=b_retries)
    scheduler.add_task("C", lambda: "result_C", dependencies={"A"})
    scheduler.add_task("D", lambda: "result_D", dependencies={"B", "C"})
    scheduler.add_task("E", lambda: "result_E")
    return scheduler


def test_spec_example_all_succeed(impl):
    results = diamond(impl).run()
    assert type(results) is dict
    assert list(results) == ["A", "B", "C", "D", "E"]
    for tid in "ABCDE":
        r = results[tid]
        assert (r.status, r.result, r.error, r.attempts) == ("success", f"result_{tid}", None, 1)


def test_spec_failure_example(impl):
    raised = []

    def failing_B():
        exc = ValueError("B broke")
        raised.append(exc)
        raise exc

    results = diamond(impl, failing_B, b_retries=2).run()
    assert results["A"].status == "success" and results["A"].attempts == 1
    b = results["B"]
    assert b.status == "failed"
    assert b.attempts == 3
    assert b.result is None
    assert isinstance(b.error, ValueError) and str(b.error) == "B broke"
    assert len(raised) == 3
    assert b.error is raised[-1]  # the very object the last attempt raised
    assert results["C"].status == "success" and results["C"].attempts == 1
    d = results["D"]
    assert (d.status, d.result, d.error, d.attempts) == ("skipped", None, None, 0)
    assert results["E"].status == "success" and results["E"].attempts == 1


def test_error_keeps_traceback(impl):
    def failing_B():
        raise ValueError("B broke")

    error = diamond(impl, failing_B).run()["B"].error
    assert error.__traceback__ is not None
    assert traceback.extract_tb(error.__traceback__)[-1].name == "failing_B"


def test_empty_dag(impl):
    assert impl.TaskScheduler().run() == {}


def test_single_task(impl):
    scheduler = impl.TaskScheduler(max_workers=1)
    scheduler.add_task("only", lambda: 42)
    results = scheduler.run()
    assert list(results) == ["only"]
    assert (results["only"].status, results["only"].result, results["only"].attempts) == ("success", 42, 1)


def test_chain_runs_in_order(impl):
    order = []
    scheduler = impl.TaskScheduler(max_workers=4)
    n = 200
    for i in range(n):
        scheduler.add_task(f"t{i}", lambda i=i: order.append(i) or i, dependencies={f"t{i - 1}"} if i else None)
    results = scheduler.run()
    assert order == list(range(n))
    assert [results[f"t{i}"].result for i in range(n)] == list(range(n))


def test_wide_fan_out_fan_in(impl):
    width = 500
    lock = threading.Lock()
    seen = []

    def leaf(i):
        with lock:
            seen.append(i)
        return i

    scheduler = impl.TaskScheduler(max_workers=8)
    scheduler.add_task("src", lambda: "src")
    for i in range(width):
        scheduler.add_task(f"leaf{i}", lambda i=i: leaf(i), dependencies={"src"})
    scheduler.add_task("sink", lambda: len(seen), dependencies={f"leaf{i}" for i in range(width)})
    results = scheduler.run()
    assert sorted(seen) == list(range(width))
    assert results["sink"].result == width  # ran after every leaf
    assert all(r.status == "success" for r in results.values())


def test_independent_tasks_run_in_parallel(impl):
    scheduler = impl.TaskScheduler(max_workers=8)
    for i in range(8):
        scheduler.add_task(f"sleep{i}", lambda: time.sleep(0.2))
    start = time.monotonic()
    results = scheduler.run()
    elapsed = time.monotonic() - start
    assert all(r.status == "success" for r in results.values())
    assert elapsed < 0.8, f"8 x 0.2 s sleeps took {elapsed:.2f} s with 8 workers (serial: 1.6 s)"


def test_ready_tasks_start_together(impl):
    # B and C both wait on A; with a barrier each only finishes if the other is running at the same time.
    barrier = threading.Barrier(2, timeout=5)
    scheduler = impl.TaskScheduler(max_workers=2)
    scheduler.add_task("A", lambda: None)
    scheduler.add_task("B", barrier.wait, dependencies={"A"})
    scheduler.add_task("C", barrier.wait, dependencies={"A"})
    results = scheduler.run()
    assert results["B"].status == results["C"].status == "success"


def test_retry_then_succeed(impl):
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError(f"attempt {len(calls)}")
        return "finally"

    scheduler = impl.TaskScheduler()
    scheduler.add_task("flaky", flaky, retries=5)
    scheduler.add_task("after", lambda: "ran", dependencies={"flaky"})
    results = scheduler.run()
    assert (results["flaky"].status, results["flaky"].result, results["flaky"].attempts) == ("success", "finally", 3)
    assert results["flaky"].error is None
    assert results["after"].status == "success"


def test_no_retries_means_one_attempt(impl):
    calls = []
    scheduler = impl.TaskScheduler()
    scheduler.add_task("x", lambda: calls.append(1) or 1 / 0)
    r = scheduler.run()["x"]
    assert (r.status, r.attempts, len(calls)) == ("failed", 1, 1)
    assert isinstance(r.error, ZeroDivisionError)


def test_duplicate_id_raises_value_error(impl):
    scheduler = impl.TaskScheduler()
    scheduler.add_task("A", lambda: 1)
    with pytest.raises(ValueError):
        scheduler.add_task("A", lambda: 2)
    assert scheduler.run()["A"].result == 1  # the first registration stands


def test_transitive_skip_and_independent_branches(impl):
    def boom():
        raise KeyError("boom")

    scheduler = impl.TaskScheduler(max_workers=3)
    scheduler.add_task("root", lambda: 1)
    scheduler.add_task("bad", boom, dependencies=["root"])
    scheduler.add_task("child", lambda: 2, dependencies=["bad"])
    scheduler.add_task("grandchild", lambda: 3, dependencies=["child", "root"])
    scheduler.add_task("ok", lambda: 4, dependencies=["root"])
    scheduler.add_task("ok2", lambda: 5, dependencies=["ok"])
    scheduler.add_task("alone", lambda: 6)
    results = scheduler.run()
    assert {k: r.status for k, r in results.items()} == {
        "root": "success",
        "bad": "failed",
        "child": "skipped",
        "grandchild": "skipped",
        "ok": "success",
        "ok2": "success",
        "alone": "success",
    }
    assert results["child"].attempts == results["grandchild"].attempts == 0


def test_all_tasks_fail(impl):
    def fail():
        raise OSError("nope")

    scheduler = impl.TaskScheduler()
    for i in range(10):
        scheduler.add_task(f"t{i}", fail, retries=1)
    results = scheduler.run()
    assert all(r.status == "failed" and r.attempts == 2 and isinstance(r.error, OSError) for r in results.values())


def test_custom_exception_subclass(impl):
    class PipelineError(Exception):
        def __init__(self, stage, detail):
            super().__init__(stage, detail)
            self.stage = stage

    class DataError(PipelineError):
        pass

    raised = DataError("ingest", "bad row")

    def task():
        raise raised

    scheduler = impl.TaskScheduler()
    scheduler.add_task("ingest", task)
    r = scheduler.run()["ingest"]
    assert r.error is raised
    assert type(r.error) is DataError and r.error.stage == "ingest"


@pytest.mark.parametrize("value", [None, 0, 0.0, False, "", b"", [], {}, ()])
def test_falsy_return_values_are_results(impl, value):
    scheduler = impl.TaskScheduler()
    scheduler.add_task("t", lambda: value)
    scheduler.add_task("after", lambda: "ran", dependencies={"t"})
    results = scheduler.run()
    assert results["t"].status == "success"
    assert results["t"].result is value or results["t"].result == value
    assert results["after"].status == "success"


def test_result_is_the_returned_object(impl):
    obj = object()
    scheduler = impl.TaskScheduler()
    scheduler.add_task("t", lambda: obj)
    assert scheduler.run()["t"].result is obj


def test_run_twice_starts_afresh(impl):
    counter = []
    scheduler = impl.TaskScheduler()
    scheduler.add_task("t", lambda: counter.append(1) or len(counter))
    first = scheduler.run()
    second = scheduler.run()
    assert first["t"].result == 1 and second["t"].result == 2
    assert first["t"].attempts == second["t"].attempts == 1


def test_default_max_workers_is_4(impl):
    assert impl.TaskScheduler().max_workers == 4
