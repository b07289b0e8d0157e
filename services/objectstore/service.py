"""The object store process: the shared-memory store, its servicer, and the
TCP data plane other nodes pull objects through."""

from __future__ import annotations

import asyncio
import logging
import pathlib

import grpc.aio
from ember.v1 import object_leases_pb2_grpc, objectstore_pb2_grpc

from ember_common.background import BackgroundTasks
from ember_objectstore.metrics import ObjectStoreCollector
from ember_objectstore.reader_leases import ReaderLeases
from ember_objectstore.servicer import ObjectLeasesServicer, ObjectStoreServicer
from ember_objectstore.shm_store import ShmStore
from ember_objectstore.spilling import Spiller
from ember_objectstore.store import ObjectStore
from ember_objectstore.transfer import Puller, TransferServer

log = logging.getLogger(__name__)
# Freed memory kept for reuse goes back to the system after this long unused.
POOL_IDLE_S = 30.0
# An object deleted while being written keeps its range this long for its
# writer's Seal or Abort (a writer still writing must not write into memory
# handed to another object); then the writer is taken for dead.
ABANDONED_WRITE_S = 60.0
# How often to look for readers that died (their pins go with them).
REAP_INTERVAL_S = 2.0


class ObjectStoreService:
    name = "objectstore"
    trace_name = "ember-objectstore"  # (its spans' service.name)
    trace_attributes: dict[str, str] = {}  # (its node's id, when told)
    metrics_setting = "metrics_objectstore_port"

    def __init__(self, directory: pathlib.Path, capacity: int, token: str, spill_directory: pathlib.Path,
                 host: str = "127.0.0.1", transfer_port: int = 0, fs_capacity_threshold: float = 0.95) -> None:
        self.shm = ShmStore(directory, capacity)
        self.spiller = Spiller(self.shm, spill_directory, fs_capacity_threshold)
        self.leases = ReaderLeases(self.shm, directory / "leases")
        self.store = ObjectStore(self.shm, self.spiller, self.leases)
        self.puller = Puller(self.shm, self.spiller, token)  # reads from other nodes' stores
        self.transfer = TransferServer(self.shm, self.spiller, token)  # other nodes read from us
        self._host = host
        self._transfer_port = transfer_port
        self.spiller.pull = self.puller.pull  # evicted copies come back from their source
        self._tasks = BackgroundTasks()
        self.metrics_port = 0  # set by run_service

    def collectors(self) -> list[ObjectStoreCollector]:
        return [ObjectStoreCollector(self.store, self.transfer, self.puller)]

    def register(self, server: grpc.aio.Server) -> None:
        objectstore_pb2_grpc.add_ObjectStoreServicer_to_server(
            ObjectStoreServicer(self.store, self.puller), server)
        object_leases_pb2_grpc.add_ObjectLeasesServicer_to_server(ObjectLeasesServicer(self.store), server)

    def ready_info(self) -> dict[str, int]:
        """For the ready file: the ports a node launcher left to us (0)."""
        return {"transfer_port": self._transfer_port}

    async def start(self, port: int) -> None:
        self._transfer_port = await self.transfer.start(self._host, self._transfer_port)
        self._tasks.spawn(self._trim_pool())
        self._tasks.spawn(self._reap_readers())

    async def _trim_pool(self) -> None:
        while True:
            await asyncio.sleep(POOL_IDLE_S / 4)
            try:
                self.shm.free_abandoned_writes(ABANDONED_WRITE_S)
                self.shm.trim_pool(POOL_IDLE_S)
            except OSError as e:  # a file removed under us: the next round sees the rest
                log.warning("trimming the reuse pool failed: %s", e)

    async def _reap_readers(self) -> None:
        while True:
            await asyncio.sleep(REAP_INTERVAL_S)
            try:
                self.leases.reap()
            except OSError as e:
                log.warning("looking for dead readers failed: %s", e)

    async def stop(self) -> None:
        await self._tasks.close()
        await self.transfer.stop()
        self.puller.close()
        self.spiller.close()
        self.shm.close()
