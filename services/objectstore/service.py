"""The object store process: the shared-memory store and its servicer."""

from __future__ import annotations

import pathlib

import grpc.aio
from ember.v1 import objectstore_pb2_grpc

from ember_objectstore.servicer import ObjectStoreServicer
from ember_objectstore.shm_store import ShmStore
from ember_objectstore.spilling import Spiller
from ember_objectstore.transfer import Puller


class ObjectStoreService:
    name = "objectstore"

    def __init__(self, directory: pathlib.Path, capacity: int, token: str, spill_directory: pathlib.Path) -> None:
        self.store = ShmStore(directory, capacity)
        self.spiller = Spiller(self.store, spill_directory)
        self.puller = Puller(self.store, self.spiller, token)  # reads from other nodes' stores
        self.spiller.pull = self.puller.pull  # evicted copies come back from their source

    def register(self, server: grpc.aio.Server) -> None:
        objectstore_pb2_grpc.add_ObjectStoreServicer_to_server(
            ObjectStoreServicer(self.store, self.puller, self.spiller), server)

    async def start(self, port: int) -> None:
        return None

    async def stop(self) -> None:
        await self.puller.close()
        self.spiller.close()
        self.store.close()
