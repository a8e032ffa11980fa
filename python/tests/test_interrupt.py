"""Ctrl-C during run(), and tasks that raise KeyboardInterrupt or SystemExit.

The Ctrl-C tests run in a child process: a stray KeyboardInterrupt must not reach pytest itself, and a
hang is bounded by the child's timeout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback

import pytest

import dagsched
from dagsched import TaskScheduler

MODULE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(dagsched.__file__)))

# The child: a run of 40 tasks sleeping 0.1 s on 2 workers (2 s in all), interrupted after about 0.3 s
# by the method named in argv[1]. It reports what it saw as JSON on its last line.
CHILD = textwrap.dedent(
    """
    import _thread, json, os, signal, sys, threading, time
    from dagsched import TaskScheduler

    def os_threads():
        return len(os.listdir("/proc/self/task"))

    how = sys.argv[1]
    slow = True
    starts = []
    def body(i):
        starts.append(time.monotonic())
        if i == 0 and how == "parent":
            print("running", flush=True)
        if slow:
            time.sleep(0.1)
        return i

    scheduler = TaskScheduler(max_workers=2)
    with_workers = os_threads()  # (measured after the first thread creation, which may start sanitizer threads)
    for i in range(40):
        scheduler.add_task(f"t{i}", lambda i=i: body(i))

    sent = []
    def interrupt():
        sent.append(time.monotonic())
        if how == "kill":
            os.kill(os.getpid(), signal.SIGINT)
        elif how == "raise_signal":
            signal.raise_signal(signal.SIGINT)
        elif how == "interrupt_main":
            _thread.interrupt_main()
    if how != "parent":
        threading.Timer(0.3, interrupt).start()

    report = {}
    start = time.monotonic()
    try:
        scheduler.run()
        report["interrupted"] = False
    except KeyboardInterrupt:
        report["interrupted"] = True
    stop = time.monotonic()
    report["run_s"] = stop - start
    report["latency_s"] = stop - sent[0] if sent else None
    report["started_after_return"] = sum(1 for t in starts if t > stop)
    report["started"] = len(starts)
    time.sleep(0.3)
    report["started_later"] = len(starts) - report["started"]
    report["threads_during"] = os_threads() - with_workers

    slow = False
    results = scheduler.run()
    report["second_run_ok"] = len(results) == 40 and all(r.status == "success" for r in results.values())
    scheduler.close()
    # A joined thread can linger in /proc for a moment after its join returned: look for up to a second.
    deadline = time.monotonic() + 1.0
    while os_threads() - (with_workers - 2) > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    report["threads_after_close"] = os_threads() - (with_workers - 2)
    print(json.dumps(report), flush=True)
    """
)


def child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [MODULE_DIR, env.get("PYTHONPATH", "")] if p)
    return env


def check_report(report):
    assert report["interrupted"] is True
    assert report["run_s"] < 1.0, report  # interrupted at ~0.3 s of a 2 s run
    if report["latency_s"] is not None:  # signal to KeyboardInterrupt: a 25 ms poll + the running 0.1 s tasks
        assert report["latency_s"] < 0.5, report
    assert report["started"] < 40, report
    assert report["started_after_return"] == 0, report
    assert report["started_later"] == 0, report  # cancelled: nothing left running tasks
    assert report["threads_during"] == 0, report  # just the 2 workers, kept for the next run
    assert report["second_run_ok"] is True, report
    assert report["threads_after_close"] == 0, report


@pytest.mark.parametrize("how", ["kill", "raise_signal", "interrupt_main"])
def test_sigint_during_run_raises_keyboard_interrupt(how):
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, how], env=child_env(), capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    check_report(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_ctrl_c_from_the_parent_process():
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, "parent"],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout.readline().strip() == "running"
            time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    check_report(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_task_raising_base_exception_cancels_and_reraises(exc_type):
    events = []
    lock = threading.Lock()
    raised = exc_type("stop now")

    def body(i):
        with lock:
            events.append(("start", i))
        if i == 3:
            with lock:
                events.append(("raise", i))
            raise raised
        time.sleep(0.02)
        return i

    scheduler = TaskScheduler(max_workers=2)
    for i in range(30):
        scheduler.add_task(f"t{i}", lambda i=i: body(i), dependencies={f"t{i - 1}"} if i % 2 else None, retries=3)
    start = time.monotonic()
    with pytest.raises(exc_type) as info:
        scheduler.run()
    assert time.monotonic() - start < 2
    assert info.value is raised
    assert any(frame.name == "body" for frame in traceback.extract_tb(info.value.__traceback__))
    raise_at = events.index(("raise", 3))
    assert ("start", 3) in events[:raise_at] and events.count(("start", 3)) == 1  # not retried
    assert [e for e in events[raise_at:] if e[0] == "start"] == []  # nothing started afterwards


def test_same_scheduler_runs_again_after_a_task_aborted():
    mode = {"abort": True}

    def body():
        if mode["abort"]:
            raise KeyboardInterrupt
        return "ok"

    scheduler = TaskScheduler(max_workers=2)
    scheduler.add_task("a", body)
    scheduler.add_task("b", lambda: "b", dependencies={"a"})
    with pytest.raises(KeyboardInterrupt):
        scheduler.run()
    mode["abort"] = False
    results = scheduler.run()
    assert results["a"].result == "ok" and results["b"].result == "b"


def test_interpreter_exit_with_a_run_in_a_daemon_thread():
    child = textwrap.dedent(
        """
        import atexit, collections, json, threading, time
        outcome = {}
        def report():  # registered before dagsched's own hook, so it runs after it
            time.sleep(0.3)  # lets the daemon thread store what run() returned
            print(json.dumps(outcome), flush=True)
        atexit.register(report)

        from dagsched import TaskScheduler
        scheduler = TaskScheduler(max_workers=4)
        for i in range(200):
            scheduler.add_task(f"t{i}", lambda: time.sleep(0.05))
        def background():
            results = scheduler.run()
            outcome.update(collections.Counter(r.status for r in results.values()))
            try:
                scheduler.run()
            except RuntimeError as exc:
                outcome["refused"] = str(exc)
        threading.Thread(target=background, daemon=True).start()
        time.sleep(0.2)
        """
    )
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", child], env=child_env(), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - start < 10
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    assert 0 < outcome["success"] < 200 and outcome["success"] + outcome["cancelled"] == 200, outcome
    assert "shutdown" in outcome["refused"]
