"""The GCS's Prometheus metrics: RPC latency by method (timed by a server
interceptor), and, read from the tables at scrape time, nodes and how long
since each reported, jobs, actors by state and their restarts, and this
replica's leadership."""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, Iterator

import grpc
import grpc.aio
from ember.v1 import gcs_pb2
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ember_common.loop_metrics import LoopHistogram, histogram_family
from ember_gcs.actor_table import ActorTable
from ember_gcs.job_table import JobTable
from ember_gcs.leader_gate import Leadership
from ember_gcs.node_table import NodeTable

_GCS_PREFIX = "/ember.v1.Gcs/"
_ACTOR_STATES = {v: name.lower() for name, v in gcs_pb2.ActorInfo.State.items() if v}


class RpcLatency(grpc.aio.ServerInterceptor):
    """Times each unary Gcs RPC's handler, by method (a fixed set: the Gcs
    service's methods; streams are not timed). Installed after the token
    check and the leader gate, so refusals are not counted."""

    def __init__(self) -> None:
        self.by_method: dict[str, LoopHistogram] = {}
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(details)
        method: str = details.method  # type: ignore[attr-defined]
        if handler is None or handler.unary_unary is None or not method.startswith(_GCS_PREFIX):
            return handler
        cached = self._wrapped.get(method)
        if cached is None or cached[0] is not handler:
            cached = self._wrapped[method] = (handler, self._timed(handler, method[len(_GCS_PREFIX):]))
        return cached[1]

    def _timed(self, handler: grpc.RpcMethodHandler, name: str) -> grpc.RpcMethodHandler:
        histogram = self.by_method.setdefault(name, LoopHistogram())
        behavior = handler.unary_unary

        async def timed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                return await behavior(request, context)
            finally:
                histogram.observe(time.perf_counter() - started)

        return grpc.unary_unary_rpc_method_handler(timed, request_deserializer=handler.request_deserializer,
                                                   response_serializer=handler.response_serializer)


class LeadershipCounts:
    """How often this replica became the leader (on etcd)."""

    __slots__ = ("elections", "failovers")

    def __init__(self) -> None:
        self.elections = 0  # times it became the leader
        self.failovers = 0  # of those, times it replaced a leader it had seen


class GcsCollector:
    def __init__(self, nodes: NodeTable, jobs: JobTable, actors: ActorTable, leadership: Leadership,
                 rpc: RpcLatency, counts: LeadershipCounts, storage: str) -> None:
        self._nodes = nodes
        self._jobs = jobs
        self._actors = actors
        self._leadership = leadership
        self._rpc = rpc
        self._counts = counts
        self._storage = storage

    def collect(self) -> Iterator[Metric]:
        yield histogram_family("ember_gcs_rpc_latency_seconds", "Time the GCS took to answer each RPC, by method.",
                               sorted(((name,), h) for name, h in self._rpc.by_method.items()), labels=["method"])
        leader = GaugeMetricFamily("ember_gcs_leader", "1 if this GCS replica leads, 0 if it is a standby.",
                                   labels=["storage"])
        leader.add_metric([self._storage], 1 if self._leadership.is_leader else 0)
        yield leader
        yield CounterMetricFamily("ember_gcs_leader_elections", "Times this replica became the leader.",
                                  value=self._counts.elections)
        yield CounterMetricFamily("ember_gcs_failovers",
                                  "Times this replica took over from a leader it had seen (a failover).",
                                  value=self._counts.failovers)
        nodes = self._nodes.all()
        by_state = GaugeMetricFamily("ember_nodes", "Nodes the GCS knows, alive or dead.", labels=["state"])
        alive = sum(1 for n in nodes if n.alive)
        by_state.add_metric(["alive"], alive)
        by_state.add_metric(["dead"], len(nodes) - alive)
        yield by_state
        lag = GaugeMetricFamily("ember_gcs_node_report_age_seconds",
                                "Seconds since each alive node's last resource report (its heartbeat); "
                                "the node is declared dead past ember_gcs_health_timeout_seconds.",
                                labels=["node_id"])
        for node_id, age in sorted(self._nodes.report_ages(time.monotonic()).items()):
            lag.add_metric([node_id.hex()], age)
        yield lag
        yield GaugeMetricFamily("ember_gcs_health_timeout_seconds", "Silence after which a node is declared dead.",
                                value=self._nodes.health_timeout_s)
        jobs = self._jobs.all()
        by_job_state = GaugeMetricFamily("ember_jobs", "Jobs (drivers), running or finished.", labels=["state"])
        finished = sum(1 for j in jobs if j.is_dead)
        by_job_state.add_metric(["running"], len(jobs) - finished)
        by_job_state.add_metric(["finished"], finished)
        yield by_job_state
        actors = self._actors.all()
        counts = dict.fromkeys(_ACTOR_STATES.values(), 0)
        for actor in actors:
            if actor.state in _ACTOR_STATES:
                counts[_ACTOR_STATES[actor.state]] += 1
        by_actor_state = GaugeMetricFamily("ember_actors", "Actors by state.", labels=["state"])
        for state, count in counts.items():
            by_actor_state.add_metric([state], count)
        yield by_actor_state
        yield CounterMetricFamily("ember_actor_restarts", "Actor restarts, over every actor the GCS knows.",
                                  value=sum(a.num_restarts for a in actors))
