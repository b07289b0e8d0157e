"""The internal key-value store: the function table and user KV."""

from __future__ import annotations

from ember_gcs.storage import Storage

TABLE = "kv"
MAX_KEY = 4096
MAX_VALUE = 256 * 1024 * 1024


def _row(namespace: str, key: bytes) -> bytes:
    return namespace.encode() + b"\0" + key


class KvTable:
    table = TABLE

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._data: dict[bytes, bytes] = {}

    def restore(self, rows: dict[bytes, bytes]) -> None:
        """Replace what is in memory with the stored rows (at start and at takeover)."""
        self._data = dict(rows)

    async def put(self, namespace: str, key: bytes, value: bytes, overwrite: bool) -> bool:
        row = _row(namespace, key)
        if not overwrite and row in self._data:
            return False
        await self._storage.put(TABLE, row, value)
        self._data[row] = value
        return True

    def get(self, namespace: str, key: bytes) -> bytes | None:
        return self._data.get(_row(namespace, key))

    async def delete(self, namespace: str, key: bytes) -> bool:
        row = _row(namespace, key)
        if row not in self._data:
            return False
        await self._storage.delete(TABLE, row)
        del self._data[row]
        return True

    def keys(self, namespace: str, prefix: bytes) -> list[bytes]:
        start = _row(namespace, prefix)
        skip = len(namespace.encode()) + 1
        return [row[skip:] for row in self._data if row.startswith(start)]
