"""The object store process: the shared-memory store and its servicer."""

from __future__ import annotations

import pathlib

import grpc.aio
from ember.v1 import objectstore_pb2_grpc

from ember_objectstore.servicer import ObjectStoreServicer
from ember_objectstore.shm_store import ShmStore


class ObjectStoreService:
    name = "objectstore"

    def __init__(self, directory: pathlib.Path, capacity: int) -> None:
        self.store = ShmStore(directory, capacity)

    def register(self, server: grpc.aio.Server) -> None:
        objectstore_pb2_grpc.add_ObjectStoreServicer_to_server(ObjectStoreServicer(self.store), server)

    async def start(self, port: int) -> None:
        return None

    async def stop(self) -> None:
        self.store.close()
