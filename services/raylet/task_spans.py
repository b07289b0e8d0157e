"""The raylet's spans of a traced task (docs/tracing.md): its queue time,
from its submission to the lease of a worker here (`schedule NAME`), or
its time here until it goes to another node (`forward NAME`), each a child
of the task's W3C context (TaskSpec.traceparent).

Called only when the service traces and the task's context is sampled:
`service_spans.active is not None and spec.traceparent[54:55] in
SAMPLED_DIGITS` at the call site (no call at all otherwise). The raylet
checked the traceparent's form when the task arrived (task_checks), so its
ids are read by position.
"""

from __future__ import annotations

import time

from ember_common import service_spans
from ember_common.span_export import INTERNAL, PRODUCER
from ember_raylet.task_manager import TaskEntry


def leased(task: TaskEntry, node_id: bytes, worker_pid: int) -> None:
    """The task goes to a worker of this node now: its schedule span, from
    its submission (the submitter's clock: from its arrival here if that
    is later than now, a node whose clock is behind) to now."""
    spans = service_spans.active
    assert spans is not None
    spec = task.spec
    traceparent = spec.traceparent
    now = time.time_ns()
    start = spec.submit_time_ns
    if not 0 < start <= now:
        start = now - int((time.monotonic() - task.submitted_at) * 1e9)  # (arrival, on the wall clock)
    # (ids as bytes: made hex on the exporter's thread)
    attributes = {"ember.task_id": spec.task_id, "ember.node_id": node_id, "ember.worker_pid": worker_pid}
    if spec.actor_id:
        attributes["ember.actor_id"] = spec.actor_id
    spans.exporter.record(traceparent[3:35], traceparent[36:52], f"schedule {spec.function_name}", INTERNAL, start, now,
                          attributes, spec.tracestate)


def forwarded(task: TaskEntry, node_id: bytes, to_node_id: bytes) -> None:
    """The task goes to another node's raylet now (spilled, or its actor lives there)."""
    spans = service_spans.active
    assert spans is not None
    spec = task.spec
    traceparent = spec.traceparent
    now = time.time_ns()
    spans.exporter.record(traceparent[3:35], traceparent[36:52], f"forward {spec.function_name}", PRODUCER,
                          now - int((time.monotonic() - task.submitted_at) * 1e9),
                          now, {"ember.task_id": spec.task_id, "ember.node_id": node_id, "ember.to_node_id": to_node_id},
                          spec.tracestate)
