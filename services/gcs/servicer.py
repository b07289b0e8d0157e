"""Thin gRPC handlers for the Gcs service: validate, call a table (or the
cluster membership, for what spans tables), answer. The token was checked
by the interceptor before any of this runs."""

from __future__ import annotations

import time
from typing import AsyncIterator, Callable, Sequence

import grpc
import grpc.aio
from ember.v1 import autoscaler_pb2, gcs_pb2, gcs_pb2_grpc

from ember_common import ids, service_spans
from ember_common.errors import InvalidArgument
from ember_common.rpc import map_errors
from ember_gcs.actor_table import ActorTable
from ember_gcs.job_table import JobTable
from ember_gcs.kv_table import MAX_KEY, MAX_VALUE, KvTable
from ember_gcs.leader_gate import Leadership
from ember_gcs.membership import ClusterMembership
from ember_gcs.node_table import NodeTable
from ember_gcs import placement_spans
from ember_gcs.placement_group_table import PlacementGroupTable

Ctx = grpc.aio.ServicerContext

# A job's metadata is a label set, not a store: keys and values together.
_MAX_JOB_METADATA = 64 * 1024


def _namespace(ns: str) -> str:
    if "\0" in ns or len(ns) > 256:
        raise InvalidArgument("namespace must be at most 256 characters without NUL")
    return ns


def _key(key: bytes) -> bytes:
    if len(key) > MAX_KEY:
        raise InvalidArgument(f"key is {len(key)} bytes; the limit is {MAX_KEY}")
    return key


class GcsServicer(gcs_pb2_grpc.GcsServicer):
    def __init__(self, nodes: NodeTable, jobs: JobTable, kv: KvTable, actors: ActorTable,
                 placement_groups: PlacementGroupTable, membership: ClusterMembership, session_name: str,
                 storage_name: str, leadership: Leadership) -> None:
        self._groups = placement_groups
        self._leadership = leadership
        self._nodes = nodes
        self._actors = actors
        self._jobs = jobs
        self._kv = kv
        self._membership = membership
        self._session_name = session_name
        self._storage_name = storage_name
        self._start_time = time.time()
        # Where the queued shapes each raylet reports go (the autoscaler's demand board), if anywhere.
        self.demand_sink: Callable[[bytes, Sequence[autoscaler_pb2.ResourceDemand]], None] | None = None

    @map_errors
    async def RegisterNode(self, request: gcs_pb2.RegisterNodeRequest, context: Ctx) -> gcs_pb2.RegisterNodeReply:
        node = request.node
        ids.check(node.node_id, ids.UNIQUE_ID_SIZE, "node_id")
        if not node.node_address or not 0 < node.raylet_port < 65536:
            raise InvalidArgument("node_address and a raylet_port in 1..65535 are required")
        for name, amount in node.total.amounts.items():
            if amount < 0 or not name:
                raise InvalidArgument(f"resource {name!r} has a negative amount or no name")
        await self._nodes.register(node)
        return gcs_pb2.RegisterNodeReply(health_timeout_s=self._nodes.health_timeout_s)

    @map_errors
    async def UnregisterNode(self, request: gcs_pb2.UnregisterNodeRequest, context: Ctx) -> gcs_pb2.UnregisterNodeReply:
        node_id = ids.check(request.node_id, ids.UNIQUE_ID_SIZE, "node_id")
        await self._membership.unregister_node(node_id, request.reason or "unregistered")
        return gcs_pb2.UnregisterNodeReply()

    @map_errors
    async def ReportResources(self, request: gcs_pb2.ReportResourcesRequest, context: Ctx) -> bytes:
        node_id = ids.check(request.node_id, ids.UNIQUE_ID_SIZE, "node_id")
        for held in request.bundles:
            ids.check(held.placement_group_id, ids.UNIQUE_ID_SIZE, "bundles.placement_group_id")
            if held.index < 0:
                raise InvalidArgument(f"bundles.index must be >= 0, got {held.index}")
        for d in request.demand:
            if d.count < 0 or any(v < 0 for v in d.shape.amounts.values()):
                raise InvalidArgument(f"demand: a count or amount is negative: {d.count} x {dict(d.shape.amounts)}")
        # The reply comes encoded (the node table keeps it so; EncodedReplies sends it as it is).
        reply = await self._membership.report(node_id, request.available, list(request.infeasible), request.total,
                                              list(request.bundles))
        if self.demand_sink is not None:
            self.demand_sink(node_id, request.demand)
        return reply

    @map_errors
    async def GetAllNodes(self, request: gcs_pb2.GetAllNodesRequest, context: Ctx) -> gcs_pb2.GetAllNodesReply:
        return gcs_pb2.GetAllNodesReply(nodes=self._nodes.all())

    @map_errors
    async def AddJob(self, request: gcs_pb2.AddJobRequest, context: Ctx) -> gcs_pb2.AddJobReply:
        _namespace(request.namespace)
        if len(request.request_id) > 64:
            raise InvalidArgument("request_id must be at most 64 bytes")
        if sum(len(k) + len(v) for k, v in request.metadata.items()) > _MAX_JOB_METADATA:
            raise InvalidArgument(f"job metadata must be at most {_MAX_JOB_METADATA} bytes of keys and values")
        return gcs_pb2.AddJobReply(job=await self._jobs.add(request))

    @map_errors
    async def FinishJob(self, request: gcs_pb2.FinishJobRequest, context: Ctx) -> gcs_pb2.FinishJobReply:
        job_id = ids.check(request.job_id, ids.JOB_ID_SIZE, "job_id")
        await self._membership.finish_job(job_id)
        return gcs_pb2.FinishJobReply()

    @map_errors
    async def GetAllJobs(self, request: gcs_pb2.GetAllJobsRequest, context: Ctx) -> gcs_pb2.GetAllJobsReply:
        return gcs_pb2.GetAllJobsReply(jobs=self._jobs.all())

    @map_errors
    async def KvPut(self, request: gcs_pb2.KvPutRequest, context: Ctx) -> gcs_pb2.KvPutReply:
        if len(request.value) > MAX_VALUE:
            raise InvalidArgument(f"value is {len(request.value)} bytes; the limit is {MAX_VALUE}")
        added = await self._kv.put(_namespace(request.namespace), _key(request.key), request.value, request.overwrite)
        return gcs_pb2.KvPutReply(added=added)

    @map_errors
    async def KvGet(self, request: gcs_pb2.KvGetRequest, context: Ctx) -> gcs_pb2.KvGetReply:
        value = self._kv.get(_namespace(request.namespace), _key(request.key))
        return gcs_pb2.KvGetReply(found=value is not None, value=value or b"")

    @map_errors
    async def KvDelete(self, request: gcs_pb2.KvDeleteRequest, context: Ctx) -> gcs_pb2.KvDeleteReply:
        deleted = await self._kv.delete(_namespace(request.namespace), _key(request.key))
        return gcs_pb2.KvDeleteReply(deleted=deleted)

    @map_errors
    async def KvKeys(self, request: gcs_pb2.KvKeysRequest, context: Ctx) -> gcs_pb2.KvKeysReply:
        return gcs_pb2.KvKeysReply(keys=self._kv.keys(_namespace(request.namespace), _key(request.prefix)))

    @map_errors
    async def GetClusterInfo(self, request: gcs_pb2.GetClusterInfoRequest, context: Ctx) -> gcs_pb2.GetClusterInfoReply:
        leadership = self._leadership
        return gcs_pb2.GetClusterInfoReply(
            session_name=self._session_name, storage=self._storage_name, start_time=self._start_time,
            leader_address=leadership.leader, is_leader=leadership.is_leader, replicas=leadership.replicas,
        )

    @map_errors
    @service_spans.traced("actor register", lambda r: {"ember.actor_id": r.actor.actor_id.hex(),
                                                      "ember.class_name": r.actor.class_name,
                                                      "ember.detached": r.actor.detached})
    async def RegisterActor(self, request: gcs_pb2.RegisterActorRequest, context: Ctx) -> gcs_pb2.RegisterActorReply:
        actor = request.actor
        ids.check(actor.actor_id, ids.UNIQUE_ID_SIZE, "actor_id")
        ids.check(actor.job_id, ids.JOB_ID_SIZE, "job_id")
        _namespace(actor.namespace)
        if len(actor.name) > 1024 or len(actor.class_name) > 1024 or len(actor.handle) > MAX_VALUE:
            raise InvalidArgument("an actor's name and class name must be at most 1024 characters and its handle "
                                  f"at most {MAX_VALUE} bytes")
        existing = await self._actors.register(actor)
        if existing is not None:
            return gcs_pb2.RegisterActorReply(registered=False, existing=existing)
        return gcs_pb2.RegisterActorReply(registered=True)

    @map_errors
    async def UpdateActor(self, request: gcs_pb2.UpdateActorRequest, context: Ctx) -> gcs_pb2.UpdateActorReply:
        ids.check(request.actor_id, ids.UNIQUE_ID_SIZE, "actor_id")
        if request.state == gcs_pb2.ActorInfo.STATE_UNSPECIFIED:
            raise InvalidArgument("state is required")
        await self._actors.update(request)
        return gcs_pb2.UpdateActorReply()

    @map_errors
    async def GetActor(self, request: gcs_pb2.GetActorRequest, context: Ctx) -> gcs_pb2.GetActorReply:
        if request.actor_id:
            actor = self._actors.get(ids.check(request.actor_id, ids.UNIQUE_ID_SIZE, "actor_id"))
        elif request.name:
            actor = self._actors.by_name(_namespace(request.namespace), request.name)
        else:
            raise InvalidArgument("give an actor_id or a name")
        return gcs_pb2.GetActorReply(found=actor is not None, actor=actor)

    @map_errors
    async def ListActors(self, request: gcs_pb2.ListActorsRequest, context: Ctx) -> gcs_pb2.ListActorsReply:
        return gcs_pb2.ListActorsReply(actors=self._actors.all())

    async def WatchActors(self, request: gcs_pb2.WatchActorsRequest, context: Ctx) -> AsyncIterator[gcs_pb2.ActorInfo]:
        queue = self._actors.watch()  # before the snapshot: no change falls in between
        try:
            for actor in self._actors.all():
                yield actor
            while (change := await queue.get()) is not None:
                yield change
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "the watcher fell too far behind; watch again")
        finally:
            self._actors.unwatch(queue)

    @map_errors
    @service_spans.traced("placement group create",
                          lambda r: {"ember.placement_group_id": r.group.placement_group_id.hex(),
                                     "ember.bundle_count": len(r.group.bundles)})
    async def CreatePlacementGroup(self, request: gcs_pb2.CreatePlacementGroupRequest, context: Ctx) -> gcs_pb2.CreatePlacementGroupReply:
        group = request.group
        ids.check(group.placement_group_id, ids.UNIQUE_ID_SIZE, "placement_group_id")
        _namespace(group.namespace)
        if not 1 <= len(group.bundles) <= 10_000:
            raise InvalidArgument(f"a placement group needs 1..10000 bundles, got {len(group.bundles)}")
        for i, bundle in enumerate(group.bundles):
            if not bundle.amounts or any(v < 0 for v in bundle.amounts.values()) or sum(bundle.amounts.values()) <= 0:
                raise InvalidArgument(f"bundle {i} must ask for a positive amount of some resource, got "
                                      f"{dict(bundle.amounts)}")
        if len(group.name) > 256:
            raise InvalidArgument("name must be at most 256 characters")
        placement_spans.requested(group.placement_group_id, context)
        await self._groups.create(group)
        return gcs_pb2.CreatePlacementGroupReply()

    @map_errors
    async def RemovePlacementGroup(self, request: gcs_pb2.RemovePlacementGroupRequest, context: Ctx) -> gcs_pb2.RemovePlacementGroupReply:
        await self._groups.remove(ids.check(request.placement_group_id, ids.UNIQUE_ID_SIZE, "placement_group_id"))
        return gcs_pb2.RemovePlacementGroupReply()

    @map_errors
    async def GetPlacementGroup(self, request: gcs_pb2.GetPlacementGroupRequest, context: Ctx) -> gcs_pb2.GetPlacementGroupReply:
        if request.placement_group_id:
            ids.check(request.placement_group_id, ids.UNIQUE_ID_SIZE, "placement_group_id")
        elif not request.name:
            raise InvalidArgument("give placement_group_id or name")
        group = self._groups.get(request.placement_group_id, _namespace(request.namespace), request.name)
        return gcs_pb2.GetPlacementGroupReply(found=group is not None, group=group)

    @map_errors
    async def ListPlacementGroups(self, request: gcs_pb2.ListPlacementGroupsRequest, context: Ctx) -> gcs_pb2.ListPlacementGroupsReply:
        return gcs_pb2.ListPlacementGroupsReply(groups=self._groups.all())
