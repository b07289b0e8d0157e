"""The GCS process: tables over a storage backend, the servicer, and the
health checker that declares silent nodes dead."""

from __future__ import annotations

import asyncio
import logging

import grpc.aio
from ember.v1 import gcs_pb2_grpc

from ember._private.config import Config
from ember_gcs.actor_table import ActorTable
from ember_gcs.job_table import JobTable
from ember_gcs.kv_table import KvTable
from ember_gcs.node_table import NodeTable
from ember_gcs.servicer import GcsServicer
from ember_gcs.storage import open_storage

log = logging.getLogger(__name__)


class GcsService:
    name = "gcs"

    def __init__(self, storage_url: str, session_name: str, config: Config, cluster_name: str = "default") -> None:
        self._storage = open_storage(storage_url, cluster_name)
        self.nodes = NodeTable(self._storage, config.health_timeout_s)
        self.jobs = JobTable(self._storage)
        self.kv = KvTable(self._storage)
        self.actors = ActorTable(self._storage)
        self._servicer = GcsServicer(self.nodes, self.jobs, self.kv, self.actors, session_name, self._storage.name)
        self._health_task: asyncio.Task[None] | None = None

    def register(self, server: grpc.aio.Server) -> None:
        gcs_pb2_grpc.add_GcsServicer_to_server(self._servicer, server)

    async def start(self, port: int) -> None:
        for table in (self.nodes, self.jobs, self.kv, self.actors):
            await table.load()
        self._health_task = asyncio.create_task(self._check_health())

    async def _check_health(self) -> None:
        interval = min(1.0, self.nodes.health_timeout_s / 4)
        while True:
            await asyncio.sleep(interval)
            try:
                for node_id in await self.nodes.check_health():
                    await self.actors.node_died(node_id)
            except Exception:
                log.exception("health check failed")

    async def stop(self) -> None:
        if self._health_task:
            self._health_task.cancel()
        await self._storage.close()
