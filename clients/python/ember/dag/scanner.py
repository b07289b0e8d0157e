"""Finding the DAG nodes nested anywhere inside an argument (in lists,
dicts, tuples or any picklable object), and rebuilding the argument with
each node replaced by its result, as Ray does: by pickling the value, with
the nodes pickled as persistent ids, so whatever pickle can walk is walked."""

from __future__ import annotations

import io
import pickle
from typing import Any, Callable

import cloudpickle

# Values that cannot hold a node: not worth a pickle.
_ATOMS = (type(None), bool, int, float, complex, str, bytes)


class _Finder(cloudpickle.Pickler):
    def __init__(self, file: Any, kind: type, buffers: list[pickle.PickleBuffer] | None) -> None:
        # Buffers (numpy arrays' data) go out of band: to find nodes they are
        # not copied at all; to rebuild a value they are kept as they are.
        super().__init__(file, protocol=5, buffer_callback=(lambda _: False) if buffers is None else buffers.append)
        self.kind = kind
        self.found: list[Any] = []

    def persistent_id(self, obj: Any) -> int | None:
        if isinstance(obj, self.kind):
            self.found.append(obj)
            return len(self.found) - 1
        return None


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)


class _Replacer(pickle.Unpickler):
    def __init__(self, file: Any, buffers: list[pickle.PickleBuffer], found: list[Any],
                 substitute: Callable[[Any], Any]) -> None:
        super().__init__(file, buffers=buffers)
        self._found = found
        self._substitute = substitute

    def persistent_load(self, pid: int) -> Any:
        return self._substitute(self._found[pid])


def find(value: Any, kind: type) -> list[Any]:
    """The instances of `kind` inside `value` (not inside those), each once,
    in the order pickle meets them. A value pickle cannot walk holds none
    that can be found: it fails later, when it is sent."""
    if isinstance(value, _ATOMS):
        return []
    finder = _Finder(_Discard(), kind, None)
    try:
        finder.dump(value)
    except Exception:  # pickling errors come in many types
        return []
    unique: dict[int, Any] = {}
    for node in finder.found:
        unique.setdefault(id(node), node)
    return list(unique.values())


def replace(value: Any, kind: type, substitute: Callable[[Any], Any]) -> Any:
    """A copy of `value` with each instance of `kind` inside it replaced by
    `substitute(instance)`."""
    out = io.BytesIO()
    buffers: list[pickle.PickleBuffer] = []
    finder = _Finder(out, kind, buffers)
    finder.dump(value)
    out.seek(0)
    return _Replacer(out, buffers, finder.found, substitute).load()
