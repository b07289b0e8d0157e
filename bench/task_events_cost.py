"""What task events and metrics cost the raylet per task: the node manager
(real, with fake worker processes, no sockets) runs N tasks from
submission to result, with each of them on and off; prints Python calls
per task under cProfile and the best-of-5 time per task. Calls are exact;
times on a shared machine are indicative only.

    python bench/task_events_cost.py [N]
    python bench/task_events_cost.py --where [N]   # also: the calls metrics+events add, by function
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


def _node(events: bool, metrics: bool = True) -> tuple[NodeManager, ClientSession, list[ClientSession]]:
    pool = WorkerPool(lambda wid: _Process(), max_workers=2)
    nm = NodeManager(ids.new_unique_id(), {"CPU": 2}, pool, min_workers=2, pipeline_depth=4,
                     task_events=TaskEvents() if events else None, count_tasks=metrics)
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


def _profile(events: bool, metrics: bool, n: int) -> pstats.Stats:
    nm, driver, workers = _node(events, metrics)
    profile = cProfile.Profile()
    profile.runcall(_run, nm, driver, workers, n)
    return pstats.Stats(profile)


def _by_function(stats: pstats.Stats) -> dict[str, int]:
    return {f"{pstats.func_std_string(f)}": calls for f, (_, calls, *_rest) in stats.stats.items()}  # type: ignore[attr-defined]


def main() -> None:
    where = "--where" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--where"]
    n = int(args[0]) if args else 5000
    for events, metrics in ((False, False), (False, True), (True, False), (True, True)):
        calls = _profile(events, metrics, n).total_calls  # type: ignore[attr-defined]
        best = float("inf")
        for _ in range(5):
            nm, driver, workers = _node(events, metrics)
            t0 = time.perf_counter()
            _run(nm, driver, workers, n)
            best = min(best, time.perf_counter() - t0)
        print(f"task events {'on ' if events else 'off'}, metrics {'on ' if metrics else 'off'}: "
              f"{calls / n:.1f} Python calls per task, {best / n * 1e6:.1f} us per task (best of 5)")
    if where:  # what metrics+events add, by function (calls per task)
        off, on = _by_function(_profile(False, False, n)), _by_function(_profile(True, True, n))
        added = sorted(((on.get(f, 0) - off.get(f, 0)) / n, f) for f in set(on) | set(off))
        for per_task, f in reversed(added):
            if per_task >= 0.5:
                print(f"  +{per_task:.1f}  {f}")


if __name__ == "__main__":
    main()
