"""Fault-tolerance controls on a small training pipeline (the Python twin of examples/fault_tolerance.cpp).

A flaky download retried with backoff while another task uses the worker, a training step that reads its
input through the TaskContext and adapts after a failure, a per-attempt timeout, an error that retrying
cannot fix, a cleanup task that runs whatever happened, why a task was skipped, and a run watched through
its RunHandle. Exits 0 when everything behaved as described.
"""

import sys
import time

import dagsched
from dagsched import PermanentError, TaskScheduler

downloads = 0


def download():
    # Fails twice (a flaky network), then succeeds.
    global downloads
    downloads += 1
    if downloads < 3:
        raise ConnectionResetError("connection reset")
    return [0.5] * 1000


def train(ctx):
    # One parameter: dagsched passes a TaskContext. result() is the download's list itself, not a copy.
    data = ctx.result("download")
    batch = 1024 if ctx.attempt == 1 else 256  # the first attempt "runs out of memory"
    if batch > 512:
        raise MemoryError(f"out of memory at batch {batch}")
    loss = 0.0
    for x in data:
        if ctx.stop_requested():  # the 2 s timeout expired, or the run was cancelled
            raise RuntimeError("stopped")
        loss += x / batch
    return loss


def deploy():
    raise PermanentError("no deployment target configured")  # retrying cannot help


def cleanup(ctx):
    # trigger="all_done": runs once train and deploy have finished, whatever their outcome.
    return f"deploy was {ctx.dependency('deploy').status}"


with TaskScheduler(max_workers=2) as scheduler:
    # Waits 10 ms, then 20 ms before its retries (backoff 2, up to 20% jitter), holding no worker meanwhile.
    scheduler.add_task("download", download, retries=4, retry_delay=0.01, backoff=2, max_delay=1, jitter=0.2,
                       retry_if=lambda exc: isinstance(exc, ConnectionError))
    scheduler.add_task("tokenizer", lambda: "bpe-32k")
    scheduler.add_task("train", train, dependencies={"download", "tokenizer"}, retries=1, timeout=2)
    scheduler.add_task("deploy", deploy, dependencies={"train"}, retries=5)
    scheduler.add_task("notify", lambda: 0, dependencies={"deploy"})
    scheduler.add_task("cleanup", cleanup, dependencies={"train", "deploy"}, trigger="all_done")

    run = scheduler.start(seed=42)
    while not run.done():
        p = run.progress()
        print(f"progress: {p.finished}/{p.total} finished, {p.waiting} waiting for a retry")
        time.sleep(0.005)
    results = run.wait(timeout=30)

for task_id, r in results.items():
    line = f"{task_id}: {r.status} after {r.attempts} attempt(s)"
    for cause in r.skip_causes:
        line += f", skipped because {cause} failed"
    print(line)
print("cleanup says:", results["cleanup"].result)

as_expected = (
    results["download"].attempts == 3
    and results["train"].status == "success"
    and results["train"].attempts == 2
    and results["deploy"].attempts == 1
    and isinstance(results["deploy"].error, PermanentError)
    and results["notify"].skip_causes == ("deploy",)
    and results["cleanup"].result == "deploy was failed"
    and isinstance(dagsched.TimeoutError("x"), TimeoutError)
)
sys.exit(0 if as_expected else 1)
