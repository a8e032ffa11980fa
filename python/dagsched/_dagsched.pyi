# Type stubs for the compiled extension; see the docstrings for the full contract.
import builtins
import datetime
from typing import Any, Callable, Collection, Iterable, Literal, Mapping

_Seconds = float | int | datetime.timedelta

__version__: str

class GraphError(ValueError): ...

class DuplicateTaskError(GraphError):
    task_id: str

class UnknownDependencyError(GraphError):
    task_id: str
    dependency: str

class CycleError(GraphError):
    cycle: list[str]

class ResourceError(GraphError):
    task_id: str
    pool: str

class PermanentError(Exception): ...

class TimeoutError(builtins.TimeoutError):
    task_id: str | None
    attempt: int
    limit: float
    deadline: bool
    cause: BaseException | None
    def __init__(
        self,
        *args: object,
        task_id: str | None = None,
        attempt: int = 0,
        limit: float = 0.0,
        deadline: bool = False,
        cause: BaseException | None = None,
    ) -> None: ...

class TaskResult:
    __match_args__ = ("status", "result", "error", "attempts")
    @property
    def status(self) -> Literal["success", "failed", "skipped", "cancelled"]: ...
    @property
    def result(self) -> Any: ...
    @property
    def error(self) -> BaseException | None: ...
    @property
    def attempts(self) -> int: ...
    @property
    def skip_causes(self) -> tuple[str, ...]: ...
    def __init__(
        self,
        status: str,
        result: Any = None,
        error: BaseException | None = None,
        attempts: int = 0,
        skip_causes: Collection[str] = (),
    ) -> None: ...

class TaskContext:
    @property
    def task_id(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def last_error(self) -> BaseException | None: ...
    def stop_requested(self) -> bool: ...
    def result(self, dependency_id: str) -> Any: ...
    def dependency(self, dependency_id: str) -> TaskResult: ...

class Progress:
    @property
    def total(self) -> int: ...
    @property
    def finished(self) -> int: ...
    @property
    def running(self) -> int: ...
    @property
    def waiting(self) -> int: ...
    @property
    def succeeded(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def skipped(self) -> int: ...
    @property
    def cancelled(self) -> int: ...
    def _asdict(self) -> dict[str, int]: ...

class RunHandle:
    def wait(self, timeout: float | None = None) -> dict[str, TaskResult]: ...
    def done(self) -> bool: ...
    def cancel(self) -> None: ...
    def progress(self) -> Progress: ...

_FailurePolicy = Literal["keep_going", "fail_fast"] | int
_ReadyOrder = Literal["critical_path", "fifo", "depth_first"]
_Resources = Mapping[str, int] | Iterable[tuple[str, int]]

class TaskScheduler:
    def __init__(self, max_workers: int = 4) -> None: ...
    def add_task(
        self,
        task_id: str,
        execute_fn: Callable[[], Any] | Callable[[TaskContext], Any],
        dependencies: Collection[str] | None = None,
        retries: int = 0,
        *,
        retry_delay: _Seconds = 0,
        backoff: float = 1.0,
        max_delay: _Seconds | None = None,
        jitter: float = 0.0,
        retry_if: Callable[[BaseException], object] | None = None,
        timeout: _Seconds | None = None,
        deadline: _Seconds | None = None,
        trigger: Literal["all_success", "all_done"] = "all_success",
        resources: _Resources | None = None,
        priority: int = 0,
        cost: float = 1.0,
        context: bool | None = None,
    ) -> None: ...
    def add_resource(self, name: str, capacity: int) -> None: ...
    def run(
        self,
        *,
        failure_policy: _FailurePolicy = "keep_going",
        seed: int = 0,
        order: _ReadyOrder = "critical_path",
        order_threshold: _Seconds | None = None,
    ) -> dict[str, TaskResult]: ...
    def start(
        self,
        *,
        failure_policy: _FailurePolicy = "keep_going",
        seed: int = 0,
        order: _ReadyOrder = "critical_path",
        order_threshold: _Seconds | None = None,
    ) -> RunHandle: ...
    def close(self) -> None: ...
    def __enter__(self) -> TaskScheduler: ...
    def __exit__(self, *args: object) -> bool: ...
    @property
    def max_workers(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    def __len__(self) -> int: ...
    def __contains__(self, task_id: object) -> bool: ...
