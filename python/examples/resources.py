"""Resource pools and priorities (the Python twin of examples/resources.cpp).

Eight training jobs share two GPUs and a database that takes three connections; a job that needs both GPUs
is not starved by the single-GPU ones, and no job ever finds its GPU taken. Exits 0 when no more GPUs were
in use at once than the pool has.
"""

import sys
import threading
import time

from dagsched import ResourceError, TaskScheduler

lock = threading.Lock()
gpus_in_use = 0
peak = 0


def train(gpus):
    def body():
        global gpus_in_use, peak
        with lock:
            gpus_in_use += gpus
            peak = max(peak, gpus_in_use)
        time.sleep(0.005)  # the GIL is released: the jobs really overlap
        with lock:
            gpus_in_use -= gpus

    return body


with TaskScheduler(max_workers=4) as scheduler:
    scheduler.add_resource("gpu", 2)
    scheduler.add_resource("db", 3)
    scheduler.add_task("load_data", lambda: time.sleep(0.001), resources={"db": 1})
    for i in range(8):
        # Each job needs one GPU while it runs, and a database connection; higher priority first.
        scheduler.add_task(f"train_{i}", train(1), dependencies={"load_data"}, resources={"gpu": 1, "db": 1},
                           priority=i % 3)
    scheduler.add_task("train_large", train(2), dependencies={"load_data"}, resources={"gpu": 2})
    results = scheduler.run()  # order="critical_path", the default, after the priorities

    # A task asking for a pool never declared, or more units than it has, fails the run before anything runs.
    scheduler.add_task("train_huge", train(4), resources={"gpu": 4})
    try:
        scheduler.run()
    except ResourceError as e:
        print(f"rejected: task {e.task_id!r} asks too much of pool {e.pool!r}")

all_succeeded = all(r.status == "success" for r in results.values())
print(f"tasks: {len(results)}, all succeeded: {all_succeeded}, most GPUs in use at once: {peak} of 2")
sys.exit(0 if all_succeeded and peak <= 2 else 1)
