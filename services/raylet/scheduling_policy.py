"""Where a task goes when this node cannot run it now: pure functions over
the cluster view, so the policy is tested without sockets.

A raylet runs what it can itself (its idle workers, then workers it pipelines
to or starts); only the rest is spilled. Each other node takes up to
`slots x pipeline_depth` spilled tasks of a shape at a time, where `slots` is
how many of the shape its total resources hold: the node's own queue does
the fine-grained work, and the submitting raylet keeps the remainder, so load
follows completion rate instead of a resource report that is up to one
report interval old. Among nodes with room, those whose last report shows
free resources for the task come first, then the least loaded.
"""

from __future__ import annotations

from typing import Mapping

from ember_raylet import resources
from ember_raylet.cluster_view import ClusterView

# A shape that asks for no resources at all still occupies a worker.
_ZERO_SHAPE_SLOTS = 4


def slots(shape: Mapping[str, float], total: Mapping[str, float]) -> int:
    """How many tasks of `shape` the resources `total` hold at once."""
    wanted = [(k, v) for k, v in shape.items() if v > 0]
    if not wanted:
        return max(1, int(total.get("CPU", 0))) if total.get("CPU", 0) else _ZERO_SHAPE_SLOTS
    return min(int(total.get(k, 0.0) / v + 1e-9) for k, v in wanted)


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def fits_somewhere(shape: Mapping[str, float], view: ClusterView, selector: Mapping[str, str] = {}) -> bool:
    return any(resources.fits(shape, node.total) and labels_match(selector, node.labels) for node in view.nodes.values())


def pick_spill_node(shape: Mapping[str, float], view: ClusterView, inflight: Mapping[bytes, int],
                    pipeline_depth: int, selector: Mapping[str, str] = {}) -> bytes | None:
    best, best_score = None, None
    for node in view.nodes.values():
        if not labels_match(selector, node.labels):
            continue
        n = slots(shape, node.total)
        if n == 0:
            continue
        load = inflight.get(node.node_id, 0) / (n * pipeline_depth)
        if load >= 1:
            continue
        score = (not resources.fits(shape, node.available), load)
        if best_score is None or score < best_score:
            best, best_score = node.node_id, score
    return best


def locality_node(bytes_by_node: Mapping[bytes, int], shape: Mapping[str, float], view: ClusterView,
                  local_id: bytes, selector: Mapping[str, str] = {}) -> bytes | None:
    """The other node holding most of a task's argument bytes, if it holds
    more than this one and could run the task; else None (run here)."""
    if not bytes_by_node:
        return None
    node_id = max(bytes_by_node, key=lambda n: bytes_by_node[n])
    if node_id == local_id or bytes_by_node[node_id] <= bytes_by_node.get(local_id, 0):
        return None
    node = view.get(node_id)
    if node is None or not resources.fits(shape, node.total) or not labels_match(selector, node.labels):
        return None
    return node_id
