"""The GCS process: tables over a storage backend, the servicer, the
health checker that declares silent nodes dead, and, on etcd, the leader
election among replicas (only the leader serves; standbys point at it)."""

from __future__ import annotations

import asyncio
import logging
import pathlib
import time
from typing import Any, Awaitable, Callable

import grpc.aio
from ember.v1 import autoscaler_pb2_grpc, gcs_pb2_grpc
from grpc_health.v1 import health_pb2

from ember_autoscaler.servicer import AutoscalerServicer
from ember_common.background import BackgroundTasks
from ember_common.config import Config
from ember_common.rpc import RequestLimits
from ember_gcs.actor_table import ActorTable
from ember_gcs.encoded_replies import EncodedReplies
from ember_gcs.job_table import JobTable
from ember_gcs.kv_table import MAX_KEY, MAX_VALUE, KvTable
from ember_gcs.leader_gate import Leadership, LeaderGate, SoleLeader
from ember_gcs.membership import ClusterMembership
from ember_gcs.metrics import GcsCollector, LeadershipCounts, RpcLatency
from ember_gcs.metrics_discovery import FILE_NAME, DiscoveryFile
from ember_gcs.node_table import NodeTable
from ember_gcs.placement_group_table import PlacementGroupTable
from ember_gcs.raylet_client import RayletBundleClient
from ember_gcs.servicer import GcsServicer
from ember_gcs.storage import open_storage

log = logging.getLogger(__name__)


# What the GCS takes per request (serialized): its tables keep what they are
# given, so a name or an address of megabytes is refused, not stored. The KV
# holds exported functions and classes: up to its value limit.
REQUEST_LIMITS = RequestLimits(default=1 << 20, per_method={
    "KvPut": MAX_KEY + MAX_VALUE + 1024,
    "RegisterActor": MAX_VALUE + 1024 * 1024,  # (its handle may carry default argument values)
})


class GcsService:
    name = "gcs"
    trace_name = "ember-gcs"  # (its spans' service.name; no node of its own)
    request_limits = REQUEST_LIMITS
    metrics_setting = "metrics_gcs_port"

    def __init__(self, storage_url: str, session_name: str, config: Config, cluster_name: str = "default",
                 host: str = "127.0.0.1", lease_ttl_s: float = 3.0, token: str = "",
                 session_dir: pathlib.Path | None = None, autoscaling_config: str | None = None) -> None:
        self._storage = open_storage(storage_url, cluster_name)
        self.trace_attributes = {"ember.cluster_name": cluster_name}
        self._host = host
        self.metrics_port = 0  # set by run_service
        self.nodes = NodeTable(self._storage, config.health_timeout_s)
        self.jobs = JobTable(self._storage)
        self.kv = KvTable(self._storage)
        self.actors = ActorTable(self._storage)
        self._raylets = RayletBundleClient(token)
        self.placement_groups = PlacementGroupTable(self._storage, self.nodes, self._raylets)
        self.membership = ClusterMembership(self.nodes, self.jobs, self.actors, self.placement_groups)
        # Replicas on etcd elect a leader; alone in memory, this one leads.
        # (etcd's modules load only then: a GCS in memory stays ~3 MB smaller.)
        self._election: Any = None
        self._mirror: Any = None  # on etcd: the watched copy a standby takes over from
        if self._storage.name == "etcd":
            from ember_gcs.etcd_mirror import EtcdMirror
            from ember_gcs.leader_election import LeaderElection

            self._election = LeaderElection(self._storage, lease_ttl_s)  # type: ignore[arg-type]
            self._mirror = EtcdMirror(self._storage)  # type: ignore[arg-type]
            leader_key, election = self._storage.leader_key, self._election  # type: ignore[attr-defined]
            self._mirror.on_deleted = lambda key: election.poke() if key == leader_key else None
        self.leadership: Leadership = self._election or SoleLeader()
        self._servicer = GcsServicer(self.nodes, self.jobs, self.kv, self.actors, self.placement_groups,
                                     self.membership, session_name, self._storage.name, self.leadership)
        self._rpc_latency = RpcLatency()
        self._leadership_counts = LeadershipCounts()
        self.interceptors = [LeaderGate(self.leadership), self._rpc_latency,
                             EncodedReplies(["/ember.v1.Gcs/ReportResources"])]
        # The leader keeps the session's prometheus_sd.json listing every node's metrics endpoints.
        self._discovery = DiscoveryFile(session_dir / FILE_NAME, session_name) if session_dir else None
        self.nodes.on_change = self._discovery_changed
        self._discovery_due = False
        self._tasks = BackgroundTasks()
        # The autoscaler (docs/autoscaler.md), with an autoscaling config: run by the leader.
        self.autoscaling: Any = None
        if autoscaling_config:
            from ember_autoscaler.in_gcs import GcsAutoscaler

            self.autoscaling = GcsAutoscaler(autoscaling_config, self._storage, self, self.leadership, token, host,
                                             self._raylets.channel)
            self._servicer.demand_sink = self.autoscaling.board.report
        self.health: Any = None  # the health servicer, set by run_service

    def collectors(self) -> list[GcsCollector]:
        return [GcsCollector(self.nodes, self.jobs, self.actors, self.leadership, self._rpc_latency,
                             self._leadership_counts, self._storage.name),
                *([self.autoscaling.collector] if self.autoscaling else [])]

    def _update_discovery(self) -> None:
        self._discovery_due = False
        if self._discovery is not None and self.leadership.is_leader:
            self._discovery.update(self.nodes.alive())

    def _discovery_changed(self) -> None:
        """Nodes joined or left: the file follows within 50 ms, written once
        for a burst (rewriting it, every node listed, at each of a thousand
        registrations made registering them take time growing with the
        square of their number)."""
        if self._discovery is None or self._discovery_due:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # (no loop: tables used without one)
            return self._update_discovery()
        self._discovery_due = True
        loop.call_later(0.05, self._update_discovery)

    async def _keep_discovery(self) -> None:
        """Also written on becoming the leader (node changes write it at once)."""
        while True:
            self._update_discovery()
            await asyncio.sleep(1.0)

    def register(self, server: grpc.aio.Server) -> None:
        gcs_pb2_grpc.add_GcsServicer_to_server(self._servicer, server)
        autoscaler_pb2_grpc.add_AutoscalerServicer_to_server(
            self.autoscaling.servicer if self.autoscaling else AutoscalerServicer(None, self.leadership), server)

    async def start(self, port: int) -> None:
        address = f"{self._host}:{port}"
        if self._discovery is not None and self.metrics_port:
            self._discovery.gcs_address = f"{self._host}:{self.metrics_port}"
        election = self._election
        if election is not None:
            election.identity = address
            self._tasks.spawn(self._mirror.run())
            self._tasks.spawn(election.run(self._take_over, self._step_down))
            self._tasks.spawn(election.announce())
            # Report ready once we lead or know the leader (or after a while:
            # a standby that knows no leader still answers, with UNAVAILABLE).
            try:
                await asyncio.wait_for(election.settled.wait(), timeout=2 * election.ttl_s)
            except asyncio.TimeoutError:
                log.warning("no leader after %gs; serving as a standby", 2 * election.ttl_s)
        else:
            self.leadership.leader = address
            await self._load_tables()
        # Nodes silent too long are declared dead; pending placement groups
        # are reserved twice a second.
        self._tasks.spawn(self._while_leading(min(1.0, self.nodes.health_timeout_s / 4),
                                              self.membership.check_health, "health check"))
        self._tasks.spawn(self._while_leading(0.5, self.placement_groups.schedule, "placing placement groups"))
        if self._storage.name == "etcd":
            self._tasks.spawn(self._watch_etcd())
        if self._discovery is not None:
            self._tasks.spawn(self._keep_discovery())
        if self.autoscaling is not None:
            from ember_autoscaler.in_gcs import ROUND_S

            self._tasks.spawn(self._while_leading(ROUND_S, self.autoscaling.step, "an autoscaler round"))

    async def _load_tables(self, mirror: Any = None) -> None:
        """Every table from storage, or from the etcd mirror when it is
        given (it is then current: no read of the whole cluster from etcd)."""
        autoscaled = [self.autoscaling.instances] if self.autoscaling else []
        for table in (self.nodes, self.jobs, self.kv, self.actors, self.placement_groups, *autoscaled):
            table.restore(mirror.table(table.table) if mirror else await self._storage.load(table.table))

    async def _take_over(self, revision: int) -> None:
        counts = self._leadership_counts
        counts.elections += 1
        if self._election.leader and self._election.leader != self._election.identity:
            counts.failovers += 1  # (it saw another replica lead before)
        # Fence first: from here on, writes commit only while we lead.
        self._storage.fence_revision = revision  # type: ignore[attr-defined]
        # What the previous leader stored: all of it committed before our
        # leader key (`revision`), so a mirror at that revision holds it.
        started = time.monotonic()
        warm = await self._mirror.caught_up(revision, timeout_s=self._election.ttl_s)
        if not warm:
            log.warning("the etcd mirror has not reached revision %d; reading every table from etcd", revision)
        await self._load_tables(self._mirror if warm else None)
        log.info("tables loaded from %s in %.3fs", "the mirror" if warm else "etcd", time.monotonic() - started)

    async def _step_down(self, reason: str) -> None:
        self._storage.fence_revision = None  # type: ignore[attr-defined]

    async def _while_leading(self, interval_s: float, step: Callable[[], Awaitable[None]], what: str) -> None:
        """`step()` every `interval_s` while this replica leads; a round that
        fails is logged, and the next one tries again."""
        while True:
            await asyncio.sleep(interval_s)
            if not self.leadership.is_leader:
                continue
            try:
                await step()
            except Exception:
                log.exception("%s failed", what)

    async def _watch_etcd(self) -> None:
        """Health: NOT_SERVING while etcd does not answer (nothing can be
        stored then), SERVING again when it does; logged on each change."""
        serving = True
        while True:
            await asyncio.sleep(0.5)
            try:
                await asyncio.wait_for(self._storage.client(), timeout=2)  # type: ignore[attr-defined]
                ok = True
            except Exception:  # (a call cut off by a dropped client is one too: see EtcdStorage._call)
                ok = False
            if ok != serving:
                serving = ok
                if ok:
                    log.warning("etcd answers again: serving")
                else:
                    log.error("etcd does not answer: reporting NOT_SERVING; writes fail with UNAVAILABLE")
                status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
                if self.health is not None:
                    await self.health.set("", status)

    async def stop(self) -> None:
        await self._tasks.close()
        await self._raylets.close()
        await self._storage.close()
