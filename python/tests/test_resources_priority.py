"""Resource pools (add_resource, add_task(resources=...)), ResourceError, task priority and cost, and the
run's ready order (run(order=...)).

Every wait is bounded: runs that block on each other go through start() and RunHandle.wait(timeout=...),
barriers and events have timeouts, and conftest's hang guard ends the process if a test still hangs.
"""

from __future__ import annotations

import collections
import datetime
import threading
import time
import types

import pytest

import dagsched
from dagsched import GraphError, ResourceError, TaskScheduler

WAIT_S = 20.0  # bound on any one RunHandle.wait() or barrier wait below

ORDERS = ["critical_path", "fifo", "depth_first"]


class UnitMeter:
    """Counts the units of one pool that running tasks hold, and the most ever held at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.in_use = 0
        self.peak = 0

    def enter(self, units):
        with self.lock:
            self.in_use += units
            self.peak = max(self.peak, self.in_use)

    def leave(self, units):
        with self.lock:
            self.in_use -= units

    def hold(self, units, seconds, barrier=None):
        """A task body holding `units` for `seconds`, after meeting `barrier` if given."""

        def body():
            self.enter(units)
            try:
                if barrier is not None:
                    barrier.wait()
                time.sleep(seconds)
            finally:
                self.leave(units)

        return body


def recorder():
    """A list of the task ids in the order their bodies started, and a factory of bodies appending to it."""
    started = []

    def make(task_id):
        return lambda: started.append(task_id)

    return started, make


# --- pools: capacity ---------------------------------------------------------------------------------


def test_pool_capacity_is_never_exceeded():
    meter = UnitMeter()
    # Both units are usable at once: each task waits until another holds the second unit too (a pool that
    # let only one task in would break the barrier), and the meter sees a third one if the pool let it in.
    barrier = threading.Barrier(2, timeout=WAIT_S)
    with TaskScheduler(max_workers=8) as s:
        s.add_resource("gpu", 2)
        for i in range(20):
            s.add_task(f"job{i}", meter.hold(1, 0.003, barrier), resources={"gpu": 1})
        results = s.start().wait(timeout=WAIT_S)
    assert all(r.status == "success" for r in results.values()), results
    assert meter.peak == 2
    assert meter.in_use == 0


@pytest.mark.parametrize("order", ORDERS)
def test_pool_units_add_up_across_tasks(order):
    # A pool of 3 shared by tasks taking 1, 2 or 3 units: the units held never exceed 3, in any order.
    meter = UnitMeter()
    with TaskScheduler(max_workers=6) as s:
        s.add_resource("db", 3)
        for i in range(24):
            units = i % 3 + 1
            s.add_task(f"q{i}", meter.hold(units, 0.002), resources={"db": units}, priority=i % 4)
        results = s.start(order=order).wait(timeout=WAIT_S)
    assert all(r.status == "success" for r in results.values()), results
    assert 1 <= meter.peak <= 3


def test_tasks_without_resources_are_not_limited_by_pools():
    barrier = threading.Barrier(3, timeout=WAIT_S)
    with TaskScheduler(max_workers=3) as s:
        s.add_resource("gpu", 1)
        for i in range(3):
            s.add_task(f"free{i}", barrier.wait)  # all three at once, or the barrier breaks
        results = s.start().wait(timeout=WAIT_S)
    assert [r.status for r in results.values()] == ["success"] * 3


def test_several_pools_per_task():
    gpu, db = UnitMeter(), UnitMeter()

    def body():
        gpu.enter(1)
        db.enter(2)
        time.sleep(0.002)
        db.leave(2)
        gpu.leave(1)

    with TaskScheduler(max_workers=4) as s:
        s.add_resource("gpu", 2)
        s.add_resource("db", 4)
        for i in range(8):
            s.add_task(f"t{i}", body, resources={"gpu": 1, "db": 2})
        results = s.start().wait(timeout=WAIT_S)
    assert all(r.status == "success" for r in results.values())
    assert 1 <= gpu.peak <= 2 and 1 <= db.peak <= 4


def test_retries_and_pools():
    attempts = collections.Counter()

    def flaky():
        attempts["t"] += 1
        if attempts["t"] < 3:
            raise RuntimeError("flaky")
        return "ok"

    with TaskScheduler(max_workers=2) as s:
        s.add_resource("gpu", 1)
        s.add_task("t", flaky, resources={"gpu": 1}, retries=3, retry_delay=0.001)
        s.add_task("u", lambda: "u", dependencies={"t"}, resources={"gpu": 1})
        results = s.start().wait(timeout=WAIT_S)
    assert (results["t"].status, results["t"].attempts, results["u"].result) == ("success", 3, "u")


def test_pools_stay_declared_for_later_runs():
    with TaskScheduler(max_workers=2) as s:
        s.add_resource("gpu", 1)
        s.add_task("t", lambda: 1, resources={"gpu": 1})
        assert s.run()["t"].result == 1
        assert s.run()["t"].result == 1


# --- resources: accepted forms -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "resources",
    [
        {"gpu": 1, "db": 2},
        [("gpu", 1), ("db", 2)],
        (("gpu", 1), ["db", 2]),
        [("gpu", 1), ("db", 1), ("db", 1)],  # the same pool named twice adds up
        types.MappingProxyType({"gpu": 1, "db": 2}),
        collections.OrderedDict(gpu=1, db=2),
        (pair for pair in [("gpu", 1), ("db", 2)]),
        {},
        [],
    ],
    ids=["dict", "list", "tuple", "repeated_pool", "mappingproxy", "dict_subclass", "generator", "empty_dict", "empty"],
)
def test_resources_forms(resources):
    with TaskScheduler(max_workers=2) as s:
        s.add_resource("gpu", 1)
        s.add_resource("db", 2)
        s.add_task("t", lambda: "ok", resources=resources)
        assert s.run()["t"].result == "ok"


def test_repeated_pool_adds_up_to_more_than_capacity():
    with TaskScheduler(max_workers=2) as s:
        s.add_resource("gpu", 1)
        s.add_task("t", lambda: 1, resources=[("gpu", 1), ("gpu", 1)])
        with pytest.raises(ResourceError) as info:
            s.run()
    assert (info.value.task_id, info.value.pool) == ("t", "gpu")


@pytest.mark.parametrize(
    "resources, error, match",
    [
        ("gpu", TypeError, "single str"),
        (b"gpu", TypeError, "single bytes"),
        (5, TypeError, "resources must be a mapping"),
        ({1: 1}, TypeError, "pool name must be a str"),
        ({"gpu": 1.0}, TypeError, "units of pool 'gpu' must be an int"),
        ({"gpu": True}, TypeError, "units of pool 'gpu' must be an int"),
        ({"gpu": "1"}, TypeError, "units of pool 'gpu' must be an int"),
        (["gpu"], TypeError, "not a \\(pool, units\\) pair"),
        ([("gpu",)], TypeError, "length 1"),
        ([("gpu", 1, 2)], TypeError, "length 3"),
        ({"gpu": 0}, ValueError, "between 1 and"),
        ({"gpu": -1}, ValueError, "between 1 and"),
        ({"gpu": 2**32}, ValueError, "between 1 and"),
        ({"gpu": 2**70}, ValueError, "between 1 and"),
        ({"": 1}, ValueError, "must not be empty"),
    ],
)
def test_bad_resources(resources, error, match):
    s = TaskScheduler(max_workers=1)
    s.add_resource("gpu", 1)
    with pytest.raises(error, match=match):
        s.add_task("t", lambda: 1, resources=resources)
    assert "t" not in s  # a rejected call leaves the scheduler unchanged


def test_resources_none_is_no_resources():
    s = TaskScheduler(max_workers=1)
    s.add_task("t", lambda: 1, resources=None)
    assert s.run()["t"].result == 1


# --- ResourceError -----------------------------------------------------------------------------------


def test_resource_error_hierarchy():
    assert issubclass(ResourceError, GraphError) and issubclass(ResourceError, ValueError)
    assert ResourceError.__module__ == "dagsched"
    assert dagsched.ResourceError is ResourceError
    assert "ResourceError" in dagsched.__all__


def test_unknown_pool_raises_before_any_task_runs():
    calls, make = recorder()
    s = TaskScheduler(max_workers=2)
    s.add_resource("gpu", 1)
    s.add_task("A", make("A"))
    s.add_task("B", make("B"), dependencies={"A"}, resources={"tpu": 1})
    with pytest.raises(ResourceError) as info:
        s.run()
    assert calls == []
    assert (info.value.task_id, info.value.pool) == ("B", "tpu")
    assert "'B'" in str(info.value) and "tpu" in str(info.value)
    with pytest.raises(ResourceError):
        s.start()
    assert calls == []
    # Declaring the pool repairs the graph.
    s.add_resource("tpu", 1)
    results = s.run()
    assert calls == ["A", "B"] and all(r.status == "success" for r in results.values())


def test_more_units_than_capacity_raises_before_any_task_runs():
    calls, make = recorder()
    s = TaskScheduler(max_workers=2)
    s.add_resource("gpu", 2)
    s.add_task("small", make("small"), resources={"gpu": 2})
    s.add_task("big", make("big"), resources={"gpu": 3})
    with pytest.raises(ResourceError, match="capacity") as info:
        s.run()
    assert calls == []
    assert (info.value.task_id, info.value.pool) == ("big", "gpu")


# --- add_resource ------------------------------------------------------------------------------------


def test_add_resource_errors():
    s = TaskScheduler(max_workers=1)
    s.add_resource("gpu", 2)
    with pytest.raises(ValueError, match="already declared"):
        s.add_resource("gpu", 1)
    with pytest.raises(ValueError, match="capacity of at least 1"):
        s.add_resource("zero", 0)
    with pytest.raises(ValueError, match="capacity of at least 1"):
        s.add_resource("negative", -1)
    with pytest.raises(ValueError, match="capacity of at least 1"):
        s.add_resource("negative", -(2**70))
    with pytest.raises(ValueError, match="at most"):
        s.add_resource("huge", 2**32)
    with pytest.raises(ValueError, match="name"):
        s.add_resource("", 1)
    with pytest.raises(TypeError, match="name must be a str"):
        s.add_resource(1, 1)
    with pytest.raises(TypeError, match="capacity must be an int"):
        s.add_resource("float", 1.0)
    with pytest.raises(TypeError, match="capacity must be an int"):
        s.add_resource("bool", True)
    with pytest.raises(TypeError):
        s.add_resource("missing")
    # None of the rejected calls declared a pool.
    s.add_task("t", lambda: 1, resources={"zero": 1})
    with pytest.raises(ResourceError, match="zero"):
        s.run()
    s.add_resource(name="keywords", capacity=2**32 - 1)


def test_add_resource_during_run_fails_that_task():
    s = TaskScheduler(max_workers=1)
    s.add_task("adder", lambda: s.add_resource("late", 1))
    r = s.run()["adder"]
    assert r.status == "failed" and isinstance(r.error, RuntimeError)
    s.add_task("user", lambda: 1, resources={"late": 1})
    with pytest.raises(ResourceError):
        s.run()


def test_add_resource_while_started_and_after_close():
    gate = threading.Event()
    s = TaskScheduler(max_workers=1)
    s.add_task("t", lambda: gate.wait(WAIT_S))
    handle = s.start()
    try:
        with pytest.raises(RuntimeError):
            s.add_resource("gpu", 1)
    finally:
        gate.set()
    assert handle.wait(timeout=WAIT_S)["t"].status == "success"
    s.add_resource("gpu", 1)  # fine once the run is over
    s.close()
    with pytest.raises(RuntimeError, match="closed"):
        s.add_resource("db", 1)


# --- priority and cost: arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"priority": 1.5}, TypeError, "priority must be an int"),
        ({"priority": True}, TypeError, "priority must be an int"),
        ({"priority": "1"}, TypeError, "priority must be an int"),
        ({"priority": 2**31}, ValueError, "priority must be between"),
        ({"priority": -(2**31) - 1}, ValueError, "priority must be between"),
        ({"priority": 2**70}, ValueError, "priority must be between"),
        ({"cost": "1"}, TypeError, "cost must be a number"),
        ({"cost": True}, TypeError, "cost must be a number"),
    ],
)
def test_bad_priority_or_cost_type(kwargs, error, match):
    s = TaskScheduler(max_workers=1)
    with pytest.raises(error, match=match):
        s.add_task("t", lambda: 1, **kwargs)
    assert "t" not in s


@pytest.mark.parametrize("cost", [-1, -0.5, float("inf"), float("-inf"), float("nan")])
def test_cost_must_be_finite_and_not_negative(cost):
    s = TaskScheduler(max_workers=1)
    with pytest.raises(ValueError, match="cost"):
        s.add_task("t", lambda: 1, cost=cost)
    assert "t" not in s


def test_priority_and_cost_limits_are_accepted():
    s = TaskScheduler(max_workers=1)
    s.add_task("lo", lambda: 1, priority=-(2**31), cost=0)
    s.add_task("hi", lambda: 2, priority=2**31 - 1, cost=1e300)
    s.add_task("int_cost", lambda: 3, cost=5, priority=0)
    assert [r.result for r in s.run().values()] == [1, 2, 3]


# --- order: arguments --------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["random", "FIFO", "", "critical path"])
def test_unknown_order(order):
    calls, make = recorder()
    s = TaskScheduler(max_workers=1)
    s.add_task("t", make("t"))
    for call in (s.run, s.start):
        with pytest.raises(ValueError, match="'critical_path', 'fifo' or 'depth_first'"):
            call(order=order)
    assert calls == []
    assert s.run()["t"].status == "success"  # nothing was left running


@pytest.mark.parametrize("order", [None, 1, b"fifo"])
def test_order_must_be_a_str(order):
    s = TaskScheduler(max_workers=1)
    with pytest.raises(TypeError, match="order must be"):
        s.run(order=order)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("workers", [1, 3])
def test_every_order_respects_dependencies(order, workers):
    # A layered graph with costs and priorities: whatever the order, no task starts before its dependencies.
    finished = set()
    violations = []
    lock = threading.Lock()
    deps = {f"n{i}": {f"n{d}" for d in (i - 1, i // 2, i - 5) if 0 <= d < i} for i in range(60)}

    def body(task_id):
        with lock:
            violations.extend(d for d in deps[task_id] if d not in finished)
            finished.add(task_id)

    with TaskScheduler(max_workers=workers) as s:
        for i, (task_id, d) in enumerate(deps.items()):
            s.add_task(task_id, lambda t=task_id: body(t), dependencies=d, priority=i % 3, cost=i % 7)
        results = s.start(order=order).wait(timeout=WAIT_S)
    assert violations == []
    assert all(r.status == "success" for r in results.values())


# --- order and priority: what starts first -----------------------------------------------------------
# With one worker the start order is exactly the run's order (RunOptions::order), so these are exact.


@pytest.mark.parametrize("order", ["critical_path", "fifo"])
def test_priority_decides_which_root_starts_first(order):
    priorities = {"p3": 3, "p7": 7, "p1": 1, "p9": 9, "p5": 5, "p-2": -2, "p0": 0}
    started, make = recorder()
    with TaskScheduler(max_workers=1) as s:
        for task_id, priority in priorities.items():
            s.add_task(task_id, make(task_id), priority=priority)
        results = s.start(order=order).wait(timeout=WAIT_S)
    assert all(r.status == "success" for r in results.values())
    assert started == sorted(priorities, key=priorities.get, reverse=True)


def chains_behind_roots(make, n_roots=6):
    """Roots root0..root{n-1}, each but the first with a chain behind it, longer for later roots (so that
    critical_path would start them in the opposite order). Returns the roots' ids."""

    def add(s):
        roots = []
        for i in range(n_roots):
            root = f"root{i}"
            roots.append(root)
            s.add_task(root, make(root))
            previous = root
            for k in range(i):
                s.add_task(f"{root}.{k}", make(f"{root}.{k}"), dependencies={previous})
                previous = f"{root}.{k}"
        return roots

    return add


def test_fifo_starts_roots_in_the_order_added():
    started, make = recorder()
    with TaskScheduler(max_workers=1) as s:
        roots = chains_behind_roots(make)(s)
        results = s.start(order="fifo").wait(timeout=WAIT_S)
    assert all(r.status == "success" for r in results.values())
    assert [t for t in started if t in roots] == roots


def test_fifo_starts_tasks_in_the_order_they_became_ready():
    # Every root is ready when the run starts, each chain task only once its predecessor has run: with one
    # worker, fifo starts all the roots before any chain task, and then the chain tasks level by level.
    started, make = recorder()
    with TaskScheduler(max_workers=1) as s:
        roots = chains_behind_roots(make)(s)
        results = s.start(order="fifo").wait(timeout=WAIT_S)
    assert all(r.status == "success" for r in results.values())
    assert started[: len(roots)] == roots
    assert started[len(roots) :] == [f"root{i}.{k}" for k in range(len(roots)) for i in range(len(roots)) if k < i]


def test_critical_path_starts_the_longest_remaining_path_first():
    # Roots added shortest-first; critical_path starts the one with the most cost still ahead of it.
    started, make = recorder()
    with TaskScheduler(max_workers=1) as s:
        s.add_task("short", make("short"))  # 1
        s.add_task("chain", make("chain"))  # 1 + 1 + 1 = 3
        s.add_task("chain.1", make("chain.1"), dependencies={"chain"})
        s.add_task("chain.2", make("chain.2"), dependencies={"chain.1"})
        s.add_task("heavy", make("heavy"), cost=10)  # 10
        s.add_task("light", make("light"), cost=0.5)  # 0.5
        results = s.start().wait(timeout=WAIT_S)  # critical_path is the default
    assert all(r.status == "success" for r in results.values())
    roots = [t for t in started if "." not in t]
    assert roots == ["heavy", "chain", "short", "light"]


def test_priority_comes_before_the_critical_path():
    started, make = recorder()
    with TaskScheduler(max_workers=1) as s:
        s.add_task("heavy", make("heavy"), cost=100)
        s.add_task("urgent", make("urgent"), priority=1)
        results = s.start(order="critical_path").wait(timeout=WAIT_S)
    assert all(r.status == "success" for r in results.values())
    assert started == ["urgent", "heavy"]


# --- order_threshold ---------------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [None, 0, 0.0, 1e-3, 5, datetime.timedelta(microseconds=5)])
def test_order_threshold_accepts_seconds_and_timedeltas(threshold):
    calls, make = recorder()
    with TaskScheduler(max_workers=2) as s:
        s.add_task("a", make("a"))
        s.add_task("b", make("b"), dependencies=["a"])
        assert all(r.status == "success" for r in s.run(order_threshold=threshold).values())
        results = s.start(order="fifo", order_threshold=threshold).wait(timeout=WAIT_S)
    assert all(r.status == "success" for r in results.values())
    assert calls == ["a", "b", "a", "b"]


@pytest.mark.parametrize(
    "threshold, error, match",
    [
        (-1e-6, ValueError, "order_threshold must not be negative"),
        (float("nan"), ValueError, "order_threshold must not be NaN"),
        ("20us", TypeError, "order_threshold must be a number of seconds"),
        (True, TypeError, "order_threshold must be a number of seconds"),
    ],
)
def test_bad_order_threshold_is_rejected_before_anything_runs(threshold, error, match):
    calls, make = recorder()
    s = TaskScheduler(max_workers=1)
    s.add_task("t", make("t"))
    for call in (s.run, s.start):
        with pytest.raises(error, match=match):
            call(order_threshold=threshold)
    assert calls == []
    assert s.run()["t"].status == "success"


def test_order_threshold_zero_keeps_the_critical_path_for_tiny_tasks():
    # `src` readies c0..c29 at once, c_i heading a chain of i more tasks. Python bodies this small take well
    # under the default threshold, so by default the worker soon runs depth-first (c29's whole chain while
    # c28 waits with a longer path); order_threshold=0 keeps the exact order: at every start, no ready task
    # has a longer path ahead of it. (With one worker, each task starts after the previous one finished.)
    deps = {"src": []}
    for i in range(30):
        deps[f"c{i}"] = ["src"]
        for k in range(1, i + 1):
            deps[f"c{i}.{k}"] = [f"c{i}" if k == 1 else f"c{i}.{k - 1}"]
    dependents = {t: [] for t in deps}
    for t, ds in deps.items():
        for d in ds:
            dependents[d].append(t)
    path = {}
    for t in reversed(list(deps)):  # every task is added after its dependencies
        path[t] = 1 + max((path[d] for d in dependents[t]), default=0)

    started, make = recorder()
    with TaskScheduler(max_workers=1) as s:
        for t, ds in deps.items():
            s.add_task(t, make(t), dependencies=ds)
        results = s.start(order_threshold=0).wait(timeout=WAIT_S)
    assert all(r.status == "success" for r in results.values())
    assert len(started) == len(deps)
    unmet = {t: len(ds) for t, ds in deps.items()}
    ready = {t for t, n in unmet.items() if n == 0}
    for t in started:
        assert t in ready, f"{t} started before its dependencies"
        longest = max(path[r] for r in ready)
        assert path[t] == longest, f"{t} (path {path[t]}) started while a ready task had path {longest}"
        ready.remove(t)
        for d in dependents[t]:
            unmet[d] -= 1
            if unmet[d] == 0:
                ready.add(d)
