"""Session directories: where a cluster's token, logs, sockets and process
records live. `/tmp/ember-sessions/session_latest` points at the newest one started
by `ember start`, which is what `init(address="auto")` joins."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import pathlib
import sys
import time
from typing import Any

from ember_common import auth, ids
from ember_common.tls import TlsFiles

LATEST = "session_latest"
_OWNER = "owner.json"


class StartedBy(str, enum.Enum):
    """Who started a session's node, and so who may stop it: `ember stop`
    stops only what `ember start` made; a program's private cluster
    (`ember.init()`, `cluster_utils.Cluster`) stops with that program."""

    CLI = "ember start"
    DRIVER = "ember.init"
    TEST_CLUSTER = "cluster_utils.Cluster"


@dataclasses.dataclass(frozen=True)
class SessionOwner:
    started_by: StartedBy
    pid: int  # the process that started it
    command: str  # its command line, for messages

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def create(root: str, token: str | None, started_by: StartedBy) -> tuple[pathlib.Path, str]:
    """A new session directory with its token (0600) and a record of who
    started it. Returns (dir, token)."""
    root_path = pathlib.Path(root)
    root_path.mkdir(parents=True, exist_ok=True)
    name = f"session_{time.strftime('%Y%m%d-%H%M%S')}_{os.getpid()}_{ids.new_unique_id().hex()[:6]}"
    path = root_path / name
    (path / "logs").mkdir(parents=True, mode=0o700)
    (path / "nodes").mkdir(mode=0o700)
    os.chmod(path, 0o700)
    token = token or auth.new_token()
    auth.write_token(path / "token", token)
    write_json(path / _OWNER, {"started_by": started_by.value, "pid": os.getpid(),
                               "command": " ".join(sys.argv)[:300]})
    return path, token


def owner(session_dir: pathlib.Path) -> SessionOwner | None:
    """Who started the session (None for one this version did not make)."""
    try:
        data = read_json(session_dir / _OWNER)
        return SessionOwner(StartedBy(data["started_by"]), int(data["pid"]), str(data["command"]))
    except (OSError, ValueError, KeyError):
        return None


def tls_dir(session_dir: pathlib.Path) -> pathlib.Path:
    """Where a TLS session keeps its node's certificate and key, the CA's
    certificate and, on a head that made the CA, the CA's key (all keys 0600)."""
    return session_dir / "tls"


def tls_files(session_dir: pathlib.Path) -> TlsFiles | None:
    """The node files of a TLS session, if it is one."""
    directory = tls_dir(session_dir)
    files = TlsFiles(directory / "node.crt", directory / "node.key", directory / "ca.crt")
    return files if files.cert.is_file() and files.key.is_file() and files.ca.is_file() else None


def mark_latest(session_dir: pathlib.Path) -> None:
    link = session_dir.parent / LATEST
    tmp = session_dir.parent / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(session_dir.name)
    tmp.rename(link)


def latest(root: str) -> pathlib.Path | None:
    link = pathlib.Path(root) / LATEST
    return link.resolve() if link.exists() else None


def find_by_address(root: str, gcs_address: str) -> pathlib.Path | None:
    """The newest live session on this machine whose cluster serves
    `gcs_address` (its `cluster.json`, written by `ember start` and by
    cluster_utils.Cluster): where a driver joining by address finds the
    token. A replica's address matches too."""
    found = []
    for record in pathlib.Path(root).glob("session_*/cluster.json"):
        try:
            addresses = read_json(record)["gcs_address"].split(",")
        except (OSError, ValueError, KeyError):
            continue  # being written or removed
        if gcs_address in addresses and (record.parent / "token").exists():
            found.append(record.parent)
    return max(found, key=lambda p: p.stat().st_mtime, default=None)


def write_json(path: pathlib.Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.rename(path)


def read_json(path: pathlib.Path) -> dict[str, Any]:
    return json.loads(path.read_text())
