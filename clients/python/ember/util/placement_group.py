"""Placement groups, as in Ray's `ray.util.placement_group`: bundles of
resources reserved together across nodes (all or nothing), which tasks and
actors are then scheduled into with
`PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=i)`."""

from __future__ import annotations

from typing import Any

from ember.v1 import common_pb2, gcs_pb2

from ember._private import runtime, tracing
from ember._private.object_ref import ObjectRef
from ember_common import ids

_STRATEGIES = {name: getattr(gcs_pb2.PlacementGroupInfo, name) for name in ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")}
_STATES = {gcs_pb2.PlacementGroupInfo.PENDING: "PENDING", gcs_pb2.PlacementGroupInfo.CREATED: "CREATED",
           gcs_pb2.PlacementGroupInfo.REMOVED: "REMOVED"}


class PlacementGroup:
    """A handle to a placement group; picklable, so tasks can use it too."""

    def __init__(self, group_id: bytes, bundle_specs: list[dict[str, float]] | None = None) -> None:
        self._id = group_id
        self._bundle_specs = bundle_specs  # None: asked of the GCS when first needed

    @property
    def bundle_specs(self) -> list[dict[str, float]]:
        if self._bundle_specs is None:
            reply = runtime.client().gcs.GetPlacementGroup(
                gcs_pb2.GetPlacementGroupRequest(placement_group_id=self._id), timeout=30)
            self._bundle_specs = [dict(b.amounts) for b in reply.group.bundles] if reply.found else []
        return self._bundle_specs

    @property
    def id(self) -> bytes:
        """The group's id (`.hex()` for text)."""
        return self._id

    @property
    def bundle_count(self) -> int:
        return len(self.bundle_specs)

    def ready(self) -> ObjectRef:
        """An ObjectRef that becomes ready (True) once every bundle is
        reserved: a tiny task scheduled into the group."""
        from ember.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        return _ready.options(scheduling_strategy=PlacementGroupSchedulingStrategy(self)).remote()

    def wait(self, timeout_seconds: float = 30) -> bool:
        """Whether the group is reserved within the timeout."""
        ready, _ = runtime.wait([self.ready()], timeout=timeout_seconds)
        return bool(ready)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlacementGroup) and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id)

    def __repr__(self) -> str:
        if self._bundle_specs is None:
            return f"PlacementGroup({self._id.hex()})"
        return f"PlacementGroup({self._id.hex()}, {len(self._bundle_specs)} bundles)"


def _ready_fn() -> bool:
    return True


def _make_ready() -> Any:
    from ember._private.remote_function import RemoteFunction

    return RemoteFunction(_ready_fn, {"num_cpus": 0, "max_retries": -1, "name": "placement_group.ready"})


_ready = _make_ready()


def placement_group(bundles: list[dict[str, float]], strategy: str = "PACK", name: str = "",
                    lifetime: str | None = None) -> PlacementGroup:
    """Reserve `bundles` (each a dict of resource amounts, e.g. {"CPU": 2})
    across nodes by `strategy` (PACK, SPREAD, STRICT_PACK, STRICT_SPREAD).
    Returns at once; `pg.ready()` / `pg.wait()` tell when it is reserved. A
    group ends with its job unless `lifetime="detached"`."""
    if strategy not in _STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(_STRATEGIES)}, got {strategy!r}")
    if lifetime not in (None, "detached"):
        raise ValueError(f'lifetime must be None or "detached", got {lifetime!r}')
    if not isinstance(bundles, list) or not bundles:
        raise ValueError("bundles must be a non-empty list of dicts")
    specs = []
    for i, bundle in enumerate(bundles):
        if (not isinstance(bundle, dict) or not bundle or not all(isinstance(k, str) for k in bundle)
                or not all(isinstance(v, (int, float)) and v >= 0 for v in bundle.values()) or sum(bundle.values()) <= 0):
            raise ValueError(f"bundle {i} must map resource names to non-negative amounts, some positive; got {bundle!r}")
        specs.append({k: float(v) for k, v in bundle.items()})
    group_id = ids.new_unique_id()
    info = gcs_pb2.PlacementGroupInfo(placement_group_id=group_id, name=name, namespace=runtime.current_namespace(),
                                      strategy=_STRATEGIES[strategy], job_id=runtime.current_job_id(),
                                      detached=lifetime == "detached")
    for spec in specs:
        info.bundles.append(common_pb2.ResourceSet(amounts=spec))
    runtime.client().gcs.CreatePlacementGroup(gcs_pb2.CreatePlacementGroupRequest(group=info), timeout=30,
                                              metadata=tracing.rpc_metadata())  # (the GCS's spans: children of ours)
    return PlacementGroup(group_id, specs)


def get_current_placement_group() -> PlacementGroup | None:
    """The placement group the running task or actor was scheduled into;
    None outside one (and in a driver)."""
    group_id = runtime.task_context().placement_group_id
    return PlacementGroup(group_id) if group_id else None


def remove_placement_group(pg: PlacementGroup) -> None:
    """Give the group's resources back; tasks scheduled into it no longer fit anywhere."""
    runtime.client().gcs.RemovePlacementGroup(gcs_pb2.RemovePlacementGroupRequest(placement_group_id=pg.id), timeout=30)


def get_placement_group(name: str, namespace: str | None = None) -> PlacementGroup:
    """The live group with this name (in the current namespace by default)."""
    ns = runtime.current_namespace() if namespace is None else namespace
    reply = runtime.client().gcs.GetPlacementGroup(gcs_pb2.GetPlacementGroupRequest(name=name, namespace=ns), timeout=30)
    if not reply.found:
        raise ValueError(f"no placement group named {name!r} in namespace {ns!r}")
    return PlacementGroup(reply.group.placement_group_id, [dict(b.amounts) for b in reply.group.bundles])


def _describe(group: gcs_pb2.PlacementGroupInfo) -> dict[str, Any]:
    return {
        "placement_group_id": group.placement_group_id.hex(),
        "name": group.name,
        "namespace": group.namespace,
        "bundles": {i: dict(b.amounts) for i, b in enumerate(group.bundles)},
        "bundles_to_node_id": {i: n.hex() for i, n in enumerate(group.bundle_nodes)},
        "strategy": gcs_pb2.PlacementGroupInfo.Strategy.Name(group.strategy),
        "state": _STATES.get(group.state, "UNKNOWN"),
        "pending_reason": group.pending_reason,
        "detached": group.detached,
    }


def placement_group_table(pg: PlacementGroup | None = None) -> dict[str, Any]:
    """One group's record, or every group's by hex id (Ray's keys, plus
    `pending_reason`: why a PENDING group is not reserved yet)."""
    gcs = runtime.client().gcs
    if pg is not None:
        reply = gcs.GetPlacementGroup(gcs_pb2.GetPlacementGroupRequest(placement_group_id=pg.id), timeout=30)
        return _describe(reply.group) if reply.found else {}
    groups = gcs.ListPlacementGroups(gcs_pb2.ListPlacementGroupsRequest(), timeout=30).groups
    return {g.placement_group_id.hex(): _describe(g) for g in groups}
