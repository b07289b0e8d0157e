"""Callbacks when objects become ready, for futures and `await ref`.

One thread per client waits on every watched object at once (a thread per
future would cost ~8 MB of address space and a thread start each); it runs
the callbacks of those that are ready, on its own thread, in the order they
became ready. A callback must not block for long: the ones behind it wait.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable

from ember._private.client_transport import ConnectionLost

if TYPE_CHECKING:
    from ember._private.core_client import CoreClient
    from ember._private.object_ref import ObjectRef

log = logging.getLogger(__name__)

ReadyCallback = Callable[[BaseException | None], None]  # None: ready; else why it never will be


class ReadyWatcher:
    def __init__(self, client: "CoreClient") -> None:
        self._client = client
        self._lock = threading.Lock()
        # object id -> (the ref, kept alive while watched; its callbacks)
        self._watched: dict[bytes, tuple[Any, list[ReadyCallback]]] = {}
        self._changed = False  # ids were added: the waiting thread starts over with them
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None

    def on_ready(self, ref: "ObjectRef", callback: ReadyCallback) -> None:
        """Run `callback(None)` once the object is readable here (at once,
        on this thread, if it is), or `callback(error)` if the connection to
        the raylet is lost first."""
        client = self._client
        oid = ref.binary()
        with client.objects.cond:
            ready = oid in client.objects.values
        if ready:
            callback(None)
            return
        with self._lock:
            failed = self._failed
            if failed is None:
                entry = self._watched.get(oid)
                if entry is None:
                    self._watched[oid] = (ref, [callback])
                else:
                    entry[1].append(callback)
                self._changed = True
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="ember-ready-watcher", daemon=True)
                    self._thread.start()
        if failed is not None:
            callback(failed)
            return
        client.wake_waiters()

    def future(self, ref: "ObjectRef") -> concurrent.futures.Future[Any]:
        """A future resolved with the object's value (or its error)."""
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        client = self._client

        def resolve(error: BaseException | None) -> None:
            if not fut.set_running_or_notify_cancel():
                return  # cancelled by its holder
            try:
                if error is not None:
                    raise error
                fut.set_result(client.decode(client.get_value(ref.binary())))
            except BaseException as e:
                fut.set_exception(e)

        self.on_ready(ref, resolve)
        return fut

    def _changed_since(self) -> bool:
        return self._changed

    def _run(self) -> None:
        client = self._client
        while True:
            with self._lock:
                self._changed = False
                watching = list(self._watched)
            try:
                ready = client.wait_values(watching, 1, None, interrupt=self._changed_since, report_blocked=False)
            except ConnectionLost as e:
                self._fail_all(e)
                return
            if not ready:
                continue
            with self._lock:
                done = [self._watched.pop(oid) for oid in ready if oid in self._watched]
            for _ref, callbacks in done:
                for callback in callbacks:
                    try:
                        callback(None)
                    except Exception:  # a bug in a callback must not stop the others
                        log.exception("ready callback failed")

    def _fail_all(self, error: BaseException) -> None:
        with self._lock:
            self._failed = error
            done, self._watched = list(self._watched.values()), {}
            self._thread = None
        for _ref, callbacks in done:
            for callback in callbacks:
                callback(error)
