"""A GCS client that follows the leader among GCS replicas.

Addresses come as "HOST:PORT[,HOST:PORT...]" (any replica will do; the
others are learned from GetClusterInfo, which every replica answers). A call
answered UNAVAILABLE is retried, with backoff (50 ms doubling to 250 ms), for up to the failover
window: at the leader a standby names (`ember-leader` trailing metadata),
else at the next known replica. Every Gcs RPC is safe to retry this way
(see gcs.proto: idempotent, or AddJob, whose lost reply only costs an
unused job id). Used the same way as a GcsStub: `client.KvGet(request,
timeout=...)`; `AioGcsClient` for asyncio code (the raylet).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from typing import Any, Callable

import grpc
import grpc.aio
from ember.v1 import gcs_pb2, gcs_pb2_grpc

from ember_common import rpc

log = logging.getLogger(__name__)
LEADER_METADATA = "ember-leader"
FAILOVER_WINDOW_S = 30.0
# Short: a failover is over about a poll interval (0.25 s) after the old
# leader's lease expires, and clients should notice within about as long.
MAX_BACKOFF_S = 0.25
DISCOVERY_TIMEOUT_S = 1.0


def split_addresses(addresses: str) -> list[str]:
    out = [a.strip() for a in addresses.split(",") if a.strip()]
    if not out:
        raise ValueError(f"no GCS address in {addresses!r}")
    return out


class _Replicas:
    """Which replica to call next; shared bookkeeping of both clients."""

    def __init__(self, addresses: str) -> None:
        self.addresses = split_addresses(addresses)
        self.current = self.addresses[0]

    def in_turn(self) -> list[str]:
        """Every known replica, the current one first."""
        i = self.addresses.index(self.current) if self.current in self.addresses else 0
        return self.addresses[i:] + self.addresses[:i]

    def learn(self, info: Any) -> None:
        """Take in a GetClusterInfo reply: the other replicas and the leader."""
        for address in info.replicas:
            if address and address not in self.addresses:
                self.addresses.append(address)
        if info.leader_address and not info.is_leader:  # asked a standby: go to the leader
            if info.leader_address not in self.addresses:
                self.addresses.append(info.leader_address)
            self.current = info.leader_address

    def after_unavailable(self, error: grpc.RpcError) -> bool:
        """Pick the next replica; True if a standby named the leader."""
        leader = dict(error.trailing_metadata() or ()).get(LEADER_METADATA)  # type: ignore[attr-defined]
        if leader and leader != self.current:
            if leader not in self.addresses:
                self.addresses.append(leader)
            self.current = leader
            return True
        # Unreachable, or a standby that knows no leader yet: the next one.
        i = self.addresses.index(self.current) if self.current in self.addresses else -1
        self.current = self.addresses[(i + 1) % len(self.addresses)]
        return False


def _retryable(error: grpc.RpcError) -> bool:
    return error.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


class _LeaderFollower:
    """What both clients share: the replicas, a stub per replica, and stub-like
    attribute access (`client.KvGet(request, timeout=...)`)."""

    # What calls go through, per replica (bench/gcs_scale.py's simulated
    # raylets use one that leaves the cluster view unparsed).
    stub_type: Callable[[Any], Any] = gcs_pb2_grpc.GcsStub

    def __init__(self, addresses: str, token: str | None, failover_window_s: float = FAILOVER_WINDOW_S) -> None:
        self._replicas = _Replicas(addresses)
        self._token = token
        self._window = failover_window_s
        self._stubs: dict[str, gcs_pb2_grpc.GcsStub] = {}
        self._channels: list[Any] = []
        self._lock = threading.Lock()
        self._learned = False  # asked a replica who the others are

    @property
    def address(self) -> str:
        """The replica calls go to now (the leader, once found)."""
        return self._replicas.current

    def _open_channel(self, address: str) -> Any:
        raise NotImplementedError

    def _stub(self, address: str) -> gcs_pb2_grpc.GcsStub:
        with self._lock:
            stub = self._stubs.get(address)
            if stub is None:
                channel = self._open_channel(address)
                self._channels.append(channel)
                stub = self._stubs[address] = self.stub_type(channel)
            return stub

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)
        return functools.partial(self._call, method)  # type: ignore[attr-defined]

    def _failed(self, method: str, address: str, error: grpc.RpcError, deadline: float, delay: float) -> float:
        """After an error: raise it, or return how long to back off before
        the retry (none when a standby named the leader)."""
        if not _retryable(error) or time.monotonic() + delay > deadline:
            raise error
        redirected = self._replicas.after_unavailable(error)
        log.info("GCS %s: %s unavailable (%s); now %s", method, address, error.details(),  # type: ignore[attr-defined]
                 self._replicas.current)
        return 0.0 if redirected else delay


class GcsClient(_LeaderFollower):
    def _open_channel(self, address: str) -> grpc.Channel:
        return rpc.channel(address, self._token)

    def _learn(self) -> None:
        """Ask the replicas, the current one first, who leads and who else is
        there; one that does not answer (down since it was named) is passed over."""
        for address in self._replicas.in_turn():
            try:
                info = self._stub(address).GetClusterInfo(gcs_pb2.GetClusterInfoRequest(), timeout=DISCOVERY_TIMEOUT_S)
            except grpc.RpcError:
                continue
            self._replicas.current = address
            self._replicas.learn(info)
            self._learned = True
            return

    def _call(self, method: str, request: Any, failover_window_s: float | None = None, **kwargs: Any) -> Any:
        deadline = time.monotonic() + (self._window if failover_window_s is None else failover_window_s)
        delay = 0.05
        if not self._learned:
            self._learn()
        while True:
            address = self._replicas.current
            try:
                return getattr(self._stub(address), method)(request, **kwargs)
            except grpc.RpcError as e:
                pause = self._failed(method, address, e, deadline, delay)
            if pause:  # nobody named the leader: ask the next replica
                self._learn()
                time.sleep(pause)
                delay = min(delay * 2, MAX_BACKOFF_S)

    def close(self) -> None:
        for channel in self._channels:
            channel.close()


class AioGcsClient(_LeaderFollower):
    def _open_channel(self, address: str) -> grpc.aio.Channel:
        return rpc.aio_channel(address, self._token)

    async def _learn(self) -> None:
        """As GcsClient._learn: a raylet registers (waiting for the GCS to be
        ready) with the replica this finds, so a dead first one cannot hold it up."""
        for address in self._replicas.in_turn():
            try:
                info = await self._stub(address).GetClusterInfo(gcs_pb2.GetClusterInfoRequest(),
                                                                timeout=DISCOVERY_TIMEOUT_S)
            except grpc.aio.AioRpcError:
                continue
            self._replicas.current = address
            self._replicas.learn(info)
            self._learned = True
            return

    async def _call(self, method: str, request: Any, failover_window_s: float | None = None, **kwargs: Any) -> Any:
        deadline = time.monotonic() + (self._window if failover_window_s is None else failover_window_s)
        delay = 0.05
        if not self._learned:
            await self._learn()
        while True:
            address = self._replicas.current
            try:
                return await getattr(self._stub(address), method)(request, **kwargs)
            except grpc.aio.AioRpcError as e:
                pause = self._failed(method, address, e, deadline, delay)
            if pause:  # nobody named the leader: ask the next replica
                await self._learn()
                await asyncio.sleep(pause)
                delay = min(delay * 2, MAX_BACKOFF_S)

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()
