"""Fault-tolerance controls: retry policy, PermanentError, retry_if, timeouts and deadlines, the all_done
trigger, skip causes, TaskContext, failure policies, and runs started with start() (RunHandle).

Every wait is bounded: RunHandle.wait() gets a timeout, loops polling a condition give up after a few
seconds, and conftest's hang guard ends the process if a test still hangs.
"""

from __future__ import annotations

import builtins
import datetime
import functools
import pickle
import sys
import threading
import time

import pytest

import dagsched
from dagsched import PermanentError, TaskContext, TaskResult, TaskScheduler

WAIT_S = 20.0  # bound on any one RunHandle.wait() below


def poll_until(predicate, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.002)


@pytest.fixture
def sched():
    with TaskScheduler(max_workers=2) as s:
        yield s


class Flaky:
    """Raises `error` on the first `failures` calls, then returns `value`; records when each call began."""

    def __init__(self, failures, value="ok", error=ValueError):
        self.failures = failures
        self.value = value
        self.error = error
        self.starts = []

    def __call__(self):
        self.starts.append(time.monotonic())
        if len(self.starts) <= self.failures:
            raise self.error(f"attempt {len(self.starts)}")
        return self.value


# --- retry policy -----------------------------------------------------------------------------------


def test_retry_delay_does_not_hold_a_worker():
    a, b = Flaky(failures=1), Flaky(failures=1)
    with TaskScheduler(max_workers=1) as s:
        s.add_task("a", a, retries=1, retry_delay=0.3)
        s.add_task("b", b, retries=1, retry_delay=0.3)
        results = s.run()
    assert results["a"] == results["b"] == TaskResult("success", "ok", None, 2)
    assert a.starts[1] - a.starts[0] >= 0.29 and b.starts[1] - b.starts[0] >= 0.29
    # One worker: had the first task's wait held it, the other could not have started before that retry.
    assert max(a.starts[0], b.starts[0]) < min(a.starts[1], b.starts[1])


def test_backoff_max_delay_and_timedelta(sched):
    flaky = Flaky(failures=3)
    sched.add_task("t", flaky, retries=3, retry_delay=datetime.timedelta(milliseconds=40), backoff=2.0, max_delay=0.06)
    results = sched.run(seed=7)
    assert results["t"].attempts == 4
    gaps = [b - a for a, b in zip(flaky.starts, flaky.starts[1:])]
    # 40 ms, then min(60, 80) ms, then min(60, 160) ms.
    assert gaps[0] >= 0.039 and gaps[1] >= 0.059 and gaps[2] >= 0.059


def test_jitter_shortens_the_wait_and_is_bounded(sched):
    flaky = Flaky(failures=1)
    sched.add_task("t", flaky, retries=1, retry_delay=0.1, jitter=0.5)
    assert sched.run(seed=1)["t"].status == "success"
    assert flaky.starts[1] - flaky.starts[0] >= 0.049  # jitter 0.5 waits in [50, 100] ms


def test_permanent_error_fails_at_once(sched):
    class ConfigError(PermanentError):
        pass

    calls = []

    def deploy():
        calls.append(1)
        raise ConfigError("no target")

    sched.add_task("deploy", deploy, retries=5, retry_delay=0.01)
    sched.add_task("notify", lambda: None, dependencies={"deploy"})
    results = sched.run()
    assert len(calls) == 1
    r = results["deploy"]
    assert (r.status, r.attempts) == ("failed", 1)
    assert isinstance(r.error, ConfigError) and isinstance(r.error, PermanentError)
    assert str(r.error) == "no target" and r.error.__traceback__ is not None
    assert results["notify"].skip_causes == ("deploy",)
    assert issubclass(PermanentError, Exception)


def test_retry_if_decides_and_sees_the_raised_object(sched):
    seen = []
    errors = [ValueError("transient"), KeyError("fatal")]

    def task():
        raise errors[min(len(seen), 1)]

    def retry_if(exc):
        seen.append(exc)
        return isinstance(exc, ValueError)

    sched.add_task("t", task, retries=5, retry_if=retry_if)
    r = sched.run()["t"]
    assert (r.status, r.attempts) == ("failed", 2)
    assert r.error is errors[1]
    assert seen == [errors[0], errors[1]] and seen[0] is errors[0]


def test_retry_if_that_raises_does_not_retry(sched, monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: reported.append(info.exc_value))

    def broken(exc):
        raise RuntimeError("predicate broke")

    flaky = Flaky(failures=5)
    sched.add_task("t", flaky, retries=5, retry_if=broken)
    r = sched.run()["t"]
    assert (r.status, r.attempts) == ("failed", 1)
    assert isinstance(r.error, ValueError)
    assert len(reported) == 1 and str(reported[0]) == "predicate broke"


def test_retry_if_is_not_asked_about_permanent_errors(sched):
    asked = []
    sched.add_task("t", lambda: (_ for _ in ()).throw(PermanentError("no")), retries=3,
                   retry_if=lambda e: asked.append(e) or True)
    assert sched.run()["t"].attempts == 1
    assert asked == []


# --- timeouts and deadlines ---------------------------------------------------------------------------


def test_timeout_requests_stop_and_records_timeout_error(sched):
    seen = []

    def slow(ctx):
        seen.append((ctx.attempt, ctx.last_error))
        limit = time.monotonic() + 5
        while not ctx.stop_requested():
            if time.monotonic() > limit:
                return "never stopped"
            time.sleep(0.005)
        raise RuntimeError("stopped")

    sched.add_task("slow", slow, retries=1, timeout=0.1)
    r = sched.run()["slow"]
    assert (r.status, r.attempts) == ("failed", 2)
    err = r.error
    assert isinstance(err, dagsched.TimeoutError) and isinstance(err, builtins.TimeoutError)
    assert (err.task_id, err.attempt, err.deadline) == ("slow", 2, False)
    assert err.limit == pytest.approx(0.1)
    assert isinstance(err.cause, RuntimeError) and str(err.cause) == "stopped"
    assert err.__cause__ is err.cause
    assert "slow" in str(err)
    # The retry saw the first attempt's timeout as its last_error.
    assert seen[0] == (1, None)
    assert seen[1][0] == 2 and isinstance(seen[1][1], dagsched.TimeoutError) and seen[1][1].attempt == 1


def test_timeout_of_a_task_that_returns_late(sched):
    sched.add_task("late", lambda: time.sleep(0.15) or "value", timeout=0.05)
    r = sched.run()["late"]
    assert r.status == "failed" and r.result is None
    assert isinstance(r.error, dagsched.TimeoutError) and r.error.cause is None and r.error.__cause__ is None


def test_deadline_ends_retries(sched):
    flaky = Flaky(failures=1000)
    sched.add_task("t", flaky, retries=1000, retry_delay=0.05, deadline=0.3)
    began = time.monotonic()
    r = sched.run()["t"]
    assert time.monotonic() - began < 5
    assert r.status == "failed" and 2 <= r.attempts < 20
    assert isinstance(r.error, dagsched.TimeoutError) and r.error.deadline is True
    assert r.error.limit == pytest.approx(0.3)
    assert isinstance(r.error.cause, ValueError)


def test_timeout_error_can_be_constructed_and_pickled():
    err = dagsched.TimeoutError("t timed out", task_id="t", attempt=2, limit=1.5, deadline=True)
    assert (err.task_id, err.attempt, err.limit, err.deadline, err.cause) == ("t", 2, 1.5, True, None)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.task_id, copy.attempt, str(copy)) == ("t", 2, "t timed out")


# --- trigger rule and skip causes ---------------------------------------------------------------------


def test_all_done_cleanup_runs_after_a_failure(sched):
    boom = ValueError("boom")

    def fail():
        raise boom

    def cleanup(ctx):
        a, b = ctx.dependency("A"), ctx.dependency("B")
        return (a.status, a.error, b.status, b.skip_causes)

    sched.add_task("A", fail)
    sched.add_task("B", lambda: "b", dependencies={"A"})
    sched.add_task("plain", lambda: "p", dependencies={"A"})
    sched.add_task("cleanup", cleanup, dependencies=["A", "B"], trigger="all_done")
    results = sched.run()
    assert results["cleanup"].status == "success"
    assert results["cleanup"].result == ("failed", boom, "skipped", ("A",))
    assert results["cleanup"].result[1] is boom
    assert results["plain"].status == "skipped"


def test_skip_causes(sched):
    def fail():
        raise ValueError("x")

    sched.add_task("A", fail)
    sched.add_task("B", fail)
    sched.add_task("C", lambda: 1, dependencies={"A"})
    sched.add_task("D", lambda: 1, dependencies={"C", "B"})
    sched.add_task("E", lambda: 1)
    results = sched.run()
    assert results["C"].skip_causes == ("A",)
    assert results["D"].skip_causes == ("A", "B")
    assert results["A"].skip_causes == () and results["E"].skip_causes == ()
    assert repr(results["C"]) == "TaskResult(status='skipped', result=None, error=None, attempts=0, skip_causes=('A',))"
    assert pickle.loads(pickle.dumps(results["D"])) == results["D"]


def test_task_result_skip_causes_constructor():
    r = TaskResult("skipped", skip_causes=["A"])
    assert r.skip_causes == ("A",)
    assert r != TaskResult("skipped")
    assert TaskResult("success").skip_causes == ()
    with pytest.raises(TypeError):
        TaskResult("skipped", skip_causes=[1])


# --- TaskContext --------------------------------------------------------------------------------------


def test_context_passes_results_without_copying(sched):
    payload = {"rows": list(range(100))}
    seen = {}

    def consume(ctx):
        seen["id"], seen["attempt"] = ctx.task_id, ctx.attempt
        seen["obj"] = ctx.result("produce")
        seen["dep"] = ctx.dependency("produce")
        with pytest.raises(KeyError):
            ctx.result("unrelated")
        seen["ctx"] = ctx
        return len(ctx.result("produce")["rows"])

    sched.add_task("produce", lambda: payload)
    sched.add_task("unrelated", lambda: None)
    sched.add_task("consume", consume, dependencies={"produce"})
    results = sched.run()
    assert results["consume"] == TaskResult("success", 100, None, 1)
    assert seen["obj"] is payload and results["produce"].result is payload
    assert seen["dep"] == TaskResult("success", payload, None, 1)
    assert (seen["id"], seen["attempt"]) == ("consume", 1)
    assert isinstance(seen["ctx"], TaskContext)
    with pytest.raises(RuntimeError, match="only valid during"):
        seen["ctx"].result("produce")
    assert seen["ctx"].stop_requested() is False


def test_context_result_of_a_failed_dependency_raises(sched):
    def fail():
        raise ValueError("x")

    got = []

    def cleanup(ctx):
        with pytest.raises(ValueError, match="did not succeed"):
            ctx.result("A")
        got.append(ctx.dependency("A").status)

    sched.add_task("A", fail)
    sched.add_task("cleanup", cleanup, dependencies={"A"}, trigger="all_done")
    assert sched.run()["cleanup"].status == "success"
    assert got == ["failed"]


def test_context_detection(sched):
    def takes_ctx(ctx):
        return isinstance(ctx, TaskContext)

    def takes_nothing():
        return "none"

    def with_default(x=1):
        return x

    class Body:
        def method(self, ctx):
            return ctx.task_id

        def __call__(self, ctx):
            return ctx.attempt

    def two(a, ctx):
        return (a, ctx.task_id)

    sched.add_task("lambda", lambda ctx: ctx.task_id)
    sched.add_task("function", takes_ctx)
    sched.add_task("plain", takes_nothing)
    sched.add_task("default", with_default)
    sched.add_task("method", Body().method)
    sched.add_task("callable", Body())
    sched.add_task("partial", functools.partial(two, "a"))
    sched.add_task("builtin", list)
    sched.add_task("forced", lambda *args: len(args), context=True)
    sched.add_task("refused", lambda x=None: x, context=False)
    r = {k: v.result for k, v in sched.run().items()}
    assert r == {
        "lambda": "lambda",
        "function": True,
        "plain": "none",
        "default": 1,
        "method": "method",
        "callable": 1,
        "partial": ("a", "partial"),
        "builtin": [],
        "forced": 1,
        "refused": None,
    }


# --- runs started with start() ------------------------------------------------------------------------


def test_progress_and_handle(sched):
    gate = threading.Event()
    sched.add_task("A", lambda: gate.wait(WAIT_S))
    sched.add_task("B", lambda: "b", dependencies={"A"})
    sched.add_task("C", lambda: (_ for _ in ()).throw(ValueError("c")))
    handle = sched.start()
    assert isinstance(handle, dagsched.RunHandle)
    poll_until(lambda: handle.progress().failed == 1 and handle.progress().running == 1)
    p = handle.progress()
    assert (p.total, p.finished, p.running, p.waiting) == (3, 1, 1, 0)
    assert not handle.done()
    with pytest.raises(builtins.TimeoutError):
        handle.wait(timeout=0.05)
    with pytest.raises(RuntimeError):
        sched.add_task("late", lambda: None)
    with pytest.raises(RuntimeError):
        sched.run()
    gate.set()
    results = handle.wait(timeout=WAIT_S)
    assert handle.done()
    assert handle.wait() is results
    assert [results[k].status for k in "ABC"] == ["success", "success", "failed"]
    final = handle.progress()
    assert final._asdict() == {"total": 3, "finished": 3, "running": 0, "waiting": 0, "succeeded": 2, "failed": 1,
                               "skipped": 0, "cancelled": 0}
    assert "finished=3" in repr(final)
    assert sched.run()["B"].status == "success"  # ready for another run


def test_progress_counts_tasks_waiting_for_a_retry(sched):
    sched.add_task("t", Flaky(failures=1), retries=1, retry_delay=0.5)
    handle = sched.start()
    poll_until(lambda: handle.progress().waiting == 1)
    assert handle.wait(timeout=WAIT_S)["t"].attempts == 2


def test_cancel_from_another_thread(sched):
    stopped = []

    def long_task(ctx):
        limit = time.monotonic() + 10
        while not ctx.stop_requested() and time.monotonic() < limit:
            time.sleep(0.005)
        stopped.append(ctx.stop_requested())
        return "stopped early"

    sched.add_task("long", long_task)
    for i in range(5):
        sched.add_task(f"after{i}", lambda: None, dependencies={"long"})
    sched.add_task("retrying", Flaky(failures=10), retries=10, retry_delay=5)
    handle = sched.start()
    poll_until(lambda: handle.progress().running >= 1 and handle.progress().waiting == 1)
    began = time.monotonic()
    threading.Timer(0.05, handle.cancel).start()
    results = handle.wait(timeout=WAIT_S)
    assert time.monotonic() - began < 5
    assert stopped == [True]
    assert results["long"].status == "success"  # it returned normally after being asked to stop
    assert {results[f"after{i}"].status for i in range(5)} == {"cancelled"}
    assert results["retrying"].status == "cancelled" and results["retrying"].attempts == 1
    assert isinstance(results["retrying"].error, ValueError)
    handle.cancel()  # idempotent, also once done


def test_wait_releases_the_gil(sched):
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    sched.add_task("t", Flaky(failures=1), retries=1, retry_delay=0.2)
    t = threading.Thread(target=ticker)
    t.start()
    try:
        handle = sched.start()
        handle.wait(timeout=WAIT_S)
    finally:
        stop.set()
        t.join(WAIT_S)
    assert len(ticks) > 20


def test_dropping_a_handle_cancels_its_run(sched):
    gate = threading.Event()
    calls = []
    sched.add_task("A", lambda: gate.wait(0.2))
    sched.add_task("B", lambda: calls.append(1), dependencies={"A"})
    handle = sched.start()
    del handle  # cancels, waits for A's attempt
    assert calls == []
    assert sched.run()["B"].status == "success"


def test_failure_policies(sched):
    def fail():
        raise ValueError("x")

    gate = threading.Event()
    sched.add_task("F1", fail)
    sched.add_task("slow", lambda: gate.wait(0.3))
    sched.add_task("later", lambda: None, dependencies={"slow"})
    results = sched.run(failure_policy="fail_fast")
    assert results["F1"].status == "failed" and results["later"].status == "cancelled"
    results = sched.run(failure_policy=2)
    assert results["later"].status == "success"
    results = sched.run()  # keep_going
    assert results["later"].status == "success"


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"failure_policy": "sometimes"}, ValueError),
        ({"failure_policy": 0}, ValueError),
        ({"failure_policy": True}, TypeError),
        ({"failure_policy": 1.5}, TypeError),
        ({"seed": -1}, ValueError),
        ({"seed": "x"}, TypeError),
    ],
)
def test_run_option_errors(sched, kwargs, error):
    sched.add_task("t", lambda: None)
    with pytest.raises(error):
        sched.run(**kwargs)
    with pytest.raises(error):
        sched.start(**kwargs)
    assert sched.run()["t"].status == "success"


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"retry_delay": -1}, ValueError),
        ({"retry_delay": float("nan")}, ValueError),
        ({"retry_delay": "1"}, TypeError),
        ({"retry_delay": True}, TypeError),
        ({"backoff": 0.5}, ValueError),
        ({"backoff": float("inf")}, ValueError),
        ({"max_delay": -0.1}, ValueError),
        ({"jitter": 1.5}, ValueError),
        ({"retry_if": 3}, TypeError),
        ({"timeout": 0}, ValueError),
        ({"timeout": -1}, ValueError),
        ({"deadline": 0}, ValueError),
        ({"trigger": "any"}, ValueError),
        ({"trigger": 1}, TypeError),
        ({"context": 1}, TypeError),
        ({"bogus": 1}, TypeError),
    ],
)
def test_add_task_option_errors(sched, kwargs, error):
    with pytest.raises(error):
        sched.add_task("t", lambda: None, **kwargs)
    assert "t" not in sched


def test_options_are_keyword_only(sched):
    with pytest.raises(TypeError, match="keyword-only"):
        sched.add_task("t", lambda: None, None, 0, 0.1)


def test_infinite_limits_and_defaults_are_accepted(sched):
    sched.add_task("t", lambda: 1, max_delay=float("inf"), timeout=float("inf"), deadline=1e30, retry_delay=0,
                   backoff=1, jitter=0, retry_if=None, trigger="all_success", context=None)
    assert sched.run()["t"] == TaskResult("success", 1, None, 1)


def test_task_raising_system_exit_aborts_a_started_run(sched):
    sched.add_task("quit", lambda: sys.exit(3))
    sched.add_task("after", lambda: None, dependencies={"quit"})
    handle = sched.start()
    with pytest.raises(SystemExit):
        handle.wait(timeout=WAIT_S)
    results = handle.wait()  # the cancelled run's results stay available
    assert results["quit"].status == "failed" and isinstance(results["quit"].error, SystemExit)
    assert results["after"].status == "skipped"
    sched.add_task("more", lambda: None)  # the scheduler is no longer running
    assert "more" in sched


def test_handle_dropped_inside_its_own_task(sched):
    box = {}
    ran = threading.Event()
    stored = threading.Event()

    def drop():
        assert stored.wait(WAIT_S)  # the task may start before start() has returned the handle
        box.clear()  # the last reference to the run's handle goes away on this worker
        ran.set()

    sched.add_task("drop", drop)
    box["handle"] = sched.start()
    stored.set()
    assert ran.wait(WAIT_S)
    poll_until(lambda: not box)
    assert sched.run()["drop"].status == "success"  # the orphaned run was finished first


def test_unwaited_handle_at_interpreter_exit():
    import subprocess
    import textwrap

    code = textwrap.dedent(
        """
        import time
        from dagsched import TaskScheduler
        s = TaskScheduler(max_workers=1)
        s.add_task("a", lambda ctx: time.sleep(0.2))
        for i in range(20):
            s.add_task(f"b{i}", lambda: time.sleep(0.2), dependencies={"a"})
        handle = s.start()
        time.sleep(0.05)
        print("exiting", flush=True)
        """
    )
    env = dict(__import__("os").environ)
    env["PYTHONPATH"] = __import__("os").path.dirname(__import__("os").path.dirname(dagsched.__file__))
    began = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "exiting"
    assert time.monotonic() - began < 3  # the 20 dependents were cancelled, not run


def test_wait_and_cancel_from_inside_a_task(sched):
    box = {}
    errors = []

    def waiter():
        try:
            box["handle"].wait(timeout=1)
        except RuntimeError as exc:
            errors.append(str(exc))
        box["handle"].cancel()
        return box["handle"].progress().total

    gate = threading.Event()
    sched.add_task("waiter", waiter, dependencies={"gate"})
    sched.add_task("gate", lambda: gate.wait(WAIT_S))
    sched.add_task("after", lambda: None, dependencies={"waiter"})
    box["handle"] = sched.start()
    gate.set()
    results = box["handle"].wait(timeout=WAIT_S)
    assert errors and "wait for itself" in errors[0]
    assert results["waiter"] == TaskResult("success", 3, None, 1)
    assert results["after"].status == "cancelled"
