"""The raylet's spans of a traced task (docs/tracing.md): its time here
from arrival to a worker (`lease NAME`) or to another node (`forward
NAME`), each a child of the task's W3C context (TaskSpec.traceparent).
Called only when the service traces (ember_common.service_spans.active is
set) and the spec carries a context; recorded only when it is sampled.
"""

from __future__ import annotations

import time

from ember_common import service_spans, span_export
from ember_raylet.task_manager import TaskEntry


def _since_arrival_ns(task: TaskEntry, now_ns: int) -> int:
    """When the task arrived here, on the wall clock (TaskEntry keeps a monotonic time)."""
    return now_ns - int((time.monotonic() - task.submitted_at) * 1e9)


def leased(task: TaskEntry, node_id: bytes, worker_pid: int) -> None:
    """The task goes to a worker of this node now."""
    spans = service_spans.active
    spec = task.spec
    if spans is None or not span_export.sampled(spec.traceparent):
        return
    now = time.time_ns()
    attributes = {"ember.task_id": spec.task_id.hex(), "ember.node_id": node_id.hex(), "ember.worker_pid": worker_pid}
    if spec.actor_id:
        attributes["ember.actor_id"] = spec.actor_id.hex()
    span = spans.start(spec.traceparent, f"lease {spec.function_name}", attributes,
                       start_ns=_since_arrival_ns(task, now), tracestate=spec.tracestate)
    if span is not None:
        span.end(now)


def forwarded(task: TaskEntry, node_id: bytes, to_node_id: bytes) -> None:
    """The task goes to another node's raylet now (spilled, or its actor lives there)."""
    spans = service_spans.active
    spec = task.spec
    if spans is None or not span_export.sampled(spec.traceparent):
        return
    now = time.time_ns()
    span = spans.start(spec.traceparent, f"forward {spec.function_name}",
                       {"ember.task_id": spec.task_id.hex(), "ember.node_id": node_id.hex(),
                        "ember.to_node_id": to_node_id.hex()},
                       span_export.PRODUCER, _since_arrival_ns(task, now), spec.tracestate)
    if span is not None:
        span.end(now)
