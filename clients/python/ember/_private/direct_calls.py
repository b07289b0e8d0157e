"""Direct actor calls: a caller on the actor's node sends a call straight to
the actor's worker, and the result comes straight back, with no raylet in
between (two socket hops instead of four; on a 2-core VM each hop's wake-up
is most of a sync call's cost).

The worker listens on an abstract unix socket named after the session and
the actor (`DirectCallServer`); a caller keeps one connection per actor
(`ActorChannel`). The protocol (frames, what goes direct, what happens when
the connection breaks) is described with DirectCalls in raylet.proto; the
caller's bookkeeping of its calls and their results is the `DirectCaller`.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import socket
import threading
import time
from typing import Any, Callable

from ember_common import ids
from ember_common.frames import MAX_TOKEN_FRAME, read_frames, recv_frame, send_frame
from ember.v1 import common_pb2, raylet_pb2
from google.protobuf.message import DecodeError

from ember._private.client_batches import DirectResults, DirectState, Item, ItemKind, ObjectStates
from ember._private.object_ref import ObjectRef

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
# After a failed connect (the actor is not up yet, or restarting), calls go
# through the raylet for this long before the next try.
RETRY_AFTER_S = 0.2


def socket_address(session_dir: str, actor_id: bytes) -> str:
    """Abstract namespace: no file to clean up after a killed worker, no
    path length limit; the token guards it as the session dir's 0700 does."""
    session = hashlib.blake2b(session_dir.encode(), digest_size=8).hexdigest()
    return f"\0ember-{session}-{actor_id.hex()}"


# ---- the actor's side ------------------------------------------------------


class CallerConnection:
    """One caller connected to this actor; replies may come from any thread."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()

    def reply(self, result: raylet_pb2.TaskResult) -> None:
        data = raylet_pb2.DirectReplies(results=[result]).SerializeToString()
        with self._lock:
            try:
                send_frame(self._sock, data)
            except OSError:
                pass  # the caller is gone: nobody waits for this result


class DirectCallServer:
    """Accepts callers for the actor this worker hosts. Calls go to
    `on_calls` (the worker's queue, in arrival order), cancels to
    `on_cancel`. Each caller has a reader thread."""

    def __init__(self, address: str, token: str, hello: raylet_pb2.DirectHello,
                 on_calls: Callable[[list[raylet_pb2.ExecuteTask], CallerConnection], None],
                 on_cancel: Callable[[list[bytes]], None]) -> None:
        self._address = address
        self._token = token.encode()
        self._hello = raylet_pb2.DirectReplies(hello=hello).SerializeToString()
        self._on_calls = on_calls
        self._on_cancel = on_cancel

    def start(self) -> None:
        """Listen before the actor reports ready (so its callers' first
        try finds it), unless the name is still taken (then in the background)."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self._address)
            listener.listen(64)
            bound = True
        except OSError:
            bound = False
        threading.Thread(target=self._serve, args=(listener, bound), name="ember-direct-accept", daemon=True).start()

    def _serve(self, listener: socket.socket, bound: bool) -> None:
        deadline = time.monotonic() + 10
        while not bound:
            try:
                listener.bind(self._address)
                listener.listen(64)
                bound = True
            except OSError:
                # The previous incarnation's process may not be gone yet;
                # until we bind, callers use the raylet.
                if time.monotonic() > deadline:
                    log.warning("direct call socket stays taken; calls go through the raylet")
                    listener.close()
                    return
                time.sleep(0.05)
        while True:
            sock, _ = listener.accept()
            threading.Thread(target=self._caller, args=(sock,), name="ember-direct-caller", daemon=True).start()

    def _caller(self, sock: socket.socket) -> None:
        conn = CallerConnection(sock)
        try:
            if not hmac.compare_digest(recv_frame(sock, MAX_TOKEN_FRAME), self._token):
                return
            send_frame(sock, self._hello)
            for data in read_frames(sock):
                batch = raylet_pb2.DirectCalls.FromString(data)
                if batch.calls:
                    self._on_calls(list(batch.calls), conn)
                if batch.cancel:
                    self._on_cancel(list(batch.cancel))
        except Exception as e:  # a broken or malformed caller: drop it, keep serving the others
            log.warning("direct caller dropped: %s", e)
        finally:
            sock.close()


# ---- the caller's side ------------------------------------------------------


class ActorChannel:
    """A caller's route to one actor: its direct connection (if any), the
    calls in flight on it, and the calls that wait for them to finish before
    going through the raylet. Guarded by the client's direct-call lock."""

    def __init__(self, actor_id: bytes) -> None:
        self.actor_id = actor_id
        self.sock: socket.socket | None = None
        self.worker_id = b""
        # task id -> (spec, what must live until the result is in)
        self.inflight: dict[bytes, tuple[raylet_pb2.TaskSpec, Any]] = {}
        self.raylet_calls = 0  # calls on their way through the raylet
        self.returnless = False  # a num_returns=0 call went via the raylet: its end is never seen
        self.deferred: list[tuple[raylet_pb2.TaskSpec, Any]] = []  # (spec, what must live until it is submitted)
        self.cancel_deferred: set[bytes] = set()
        self.retry_at = 0.0
        self.elsewhere = False  # the actor lives on another node: always through the raylet
        # A kill of ours went to the raylet: until a call sent after it is
        # back (the raylet has handled the kill, the old worker is gone),
        # its worker may still answer a connect and run a call it must not.
        self.killed = False
        self.kill_barrier: bytes | None = None  # first return of the first call sent after the kill

    @property
    def direct_ok(self) -> bool:
        return (self.raylet_calls == 0 and not self.returnless and not self.deferred and not self.elsewhere
                and not self.killed)

    def connect(self, address: str, token: str, node_id: bytes) -> socket.socket | None:
        """Open the connection if the actor listens (None if not, for now)."""
        if time.monotonic() < self.retry_at:
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.connect(address)
            send_frame(sock, token.encode())
            hello = raylet_pb2.DirectReplies.FromString(recv_frame(sock)).hello
            if hello.actor_id != self.actor_id:
                raise ConnectionError("another actor answered")
            if hello.node_id != node_id:  # (nodes sharing a machine and a session dir)
                self.elsewhere = True
                raise ConnectionError("the actor is on another node")
            sock.settimeout(None)
        except (OSError, ValueError, DecodeError):
            sock.close()
            self.retry_at = time.monotonic() + RETRY_AFTER_S
            return None
        self.sock = sock
        self.worker_id = hello.worker_id
        return sock

    def send(self, calls: list[raylet_pb2.ExecuteTask] | None = None, cancel: list[bytes] | None = None) -> bool:
        """False if the connection is broken (its reader handles that)."""
        sock = self.sock
        if sock is None:
            return False
        try:
            send_frame(sock, raylet_pb2.DirectCalls(calls=calls or (), cancel=cancel or ()).SerializeToString())
            return True
        except OSError:
            return False

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()



class Cancelled(enum.Enum):
    """How DirectCaller.cancel dealt with a call."""
    SENT_TO_ACTOR = enum.auto()  # it ran direct: the actor's worker cancels it
    WHEN_SUBMITTED = enum.auto()  # it waited to go through the raylet: cancelled as it goes


class DirectCaller:
    """A client's actor calls: straight to the actor's worker where it can,
    else through the raylet, one caller's calls to an actor in order.

    `put(item)` queues an item for the raylet, `flush()` sends what is
    queued; `objects` and `results` are the client's object states (its
    refs to results are made with `ref_owner`, the client that counts
    them); `info` is the client's registration (session dir, node id),
    filled in once it connected. Channels are guarded by `results.lock`."""

    def __init__(self, put: Callable[[Item], None], flush: Callable[[], None], objects: ObjectStates,
                 results: DirectResults, ref_owner: Any, info: raylet_pb2.ClientRegistered, token: str) -> None:
        self._put = put
        self._flush = flush
        self._objects = objects
        self._results = results
        self._lock = results.lock
        self._ref_owner = ref_owner
        self._info = info
        self._token = token
        self.channels: dict[bytes, ActorChannel] = {}
        # First return of each call sent through the raylet -> its channel
        # and our ref to it (held until it is back).
        self._raylet_call_returns: dict[bytes, tuple[ActorChannel, ObjectRef]] = {}
        self._closed = False

    def direct_worker(self, actor_id: bytes) -> bytes | None:
        """The worker our direct connection to the actor goes to; None if
        there is none (calls go through the raylet)."""
        with self._lock:
            channel = self.channels.get(actor_id)
            return channel.worker_id if channel is not None and channel.sock is not None else None

    def submit(self, spec: raylet_pb2.TaskSpec, keep: Any, direct: bool) -> ObjectRef | None:
        """As CoreClient.submit_actor_call, on the local transport."""
        first_id = ids.object_id_for(spec.task_id, 1)
        objects, owner = self._objects, self._ref_owner
        with self._lock:
            channel = self._channel(spec.actor_id)
            if channel.deferred or (channel.inflight and not direct):
                # Its arguments must outlive the caller's refs until the
                # raylet pins them at submission.
                args = [ObjectRef(object_id, owner) for object_id in (*spec.dependencies, *spec.nested_refs)]
                self._put((ItemKind.RESERVE, spec))
                first = ObjectRef(first_id, owner) if spec.num_returns else None
                channel.deferred.append((spec, (keep, args, first)))
                returns = [ids.object_id_for(spec.task_id, i + 1) for i in range(spec.num_returns)]
                with objects.cond:  # a get now must not subscribe: the raylet does not know them yet
                    objects.expect(returns)
                return first
            if direct and channel.direct_ok and (channel.sock is not None or self._open(channel)):
                self._results.states[first_id] = DirectState.RUNNING
                with objects.cond:
                    objects.expect((first_id,))
                first = ObjectRef(first_id, owner)
                channel.inflight[spec.task_id] = (spec, keep)
                channel.send(calls=[raylet_pb2.ExecuteTask(spec=spec)])  # (if broken, its reader resubmits it)
                return first
            first = self._via_raylet(channel, spec, ItemKind.SUBMIT)
        self._flush()
        return first

    def _channel(self, actor_id: bytes) -> ActorChannel:
        channel = self.channels.get(actor_id)
        if channel is None:
            channel = self.channels[actor_id] = ActorChannel(actor_id)
        return channel

    def _via_raylet(self, channel: ActorChannel, spec: raylet_pb2.TaskSpec,
                    kind: ItemKind) -> ObjectRef | None:
        """Queue an actor call for the raylet, counted until its first
        return is back (the direct lock is held). Returns our ref to it,
        held until then: the raylet pushes it to us when ready even if the
        caller's refs are gone by then."""
        first = None
        if spec.num_returns == 0:
            channel.returnless = True
        else:
            object_id = ids.object_id_for(spec.task_id, 1)
            first = ObjectRef(object_id, self._ref_owner)
            channel.raylet_calls += 1
            self._raylet_call_returns[object_id] = (channel, first)
            if channel.killed and channel.kill_barrier is None:
                channel.kill_barrier = object_id
        self._put((kind, spec))  # type: ignore[arg-type]  # (SUBMIT or RESUBMIT)
        return first

    def _open(self, channel: ActorChannel) -> bool:
        sock = channel.connect(socket_address(self._info.session_dir, channel.actor_id), self._token,
                               self._info.node_id)
        if sock is None:
            return False
        threading.Thread(target=self._read, args=(channel, sock), name="ember-direct-reader", daemon=True).start()
        return True

    def _read(self, channel: ActorChannel, sock: socket.socket) -> None:
        """Results of one actor's direct calls, until the connection breaks."""
        try:
            for data in read_frames(sock):
                for result in raylet_pb2.DirectReplies.FromString(data).results:
                    self.result(channel, result)
        except Exception as e:  # (OSError, or a malformed frame): the calls in flight go to the raylet
            log.debug("direct connection to actor %s broke: %s", channel.actor_id.hex(), e)
        self.broken(channel, sock)

    def result(self, channel: ActorChannel, result: raylet_pb2.TaskResult) -> None:
        """A direct call's result is back: inline values stay ours until
        they are passed on; stored ones are the raylet's at once."""
        publish: list[common_pb2.ObjectValue] = []
        states, objects = self._results.states, self._objects
        with self._lock:
            if channel.inflight.pop(result.task_id, None) is None:
                return
            for value in result.returns:
                object_id = value.object_id
                state = states.get(object_id)
                if state is None and value.WhichOneof("location") != "stored_size":
                    continue  # nobody refers to it any more
                if state is DirectState.RUNNING and value.WhichOneof("location") != "stored_size":
                    states[object_id] = DirectState.HERE
                else:  # stored values are the raylet's at once (the store frees them with it)
                    states.pop(object_id, None)
                    publish.append(value)
                with objects.cond:
                    if object_id in objects.live:
                        objects.values[object_id] = value
                        objects.subscribed.discard(object_id)
                        if objects.watchers:
                            objects.arrived(object_id)
                    objects.cond.notify_all()
            for value in publish:
                self._put((ItemKind.PUT_DIRECT, value))
            if not channel.inflight:
                self._submit_deferred(channel)
        if publish or not channel.inflight:
            self._flush()

    def _submit_deferred(self, channel: ActorChannel) -> None:
        """The calls that waited for the direct ones go to the raylet, in order."""
        deferred, channel.deferred = channel.deferred, []
        for spec, _keep in deferred:
            self._via_raylet(channel, spec, ItemKind.RESUBMIT)  # (the refs in _keep drop after it, in queue order)
            if spec.task_id in channel.cancel_deferred:
                self._put((ItemKind.CANCEL, raylet_pb2.CancelTask(task_id=spec.task_id)))
        channel.cancel_deferred.clear()

    def broken(self, channel: ActorChannel, sock: socket.socket) -> None:
        """The actor's worker went away (or we are closing): the calls in
        flight go to the raylet, marked with the worker they ran on, so it
        retries or fails them as for a call it had sent there itself."""
        with self._lock:
            if channel.sock is not sock or self._closed:
                return  # handled already (a kill), or we are closing
            self._break(channel)
        self._flush()

    def _break(self, channel: ActorChannel) -> None:
        """Close the connection; its calls in flight, then the deferred
        ones, go to the raylet, in order (the direct lock is held)."""
        channel.close()
        channel.retry_at = time.monotonic() + RETRY_AFTER_S
        inflight, channel.inflight = channel.inflight, {}
        for spec, _keep in inflight.values():
            for i in range(spec.num_returns):
                self._results.states.pop(ids.object_id_for(spec.task_id, i + 1), None)
            spec.direct_worker_id = channel.worker_id
            self._via_raylet(channel, spec, ItemKind.RESUBMIT)
        self._submit_deferred(channel)

    def raylet_calls_done(self, ready: Any) -> None:
        """Actor calls that went through the raylet and are back: once none
        is left, the next call to that actor may go direct."""
        if not self._raylet_call_returns:
            return
        with self._lock:
            for value in ready:
                entry = self._raylet_call_returns.pop(value.object_id, None)
                if entry is not None:
                    channel = entry[0]
                    channel.raylet_calls -= 1
                    channel.retry_at = 0.0  # the actor answered: it may be listening now
                    if value.object_id == channel.kill_barrier:
                        channel.killed, channel.kill_barrier = False, None

    def cancel(self, task_id: bytes) -> Cancelled | None:
        """Cancel a call of ours the raylet has not seen; None if there is
        none with that id (the raylet cancels it)."""
        with self._lock:
            for channel in self.channels.values():
                if task_id in channel.inflight:
                    channel.send(cancel=[task_id])  # (an actor's call: never forced, as in Ray)
                    return Cancelled.SENT_TO_ACTOR
                if any(spec.task_id == task_id for spec, _keep in channel.deferred):
                    channel.cancel_deferred.add(task_id)  # the raylet does not know it yet
                    return Cancelled.WHEN_SUBMITTED
        return None

    def killing(self, actor_id: bytes) -> None:
        """A kill of the actor goes to the raylet: calls after it go through
        the raylet, behind it (they run on the restarted actor); those in
        flight go as cut off."""
        with self._lock:
            channel = self._channel(actor_id)
            if channel.sock is not None:
                self._break(channel)
            channel.killed, channel.kill_barrier = True, None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for channel in self.channels.values():
                channel.close()
