"""The etcd storage backend: every GCS table row is one etcd key, written
before the RPC that caused it answers (etcd acknowledges a put once a
quorum has it on disk).

Keys: /ember/<cluster>/<table>/<row key, hex>. The cluster name lets several
Ember clusters share one etcd. The client is aetcd (asyncio; see
docs/etcd.md for why not etcd3). Several endpoints may be given: a call
that cannot reach one moves on to the next.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import Any, Awaitable, Callable, TypeVar

import aetcd
import aetcd.rpc
import aetcd.utils
import grpc

from ember_common.errors import Unavailable
from ember_gcs.storage import Storage

log = logging.getLogger(__name__)
T = TypeVar("T")
_UNREACHABLE = (aetcd.ConnectionFailedError, aetcd.ConnectionTimeoutError)


def cancelled_for_us() -> bool:
    """Whether a CancelledError is meant for the running task. grpc.aio
    also raises it in calls on a channel that another task closed (a client
    dropped after a failure); the loops that must outlive etcd outages
    treat that one as a failed call, not as their end."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0
CALL_TIMEOUT_S = 5
# Whole tables are read in pages of this many rows, each page one gRPC
# reply. etcd caps a row at 1.5 MiB by default, so a page is at most 192 MiB,
# under the receive limit set below (gRPC's default, 4 MiB, holds only a
# few large rows: a cluster's whole state in one reply failed past it).
PAGE_ROWS = 128
MAX_REPLY_BYTES = 256 * 1024 * 1024


class Deposed(Unavailable):
    """A fenced write found that this replica no longer holds leadership."""


def parse_endpoints(url: str) -> list[tuple[str, int]]:
    """`etcd://host:port[,host:port...]` -> [(host, port), ...]."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "etcd" or not parsed.netloc:
        raise ValueError(f"etcd storage must look like etcd://HOST:PORT[,HOST:PORT...], got {url!r}")
    endpoints = []
    for item in parsed.netloc.split(","):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad etcd endpoint {item!r} in {url!r}: expected HOST:PORT")
        endpoints.append((host.strip("[]"), int(port)))
    return endpoints


class EtcdStorage(Storage):
    name = "etcd"

    def __init__(self, url: str, cluster: str) -> None:
        if not cluster or "/" in cluster:
            raise ValueError(f"cluster name must be non-empty and without '/', got {cluster!r}")
        self.endpoints = parse_endpoints(url)
        self.prefix = f"/ember/{cluster}/".encode()
        self.leader_key = self.prefix + b"leader"
        # With an election: the create revision of our leader key while we
        # lead (None otherwise). Every write then commits only if that key
        # still exists with that revision, and none is tried while we do not
        # lead, even one that passed a leadership check just before.
        self.requires_fence = False
        self.fence_revision: int | None = None
        self.on_fence_failure: Callable[[], None] = lambda: None
        self._current = 0
        self._client: aetcd.Client | None = None

    async def client(self) -> aetcd.Client:
        """A client of a reachable endpoint (UNAVAILABLE if none is)."""
        return await self._call("connecting", self._status)

    @staticmethod
    async def _status(client: aetcd.Client) -> aetcd.Client:
        await client.status()
        return client

    def _key(self, table: str, key: bytes) -> bytes:
        return self.prefix + table.encode() + b"/" + key.hex().encode()

    async def _call(self, what: str, fn: Callable[[aetcd.Client], Awaitable[T]]) -> T:
        """Run `fn` on a client, moving through the endpoints when one is
        unreachable; UNAVAILABLE once none answers."""
        errors = []
        for _ in range(len(self.endpoints)):
            if self._client is None:
                host, port = self.endpoints[self._current]
                self._client = aetcd.Client(host=host, port=port, timeout=CALL_TIMEOUT_S,
                                            options={"grpc.max_receive_message_length": MAX_REPLY_BYTES})
            client = self._client
            try:
                return await fn(client)
            except asyncio.CancelledError:
                if cancelled_for_us():
                    raise
                host, port = self.endpoints[self._current]
                errors.append(f"{host}:{port}: call cut off (its client was dropped)")
                if self._client is client:  # (else another task has moved on already)
                    await self._drop_client()
                    self._current = (self._current + 1) % len(self.endpoints)
            except _UNREACHABLE as e:
                host, port = self.endpoints[self._current]
                errors.append(f"{host}:{port}: {type(e).__name__}")
                log.warning("etcd at %s:%d unreachable (%s); trying the next endpoint", host, port, e)
                await self._drop_client()
                self._current = (self._current + 1) % len(self.endpoints)
        raise Unavailable(f"etcd is unreachable ({'; '.join(errors)}); {what} was not stored")

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except Exception:  # closing a broken channel may fail too
                pass

    async def _fenced(self, client: aetcd.Client, op: Any) -> Any:
        tx = client.transactions
        if self.fence_revision is None:
            if self.requires_fence:
                raise Deposed("this GCS replica is not the leader; the write was not stored: ask the leader")
            _, responses = await client.transaction(compare=[], success=[op], failure=[])
            return responses
        ok, responses = await client.transaction(
            compare=[tx.create(self.leader_key) == self.fence_revision], success=[op], failure=[])
        if not ok:
            self.on_fence_failure()
            raise Deposed("this GCS replica is no longer the leader (its leader key is gone or newer); "
                          "the write was not stored: ask the current leader")
        return responses

    async def put(self, table: str, key: bytes, value: bytes) -> None:
        row = self._key(table, key)
        await self._call(f"{table} write", lambda c: self._fenced(c, c.transactions.put(row, value)))

    async def delete(self, table: str, key: bytes) -> bool:
        row = self._key(table, key)
        responses = await self._call(f"{table} delete", lambda c: self._fenced(c, c.transactions.delete(row)))
        return bool(responses and responses[0].response_delete_range.deleted)

    async def load(self, table: str) -> dict[bytes, bytes]:
        start = self.prefix + table.encode() + b"/"
        rows, _ = await self.read_prefix(start)
        return {bytes.fromhex(key[len(start):].decode()): value for key, value in rows.items()}

    async def read_prefix(self, prefix: bytes) -> tuple[dict[bytes, bytes], int]:
        """Every key under `prefix` as of one revision, and that revision.
        Read in pages (aetcd's get_prefix asks for all in one reply, which
        fails past the reply size limit), all pages at the first's revision."""
        return await self._call(f"reading {prefix.decode(errors='replace')}", lambda c: self._read_pages(c, prefix))

    @staticmethod
    async def _read_pages(client: aetcd.Client, prefix: bytes) -> tuple[dict[bytes, bytes], int]:
        await client.connect()
        rows: dict[bytes, bytes] = {}
        start, end, revision = prefix, aetcd.utils.prefix_range_end(prefix), 0
        while True:
            request = aetcd.rpc.RangeRequest(key=start, range_end=end, limit=PAGE_ROWS, revision=revision)
            try:
                reply = await client.kvstub.Range(request, timeout=CALL_TIMEOUT_S, metadata=client.metadata)
            except grpc.aio.AioRpcError as e:  # as aetcd's own calls raise them
                if e.code() == grpc.StatusCode.UNAVAILABLE:
                    raise aetcd.ConnectionFailedError(e.details()) from e
                if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise aetcd.ConnectionTimeoutError(e.details()) from e
                raise aetcd.ClientError(e.details()) from e
            revision = revision or reply.header.revision
            rows.update((kv.key, kv.value) for kv in reply.kvs)
            if not reply.more or not reply.kvs:
                return rows, revision
            start = reply.kvs[-1].key + b"\0"

    async def close(self) -> None:
        await self._drop_client()
