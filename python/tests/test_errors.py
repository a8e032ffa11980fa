"""Misuse of the API: graph errors (before any task runs), argument checking, wrong-moment calls."""

from __future__ import annotations

import pytest

import dagsched
from dagsched import CycleError, DuplicateTaskError, GraphError, TaskScheduler, UnknownDependencyError


def recorder():
    calls = []

    def make(name):
        return lambda: calls.append(name)

    return calls, make


def test_error_hierarchy():
    for cls in (DuplicateTaskError, UnknownDependencyError, CycleError):
        assert issubclass(cls, GraphError) and issubclass(cls, ValueError)
        assert cls.__module__ == "dagsched"
    assert dagsched.CycleError is CycleError


def test_duplicate_id_error_details():
    scheduler = TaskScheduler()
    scheduler.add_task("A", lambda: 1)
    with pytest.raises(DuplicateTaskError) as info:
        scheduler.add_task("A", lambda: 2)
    assert info.value.task_id == "A"
    assert "'A'" in str(info.value)
    assert len(scheduler) == 1


@pytest.mark.parametrize(
    "edges, cycle",
    [
        ({"a": {"a"}}, ["a"]),
        ({"a": {"b"}, "b": {"a"}}, None),
        ({"a": {"c"}, "b": {"a"}, "c": {"b"}, "d": set()}, None),
    ],
)
def test_cycle_raises_before_any_task_runs(edges, cycle):
    calls, make = recorder()
    scheduler = TaskScheduler()
    scheduler.add_task("root", make("root"))
    for tid, deps in edges.items():
        scheduler.add_task(tid, make(tid), dependencies=deps)
    with pytest.raises(CycleError) as info:
        scheduler.run()
    assert calls == []
    members = info.value.cycle
    assert isinstance(members, list) and len(members) == len(set(members))
    if cycle is not None:
        assert members == cycle
    # Each member depends on the one before it, the first on the last: the cycle in run order.
    for prev, cur in zip(members[-1:] + members[:-1], members):
        assert prev in edges[cur]
    assert str(info.value).startswith("cycle: ")
    assert " -> ".join(members + members[:1]) in str(info.value)


def test_cycle_error_is_a_value_error():
    scheduler = TaskScheduler()
    scheduler.add_task("x", lambda: 1, dependencies={"y"})
    scheduler.add_task("y", lambda: 1, dependencies={"x"})
    with pytest.raises(ValueError, match="cycle"):
        scheduler.run()


def test_unknown_dependency_raises_before_any_task_runs():
    calls, make = recorder()
    scheduler = TaskScheduler()
    scheduler.add_task("A", make("A"))
    scheduler.add_task("B", make("B"), dependencies={"A", "ghost"})
    with pytest.raises(UnknownDependencyError) as info:
        scheduler.run()
    assert calls == []
    assert (info.value.task_id, info.value.dependency) == ("B", "ghost")
    assert isinstance(info.value, ValueError)
    # Registering the missing task repairs the graph.
    scheduler.add_task("ghost", make("ghost"))
    results = scheduler.run()
    assert all(r.status == "success" for r in results.values())
    assert calls.index("B") > calls.index("ghost")


def test_dependency_registered_later_is_fine():
    scheduler = TaskScheduler()
    scheduler.add_task("late_user", lambda: "u", dependencies={"early_named"})
    scheduler.add_task("early_named", lambda: "e")
    results = scheduler.run()
    assert list(results) == ["late_user", "early_named"]  # add_task order
    assert results["late_user"].status == "success"


@pytest.mark.parametrize(
    "deps",
    [{"A"}, ["A"], ("A",), frozenset({"A"}), {"A": 1}.keys(), (d for d in ["A"]), ["A", "A"]],
    ids=["set", "list", "tuple", "frozenset", "dict_keys", "generator", "list_with_duplicate"],
)
def test_dependency_collections(deps):
    order = []
    scheduler = TaskScheduler()
    scheduler.add_task("A", lambda: order.append("A"))
    scheduler.add_task("B", lambda: order.append("B"), dependencies=deps)
    results = scheduler.run()
    assert order == ["A", "B"]
    assert results["B"].status == "success"


@pytest.mark.parametrize("deps", [None, set(), [], ()])
def test_no_dependencies(deps):
    scheduler = TaskScheduler()
    scheduler.add_task("A", lambda: 1, dependencies=deps)
    assert scheduler.run()["A"].result == 1


def test_bad_arguments():
    scheduler = TaskScheduler()
    with pytest.raises(TypeError, match="single str"):
        scheduler.add_task("B", lambda: 1, dependencies="A")
    with pytest.raises(TypeError, match="task_id must be a str"):
        scheduler.add_task(1, lambda: 1)
    with pytest.raises(TypeError, match="callable"):
        scheduler.add_task("x", 42)
    with pytest.raises(TypeError, match="dependency must be a str"):
        scheduler.add_task("x", lambda: 1, dependencies={1})
    with pytest.raises(TypeError, match="dependencies must be"):
        scheduler.add_task("x", lambda: 1, dependencies=5)
    with pytest.raises(TypeError, match="retries must be an int"):
        scheduler.add_task("x", lambda: 1, retries=1.5)
    with pytest.raises(TypeError):
        scheduler.add_task("x")
    with pytest.raises(TypeError, match="unexpected keyword"):
        scheduler.add_task("x", lambda: 1, retry=1)
    with pytest.raises(TypeError, match="multiple values"):
        scheduler.add_task("x", lambda: 1, task_id="y")
    with pytest.raises(ValueError, match="empty"):
        scheduler.add_task("", lambda: 1)
    assert len(scheduler) == 0  # every rejected call left the scheduler unchanged
    assert scheduler.run() == {}


@pytest.mark.parametrize("retries", [-1, -(2**70)])
def test_negative_retries(retries):
    scheduler = TaskScheduler()
    with pytest.raises(ValueError, match="retries"):
        scheduler.add_task("x", lambda: 1, retries=retries)
    assert "x" not in scheduler


def test_keyword_and_positional_arguments():
    scheduler = TaskScheduler(max_workers=2)
    scheduler.add_task("A", lambda: 1)
    scheduler.add_task("B", lambda: 2, ["A"], 1)
    scheduler.add_task(task_id="C", execute_fn=lambda: 3, dependencies={"B"}, retries=0)
    assert [r.result for r in scheduler.run().values()] == [1, 2, 3]


@pytest.mark.parametrize("workers", [0, -1])
def test_max_workers_must_be_positive(workers):
    with pytest.raises(ValueError, match="max_workers"):
        TaskScheduler(max_workers=workers)


def test_max_workers_must_be_int():
    with pytest.raises(TypeError):
        TaskScheduler(max_workers=2.0)


def test_add_task_during_run_fails_that_task():
    scheduler = TaskScheduler()
    scheduler.add_task("adder", lambda: scheduler.add_task("late", lambda: 1))
    r = scheduler.run()["adder"]
    assert r.status == "failed" and isinstance(r.error, RuntimeError)
    assert "late" not in scheduler


def test_run_from_inside_a_task_fails_that_task():
    scheduler = TaskScheduler()
    scheduler.add_task("runner", lambda: scheduler.run())
    r = scheduler.run()["runner"]
    assert r.status == "failed" and isinstance(r.error, RuntimeError)


def test_close_during_run_fails_that_task():
    scheduler = TaskScheduler()
    scheduler.add_task("closer", lambda: scheduler.close())
    r = scheduler.run()["closer"]
    assert r.status == "failed" and isinstance(r.error, RuntimeError)
    assert not scheduler.closed


def test_closed_scheduler():
    with TaskScheduler(max_workers=2) as scheduler:
        scheduler.add_task("A", lambda: 1)
        assert scheduler.run()["A"].result == 1
    assert scheduler.closed
    with pytest.raises(RuntimeError, match="closed"):
        scheduler.run()
    with pytest.raises(RuntimeError, match="closed"):
        scheduler.add_task("B", lambda: 1)
    scheduler.close()  # idempotent
    assert "closed" in repr(scheduler)


def test_introspection():
    scheduler = TaskScheduler(max_workers=3)
    scheduler.add_task("A", lambda: 1)
    scheduler.add_task("B", lambda: 1, dependencies={"not_yet"})
    assert len(scheduler) == 2
    assert "A" in scheduler and "not_yet" not in scheduler and 5 not in scheduler
    assert scheduler.max_workers == 3
    assert repr(scheduler) == "TaskScheduler(max_workers=3, tasks=2)"
