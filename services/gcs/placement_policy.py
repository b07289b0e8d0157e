"""Which node each bundle of a placement group goes to: a pure function over
the nodes' free resources, tested without sockets.

PACK: all on one node if one holds them, else as few nodes as it takes.
STRICT_PACK: all on one node, or nothing.
STRICT_SPREAD: every bundle on a different node, or nothing.
SPREAD: on different nodes where possible, doubling up only when it must.
Nodes with more free resources are tried first.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from ember.v1 import gcs_pb2

PACK, SPREAD = gcs_pb2.PlacementGroupInfo.PACK, gcs_pb2.PlacementGroupInfo.SPREAD
STRICT_PACK, STRICT_SPREAD = gcs_pb2.PlacementGroupInfo.STRICT_PACK, gcs_pb2.PlacementGroupInfo.STRICT_SPREAD
_EPS = 1e-9

Amounts = Mapping[str, float]


def _fits(request: Amounts, free: Amounts) -> bool:
    return all(free.get(k, 0.0) + _EPS >= v for k, v in request.items() if v > 0)


def _take(free: dict[str, float], request: Amounts) -> None:
    for k, v in request.items():
        free[k] = free.get(k, 0.0) - v


def _total(bundles: Sequence[Amounts]) -> dict[str, float]:
    out: dict[str, float] = {}
    for b in bundles:
        for k, v in b.items():
            out[k] = out.get(k, 0.0) + v
    return out


def assign(bundles: Sequence[Amounts], strategy: int, nodes: Mapping[bytes, Amounts]) -> list[bytes] | None:
    """A node id per bundle, or None if the nodes cannot hold the group now."""
    free = {node_id: dict(amounts) for node_id, amounts in nodes.items()}
    roomiest = sorted(free, key=lambda n: -sum(free[n].values()))
    if strategy in (PACK, STRICT_PACK):
        whole = _total(bundles)
        for node_id in roomiest:
            if _fits(whole, free[node_id]):
                return [node_id] * len(bundles)
        if strategy == STRICT_PACK:
            return None
    placed: list[bytes | None] = [None] * len(bundles)
    count = {node_id: 0 for node_id in free}
    # Big bundles first: they have the fewest choices.
    for i in sorted(range(len(bundles)), key=lambda j: -sum(bundles[j].values())):
        fitting = [n for n in roomiest if _fits(bundles[i], free[n])]
        if strategy == STRICT_SPREAD:
            fitting = [n for n in fitting if count[n] == 0]
        if not fitting:
            return None
        if strategy == PACK:  # fill the nodes already in use first
            node_id = min(fitting, key=lambda n: (count[n] == 0, -sum(free[n].values())))
        else:  # spread: the node with the fewest of our bundles
            node_id = min(fitting, key=lambda n: (count[n], -sum(free[n].values())))
        placed[i] = node_id
        count[node_id] += 1
        _take(free[node_id], bundles[i])
    return placed  # type: ignore[return-value]
