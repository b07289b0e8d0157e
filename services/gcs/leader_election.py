"""Leader election among GCS replicas on one etcd.

Each replica campaigns for /ember/<cluster>/leader: a transaction creates
the key (value: the replica's address) bound to an etcd lease, only if the
key does not exist. The winner keeps its lease alive and is the leader for
as long as it does; its key's create revision fences its writes (see
EtcdStorage.fence_revision), so a leader that was paused or cut off and lost its
lease can never write again. The others poll the key (no watch to lose on a
reconnect) and campaign as soon as it is gone: a dead leader is replaced
within the lease TTL plus one poll interval. The replica's etcd mirror also
sees the key's deletion and `poke`s the election, which then campaigns at
once instead of at the next poll.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import aetcd

from ember_gcs.etcd_storage import EtcdStorage, cancelled_for_us

log = logging.getLogger(__name__)


class LeaderElection:
    def __init__(self, storage: EtcdStorage, ttl_s: float) -> None:
        if ttl_s < 1:
            raise ValueError(f"the leader lease TTL must be at least 1 s, got {ttl_s}")
        self._storage = storage
        self.identity = ""  # this replica's address, set before run()
        self.ttl_s = ttl_s
        self.key = storage.leader_key
        self.is_leader = False
        self.leader = ""  # the current leader's address, as last seen
        self._lease: aetcd.Lease | None = None
        self.replicas: list[str] = []  # every live replica's address, as last read
        # Set once this replica leads or knows who does.
        self.settled = asyncio.Event()
        self._lost = asyncio.Event()  # a fenced write found we no longer lead
        self._poked = asyncio.Event()  # the leader key is gone: campaign now
        storage.on_fence_failure = self._lost.set
        storage.requires_fence = True

    @property
    def poll_interval_s(self) -> float:
        return min(0.25, self.ttl_s / 8)

    async def run(self, on_elected: Callable[[int], Awaitable[None]], on_deposed: Callable[[str], Awaitable[None]]) -> None:
        """Campaign, lead, step down, campaign again, until cancelled.
        `on_elected(revision)` runs before this replica serves as leader;
        `on_deposed(reason)` when it stops being one."""
        while True:
            try:
                revision = await self._campaign()
            except asyncio.CancelledError:
                if cancelled_for_us():
                    raise
                log.warning("campaign failed: a call to etcd was cut off")
                await asyncio.sleep(self.poll_interval_s * 2)
                continue
            except Exception as e:  # etcd away: keep trying
                log.warning("campaign failed: %s", e)
                await asyncio.sleep(self.poll_interval_s * 2)
                continue
            if revision is None:
                if self.leader:
                    self.settled.set()
                try:
                    await asyncio.wait_for(self._poked.wait(), self.poll_interval_s)
                except asyncio.TimeoutError:
                    pass
                self._poked.clear()
                continue
            log.info("elected leader (%s, revision %d, lease TTL %gs)", self.identity, revision, self.ttl_s)
            try:
                await on_elected(revision)
                self.is_leader, self.leader = True, self.identity
                self.settled.set()
                reason = await self._hold()
            except asyncio.CancelledError:
                if cancelled_for_us():
                    await self._resign()
                    raise
                reason = "a call to etcd was cut off"
            except Exception as e:
                reason = f"could not take over: {e}"
                log.exception("taking over as leader failed")
            self.is_leader = False
            log.warning("stepping down: %s", reason)
            await on_deposed(reason)
            await self._resign()

    def poke(self) -> None:
        """The leader key was deleted (seen by a watch): campaign without
        waiting for the next poll."""
        self._poked.set()

    async def announce(self) -> None:
        """Keep /ember/<cluster>/replicas/<our address> alive (its own lease)
        and `replicas` fresh, so clients given one address learn the others."""
        prefix = self._storage.prefix + b"replicas/"
        lease = None
        try:
            while True:
                try:
                    client = await self._storage.client()
                    if lease is None:
                        lease = await client.lease(int(self.ttl_s))
                        await client.put(prefix + self.identity.encode(), self.identity.encode(), lease=lease)
                    elif (await asyncio.wait_for(lease.refresh(), timeout=self.ttl_s)).TTL <= 0:
                        lease = None  # expired (etcd was away): announce again
                        continue
                    self.replicas = sorted(kv.value.decode() for kv in await client.get_prefix(prefix))
                except asyncio.CancelledError:
                    if cancelled_for_us():
                        raise
                    lease = None
                except Exception as e:
                    log.debug("announcing this replica failed: %s", e)
                    lease = None
                await asyncio.sleep(self.ttl_s / 3)
        finally:
            if lease is not None:
                try:
                    await asyncio.wait_for(lease.revoke(), timeout=self.ttl_s)
                except Exception:
                    pass

    async def _campaign(self) -> int | None:
        """Try to become leader: the key's create revision if we did."""
        client = await self._storage.client()
        current = await client.get(self.key)
        if current is not None and current.value == self.identity.encode():
            # Our own key from a lease we lost (say etcd restarted under us):
            # clear it rather than point clients at ourselves until it expires.
            tx = client.transactions
            await client.transaction(compare=[tx.create(self.key) == current.create_revision],
                                     success=[tx.delete(self.key)], failure=[])
            return None
        if current is not None:
            self.leader = current.value.decode()
            return None
        self._lease = await client.lease(int(self.ttl_s))
        tx = client.transactions
        won, _ = await client.transaction(
            compare=[tx.create(self.key) == 0],
            success=[tx.put(self.key, self.identity.encode(), lease=self._lease)],
            failure=[],
        )
        if not won:
            await self._resign()
            return None
        mine = await client.get(self.key)
        if mine is None or mine.value != self.identity.encode():
            return None
        return mine.create_revision

    async def _hold(self) -> str:
        """Keep the lease alive; return why leadership ended."""
        assert self._lease is not None
        interval = self.ttl_s / 3
        self._lost.clear()
        while True:
            try:
                await asyncio.wait_for(self._lost.wait(), timeout=interval)
                return "a fenced write found another leader"
            except asyncio.TimeoutError:
                pass
            try:
                reply = await asyncio.wait_for(self._lease.refresh(), timeout=interval)
            except asyncio.TimeoutError:
                return "lease keepalive timed out"
            except Exception as e:
                return f"lease keepalive failed: {e}"
            if reply.TTL <= 0:
                return "the lease expired"

    async def _resign(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            try:
                # The key goes with it: standbys need not wait out the TTL.
                # Bounded: etcd may be away, and the next campaign waits on us.
                await asyncio.wait_for(lease.revoke(), timeout=self.ttl_s)
            except asyncio.CancelledError:
                if cancelled_for_us():
                    raise
            except Exception:
                pass

