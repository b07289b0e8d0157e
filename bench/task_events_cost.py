"""What task events cost the raylet per task: the node manager (real, with
fake worker processes, no sockets) runs N tasks from submission to result,
with task events on and off; prints Python calls per task under cProfile
and the best-of-5 time per task. Calls are exact; times on a shared
machine are indicative only.

    python bench/task_events_cost.py [N]
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time

from ember.v1 import common_pb2, raylet_pb2

from ember_common import ids
from ember_raylet.client_session import DRIVER, WORKER, ClientSession
from ember_raylet.node_manager import NodeManager
from ember_raylet.task_events import TaskEvents
from ember_raylet.worker_pool import WorkerPool


class _Process:
    pid = 4242

    def poll(self) -> None:
        return None


def _node(events: bool) -> tuple[NodeManager, ClientSession, list[ClientSession]]:
    pool = WorkerPool(lambda wid: _Process(), max_workers=2)
    nm = NodeManager(ids.new_unique_id(), {"CPU": 2}, pool, min_workers=2, pipeline_depth=4,
                     task_events=TaskEvents() if events else None)
    nm.ensure_min_workers()
    workers = []
    for wid in list(pool.starting):
        session = ClientSession(ids.new_unique_id(), WORKER, worker_id=wid, pid=4242)
        nm.connect(session)
        workers.append(session)
    driver = ClientSession(ids.new_unique_id(), DRIVER, job_id=b"\0\0\0\1")
    nm.connect(driver)
    return nm, driver, workers


def _run(nm: NodeManager, driver: ClientSession, workers: list[ClientSession], n: int, traceparent: str = "") -> None:
    for _ in range(n):
        spec = raylet_pb2.TaskSpec(task_id=ids.new_unique_id(), function_id=b"f" * 32, function_name="f",
                                   num_returns=1, job_id=b"\0\0\0\1", traceparent=traceparent)
        spec.resources.amounts["CPU"] = 1
        nm.handle_batch(driver, raylet_pb2.ClientBatch(submit=[spec]))
        for w in workers:
            batch = w.take()
            for e in batch.execute if batch else ():
                ret = common_pb2.ObjectValue(object_id=ids.object_id_for(e.spec.task_id, 1), data=b"v")
                nm.handle_batch(w, raylet_pb2.ClientBatch(results=[raylet_pb2.TaskResult(
                    task_id=e.spec.task_id, returns=[ret], start_time=time.time(), run_time_s=0.001)]))
        driver.take()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    for events in (False, True):
        nm, driver, workers = _node(events)
        profile = cProfile.Profile()
        profile.runcall(_run, nm, driver, workers, n)
        calls = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
        best = float("inf")
        for _ in range(5):
            nm, driver, workers = _node(events)
            t0 = time.perf_counter()
            _run(nm, driver, workers, n)
            best = min(best, time.perf_counter() - t0)
        print(f"task events {'on ' if events else 'off'}: {calls / n:.1f} Python calls per task, "
              f"{best / n * 1e6:.1f} us per task (best of 5)")


if __name__ == "__main__":
    main()
