"""dagsched: run a DAG of Python callables on a thread pool, with retries and skip-on-failure.

The scheduler is the dagsched C++ engine; Python callables run on its worker threads, which take the
GIL only while a callable runs.

    from dagsched import TaskScheduler

    scheduler = TaskScheduler(max_workers=4)
    scheduler.add_task("A", lambda: "result_A")
    scheduler.add_task("B", lambda: "result_B", dependencies={"A"}, retries=2)
    results = scheduler.run()          # {"A": TaskResult(...), "B": TaskResult(...)}
    results["B"].status                # "success", "failed" or "skipped"

See help(TaskScheduler), help(TaskScheduler.run) and help(TaskResult) for the full contract.
"""

from ._dagsched import (
    CycleError,
    DuplicateTaskError,
    GraphError,
    TaskResult,
    TaskScheduler,
    UnknownDependencyError,
    __version__,
)

__all__ = [
    "CycleError",
    "DuplicateTaskError",
    "GraphError",
    "TaskResult",
    "TaskScheduler",
    "UnknownDependencyError",
    "__version__",
]
