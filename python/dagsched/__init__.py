"""dagsched: run a DAG of Python callables on a thread pool, with retries and skip-on-failure.

The scheduler is the dagsched C++ engine; Python callables run on its worker threads, which take the
GIL only while a callable runs.

    from dagsched import TaskScheduler

    scheduler = TaskScheduler(max_workers=4)
    scheduler.add_task("A", lambda: "result_A")
    scheduler.add_task("B", lambda: "result_B", dependencies={"A"}, retries=2)
    results = scheduler.run()          # {"A": TaskResult(...), "B": TaskResult(...)}
    results["B"].status                # "success", "failed" or "skipped"

Fault tolerance, all keyword-only options of add_task: retry_delay / backoff / max_delay / jitter,
retry_if, timeout, deadline, trigger="all_done"; a task taking one parameter gets a TaskContext
(ctx.result("A") is A's return value). Raise PermanentError to fail without retrying; an overrunning
task fails with dagsched.TimeoutError. run(failure_policy=..., seed=..., order=...) and start() (a
RunHandle with wait, done, cancel and progress) control a run.

Scheduling: add_resource("gpu", 2) declares a pool of 2 units that tasks ask for with
add_task(..., resources={"gpu": 1}); add_task's priority= (higher starts first) and cost= (the weight on
the critical path) and run(order="critical_path" | "fifo" | "depth_first") choose which ready task starts
first.

See help(TaskScheduler), help(TaskScheduler.add_task), help(TaskScheduler.run), help(TaskContext),
help(RunHandle) and help(TaskResult) for the full contract.
"""

# dagsched.TimeoutError is left out of __all__: a star import would shadow the builtin TimeoutError
# (which RunHandle.wait(timeout=...) raises) with this subclass of it.

from ._dagsched import (
    CycleError,
    DuplicateTaskError,
    GraphError,
    PermanentError,
    Progress,
    ResourceError,
    RunHandle,
    TaskContext,
    TaskResult,
    TaskScheduler,
    TimeoutError,
    UnknownDependencyError,
    __version__,
)

__all__ = [
    "CycleError",
    "DuplicateTaskError",
    "GraphError",
    "PermanentError",
    "Progress",
    "ResourceError",
    "RunHandle",
    "TaskContext",
    "TaskResult",
    "TaskScheduler",
    "UnknownDependencyError",
    "__version__",
]
