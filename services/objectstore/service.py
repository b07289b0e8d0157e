"""The object store process: the shared-memory store and its servicer."""

from __future__ import annotations

import pathlib

import grpc.aio
from ember.v1 import objectstore_pb2_grpc

from ember_objectstore.servicer import ObjectStoreServicer
from ember_objectstore.shm_store import ShmStore
from ember_objectstore.transfer import Puller


class ObjectStoreService:
    name = "objectstore"

    def __init__(self, directory: pathlib.Path, capacity: int, token: str) -> None:
        self.store = ShmStore(directory, capacity)
        self.puller = Puller(self.store, token)  # reads from other nodes' stores

    def register(self, server: grpc.aio.Server) -> None:
        objectstore_pb2_grpc.add_ObjectStoreServicer_to_server(ObjectStoreServicer(self.store, self.puller), server)

    async def start(self, port: int) -> None:
        return None

    async def stop(self) -> None:
        await self.puller.close()
        self.store.close()
