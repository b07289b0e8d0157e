"""A standby's warm copy of the cluster's rows in etcd.

Every GCS replica on etcd keeps this mirror of /ember/<cluster>/ current
with one watch, so a standby that is elected loads its tables from memory
instead of reading the whole cluster from etcd while clients wait. The
watch resumes from the last revision it applied when its stream breaks
(etcd restarted, endpoint lost), and starts over from a full read when
etcd has compacted that revision away.

A new leader must not serve from a stale copy: `caught_up(revision)` waits
until the mirror has applied every write up to the revision at which the
leader's own key was created. Every write of an earlier leader committed
before that revision (its writes are fenced by its own key, which was gone
by then), so at that point the mirror holds all of them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

import aetcd

from ember_gcs.etcd_storage import EtcdStorage, cancelled_for_us

log = logging.getLogger(__name__)

RETRY_S = 0.5


class EtcdMirror:
    def __init__(self, storage: EtcdStorage) -> None:
        self._storage = storage
        self._rows: dict[bytes, bytes] = {}  # full etcd key -> value, under the cluster's prefix
        self.revision = 0  # the last etcd revision seen: every earlier one is applied in full
        self._advanced = asyncio.Condition()
        self.on_deleted: Callable[[bytes], None] = lambda key: None  # called with each key a watch sees deleted

    def table(self, table: str) -> dict[bytes, bytes]:
        """A table's rows as EtcdStorage.load returns them (row key -> value)."""
        start = self._storage.prefix + table.encode() + b"/"
        return {bytes.fromhex(key[len(start):].decode()): value
                for key, value in self._rows.items() if key.startswith(start)}

    async def caught_up(self, revision: int, timeout_s: float) -> bool:
        """Wait until every write up to `revision` is applied (False on timeout)."""
        async with self._advanced:
            try:
                await asyncio.wait_for(self._advanced.wait_for(lambda: self.revision >= revision), timeout_s)
            except asyncio.TimeoutError:
                return False
        return True

    async def run(self) -> None:
        """Keep the mirror current until cancelled."""
        while True:
            try:
                if self.revision == 0:
                    await self._read_all()
                await self._follow()
            except asyncio.CancelledError:
                if cancelled_for_us():
                    raise
                log.warning("watching etcd was cut off; resuming from revision %d", self.revision + 1)
                await asyncio.sleep(RETRY_S)
            except aetcd.RevisionCompactedError as e:
                log.warning("etcd compacted revision %d away (now %d); reading every row again",
                            self.revision + 1, e.compacted_revision)
                self.revision = 0
            except Exception as e:  # etcd away or the stream broke: resume from where we are
                log.warning("watching etcd failed (%s); resuming from revision %d", e or type(e).__name__,
                            self.revision + 1)
                await asyncio.sleep(RETRY_S)

    async def _read_all(self) -> None:
        self._rows, revision = await self._storage.read_prefix(self._storage.prefix)
        await self._advance(revision)

    async def _follow(self) -> None:
        client = await self._storage.client()
        watch = await client.watch_prefix(self._storage.prefix, start_revision=self.revision + 1)
        try:
            async for event in watch:
                kv = event.kv
                if event.kind == "PUT":
                    self._rows[kv.key] = kv.value
                else:
                    self._rows.pop(kv.key, None)
                    self.on_deleted(kv.key)
                # The events of one transaction share its revision (ours
                # write one row each; a leader key's creation is alone in its).
                if kv.mod_revision > self.revision:
                    await self._advance(kv.mod_revision)
        finally:
            try:
                # Bounded: it waits for etcd's answer, and etcd may be away.
                await asyncio.wait_for(watch.cancel(), timeout=RETRY_S * 10)
            except Exception:  # the stream may be gone already
                pass

    async def _advance(self, revision: int) -> None:
        async with self._advanced:
            self.revision = revision
            self._advanced.notify_all()
