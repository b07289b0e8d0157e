"""The session's log directory as `ember logs` reads it through a raylet:
which files are this node's, a name checked to stay inside the directory,
where a file's last N lines begin, and its bytes from an offset.

Plain file reads, no sockets (tests/unit/test_log_files.py); the servicer
runs them off the event loop.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from typing import Iterable

from ember_common.errors import InvalidArgument, NotFound

CHUNK_BYTES = 64 * 1024
_MAX_NAME_BYTES = 255  # (NAME_MAX)
# Services' files on a node: "raylet-<8 hex>.log", "objectstore-<8 hex>.out".
_NODE_FILE = re.compile(r"^(raylet|objectstore)-([0-9a-f]{8})\.")
_WORKER_FILE = re.compile(r"^worker-[0-9a-f]{12}\.log$")


@dataclasses.dataclass(frozen=True)
class LogFileInfo:
    name: str
    size: int
    mtime: float


class LogDirectory:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = pathlib.Path(path)

    def resolve(self, name: str) -> pathlib.Path:
        """The file `name` names: a plain name of a regular file in this
        directory. InvalidArgument for anything else that could point
        elsewhere (a path, '..', a link out); NotFound if there is no such file."""
        if not name or "/" in name or "\\" in name or "\0" in name or name in (".", ".."):
            raise InvalidArgument(f"log file name {name[:100]!r} must be a plain file name in the session's "
                                  "log directory")
        if len(name.encode()) > _MAX_NAME_BYTES:
            raise InvalidArgument(f"log file name of {len(name.encode())} bytes; a file name has at most "
                                  f"{_MAX_NAME_BYTES}")
        try:
            root = self.path.resolve()
            path = (root / name).resolve()
            if path.parent != root:
                raise InvalidArgument(f"log file {name!r} leads out of the session's log directory")
            if not path.is_file():
                raise NotFound(f"no log file {name!r} on this node")
        except (OSError, RuntimeError) as e:  # (a name the file system refuses; RuntimeError: a link loop)
            raise InvalidArgument(f"log file {name[:100]!r} cannot be read: {e}") from None
        return path

    def files(self) -> list[LogFileInfo]:
        """Every regular file in the directory, by name."""
        out = []
        try:
            entries = list(os.scandir(self.path))
        except FileNotFoundError:
            return []
        for entry in entries:
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # (gone meanwhile)
            out.append(LogFileInfo(entry.name, st.st_size, st.st_mtime))
        return sorted(out, key=lambda f: f.name)


def is_node_file(name: str, node_short_id: str, worker_files: Iterable[str], is_head: bool) -> bool:
    """Whether a file of a log directory (which nodes on one machine may
    share) is this node's: its raylet's and object store's files, its
    workers' logs, and on the head every file that names no node or worker
    (the GCS's, the zygote's)."""
    match = _NODE_FILE.match(name)
    if match:
        return match.group(2) == node_short_id
    if _WORKER_FILE.match(name):
        return name in worker_files
    return is_head


def tail_offset(path: pathlib.Path, lines: int) -> int:
    """Where the last `lines` lines of the file begin (0: it has no more
    than that). A last line without its newline counts as a line."""
    if lines <= 0:
        return 0
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        pos = end
        newlines = 0
        block = 8192
        first = True
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step)
            if first and data.endswith(b"\n"):
                data = data[:-1]  # (the file's final newline ends the last line; it starts none)
            first = False
            i = len(data)
            while True:
                i = data.rfind(b"\n", 0, i)
                if i < 0:
                    break
                newlines += 1
                if newlines == lines:
                    return pos + i + 1
        return 0


def read_chunk(path: pathlib.Path, offset: int, size: int = CHUNK_BYTES) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)
