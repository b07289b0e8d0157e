"""The raylet's Prometheus metrics.

`RayletMetrics` holds what only an event can tell (how tasks ended, how
long they waited and ran, drivers connecting): plain numbers the logic
bumps on the event loop (`ember_common.loop_metrics`). Everything that is a
state (tasks by state, queues, workers, objects) is read from the tables by
`RayletCollector` when Prometheus scrapes, so the per-task path pays
nothing for it. Labels are bounded: states and error types are fixed sets.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ember_common.loop_metrics import LoopHistogram, histogram_family
from ember_raylet.client_session import DRIVER
from ember_raylet.memory_monitor import MemoryMonitor, read_memory_usage
from ember_raylet.task_manager import TaskState

if TYPE_CHECKING:
    from ember_raylet.node_manager import NodeManager
    from ember_raylet.user_metrics import UserMetrics

# `error_type` of a failed task: these two, or a runtime failure's
# ember.exceptions class name (FailureType), a fixed set.
APPLICATION_ERROR = "application"  # the task raised
DEPENDENCY_ERROR = "dependency"  # an argument was an error


class RayletMetrics:
    """Counts of events on this raylet since it started."""

    __slots__ = ("tasks_succeeded", "tasks_failed", "scheduling_latency", "execution_time", "driver_connects",
                 "driver_disconnects")

    def __init__(self) -> None:
        self.tasks_succeeded = 0
        self.tasks_failed: collections.Counter[str] = collections.Counter()  # by error_type
        self.scheduling_latency = LoopHistogram()  # submit (here) -> start on a worker, seconds
        self.execution_time = LoopHistogram()  # start -> end on the worker, seconds
        self.driver_connects = 0
        self.driver_disconnects = 0


_TASK_STATES = {state: state.name.lower() for state in TaskState}
_WORKER_STATES = ("starting", "idle", "leased", "blocked", "actor")


class RayletCollector:
    """Reads the node manager's state and counts when scraped (on the
    raylet's loop, so the tables are consistent)."""

    def __init__(self, nm: "NodeManager", user_metrics: "UserMetrics | None" = None,
                 memory_monitor: "MemoryMonitor | None" = None) -> None:
        self._nm = nm
        self._user = user_metrics
        self._memory_monitor = memory_monitor

    def collect(self) -> Iterator[Metric]:
        nm, m = self._nm, self._nm.metrics
        yield from self._tasks(nm, m)
        yield from self._workers(nm)
        yield from self._objects(nm)
        drivers = sum(1 for s in nm.sessions.values() if s.kind == DRIVER and not s.closed)
        yield GaugeMetricFamily("ember_drivers", "Drivers connected to this raylet.", value=drivers)
        yield CounterMetricFamily("ember_driver_connects", "Drivers that connected to this raylet.",
                                  value=m.driver_connects)
        yield CounterMetricFamily("ember_driver_disconnects", "Drivers that disconnected (or died).",
                                  value=m.driver_disconnects)
        yield GaugeMetricFamily("ember_drivers_held", "Drivers on a submit allowance (they keep the tasks this "
                                "raylet has no room for): it kept max_queued_tasks tasks or more.",
                                value=len(nm.admission.held))
        yield CounterMetricFamily("ember_driver_submission_holds", "Times a driver was put on a submit "
                                  "allowance.", value=nm.admission.holds_total)
        yield GaugeMetricFamily("ember_small_values_to_store", "1 while this raylet keeps max_inline_bytes of small "
                                "values or more and asks its clients to write small values to the object store.",
                                value=int(nm.admission.store_small_values))
        if self._memory_monitor is not None:
            yield from self._memory(self._memory_monitor)
        if nm.task_events is not None:
            yield CounterMetricFamily("ember_task_events_dropped", "Task events this raylet dropped for room "
                                      "(EMBER_TASK_EVENTS_BUFFER_SIZE).", value=nm.task_events.dropped)
        if self._user is not None:
            yield from self._user.families()

    @staticmethod
    def _memory(monitor: "MemoryMonitor") -> Iterator[Metric]:
        usage = read_memory_usage()
        yield GaugeMetricFamily("ember_node_memory_used_bytes", "Memory in use on this node (the fuller of the "
                                "machine and the raylet's cgroup), as the memory monitor sees it.", value=usage.used)
        yield GaugeMetricFamily("ember_node_memory_total_bytes", "The node's memory (or its cgroup's limit).",
                                value=usage.total)
        yield CounterMetricFamily("ember_memory_monitor_worker_kills", "Workers the raylet killed because the "
                                  "node's memory in use passed memory_usage_threshold.", value=monitor.kills_total)

    @staticmethod
    def _tasks(nm: "NodeManager", m: RayletMetrics) -> Iterator[Metric]:
        counts = collections.Counter(task.state for task in nm.tasks.tasks.values())
        by_state = GaugeMetricFamily(
            "ember_tasks", "Tasks (and actor calls) this raylet holds, by state: waiting (for arguments), "
            "queued, assigned (to a worker here), forwarded (to another node).", labels=["state"])
        for state, name in _TASK_STATES.items():
            by_state.add_metric([name], counts.get(state, 0))
        yield by_state
        yield GaugeMetricFamily("ember_tasks_infeasible", "Queued tasks no node of the cluster can run.",
                                value=sum(len(q) for q in nm.tasks.infeasible.values()))
        yield CounterMetricFamily("ember_tasks_succeeded", "Tasks and actor calls that ran here and returned.",
                                  value=m.tasks_succeeded)
        failed = CounterMetricFamily(
            "ember_tasks_failed", "Tasks and actor calls that failed here, by error type: application (it "
            "raised), dependency (an argument failed), or the runtime's error class.", labels=["error_type"])
        for error_type, count in sorted(m.tasks_failed.items()):
            failed.add_metric([error_type], count)
        yield failed
        yield histogram_family("ember_task_scheduling_latency_seconds",
                               "From a task's arrival at this raylet to its start on a worker.",
                               [((), m.scheduling_latency)])
        yield histogram_family("ember_task_execution_seconds", "How long tasks ran on this node's workers.",
                               [((), m.execution_time)])

    @staticmethod
    def _workers(nm: "NodeManager") -> Iterator[Metric]:
        pool = nm.pool
        states = dict.fromkeys(_WORKER_STATES, 0)
        states["starting"] = len(pool.starting)
        states["idle"] = len(pool.idle)
        for worker in pool.workers.values():
            if worker.actor_id is not None:
                states["actor"] += 1
            elif worker.lease is not None:
                states["blocked" if worker.blocked else "leased"] += 1
        by_state = GaugeMetricFamily("ember_workers", "Worker processes by state (blocked: leased, waiting in "
                                     "get/wait; actor: hosting an actor).", labels=["state"])
        for state, count in states.items():
            by_state.add_metric([state], count)
        yield by_state
        yield CounterMetricFamily("ember_worker_starts", "Worker processes started.", value=pool.num_started)

    @staticmethod
    def _objects(nm: "NodeManager") -> Iterator[Metric]:
        num, pinned = nm.objects.counts()
        yield GaugeMetricFamily("ember_objects", "Objects this raylet owns or tracks (values held by references).",
                                value=num)
        yield GaugeMetricFamily("ember_objects_pinned",
                                "Objects kept alive by pending tasks or lineage, besides references.", value=pinned)
        yield GaugeMetricFamily("ember_objects_inline_bytes", "Bytes of small object values kept in the raylet.",
                                value=nm.objects.inline_bytes)
