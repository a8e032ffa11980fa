"""The TaskResult type: fields, repr, value equality, immutability, pickling."""

from __future__ import annotations

import pickle

import pytest

from dagsched import TaskResult, TaskScheduler


def run_one(fn, retries=0):
    scheduler = TaskScheduler(max_workers=1)
    scheduler.add_task("t", fn, retries=retries)
    return scheduler.run()["t"]


def test_fields_and_repr():
    r = run_one(lambda: {"k": [1, 2]})
    assert (r.status, r.result, r.error, r.attempts) == ("success", {"k": [1, 2]}, None, 1)
    assert repr(r) == "TaskResult(status='success', result={'k': [1, 2]}, error=None, attempts=1)"

    def fail():
        raise ValueError("B broke")

    f = run_one(fail, retries=2)
    assert repr(f) == "TaskResult(status='failed', result=None, error=ValueError('B broke'), attempts=3)"


def test_equality_is_by_value():
    a = run_one(lambda: [1, 2, 3])
    b = run_one(lambda: [1, 2, 3])
    assert a == b and not (a != b)
    assert a == TaskResult("success", [1, 2, 3], None, 1)
    assert a != TaskResult("success", [1, 2, 3], None, 2)
    assert a != TaskResult("failed", [1, 2, 3], None, 1)
    assert a != TaskResult("success", [1, 2], None, 1)
    assert a != ("success", [1, 2, 3], None, 1)
    err = KeyError("k")
    assert TaskResult("failed", None, err, 1) == TaskResult("failed", None, err, 1)
    # Exceptions compare by identity, as they do in Python.
    assert TaskResult("failed", None, KeyError("k"), 1) != TaskResult("failed", None, KeyError("k"), 1)


def test_constructor_defaults_and_checks():
    assert TaskResult("skipped") == TaskResult(status="skipped", result=None, error=None, attempts=0)
    with pytest.raises(TypeError):
        TaskResult(1)
    with pytest.raises(ValueError):
        TaskResult("success", attempts=-1)


def test_immutable_and_unhashable():
    r = run_one(lambda: 1)
    with pytest.raises(AttributeError):
        r.status = "failed"
    with pytest.raises(TypeError):
        hash(r)
    with pytest.raises(TypeError):
        type("Sub", (TaskResult,), {})


def test_pickle_round_trip():
    r = run_one(lambda: ("tuple", 1))
    assert pickle.loads(pickle.dumps(r)) == r


def test_match_statement():
    r = run_one(lambda: 7)
    match r:
        case TaskResult("success", value, None, attempts):
            assert (value, attempts) == (7, 1)
        case _:
            pytest.fail("no match")


def test_status_strings_are_plain_str():
    r = run_one(lambda: None)
    assert type(r.status) is str and r.status == "success"
    assert type(r.attempts) is int
