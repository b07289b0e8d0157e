"""`ember list`, `ember summary`, `ember timeline` and `ember logs`: the
cluster's state through ember.util.state (the GCS, and each node's raylet).

    ember list tasks|actors|objects|workers|nodes|jobs|placement-groups
        [--filter KEY=VALUE | --filter KEY!=VALUE ...] [--limit N] [--format table|json]
    ember summary tasks|actors|objects
    ember timeline [--output FILE]
    ember logs [--node-id ID] [FILE] [--pid PID | --actor-id ID | --task-id ID] [--follow] [--tail N]
"""

from __future__ import annotations

import json
import time
import warnings
from typing import Any, Callable

import click
import grpc

from ember._private.cli_tables import Column, amount, echo_listing
from ember_common.state_query import DEFAULT_LIMIT, StateQueryError, parse_filter

_address_option = click.option("--address", default=None, help="GCS address (default: this machine's latest cluster).")
_filter_option = click.option("--filter", "filters", multiple=True,
                              help="KEY=VALUE or KEY!=VALUE (Ray's syntax; repeatable, all must hold).")
_limit_option = click.option("--limit", type=int, default=DEFAULT_LIMIT, show_default=True, help="Rows at most.")
_format_option = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None,
                              help="table (default), or a JSON array of Ray's rows.")


def _asking(call: Callable[[], Any]) -> Any:
    """`call`'s answer; a clear one-line error for a bad query or an
    unreachable cluster; what it could not see (its warnings) on stderr."""
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", RuntimeWarning)
            answer = call()
        for warning in seen:
            click.echo(f"note: {warning.message}", err=True)
        return answer
    except StateQueryError as e:
        raise click.UsageError(str(e)) from None
    except ConnectionError as e:
        raise click.ClickException(str(e)) from None
    except grpc.RpcError as e:
        raise click.ClickException(f"{e.code().name}: {e.details()}") from None


def _list(resource: str, address: str | None, filters: tuple[str, ...], limit: int) -> list[dict[str, Any]]:
    from ember.util import state

    def ask() -> list[dict[str, Any]]:
        parsed = [parse_filter(f) for f in filters]
        return getattr(state, f"list_{resource}")(address=address, filters=parsed, limit=limit)

    return _asking(ask)


def _show(rows: list[dict[str, Any]], fmt: str | None, as_json_lines: bool, title: str,
          columns: list[Column]) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
    else:
        echo_listing(rows, as_json_lines, title, columns)


@click.group(name="list")
def list_() -> None:
    """List the cluster's tasks, actors, objects, workers, nodes, jobs or placement groups."""


_TASK_COLUMNS = [
    Column("TASK_ID", 12, lambda r: r["task_id"]),
    Column("ATTEMPT", 7, lambda r: r["attempt_number"], align=">", clip=False),
    Column("STATE", 23, lambda r: r["state"], clip=False),
    Column("TYPE", 19, lambda r: r["type"], clip=False),
    Column("NODE", 8, lambda r: r["node_id"] or "-"),
    Column("PID", 7, lambda r: r["worker_pid"] or "-", align=">", clip=False),
    Column("ERROR", 24, lambda r: r["error_type"] or ""),
    Column("NAME", 0, lambda r: r["name"]),
]


@list_.command()
@_address_option
@_filter_option
@_limit_option
@_format_option
def tasks(address: str | None, filters: tuple[str, ...], limit: int, fmt: str | None) -> None:
    """Task attempts from every node's task events (oldest first)."""
    rows = _list("tasks", address, filters, limit)
    _show(rows, fmt, False, f"{len(rows)} task attempt(s)", _TASK_COLUMNS)


_ACTOR_COLUMNS = [
    Column("ACTOR_ID", 12, lambda r: r["actor_id"]),
    Column("CLASS", 20, lambda r: r["class_name"]),
    Column("STATE", 16, lambda r: r["state"], clip=False),
    Column("NAME", 16, lambda r: f"{r['namespace']}/{r['name']}" if r["namespace"] and r["name"] else r["name"]),
    Column("NODE", 8, lambda r: r["node_id"]),
    Column("PID", 7, lambda r: r["pid"], align=">", clip=False),
    Column("RESTARTS", 8, lambda r: r["restarts"], align=">", clip=False),
    Column("DEATH", 0, lambda r: r["death"]),
]


@list_.command()
@_address_option
@click.option("--all", "show_all", is_flag=True, help="Include dead actors (implied by a filter on state).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per actor.")
@_filter_option
@_limit_option
@_format_option
def actors(address: str | None, show_all: bool, as_json: bool, filters: tuple[str, ...], limit: int,
           fmt: str | None) -> None:
    """Actors: id, class, state, name, node, pid, restarts (and why dead ones died)."""
    show_all = show_all or any(f.split("!=")[0].split("=")[0].strip() == "state" for f in filters)
    if not show_all:
        filters = (*filters, "state!=DEAD")
    rows = _list("actors", address, filters, limit)
    _show(rows, fmt, as_json, f"{len(rows)} actor(s)" + ("" if show_all else " alive or starting (--all adds dead ones)"),
          _ACTOR_COLUMNS)


def _bundles_cell(r: dict[str, Any]) -> str:
    bundles = ", ".join(
        "{" + ", ".join(f"{k}: {amount(k, v)}" for k, v in sorted(b.items())) + "}"
        + (f"@{r['nodes'][i][:8]}" if r["nodes"] else "") for i, b in enumerate(r["bundles"]))
    why = f"  ({r['pending_reason']})" if r["state"] == "PENDING" and r["pending_reason"] else ""
    return bundles + why


_GROUP_COLUMNS = [
    Column("GROUP_ID", 12, lambda r: r["placement_group_id"]),
    Column("NAME", 16, lambda r: r["name"]),
    Column("STRATEGY", 13, lambda r: r["strategy"], clip=False),
    Column("STATE", 8, lambda r: r["state"], clip=False),
    Column("BUNDLES", 0, _bundles_cell),
]


@list_.command(name="placement-groups")
@_address_option
@click.option("--all", "show_all", is_flag=True, help="Include removed groups (implied by a filter on state).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per group.")
@_filter_option
@_limit_option
@_format_option
def placement_groups(address: str | None, show_all: bool, as_json: bool, filters: tuple[str, ...], limit: int,
                     fmt: str | None) -> None:
    """Placement groups: id, name, strategy, state, bundles and their nodes (or why pending)."""
    show_all = show_all or any(f.split("!=")[0].split("=")[0].strip() == "state" for f in filters)
    if not show_all:
        filters = (*filters, "state!=REMOVED")
    rows = _list("placement_groups", address, filters, limit)
    _show(rows, fmt, as_json, f"{len(rows)} placement group(s)" + ("" if show_all else " (--all adds removed ones)"),
          _GROUP_COLUMNS)


_OBJECT_COLUMNS = [
    Column("OBJECT_ID", 14, lambda r: r["object_id"]),
    Column("SIZE", 10, lambda r: r["object_size"], align=">", clip=False),
    Column("STATUS", 9, lambda r: r["task_status"], clip=False),
    Column("REFERENCE", 20, lambda r: r["reference_type"], clip=False),
    Column("NODE", 8, lambda r: r["node_id"]),
    Column("PID", 0, lambda r: r["pid"] or "-"),
]
_WORKER_COLUMNS = [
    Column("WORKER_ID", 12, lambda r: r["worker_id"]),
    Column("ALIVE", 5, lambda r: r["is_alive"], clip=False),
    Column("NODE", 8, lambda r: r["node_id"]),
    Column("PID", 7, lambda r: r["pid"], align=">", clip=False),
    Column("ACTOR", 12, lambda r: r["actor_id"] or "-"),
    Column("EXIT", 0, lambda r: r["exit_detail"] or ""),
]
_NODE_COLUMNS = [
    Column("NODE_ID", 12, lambda r: r["node_id"]),
    Column("IP", 15, lambda r: r["node_ip"]),
    Column("HEAD", 5, lambda r: r["is_head_node"], clip=False),
    Column("STATE", 6, lambda r: r["state"], clip=False),
    Column("RESOURCES", 0, lambda r: ", ".join(f"{k}: {amount(k, v)}" for k, v in sorted(r["resources_total"].items()))),
]
_JOB_COLUMNS = [
    Column("JOB_ID", 8, lambda r: r["job_id"]),
    Column("STATUS", 9, lambda r: r["status"], clip=False),
    Column("DRIVER_PID", 10, lambda r: r["driver_pid"], align=">", clip=False),
    Column("NAMESPACE", 16, lambda r: r["namespace"]),
    Column("ENTRYPOINT", 0, lambda r: r["entrypoint"]),
]


def _simple_list(resource: str, what: str, columns: list[Column], doc: str) -> click.Command:
    @_address_option
    @_filter_option
    @_limit_option
    @_format_option
    def command(address: str | None, filters: tuple[str, ...], limit: int, fmt: str | None) -> None:
        rows = _list(resource, address, filters, limit)
        _show(rows, fmt, False, f"{len(rows)} {what}", columns)

    command.__doc__ = doc
    return click.command(name=resource)(command)


list_.add_command(_simple_list("objects", "object(s)", _OBJECT_COLUMNS, "Objects every node knows: size, status, who refers to them."))
list_.add_command(_simple_list("workers", "worker(s)", _WORKER_COLUMNS, "Workers every node started (alive, and recently exited)."))
list_.add_command(_simple_list("nodes", "node(s)", _NODE_COLUMNS, "The cluster's nodes."))
list_.add_command(_simple_list("jobs", "job(s)", _JOB_COLUMNS, "Jobs (drivers) the GCS knows."))


@click.command()
@click.argument("resource", type=click.Choice(["tasks", "actors", "objects"]))
@_address_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def summary(resource: str, address: str | None, fmt: str) -> None:
    """Counts of tasks (by function), actors (by class) or objects, by state."""
    from ember.util import state

    result = _asking(lambda: getattr(state, f"summarize_{resource}")(address=address))
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
        return
    cluster = result["cluster"]
    totals = {k: v for k, v in cluster.items() if k.startswith("total")}
    click.echo(", ".join(f"{k}: {v:g}" if isinstance(v, float) else f"{k}: {v}" for k, v in totals.items()))
    for key, entry in sorted(cluster["summary"].items()):
        counts = entry.get("state_counts") or entry.get("task_state_counts") or {}
        label = f"{key} ({entry['type']})" if "type" in entry else key
        click.echo(f"  {label}: " + ", ".join(f"{state_}: {n}" for state_, n in sorted(counts.items())))


@click.command()
@_address_option
@click.option("--output", default=None, help="File to write (default: a timestamped file in the current directory).")
def timeline(address: str | None, output: str | None) -> None:
    """Write the cluster's recent task events as Chrome trace JSON (chrome://tracing, Perfetto)."""
    from ember._private.timeline import timeline as write_timeline

    output = output or time.strftime("timeline-%Y-%m-%d_%H-%M-%S.json")
    _asking(lambda: write_timeline(output, address=address))
    click.echo(f"Trace file written to {output}: open it in chrome://tracing or https://ui.perfetto.dev")


@click.command()
@click.argument("filename", required=False)
@_address_option
@click.option("--node-id", default=None, help="The node (an id prefix; default: the head).")
@click.option("--pid", type=int, default=None, help="The log of the worker with this pid.")
@click.option("--actor-id", default=None, help="The log of this actor's worker.")
@click.option("--task-id", default=None, help="The log of the worker that ran this task.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing what is appended (until interrupted).")
@click.option("--tail", type=int, default=1000, show_default=True, help="Last lines to print (-1: the whole file).")
def logs(filename: str | None, address: str | None, node_id: str | None, pid: int | None, actor_id: str | None,
         task_id: str | None, follow: bool, tail: int) -> None:
    """List the cluster's log files (per node), or print one from any node."""
    from ember._private import log_lookup
    from ember.util.state import state_client

    def list_files() -> None:
        with state_client(address) as state:
            listed = state.log_files(node_id)
            missing = state.missing
        for node, files in listed:
            click.echo(f"node {node.node_id.hex()} ({node.node_address}{', head' if node.is_head else ''}):")
            for f in files:
                click.echo(f"  {f.name:40} {f.size:>10}" + (f"  pid {f.pid}" if f.pid else ""))
        for node_hex, why in missing:
            click.echo(f"node {node_hex[:8]}: cannot list logs: {why}", err=True)

    def print_file() -> None:
        with state_client(address) as state:
            node, name = log_lookup.find(state, node_id=node_id, filename=filename, pid=pid, actor_id=actor_id,
                                         task_id=task_id)
            stdout = click.get_binary_stream("stdout")
            for data in state.stream_log(node, name, tail_lines=max(0, tail), follow=follow):
                stdout.write(data)
                stdout.flush()

    if filename is None and pid is None and actor_id is None and task_id is None:
        _asking(list_files)
    else:
        try:
            _asking(print_file)
        except KeyboardInterrupt:
            pass


def register(main: click.Group) -> None:
    for command in (list_, summary, timeline, logs):
        main.add_command(command)


