"""The cluster's state, as Ray's `ray.util.state`: list_tasks, list_actors,
list_objects, list_workers, list_nodes, list_jobs, list_placement_groups,
get_task, summarize_tasks/actors/objects, list_logs and get_log.

Rows are dicts with Ray's keys (also readable as attributes: `t.state`).
`filters` are Ray's: [(key, "=" or "!=", value)], string values compared
case-insensitively; an unknown key or predicate raises ValueError.
`address` is the GCS ("auto": this machine's latest cluster); by default
the cluster this driver is connected to. Each call asks the GCS and every
alive node afresh (docs/observability.md)."""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Any, Iterator, Sequence

from ember_common import auth, state_query
from ember_common.state_client import COLUMNS, StateClient
from ember_common.state_query import DEFAULT_LIMIT, StateQueryError

__all__ = ["StateQueryError", "get_log", "get_task", "list_actors", "list_jobs", "list_logs", "list_nodes",
           "list_objects", "list_placement_groups", "list_tasks", "list_workers", "summarize_actors",
           "summarize_objects", "summarize_tasks"]


class StateRow(dict):  # type: ignore[type-arg]
    """A row: a dict with Ray's keys, whose keys also read as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@contextlib.contextmanager
def state_client(address: str | None = None) -> Iterator[StateClient]:
    """A StateClient for the cluster at `address` (None: the connected one, else "auto")."""
    from ember._private import runtime
    from ember_common.config import Config

    client = runtime._state.client
    if address is None and client is not None:
        gcs_address, token = client.info.gcs_address, client._token
    else:
        gcs_address, token, _ = runtime._resolve(address or "auto", os.environ.get(auth.TOKEN_ENV), Config.load())
    state = StateClient(gcs_address, token)
    try:
        yield state
    finally:
        state.close()


def _list(resource: str, address: str | None, filters: Sequence[Sequence[Any]] | None,
          limit: int | None) -> list[StateRow]:
    checked = state_query.check_filters(filters, COLUMNS[resource], resource)
    with state_client(address) as state:
        rows = getattr(state, resource)()
        _warn(state)
    return [StateRow(r) for r in state_query.select(rows, checked, limit)]


def _warn(state: StateClient) -> None:
    for message in state.warnings():
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def list_tasks(address: str | None = None, filters: Sequence[Sequence[Any]] | None = None,
               limit: int = DEFAULT_LIMIT, timeout: int = 30, detail: bool = False,
               raise_on_missing_output: bool = True) -> list[StateRow]:
    """Task attempts the nodes' task event buffers hold, oldest first."""
    return _list("tasks", address, filters, limit)


def list_actors(address: str | None = None, filters: Sequence[Sequence[Any]] | None = None,
                limit: int = DEFAULT_LIMIT, timeout: int = 30, detail: bool = False,
                raise_on_missing_output: bool = True) -> list[StateRow]:
    return _list("actors", address, filters, limit)


def list_objects(address: str | None = None, filters: Sequence[Sequence[Any]] | None = None,
                 limit: int = DEFAULT_LIMIT, timeout: int = 30, detail: bool = False,
                 raise_on_missing_output: bool = True) -> list[StateRow]:
    return _list("objects", address, filters, limit)


def list_workers(address: str | None = None, filters: Sequence[Sequence[Any]] | None = None,
                 limit: int = DEFAULT_LIMIT, timeout: int = 30, detail: bool = False,
                 raise_on_missing_output: bool = True) -> list[StateRow]:
    return _list("workers", address, filters, limit)


def list_nodes(address: str | None = None, filters: Sequence[Sequence[Any]] | None = None,
               limit: int = DEFAULT_LIMIT, timeout: int = 30, detail: bool = False,
               raise_on_missing_output: bool = True) -> list[StateRow]:
    return _list("nodes", address, filters, limit)


def list_jobs(address: str | None = None, filters: Sequence[Sequence[Any]] | None = None,
              limit: int = DEFAULT_LIMIT, timeout: int = 30, detail: bool = False,
              raise_on_missing_output: bool = True) -> list[StateRow]:
    return _list("jobs", address, filters, limit)


def list_placement_groups(address: str | None = None, filters: Sequence[Sequence[Any]] | None = None,
                          limit: int = DEFAULT_LIMIT, timeout: int = 30, detail: bool = False,
                          raise_on_missing_output: bool = True) -> list[StateRow]:
    return _list("placement_groups", address, filters, limit)


def get_task(id: str, address: str | None = None, timeout: int = 30) -> StateRow | None:
    """The latest attempt of the task with this id (hex), or None if no node has events of it."""
    try:
        bytes.fromhex(id)
    except (TypeError, ValueError):
        raise StateQueryError(f"task id {id!r} is not a hex id") from None
    rows = _list("tasks", address, [("task_id", "=", id)], None)
    return max(rows, key=lambda r: r["attempt_number"]) if rows else None


def summarize_tasks(address: str | None = None, timeout: int = 30,
                    raise_on_missing_output: bool = True) -> dict[str, Any]:
    with state_client(address) as state:
        rows = state.tasks()
        _warn(state)
    return state_query.summarize_tasks(rows)


def summarize_actors(address: str | None = None, timeout: int = 30,
                     raise_on_missing_output: bool = True) -> dict[str, Any]:
    with state_client(address) as state:
        return state_query.summarize_actors(state.actors())


def summarize_objects(address: str | None = None, timeout: int = 30,
                      raise_on_missing_output: bool = True) -> dict[str, Any]:
    with state_client(address) as state:
        rows = state.objects()
        _warn(state)
    return state_query.summarize_objects(rows)


def list_logs(address: str | None = None, node_id: str | None = None, node_ip: str | None = None,
              glob_filter: str | None = None, timeout: int = 30) -> dict[str, list[str]]:
    """{node id: [file names]} of every node's log files (Ray gives them
    for one node; here, for `node_id` if given, else for every node)."""
    import fnmatch

    with state_client(address) as state:
        listed = state.log_files(node_id)
    out = {}
    for node, files in listed:
        if node_ip is not None and node.node_address != node_ip:
            continue
        out[node.node_id.hex()] = [f.name for f in files if glob_filter is None or fnmatch.fnmatch(f.name, glob_filter)]
    return out


def get_log(address: str | None = None, node_id: str | None = None, filename: str | None = None,
            pid: int | None = None, actor_id: str | None = None, task_id: str | None = None,
            tail: int = 1000, follow: bool = False, timeout: int | None = None) -> Iterator[str]:
    """A log file's lines, as Ray's get_log: named by node and file name, or
    by a worker's pid, an actor's id or a task's id (then its worker's log).
    `tail` lines (-1: the whole file); `follow` goes on until the caller stops."""
    from ember._private import log_lookup

    with state_client(address) as state:
        node, name = log_lookup.find(state, node_id=node_id, filename=filename, pid=pid, actor_id=actor_id,
                                     task_id=task_id)
        pending = b""
        for data in state.stream_log(node, name, tail_lines=max(0, tail), follow=follow):
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.decode(errors="replace")
        if pending:
            yield pending.decode(errors="replace")
