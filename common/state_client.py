"""The cluster's state in Ray's row shapes (ray.util.state): tasks, actors,
objects, workers, nodes, jobs, placement groups and log files, gathered on
request: the GCS's tables from the GCS, and per-node state from each alive
node's raylet (NodeState and Raylet.ListObjects), one call per node, in
parallel. Used by `ember list|summary|timeline|logs` and ember.util.state,
and by anything else that answers these questions (a dashboard)."""

from __future__ import annotations

import concurrent.futures
from typing import Any, Callable, Iterator

import grpc
from ember.v1 import gcs_pb2, node_state_pb2, node_state_pb2_grpc, raylet_pb2, raylet_pb2_grpc

from ember_common import rpc, task_rows
from ember_common.gcs_client import GcsClient

NODE_TIMEOUT_S = 10.0

# The columns `--filter` takes per resource (Ray's filterable columns, where Ray has them).
COLUMNS = {
    "tasks": ("task_id", "attempt_number", "name", "state", "job_id", "actor_id", "type", "func_or_class_name",
              "parent_task_id", "node_id", "worker_id", "worker_pid", "error_type", "language"),
    "actors": ("actor_id", "class_name", "state", "job_id", "name", "ray_namespace", "node_id", "pid",
               "is_detached", "num_restarts", "placement_group_id"),
    "objects": ("object_id", "object_size", "task_status", "reference_type", "type", "pid", "ip", "node_id"),
    "workers": ("worker_id", "is_alive", "worker_type", "exit_type", "node_id", "ip", "pid", "actor_id"),
    "nodes": ("node_id", "node_ip", "is_head_node", "state", "node_name"),
    "jobs": ("job_id", "submission_id", "type", "status", "entrypoint", "driver_pid", "namespace"),
    "placement_groups": ("placement_group_id", "name", "creator_job_id", "state", "is_detached", "strategy"),
}


class StateClient:
    def __init__(self, gcs_address: str, token: str | None, timeout_s: float = NODE_TIMEOUT_S) -> None:
        self._gcs = GcsClient(gcs_address, token, failover_window_s=5)
        self._token = token
        self._timeout = timeout_s
        # Nodes that did not answer the last fan-out: (node id hex, why).
        self.missing: list[tuple[str, str]] = []
        # Task events each node dropped for room (since it started), from the last task query.
        self.dropped: dict[str, int] = {}

    def close(self) -> None:
        self._gcs.close()

    def __enter__(self) -> "StateClient":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    # ---- the GCS's tables ---------------------------------------------

    def node_infos(self) -> list[gcs_pb2.NodeInfo]:
        return list(self._gcs.GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=self._timeout).nodes)

    def nodes(self) -> list[dict[str, Any]]:
        return [{
            "node_id": n.node_id.hex(), "node_ip": n.node_address, "is_head_node": n.is_head,
            "state": "ALIVE" if n.alive else "DEAD", "node_name": n.node_address,
            "resources_total": dict(n.total.amounts), "labels": dict(n.labels),
            "start_time_ms": int(n.start_time * 1000), "end_time_ms": int(n.end_time * 1000) if n.end_time else None,
            "state_message": n.death_reason or None,
        } for n in self.node_infos()]

    def jobs(self) -> list[dict[str, Any]]:
        reply = self._gcs.GetAllJobs(gcs_pb2.GetAllJobsRequest(), timeout=self._timeout)
        return [{
            "job_id": j.job_id.hex(), "submission_id": None, "type": "DRIVER",
            "status": "SUCCEEDED" if j.is_dead else "RUNNING", "entrypoint": j.entrypoint,
            "driver_pid": j.driver_pid, "driver_ip_address": j.driver_address, "namespace": j.namespace,
            "start_time": int(j.start_time * 1000), "end_time": int(j.end_time * 1000) if j.end_time else None,
            "metadata": dict(j.metadata),
        } for j in sorted(reply.jobs, key=lambda j: j.start_time)]

    def actors(self) -> list[dict[str, Any]]:
        reply = self._gcs.ListActors(gcs_pb2.ListActorsRequest(), timeout=self._timeout)
        Info = gcs_pb2.ActorInfo
        rows = []
        for a in sorted(reply.actors, key=lambda a: a.start_time):
            dead = a.state == Info.DEAD
            cause = Info.DeathCause.Name(a.death_cause) if dead else ""
            rows.append({
                "actor_id": a.actor_id.hex(), "class_name": a.class_name, "state": Info.State.Name(a.state),
                "job_id": a.job_id.hex(), "name": a.name, "ray_namespace": a.namespace,
                "node_id": a.node_id.hex(), "pid": a.pid, "num_restarts": a.num_restarts,
                "is_detached": a.detached, "placement_group_id": None,
                "death_cause": {"cause": cause, "message": a.death_message} if dead else None,
                "repr_name": "",
                # (the names `ember list actors --json` has used)
                "namespace": a.namespace, "restarts": a.num_restarts, "detached": a.detached,
                "death": f"{cause}: {a.death_message}" if dead else "",
            })
        return rows

    def placement_groups(self) -> list[dict[str, Any]]:
        reply = self._gcs.ListPlacementGroups(gcs_pb2.ListPlacementGroupsRequest(), timeout=self._timeout)
        Group = gcs_pb2.PlacementGroupInfo
        return [{
            "placement_group_id": g.placement_group_id.hex(), "name": g.name, "namespace": g.namespace,
            "creator_job_id": g.job_id.hex(), "state": Group.State.Name(g.state),
            "strategy": Group.Strategy.Name(g.strategy), "is_detached": g.detached,
            "bundles": [dict(b.amounts) for b in g.bundles], "nodes": [n.hex() for n in g.bundle_nodes],
            "pending_reason": g.pending_reason,
        } for g in sorted(reply.groups, key=lambda g: g.create_time)]

    # ---- per node ------------------------------------------------------

    def _fan_out(self, call: Callable[[grpc.Channel], Any],
                 nodes: list[gcs_pb2.NodeInfo] | None = None) -> list[tuple[gcs_pb2.NodeInfo, Any]]:
        """`call` on a channel to each alive node's raylet, in parallel:
        (node, answer) for those that answered; the others in `missing`."""
        nodes = [n for n in (self.node_infos() if nodes is None else nodes) if n.alive]
        self.missing = []

        def one(node: gcs_pb2.NodeInfo) -> Any:
            channel = rpc.channel(f"{node.node_address}:{node.raylet_port}", self._token)
            try:
                return call(channel)
            finally:
                channel.close()

        answers = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(8, len(nodes)))) as pool:
            futures = [(node, pool.submit(one, node)) for node in nodes]
            for node, future in futures:
                try:
                    answers.append((node, future.result()))
                except grpc.RpcError as e:
                    self.missing.append((node.node_id.hex(), f"{e.code().name}: {e.details()}"))
        return answers

    def task_event_replies(self) -> list[node_state_pb2.GetTaskEventsReply]:
        replies = [reply for _, reply in self._fan_out(lambda ch: node_state_pb2_grpc.NodeStateStub(ch).GetTaskEvents(
            node_state_pb2.GetTaskEventsRequest(), timeout=self._timeout))]
        self.dropped = {r.node_id.hex(): r.dropped for r in replies if r.dropped}
        return replies

    def warnings(self) -> list[str]:
        """What the last queries could not see: nodes that did not answer,
        task events dropped for room."""
        out = [f"node {node_hex[:8]} did not answer ({why}): its rows are missing" for node_hex, why in self.missing]
        out += [f"node {node_hex[:8]} dropped its {n} oldest task events for room (EMBER_TASK_EVENTS_BUFFER_SIZE)"
                for node_hex, n in self.dropped.items()]
        return out

    def tasks(self) -> list[dict[str, Any]]:
        return task_rows.merge(self.task_event_replies())

    def workers(self) -> list[dict[str, Any]]:
        rows = []
        for node, reply in self._fan_out(lambda ch: node_state_pb2_grpc.NodeStateStub(ch).ListWorkers(
                node_state_pb2.ListWorkersRequest(), timeout=self._timeout)):
            for w in reply.workers:
                rows.append({
                    "worker_id": w.worker_id.hex(), "is_alive": w.alive, "worker_type": "WORKER",
                    "exit_type": None if w.alive else ("INTENDED_SYSTEM_EXIT" if w.exit_detail.startswith("idle")
                                                       else "SYSTEM_ERROR"),
                    "node_id": node.node_id.hex(), "ip": node.node_address, "pid": w.pid,
                    "actor_id": w.actor_id.hex() if w.actor_id else None,
                    "exit_detail": w.exit_detail or None, "worker_launch_time_ms": int(w.start_time * 1000),
                    "end_time_ms": int(w.end_time * 1000) if w.end_time else None, "log_file": w.log_file,
                })
        return rows

    def objects(self) -> list[dict[str, Any]]:
        rows = []
        for node, reply in self._fan_out(lambda ch: raylet_pb2_grpc.RayletStub(ch).ListObjects(
                raylet_pb2.ListObjectsRequest(), timeout=self._timeout)):
            for o in reply.objects:
                holder = o.holders[0] if o.holders else ""
                kind, _, pid = holder.partition(" pid ")
                rows.append({
                    "object_id": o.object_id.hex(), "object_size": o.size,
                    "task_status": "FAILED" if o.is_error else "FINISHED" if o.ready else "PENDING",
                    "reference_type": ("LOCAL_REFERENCE" if o.holders else "USED_BY_PENDING_TASK" if o.pins
                                       else "PINNED_IN_MEMORY"),
                    "call_site": "disabled", "type": kind.upper() if pid else "", "pid": int(pid) if pid.isdigit() else None,
                    "ip": node.node_address, "node_id": node.node_id.hex(),
                    "inline": o.inline, "stored_on": o.stored_on.hex() or None, "holders": list(o.holders),
                })
        return rows

    def log_files(self, node_id: str | None = None) -> list[tuple[gcs_pb2.NodeInfo, list[node_state_pb2.LogFile]]]:
        nodes = self.node_infos()
        if node_id is not None:
            nodes = [n for n in nodes if n.node_id.hex().startswith(node_id)]
        return [(node, list(reply.files)) for node, reply in self._fan_out(
            lambda ch: node_state_pb2_grpc.NodeStateStub(ch).ListLogs(node_state_pb2.ListLogsRequest(),
                                                                        timeout=self._timeout), nodes)]

    def stream_log(self, node: gcs_pb2.NodeInfo, name: str, tail_lines: int = 0,
                   follow: bool = False) -> Iterator[bytes]:
        """A node's log file, chunk by chunk (with `follow`, until the caller stops)."""
        channel = rpc.channel(f"{node.node_address}:{node.raylet_port}", self._token)
        try:
            request = node_state_pb2.StreamLogRequest(name=name, tail_lines=tail_lines, follow=follow)
            for chunk in node_state_pb2_grpc.NodeStateStub(channel).StreamLog(
                    request, timeout=None if follow else self._timeout):
                yield chunk.data
        finally:
            channel.close()
