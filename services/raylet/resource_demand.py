"""The shapes queued on this node and how many of each, for the autoscaler
(sent with every resource report): every queue, infeasible ones included,
counted by its first task's shape and label selector (a queue's tasks share
both: they are its key)."""

from __future__ import annotations

import collections

from ember.v1 import autoscaler_pb2

from ember_raylet.task_manager import TaskManager

# Distinct shapes sent per report (the GCS keeps no more).
MAX_SHAPES = 200


def queued_demand(tasks: TaskManager) -> list[autoscaler_pb2.ResourceDemand]:
    counts: collections.Counter[tuple] = collections.Counter()
    first: dict[tuple, bytes] = {}
    for tier in (tasks.nested, tasks.roots, tasks.infeasible):
        for queue in tier.values():
            if not queue:
                continue
            task = tasks.tasks.get(queue[0])
            if task is None or not task.shape:
                continue
            key = (tuple(sorted(task.shape.items())), tuple(sorted(task.spec.label_selector.items())))
            counts[key] += len(queue)
            first.setdefault(key, queue[0])
    out = []
    for (shape, selector), count in counts.most_common(MAX_SHAPES):
        demand = autoscaler_pb2.ResourceDemand(count=count, label_selector=dict(selector))
        demand.shape.amounts.update(dict(shape))
        out.append(demand)
    return out
