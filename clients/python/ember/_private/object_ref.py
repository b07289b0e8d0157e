"""ObjectRef: a reference to a value that exists, or will, somewhere in the
cluster. Creating and dropping refs is counted by the process's core client
and reported to the owner in batches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ember._private import serialization

if TYPE_CHECKING:
    import concurrent.futures


class ObjectRef:
    __slots__ = ("_id", "_client", "__weakref__")

    def __init__(self, object_id: bytes, client: Any = None) -> None:
        self._id = object_id
        self._client = client
        if client is not None:
            client.ref_created(object_id)

    def binary(self) -> bytes:
        return self._id

    def hex(self) -> str:
        return self._id.hex()

    def task_id(self) -> bytes:
        return self._id[:16]

    def __repr__(self) -> str:
        return f"ObjectRef({self._id.hex()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectRef) and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id)

    def __del__(self) -> None:
        client = self._client
        if client is not None:
            try:
                client.ref_deleted(self._id)
            except Exception:  # interpreter shutdown
                pass

    def __reduce__(self) -> Any:
        serialization.note_nested_ref(self._id)
        return _rebuild_ref, (self._id,)

    def future(self) -> "concurrent.futures.Future[Any]":
        """A concurrent.futures.Future resolved with the value (or its error)."""
        from ember._private import runtime

        client = self._client if self._client is not None else runtime.client()
        return client.ready_watcher.future(self)

    def __await__(self) -> Any:
        import asyncio

        return asyncio.wrap_future(self.future()).__await__()


def _rebuild_ref(object_id: bytes) -> ObjectRef:
    from ember._private import runtime

    return ObjectRef(object_id, runtime.current_client_or_none())
