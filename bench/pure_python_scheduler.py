"""The spec's TaskScheduler in plain Python on concurrent.futures.ThreadPoolExecutor.

The baseline bench/python_bench.py measures the dagsched module against: the straightforward, correct
implementation a good Python engineer would write from the spec. A lock guards the dependency
counters and the results; the completion callback of each future decrements its dependents' counters
and submits those that reach zero; a failure marks its whole downstream cone skipped; run() waits on an
Event set by whichever callback records the last result. Cycles and unknown dependencies are found
before anything runs (Kahn's algorithm).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable


@dataclass
class TaskResult:
    status: str  # "success", "failed" or "skipped"
    result: Any = None
    error: BaseException | None = None
    attempts: int = 0


@dataclass
class _Task:
    fn: Callable[[], Any]
    dependencies: frozenset[str]
    retries: int


class TaskScheduler:
    def __init__(self, max_workers: int = 4) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be greater than 0")
        self.max_workers = max_workers
        self._tasks: dict[str, _Task] = {}

    def add_task(
        self,
        task_id: str,
        execute_fn: Callable[[], Any],
        dependencies: Iterable[str] | None = None,
        retries: int = 0,
    ) -> None:
        if task_id in self._tasks:
            raise ValueError(f"duplicate task id {task_id!r}")
        if retries < 0:
            raise ValueError(f"task {task_id!r}: retries must be >= 0")
        self._tasks[task_id] = _Task(execute_fn, frozenset(dependencies or ()), retries)

    def _validate(self) -> dict[str, list[str]]:
        """Returns each task's dependents; raises ValueError for unknown ids and cycles."""
        dependents: dict[str, list[str]] = {tid: [] for tid in self._tasks}
        for tid, task in self._tasks.items():
            for dep in task.dependencies:
                if dep not in self._tasks:
                    raise ValueError(f"task {tid!r} depends on unknown task {dep!r}")
                dependents[dep].append(tid)
        unmet = {tid: len(task.dependencies) for tid, task in self._tasks.items()}
        queue = [tid for tid, n in unmet.items() if n == 0]
        for tid in queue:  # grows while iterating: Kahn's algorithm
            for d in dependents[tid]:
                unmet[d] -= 1
                if unmet[d] == 0:
                    queue.append(d)
        if len(queue) != len(self._tasks):
            raise ValueError("dependency cycle among: " + ", ".join(t for t, n in unmet.items() if n > 0))
        return dependents

    @staticmethod
    def _attempt(task: _Task) -> TaskResult:
        for attempt in range(1, task.retries + 2):
            try:
                return TaskResult("success", task.fn(), None, attempt)
            except Exception as exc:  # noqa: BLE001 - a task's failure is data, not our error
                error = exc
        return TaskResult("failed", None, error, task.retries + 1)

    def run(self) -> dict[str, TaskResult]:
        dependents = self._validate()
        tasks = self._tasks
        results: dict[str, TaskResult] = {}
        if not tasks:
            return results
        remaining = {tid: len(task.dependencies) for tid, task in tasks.items()}
        lock = threading.Lock()
        all_done = threading.Event()

        with ThreadPoolExecutor(max_workers=self.max_workers) as executor:

            def submit(tid: str) -> None:
                future = executor.submit(self._attempt, tasks[tid])
                future.add_done_callback(lambda f, tid=tid: on_done(tid, f))

            def on_done(tid: str, future: Future) -> None:
                outcome = future.result()  # _attempt never raises
                ready = []
                with lock:
                    results[tid] = outcome
                    if outcome.status == "success":
                        for d in dependents[tid]:
                            remaining[d] -= 1
                            if remaining[d] == 0 and d not in results:
                                ready.append(d)
                    else:
                        stack = list(dependents[tid])
                        while stack:
                            d = stack.pop()
                            if d not in results:
                                results[d] = TaskResult("skipped")
                                stack.extend(dependents[d])
                    if len(results) == len(tasks):
                        all_done.set()
                for d in ready:
                    submit(d)

            # Listed before the first submit: callbacks start changing `remaining` at once.
            roots = [tid for tid, n in remaining.items() if n == 0]
            for tid in roots:
                submit(tid)
            all_done.wait()
        return {tid: results[tid] for tid in tasks}
