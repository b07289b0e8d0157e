"""Where a task goes when this node cannot run it now, or should not: pure
functions over the cluster view, so the policy is tested without sockets.

Default placement packs this node until half its CPUs are busy, then
spreads (Ray's hybrid policy): while this node is at least half busy, a task
goes to a node less than half busy (by its last report plus what we sent
it since); when every node is, this node fills up. A task this node has no free
worker for goes to a node with a free slot before it is pipelined behind a
busy worker here; what is left after that spills as below.

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
    # (most tasks have no selector: no generator made for them, once per task placed)
    return not selector or all(labels.get(k) == v for k, v in selector.items())


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


HALF = 0.5


def _cpu_load(total: Mapping[str, float], available: Mapping[str, float], extra: float) -> float:
    cpus = total.get("CPU", 0.0)
    return (cpus - available.get("CPU", 0.0) + extra) / cpus if cpus > 0 else 1.0


def pick_spread_node(shape: Mapping[str, float], view: ClusterView, inflight: Mapping[bytes, int],
                     local_total: Mapping[str, float], local_available: Mapping[str, float],
                     selector: Mapping[str, str] = {}) -> bytes | None:
    """A node to spread a task to instead of running it here: None while
    this node is less than half busy, or no other node is."""
    cpu = shape.get("CPU", 0.0)
    if cpu <= 0 or _cpu_load(local_total, local_available, 0.0) < HALF - 1e-9:
        return None
    best, best_load = None, None
    for node in view.nodes.values():
        if not labels_match(selector, node.labels) or not resources.fits(shape, node.available):
            continue
        load = _cpu_load(node.total, node.available, cpu * inflight.get(node.node_id, 0))
        if load < HALF - 1e-9 and (best_load is None or load < best_load):
            best, best_load = node.node_id, load
    return best


def pick_free_node(shape: Mapping[str, float], view: ClusterView, inflight: Mapping[bytes, int],
                   selector: Mapping[str, str] = {}) -> bytes | None:
    """A node with a free slot for the task now (by its last report and what
    we sent it since), the emptiest first: better than queueing it behind
    this node's busy workers."""
    best, best_load = None, None
    for node in view.nodes.values():
        if not labels_match(selector, node.labels) or not resources.fits(shape, node.available):
            continue
        n = slots(shape, node.total)
        if n == 0 or inflight.get(node.node_id, 0) >= n:
            continue
        load = inflight.get(node.node_id, 0) / n
        if best_load is None or load < best_load:
            best, best_load = node.node_id, load
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
