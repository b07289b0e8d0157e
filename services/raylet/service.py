"""The raylet process: the node manager and its worker processes, node
registration and resource reports to the GCS, deletes to the object store."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import pathlib
import shutil
import subprocess
import time
from typing import Any, Callable

import grpc
import grpc.aio
from ember.v1 import (autoscaler_pb2_grpc, client_api_pb2_grpc, client_calls_pb2_grpc, gcs_pb2, job_pb2_grpc,
                      node_state_pb2_grpc, object_leases_pb2_grpc, objectstore_pb2, objectstore_pb2_grpc, raylet_pb2,
                      raylet_pb2_grpc)

from ember_common import auth, rpc, service_spans
from ember_common import runtime_env_packages as packages
from ember_common.background import BackgroundTasks
from ember_common.backoff import retry_with_backoff
from ember_common.config import Config
from ember_common.gcs_client import AioGcsClient
from ember_common.object_layout import FailureType
from ember_raylet import resource_demand
from ember_raylet.drain_servicer import NodeDrainServicer
from ember_raylet.admission import Admission, default_max_inline_bytes, default_max_queued_tasks
from ember_raylet.client_session import ClientSession
from ember_raylet.job_manager import JobManager
from ember_raylet.job_servicer import JobServicer
from ember_raylet.job_store import GcsJobStore
from ember_raylet.client_api_servicer import ClientApiServicer
from ember_raylet.client_calls_servicer import ClientCallsServicer
from ember_raylet.foreign_sessions import ForeignSessions, Limits
from ember_raylet.kv_cache import KvCache
from ember_raylet.local_transport import LocalTransport
from ember_raylet.memory_monitor import MemoryMonitor, choose_victim, read_memory_usage
from ember_raylet.metrics import RayletCollector
from ember_raylet.node_manager import NodeManager
from ember_raylet.node_state import NodeState
from ember_raylet.node_state_servicer import NodeStateServicer
from ember_raylet.peer_links import PeerLinks
from ember_raylet.resources import Resources
from ember_raylet.runtime_envs import RuntimeEnvs, RuntimeEnvSetupFailed
from ember_raylet.store_reads import StoreReads
from ember_raylet.servicer import RayletServicer
from ember_raylet.task_events import TaskEvents
from ember_raylet.worker_pool import ProcessSpawner, WorkerHandle, WorkerPool, ZygoteSpawner

log = logging.getLogger(__name__)
# Values go to clients in other languages in pieces of this size: no message is oversized.
_CHUNK_BYTES = 1 << 20


class RayletService:
    name = "raylet"
    trace_name = "ember-raylet"  # (its spans' service.name)
    metrics_setting = "metrics_raylet_port"

    def __init__(
        self,
        *,
        node_id: bytes,
        resources: Resources,
        labels: dict[str, str],
        session_dir: pathlib.Path,
        gcs_address: str,
        store_address: str,
        store_dir: str,
        store_port: int,
        store_transfer_port: int,
        store_metrics_port: int = 0,
        store_ready_file: pathlib.Path | None = None,
        node_address: str,
        socket_path: str,
        local_socket_path: str,
        token: str,
        is_head: bool,
        config: Config,
        log_name: str,
    ) -> None:
        self.node_id = node_id
        self.trace_attributes = {"ember.node_id": node_id.hex()}
        self._gcs_address = gcs_address
        self._store_address = store_address
        self._token = token
        self._config = config
        # What the GCS learns about this node; each registration adds the
        # port, the start time and the resources of the moment.
        self._identity = gcs_pb2.NodeInfo(
            node_id=node_id, node_address=node_address, object_store_port=store_port,
            object_transfer_port=store_transfer_port, is_head=is_head, session_dir=str(session_dir),
            raylet_socket=socket_path, raylet_local_socket=local_socket_path, object_store_socket=store_address,
            object_store_dir=store_dir, labels=labels, object_store_metrics_port=store_metrics_port)
        self._store_ready_file = store_ready_file
        self.name = log_name
        num_cpus = int(resources.get("CPU", 0))
        worker_args = [
            "--raylet-address", f"local:{local_socket_path}",
            "--node-id", node_id.hex(),
            "--session-dir", str(session_dir),
        ]
        worker_env = {**os.environ, auth.TOKEN_ENV: token}
        self._spawner = spawner = (ZygoteSpawner if config.worker_fork else ProcessSpawner)(
            worker_args, worker_env, str(session_dir / "logs"))
        # Workers in runtime environments start with `python -m` (their own
        # interpreter, cwd and variables); the zygote serves the default one.
        self._env_spawner = ProcessSpawner(worker_args, worker_env, str(session_dir / "logs"))
        self.runtime_envs = RuntimeEnvs(
            session_dir / "runtime_resources" / node_id.hex()[:12], self._fetch_package,
            lambda env: self.nm.runtime_env_ready(env), lambda env, message: self.nm.runtime_env_failed(env, message),
            grace_s=config.runtime_env_gc_grace_s)
        node_memory = read_memory_usage().total
        self.pool = WorkerPool(spawner, max_workers=max(1, num_cpus) + config.max_extra_workers,
                               spawn_env=self._spawn_in_env)
        self.nm = NodeManager(
            node_id, resources, self.pool,
            min_workers=max(1, num_cpus),
            pipeline_depth=config.max_tasks_in_flight_per_worker,
            nested_tasks_warning=config.nested_tasks_warning,
            on_store_delete=self._queue_store_deletes,
            on_actor_event=self._queue_actor_event,
            on_kv_get=self._kv_get,
            on_pull=self._pull,
            on_peer_send=self._peer_send,
            on_actor_lookup=self._lookup_actor,
            labels=labels,
            count_tasks=config.metrics_enabled,
            admission=Admission(config.max_queued_tasks or default_max_queued_tasks(node_memory),
                                config.max_inline_bytes or default_max_inline_bytes(node_memory)),
            runtime_envs=self.runtime_envs,
            task_events=TaskEvents(config.task_events_buffer_size) if config.task_events_enabled else None,
        )
        self._peers = PeerLinks(self.nm, token)
        self.memory_monitor = MemoryMonitor(config.memory_usage_threshold)
        registered = raylet_pb2.ClientRegistered(
            node_id=node_id,
            object_store_dir=store_dir,
            object_store_socket=store_address,
            gcs_address=gcs_address,
            session_dir=str(session_dir),
        )
        self._servicer = RayletServicer(self.nm, registered)
        self._is_head = is_head
        # Submitted jobs run on the head, supervised here (job_manager says why).
        self.jobs: JobManager | None = None
        if is_head:
            self.jobs = JobManager(node_id.hex(), GcsJobStore(self._gcs_client), self.runtime_envs,
                                   session_dir / "logs", {"EMBER_ADDRESS": gcs_address, auth.TOKEN_ENV: token},
                                   self._reserve_cpus)
        self._state_servicer = NodeStateServicer(NodeState(self.nm, session_dir / "logs", is_head))
        self.foreign = ForeignSessions(
            self.nm, lambda: self._gcs, StoreReads(lambda: self._store, lambda: self._leases, store_dir),
            Limits(max_value_bytes=config.client_api_max_value_bytes, max_args_bytes=config.client_api_max_args_bytes,
                   chunk_bytes=_CHUNK_BYTES, inline_threshold=config.inline_threshold),
            lambda job: self._tasks.spawn(job))
        self._client_api = ClientApiServicer(self.foreign)
        self._local = LocalTransport(local_socket_path, token, self.nm, registered)
        self._pending_deletes: list[bytes] = []
        self._kv = KvCache()
        # Actor registrations and state changes for the GCS, sent in order (with trace metadata, or None).
        self._actor_events: asyncio.Queue[tuple[gcs_pb2.RegisterActorRequest | gcs_pb2.UpdateActorRequest, Any]] | None = None
        self._tasks = BackgroundTasks()
        self._gcs: AioGcsClient | None = None
        self._store: objectstore_pb2_grpc.ObjectStoreStub | None = None
        self._leases: object_leases_pb2_grpc.ObjectLeasesStub | None = None
        self._channels: list[grpc.aio.Channel] = []
        self._port = 0
        self.metrics_port = 0  # set by run_service

    def collectors(self) -> list[RayletCollector]:
        return [RayletCollector(self.nm, self.nm.user_metrics, self.memory_monitor)]

    def register(self, server: grpc.aio.Server) -> None:
        raylet_pb2_grpc.add_RayletServicer_to_server(self._servicer, server)
        autoscaler_pb2_grpc.add_NodeDrainServicer_to_server(NodeDrainServicer(self.nm), server)
        if self.jobs is not None:
            job_pb2_grpc.add_JobServiceServicer_to_server(JobServicer(self.jobs), server)
        node_state_pb2_grpc.add_NodeStateServicer_to_server(self._state_servicer, server)
        client_api_pb2_grpc.add_ClientApiServicer_to_server(self._client_api, server)
        client_calls_pb2_grpc.add_ClientCallsServicer_to_server(ClientCallsServicer(self.foreign), server)

    async def start(self, port: int) -> None:
        self._port = port
        await self._local.start()
        store_channel = rpc.aio_channel(self._store_address, self._token)
        self._channels.append(store_channel)
        self._gcs = AioGcsClient(self._gcs_address, self._token)  # the leader, across failovers
        self._store = objectstore_pb2_grpc.ObjectStoreStub(store_channel)
        self._leases = object_leases_pb2_grpc.ObjectLeasesStub(store_channel)
        # The worker zygote imports while we register and clients connect;
        # the pool fills (and queued tasks start) once it is ready.
        self.pool.spawn_ready = False
        self._tasks.spawn(self._start_workers())
        if self._store_ready_file is not None:
            await self._learn_store_ports(self._store_ready_file)
        await self._register_node()
        if self.jobs is not None:
            self._tasks.spawn(self.jobs.recover())
        for loop in (self._report_loop(), self._reap_loop(), self._orphan_loop(), self._actor_event_loop(),
                     self._memory_loop(), self._runtime_env_gc_loop()):
            self._tasks.spawn(loop)

    async def _start_workers(self) -> None:
        try:
            await self._spawner.start()
        except Exception:
            log.exception("the worker spawner failed to start; no workers can run")
            return
        self.pool.spawn_ready = True
        self.nm.ensure_min_workers()
        self.nm.schedule()

    async def _learn_store_ports(self, ready_file: pathlib.Path, timeout: float = 60.0) -> None:
        """The ports the store bound (it picked them: no port is chosen
        ahead and lost to another process meanwhile), from its ready file."""
        deadline = time.monotonic() + timeout
        while not ready_file.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the object store did not write {ready_file} within {timeout:.0f} s")
            await asyncio.sleep(0.01)
        ready = json.loads(ready_file.read_text())
        self._identity.object_store_port = int(ready["port"])
        self._identity.object_transfer_port = int(ready["transfer_port"])
        self._identity.object_store_metrics_port = int(ready.get("metrics_port", 0))

    def _spawn_in_env(self, worker_id: bytes, env: str) -> subprocess.Popen[bytes]:
        setup = self.runtime_envs.setup(env)
        try:
            return self._env_spawner(worker_id, python=setup.python, cwd=setup.cwd, extra_env=setup.env)
        except OSError:
            self.runtime_envs.forget(env)
            raise

    async def _fetch_package(self, uri: str) -> bytes:
        """A runtime_env package's bytes from the GCS KV (its chunks, then checked against its hash)."""
        assert self._gcs is not None
        digest = packages.digest_of(uri)
        ns = packages.KV_NAMESPACE
        reply = await self._gcs.KvGet(gcs_pb2.KvGetRequest(namespace=ns, key=packages.manifest_key(digest)),
                                      timeout=60)
        if not reply.found:
            raise RuntimeEnvSetupFailed(f"package {uri} is not in the GCS (was it uploaded to this cluster?)")
        size, num_chunks = packages.decode_manifest(reply.value)
        chunks = []
        for i in range(num_chunks):
            chunk = await self._gcs.KvGet(gcs_pb2.KvGetRequest(namespace=ns, key=packages.chunk_key(digest, i)),
                                          timeout=60)
            if not chunk.found:
                raise RuntimeEnvSetupFailed(f"package {uri} is missing its chunk {i} in the GCS")
            chunks.append(chunk.value)
        return packages.check_assembled(digest, b"".join(chunks))

    async def _runtime_env_gc_loop(self) -> None:
        """Delete runtime environments no worker or queued task has used for the grace period."""
        while True:
            await asyncio.sleep(self._config.runtime_env_gc_interval_s)
            in_use = self.pool.envs_in_use() | {t.env for t in self.nm.tasks.tasks.values() if t.env}
            if self.jobs is not None:
                in_use |= self.jobs.envs_in_use()
            try:
                trash = self.runtime_envs.collect(in_use, time.monotonic())
                for path in trash:
                    await asyncio.to_thread(shutil.rmtree, path, True)
                    log.info("deleted unused runtime environment part %s", path.name.removeprefix(".trash-"))
            except Exception:
                log.exception("collecting unused runtime environments failed")

    def _gcs_client(self) -> AioGcsClient:
        assert self._gcs is not None, "the GCS client is made in start()"
        return self._gcs

    async def _reserve_cpus(self, amount: float) -> Callable[[], None]:
        """Hold `amount` of this node's CPUs for a job's entrypoint, once free;
        returns what gives them back."""
        while self.nm.available.get("CPU", 0.0) < amount:
            if self.nm.total.get("CPU", 0.0) < amount:
                raise ValueError(f"entrypoint_num_cpus={amount} is more than the head node has "
                                 f"({self.nm.total.get('CPU', 0.0):g} CPUs)")
            await asyncio.sleep(0.1)
        self.nm.available["CPU"] -= amount

        def release() -> None:
            self.nm.available["CPU"] = self.nm.available.get("CPU", 0.0) + amount
            self.nm.schedule()

        return release

    def _node_info(self) -> gcs_pb2.NodeInfo:
        info = gcs_pb2.NodeInfo()
        info.CopyFrom(self._identity)
        info.raylet_port = self._port
        info.metrics_port = self.metrics_port
        info.start_time = time.time()
        info.total.amounts.update(self.nm.total)
        info.available.amounts.update(self.nm.available)
        return info

    async def _register_node(self) -> None:
        assert self._gcs is not None
        reply = await self._gcs.RegisterNode(
            gcs_pb2.RegisterNodeRequest(node=self._node_info()), wait_for_ready=True, timeout=30
        )
        if reply.health_timeout_s > 0:  # a peer the GCS lists this long after we lost it is alive
            self.nm.view.readmit_after_s = 2 * reply.health_timeout_s

    async def _report_loop(self) -> None:
        assert self._gcs is not None
        while True:
            await asyncio.sleep(self._config.report_interval_s)
            request = gcs_pb2.ReportResourcesRequest(node_id=self.node_id)
            request.available.amounts.update(self.nm.available)
            request.total.amounts.update(self.nm.total)
            for shape in self.nm.infeasible_shapes():
                request.infeasible.add().amounts.update(shape)
            request.demand.extend(resource_demand.queued_demand(self.nm.tasks))
            for (group_id, index), (_, committed) in self.nm.bundles.items():
                request.bundles.add(placement_group_id=group_id, index=index, committed=committed)
            try:
                reply = await self._gcs.ReportResources(request, timeout=5)
                self.nm.update_view(list(reply.nodes))
            except Exception as e:
                if not isinstance(e, grpc.aio.AioRpcError):  # a bug: keep reporting, or the GCS declares us dead
                    log.exception("applying the cluster view failed")
                    continue
                if e.code() == grpc.StatusCode.NOT_FOUND:
                    log.warning("the GCS does not know this node; registering again")
                    await self._register_node()
                else:
                    log.warning("resource report failed: %s", e.code())

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            for handle in self.pool.all():
                code = handle.process.poll()
                if code is not None:
                    self.nm.worker_died(handle.worker_id, f"process exited with code {code}")
            self.nm.reclaim_stalled(time.monotonic())
            retired = self.nm.retire_idle_workers(time.monotonic(), self._config.idle_worker_timeout_s)
            for handle in retired:
                log.info("retiring idle worker %s (pid %d)", handle.worker_id.hex()[:8], handle.process.pid)
                handle.process.terminate()
                self.nm.to_reap.append(handle)
            if retired:  # (their places may be what a queued task of another environment waits for)
                self.nm.schedule()
            self.nm.to_reap = [h for h in self.nm.to_reap if h.process.poll() is None]  # reap

    async def _memory_loop(self) -> None:
        """Kill one worker at a time while the node's memory in use is over
        the threshold (memory_monitor.py says why and which)."""
        if self._config.memory_monitor_refresh_ms <= 0:
            return
        monitor = self.memory_monitor
        victim: WorkerHandle | None = None
        while True:
            await asyncio.sleep(self._config.memory_monitor_refresh_ms / 1000)
            if victim is not None and victim.process.poll() is None:
                continue  # its memory is not free until it is gone
            victim = None
            usage = read_memory_usage()
            if not monitor.over(usage):
                continue
            chosen = choose_victim(self.nm.memory_candidates())
            handle = self.pool.workers.get(chosen.worker_id) if chosen is not None else None
            if chosen is None or handle is None:
                continue  # nothing of ours runs: the memory is not ours to free
            reason = monitor.reason(usage, chosen)
            log.warning("%s", reason)
            handle.process.kill()
            monitor.kills_total += 1
            self.nm.worker_died(chosen.worker_id, reason, FailureType.OUT_OF_MEMORY)
            victim = handle

    async def _orphan_loop(self) -> None:
        """Delete the store's objects this raylet has never heard of: their
        writer died between writing one and telling us (a driver mid-put, a
        direct call's caller before it passed a stored result on)."""
        grace = self._config.orphan_grace_s
        if grace <= 0 or self._store is None:
            return
        request = objectstore_pb2.ListRequest(min_sealed_age_s=grace, min_unsealed_age_s=10 * grace)
        while True:
            await asyncio.sleep(grace / 2)
            try:
                reply = await self._store.List(request, timeout=10)
            except grpc.aio.AioRpcError as e:
                log.warning("listing the store's objects failed: %s", e.code())
                continue
            orphans = self.nm.unknown_objects(reply.object_ids)
            if orphans:
                log.info("deleting %d objects from the store that nobody owns", len(orphans))
                self._queue_store_deletes(orphans)

    def _queue_actor_event(self, event: gcs_pb2.RegisterActorRequest | gcs_pb2.UpdateActorRequest) -> None:
        if self._actor_events is None:
            self._actor_events = asyncio.Queue()
        metadata = None
        if service_spans.active is not None and isinstance(event, gcs_pb2.RegisterActorRequest):
            actor = self.nm.actors.get(event.actor.actor_id)  # (its registration is part of its creation's trace)
            if actor is not None:
                metadata = service_spans.metadata(actor.creation.traceparent, actor.creation.tracestate)
        self._actor_events.put_nowait((event, metadata))

    async def _actor_event_loop(self) -> None:
        """Tell the GCS about actors, in order; both calls are idempotent, so
        a failed one is retried until it goes through."""
        if self._actor_events is None:
            self._actor_events = asyncio.Queue()
        gcs = self._gcs
        assert gcs is not None
        while True:
            event, metadata = await self._actor_events.get()
            send = gcs.RegisterActor if isinstance(event, gcs_pb2.RegisterActorRequest) else gcs.UpdateActor
            try:
                await retry_with_backoff(
                    functools.partial(send, event, timeout=10, metadata=metadata), grpc.aio.AioRpcError,
                    lambda e, delay: log.warning("actor update to the GCS failed (%s); retrying in %.1fs",
                                                 e.code(), delay),
                    give_up=_refused)
            except grpc.aio.AioRpcError as e:
                log.error("the GCS refused an actor update: %s", e.details())

    def _kv_get(self, session: ClientSession, key: raylet_pb2.KvKey) -> None:
        """A worker's read of the GCS KV: from the cache, or asked once for
        every reader waiting on the same key."""
        cached = self._kv.get(key.namespace, key.key)
        if cached is not None:
            self._answer_kv(session, cached)
        elif self._kv.wait(key.namespace, key.key, session):
            self._tasks.spawn(self._fetch_kv(key.namespace, key.key))

    async def _fetch_kv(self, namespace: str, key: bytes) -> None:
        assert self._gcs is not None
        entry = raylet_pb2.KvEntry(namespace=namespace, key=key)
        try:
            reply = await self._gcs.KvGet(gcs_pb2.KvGetRequest(namespace=namespace, key=key), timeout=30)
            entry.found, entry.value = reply.found, reply.value
        except grpc.aio.AioRpcError as e:
            entry.error = f"{e.code().name}: {e.details()}"
        for session in self._kv.resolve(entry):
            self._answer_kv(session, entry)

    @staticmethod
    def _answer_kv(session: ClientSession, entry: raylet_pb2.KvEntry) -> None:
        if not session.closed:
            session.outbox.kv.append(entry)
            session.touch()

    def _lookup_actor(self, actor_id: bytes, delay: float) -> None:
        self._tasks.spawn(self._fetch_actor(actor_id, delay))

    async def _fetch_actor(self, actor_id: bytes, wait: float) -> None:
        """Where an actor lives, for calls to an actor this node does not host."""
        gcs = self._gcs
        assert gcs is not None
        await asyncio.sleep(wait)
        reply = await retry_with_backoff(
            lambda: gcs.GetActor(gcs_pb2.GetActorRequest(actor_id=actor_id), timeout=10), grpc.aio.AioRpcError,
            lambda e, delay: log.warning("looking up actor %s failed (%s); retrying in %.1fs",
                                         actor_id.hex()[:8], e.code(), delay))
        self.nm.actor_located(actor_id, reply.actor if reply.found else None)

    def _peer_send(self, node_id: bytes) -> None:
        self._peers.wake(node_id)

    def _pull(self, object_id: bytes, node_id: bytes, size: int, traceparent: str = "") -> None:
        self._tasks.spawn(self._pull_object(object_id, node_id, size, traceparent))

    async def _pull_object(self, object_id: bytes, node_id: bytes, size: int, traceparent: str = "") -> None:
        """Have the local store copy an object from the node that stores it
        (traced as part of the task waiting for it, if that is traced)."""
        assert self._store is not None
        node = self.nm.view.get(node_id)
        source = node.transfer_address if node is not None else await self._transfer_address(node_id)
        if source is None:
            error: str | None = f"its node {node_id.hex()} is not alive"
        else:
            try:
                await self._store.Pull(objectstore_pb2.PullRequest(
                    object_id=object_id, source_address=source, size=size), timeout=600,
                    metadata=service_spans.metadata(traceparent) if service_spans.active is not None else None)
                error = None
            except grpc.aio.AioRpcError as e:
                error = f"{e.code().name}: {e.details()}"
        self.nm.pull_done(object_id, error)

    async def _transfer_address(self, node_id: bytes) -> str | None:
        """A node our view does not list: one we lost, or one we have not
        heard of yet (we, or it, joined since the GCS's last answer): the
        GCS says where it is, if it is alive."""
        if node_id in self.nm.view.lost or self._gcs is None:
            return None
        try:
            reply = await self._gcs.GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=10)
        except grpc.aio.AioRpcError:
            return None
        for node in reply.nodes:
            if node.node_id == node_id and node.alive:
                return f"{node.node_address}:{node.object_transfer_port}"
        return None

    def _queue_store_deletes(self, object_ids: list[bytes]) -> None:
        first = not self._pending_deletes
        self._pending_deletes.extend(object_ids)
        if first:
            asyncio.get_running_loop().call_soon(self._send_store_deletes)

    def _send_store_deletes(self) -> None:
        deletes, self._pending_deletes = self._pending_deletes, []
        if deletes and self._store is not None:
            self._tasks.spawn(self._store_delete(deletes))

    async def _store_delete(self, object_ids: list[bytes]) -> None:
        assert self._store is not None
        try:
            await self._store.Delete(objectstore_pb2.DeleteRequest(object_ids=object_ids), timeout=10)
        except grpc.aio.AioRpcError as e:
            log.warning("deleting %d objects from the store failed: %s", len(object_ids), e.code())

    async def stop(self) -> None:
        self.pool.closed = True
        if self.jobs is not None:
            await self.jobs.close()
        await self._local.stop()
        await self._peers.close()
        self._tasks.cancel()
        workers = [*self.pool.all(), *self.nm.to_reap]
        for handle in workers:
            handle.process.terminate()
        deadline = time.monotonic() + 2
        for handle in workers:
            while handle.process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if handle.process.poll() is None:
                handle.process.kill()
                try:
                    handle.process.wait(timeout=2)  # type: ignore[attr-defined]
                except subprocess.TimeoutExpired:
                    log.warning("worker pid %d did not exit after SIGKILL", handle.process.pid)
        self._spawner.close()
        self.runtime_envs.close()
        if self._gcs is not None:
            try:
                await self._gcs.UnregisterNode(
                    gcs_pb2.UnregisterNodeRequest(node_id=self.node_id, reason="raylet stopped"), timeout=1,
                    failover_window_s=0)  # best effort: the GCS may be stopping too (ember stop)
            except grpc.aio.AioRpcError:
                pass
            await self._gcs.close()
        for channel in self._channels:
            await channel.close()


def _refused(error: grpc.aio.AioRpcError) -> bool:
    """The GCS will never take this actor update: retrying cannot help."""
    return error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
