#!/usr/bin/env python3
"""The spec's two examples through the dagsched Python module: the diamond DAG A -> {B, C} -> D plus an
independent E, first with every task succeeding, then with B failing after two retries.

    PYTHONPATH=build/python/python /usr/bin/python3 python/examples/quickstart.py
"""

from dagsched import TaskScheduler


def print_results(title, results):
    print(title)
    for task_id, r in results.items():
        detail = f"result={r.result!r}" if r.status == "success" else f"error={r.error!r}"
        print(f"  {task_id}: {r.status:<8} attempts={r.attempts}  {detail}")


# Example 1: everything succeeds. A and E start at once; B and C when A is done; D after B and C.
scheduler = TaskScheduler(max_workers=4)
scheduler.add_task("A", lambda: "result_A")
scheduler.add_task("B", lambda: "result_B", dependencies={"A"})
scheduler.add_task("C", lambda: "result_C", dependencies={"A"})
scheduler.add_task("D", lambda: "result_D", dependencies={"B", "C"})
scheduler.add_task("E", lambda: "result_E")

results = scheduler.run()
print_results("all succeed:", results)
assert all(r.status == "success" and r.attempts == 1 for r in results.values())
assert results["A"].result == "result_A"


# Example 2: B raises on every attempt. It is tried 1 + 2 times, then D (downstream of B) is skipped;
# C and the independent E complete normally.
def failing_B():
    raise ValueError("B broke")


scheduler = TaskScheduler(max_workers=4)
scheduler.add_task("A", lambda: "result_A")
scheduler.add_task("B", failing_B, dependencies={"A"}, retries=2)
scheduler.add_task("C", lambda: "result_C", dependencies={"A"})
scheduler.add_task("D", lambda: "result_D", dependencies={"B", "C"})
scheduler.add_task("E", lambda: "result_E")

results = scheduler.run()
print_results("B fails:", results)
assert [results[t].status for t in "ABCDE"] == ["success", "failed", "success", "skipped", "success"]
assert results["B"].attempts == 3 and isinstance(results["B"].error, ValueError)
assert results["D"].attempts == 0
