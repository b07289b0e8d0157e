"""The storage interface behind every GCS table, and its in-memory backend.

Tables keep their working set in memory and write through a `Storage`, so a
durable backend (etcd) can be swapped in without touching table logic: a
write returns only once the backend holds it.
"""

from __future__ import annotations

import abc


class Storage(abc.ABC):
    name: str

    @abc.abstractmethod
    async def put(self, table: str, key: bytes, value: bytes) -> None: ...

    @abc.abstractmethod
    async def delete(self, table: str, key: bytes) -> bool: ...

    @abc.abstractmethod
    async def load(self, table: str) -> dict[bytes, bytes]:
        """Every row of a table (used once, when a table starts)."""

    async def close(self) -> None:
        return None


class MemoryStorage(Storage):
    """Process memory: state lives as long as the GCS process."""

    name = "memory"

    def __init__(self) -> None:
        self._tables: dict[str, dict[bytes, bytes]] = {}

    async def put(self, table: str, key: bytes, value: bytes) -> None:
        self._tables.setdefault(table, {})[key] = value

    async def delete(self, table: str, key: bytes) -> bool:
        return self._tables.get(table, {}).pop(key, None) is not None

    async def load(self, table: str) -> dict[bytes, bytes]:
        return dict(self._tables.get(table, {}))


def open_storage(url: str, cluster: str = "default") -> Storage:
    """`memory` (the default), or `etcd://HOST:PORT[,HOST:PORT...]` with
    `cluster` naming this cluster's keys in etcd."""
    if url in ("", "memory", "memory://"):
        return MemoryStorage()
    if url.startswith("etcd://"):
        from ember_gcs.etcd_storage import EtcdStorage  # needs aetcd

        return EtcdStorage(url, cluster)
    raise ValueError(f"unsupported storage {url!r} (supported: memory, etcd://HOST:PORT[,HOST:PORT...])")
