"""GCS key-value reads on behalf of this node's workers: one GCS call per
key however many workers ask at once, and a cache of the entries that never
change (the function table is content-addressed)."""

from __future__ import annotations

import collections

from ember.v1 import raylet_pb2

from ember_raylet.client_session import ClientSession

IMMUTABLE_NAMESPACES = {"fn"}


class KvCache:
    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: collections.OrderedDict[tuple[str, bytes], raylet_pb2.KvEntry] = collections.OrderedDict()
        self._waiting: dict[tuple[str, bytes], list[ClientSession]] = {}

    def get(self, namespace: str, key: bytes) -> raylet_pb2.KvEntry | None:
        entry = self._entries.get((namespace, key))
        if entry is not None:
            self._entries.move_to_end((namespace, key))
        return entry

    def wait(self, namespace: str, key: bytes, session: ClientSession) -> bool:
        """Note `session` waits for the key; True if the caller must fetch it
        (nobody was waiting yet)."""
        waiting = self._waiting.setdefault((namespace, key), [])
        waiting.append(session)
        return len(waiting) == 1

    def resolve(self, entry: raylet_pb2.KvEntry) -> list[ClientSession]:
        """Record a fetched entry; returns the sessions waiting for it."""
        k = (entry.namespace, entry.key)
        if entry.found and entry.namespace in IMMUTABLE_NAMESPACES and len(entry.value) <= self._max_bytes:
            self._entries[k] = entry
            self._bytes += len(entry.value)
            while self._bytes > self._max_bytes:
                _, old = self._entries.popitem(last=False)
                self._bytes -= len(old.value)
        return self._waiting.pop(k, [])
