"""The `ember` command: start, stop and inspect clusters.

    ember start --head [--port 6380] [--num-cpus N] [--num-gpus N] [--resources JSON] [--autoscaling-config FILE]
    ember start --address HOST:PORT          # add a node to a running cluster
    ember stop [--force] [--grace-period S]   # stop every node started here (--node-id ID: just that one)
    ember status [--address HOST:PORT]        # nodes and their resources
    ember memory [--json]                    # objects per node: size, where, spilled, who refers to them
    ember list tasks|actors|objects|workers|nodes|jobs|placement-groups [--filter K=V] [--limit N] [--format table|json]
    ember summary tasks|actors|objects        # counts by function/class and state
    ember timeline [--output FILE]            # recent task events as Chrome trace JSON
    ember logs [--node-id ID] [FILE] [--pid PID | --actor-id ID | --task-id ID] [--follow] [--tail N]
    (list, summary, timeline and logs: cli_state.py)
    ember job submit|status|logs|stop|list     # jobs on the head node (cli_job)
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
from typing import Any

import click
import grpc
from ember.v1 import gcs_pb2

from ember import __version__
from ember._private import cli_autoscaler, cli_job, cli_state, cli_tls, node_launcher, session
from ember._private.cli_tables import Column as _Column
from ember._private.cli_tables import amount as _fmt
from ember._private.cli_tables import echo_json_lines as _echo_json_lines
from ember._private.cli_tables import echo_table as _echo_table
from ember_common import auth, tls
from ember_common.config import DEFAULT_GCS_PORT, Config


def _resources(value: str | None) -> dict[str, float]:
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as e:
        raise click.BadParameter(f"--resources must be JSON, e.g. '{{\"accel\": 2}}': {e}") from None
    if not isinstance(parsed, dict) or not all(isinstance(v, (int, float)) and v >= 0 for v in parsed.values()):
        raise click.BadParameter("--resources must map names to non-negative numbers")
    return {str(k): float(v) for k, v in parsed.items()}


_address_option = click.option("--address", default=None, help="GCS address (default: this machine's latest cluster).")


@click.group()
@click.version_option(__version__, prog_name="ember")
def main() -> None:
    """Ember: a distributed task and actor runtime."""


@main.command()
@click.option("--head", is_flag=True, help="Start the head node (GCS, object store, raylet).")
@click.option("--address", default=None, help="Join the cluster whose GCS is at HOST:PORT.")
@click.option("--port", type=int, default=DEFAULT_GCS_PORT, show_default=True, help="GCS port (head only).")
@click.option("--host", "--node-ip-address", "host", default="127.0.0.1", show_default=True,
              help="Address the services bind to.")
@click.option("--num-cpus", type=float, default=None, help="CPUs to offer (default: all cores).")
@click.option("--num-gpus", type=float, default=0, help="GPUs to offer.")
@click.option("--memory", type=float, default=0, help="Bytes of memory to offer as a resource.")
@click.option("--resources", default=None, help='Custom resources as JSON, e.g. \'{"accel": 2}\'.')
@click.option("--labels", default=None, help="Node labels as JSON.")
@click.option("--object-store-memory", type=int, default=None, help="Object store capacity in bytes.")
@click.option("--token", default=None, envvar=auth.TOKEN_ENV, help="Cluster token (joining nodes; default: this machine's latest session).")
@click.option("--storage", default="memory", show_default=True,
              help="Head only: where the GCS keeps its tables: memory, or etcd://HOST:PORT[,HOST:PORT...].")
@click.option("--cluster-name", default="default", show_default=True,
              help="Head only, with etcd: this cluster's key prefix (clusters may share one etcd).")
@click.option("--gcs-replicas", type=click.IntRange(1, 7), default=1, show_default=True,
              help="Head only, with etcd: GCS processes to start; they elect a leader, the others stand by.")
@click.option("--tls", "use_tls", is_flag=True,
              help="Mutual TLS on every TCP port. A head makes a cluster CA in its session (tls/); a joining node "
                   "makes its certificate with the CA of --tls-ca-dir (default: this machine's latest head). "
                   "EMBER_TLS_CERT/KEY/CA give your own files instead (and imply TLS).")
@click.option("--tls-ca-dir", default=None, type=click.Path(file_okay=False, path_type=pathlib.Path),
              help="A directory with the cluster CA's ca.crt and ca.key, to sign this node's certificate.")
@click.option("--autoscaling-config", default=None, type=click.Path(dir_okay=False, path_type=pathlib.Path),
              help="Head only: an autoscaling config (YAML or JSON, Ray's cluster-config keys; docs/autoscaler.md).")
@click.option("--block", is_flag=True, help="Stay in the foreground until interrupted, then stop.")
@click.option("--raylet-metrics-port", "--metrics-export-port", "raylet_metrics_port", type=int, default=None,
              help="The raylet's Prometheus /metrics port (0: a free one; default EMBER_METRICS_RAYLET_PORT).")
@click.option("--objectstore-metrics-port", type=int, default=None,
              help="The object store's /metrics port (0: a free one; default EMBER_METRICS_OBJECTSTORE_PORT).")
@click.option("--gcs-metrics-port", type=int, default=None,
              help="Head only: the GCS's /metrics port (0: a free one; default EMBER_METRICS_GCS_PORT).")
@click.option("--include-dashboard", type=bool, default=None,
              help="Head only: start the web UI (default EMBER_INCLUDE_DASHBOARD: true).")
@click.option("--dashboard-host", default=None,
              help="Head only: the web UI's address (default EMBER_DASHBOARD_HOST: 127.0.0.1).")
@click.option("--dashboard-port", type=int, default=None,
              help="Head only: the web UI's port (default EMBER_DASHBOARD_PORT: 8265; 0: a free one).")
@click.option("--disable-usage-stats", is_flag=True, help="Accepted for Ray's scripts; Ember collects no usage stats.")
def start(head: bool, address: str | None, port: int, host: str, num_cpus: float | None, num_gpus: float,
          memory: float, resources: str | None, labels: str | None, object_store_memory: int | None,
          token: str | None, storage: str, cluster_name: str, gcs_replicas: int, use_tls: bool,
          tls_ca_dir: pathlib.Path | None, autoscaling_config: pathlib.Path | None, block: bool,
          raylet_metrics_port: int | None, objectstore_metrics_port: int | None, gcs_metrics_port: int | None,
          include_dashboard: bool | None, dashboard_host: str | None, dashboard_port: int | None,
          disable_usage_stats: bool) -> None:
    """Start a node: the head with --head, or a node joining --address."""
    if head == bool(address):
        raise click.UsageError("give exactly one of --head or --address")
    dashboard_flags = [flag for flag, value in (("--include-dashboard", include_dashboard),
                                                ("--dashboard-host", dashboard_host),
                                                ("--dashboard-port", dashboard_port)) if value is not None]
    if dashboard_flags and address:
        # Ray's launch scripts pass these to every node; refusing them would stop the script for nothing.
        click.echo(f"note: {', '.join(dashboard_flags)} ignored: the dashboard runs on the head", err=True)
    if autoscaling_config is not None:
        if address:
            raise click.UsageError("--autoscaling-config is for the head (--head)")
        from ember_autoscaler.config import ConfigError, load

        try:
            load(autoscaling_config)  # a mistake is told here, not in the GCS's log
        except ConfigError as e:
            raise click.BadParameter(str(e), param_hint="--autoscaling-config") from None
        autoscaling_config = autoscaling_config.resolve()
    config = Config.load()
    if address:
        if token is None:
            latest = session.latest(config.session_root)
            if latest is None or not (latest / "token").exists():
                raise click.UsageError(f"no token: pass --token or set {auth.TOKEN_ENV}")
            token = auth.read_token(latest / "token")
    if address and use_tls and tls_ca_dir is None:
        latest = session.latest(config.session_root)  # a node joining on the head's machine
        tls_ca_dir = session.tls_dir(latest) if latest is not None else None
    session_dir, token = session.create(config.session_root, token, session.StartedBy.CLI)
    try:
        tls_files = node_launcher.prepare_tls(session_dir, host, enabled=use_tls or tls_ca_dir is not None,
                                              ca_dir=tls_ca_dir)
        tls.activate(tls_files)
        if address:
            address = _check_gcs(address, token)
        node = node_launcher.start_node(
            session_dir, token, head=head, gcs_address=address, gcs_port=port, host=host, num_cpus=num_cpus,
            num_gpus=num_gpus, memory=memory, resources=_resources(resources),
            labels={k: str(v) for k, v in json.loads(labels or "{}").items()},
            object_store_bytes=object_store_memory, storage=storage, cluster_name=cluster_name,
            gcs_replicas=gcs_replicas, detached=True,
            config=config, tls_files=tls_files, autoscaling_config=autoscaling_config,
            metrics_ports={name: port for name, port in (("raylet", raylet_metrics_port), ("gcs", gcs_metrics_port),
                                                         ("objectstore", objectstore_metrics_port)) if port is not None},
        )
        dashboard_url = None
        if head and (include_dashboard if include_dashboard is not None else config.include_dashboard):
            try:
                dashboard_url = node_launcher.start_dashboard(
                    node, token, dashboard_host or config.dashboard_host,
                    dashboard_port if dashboard_port is not None else config.dashboard_port,
                    detached=True, tls_files=tls_files)
            except (RuntimeError, TimeoutError) as e:
                node.stop(timeout=2)
                raise click.ClickException(f"the dashboard did not start: {e}\n(another port: --dashboard-port; "
                                           "none: --include-dashboard false)") from None
    except (RuntimeError, TimeoutError, ValueError, click.ClickException) as e:
        (session_dir / "token").unlink(missing_ok=True)  # (its logs stay, for the post-mortem)
        raise e if isinstance(e, click.ClickException) else click.ClickException(str(e)) from None
    session.write_json(session_dir / "cluster.json", {"gcs_address": node.gcs_address, "session_dir": str(session_dir)})
    if head:
        session.mark_latest(session_dir)
        click.echo(f"Ember head started (node {node.node_id.hex()[:8]}); GCS at {node.gcs_address}")
        click.echo(f"  session:   {session_dir}")
        click.echo('  connect:   ember.init(address="auto")   # on this machine')
        click.echo(f"             ember.init(address=\"{node.gcs_address}\")  # with {auth.TOKEN_ENV} set")
        made_ca = (session.tls_dir(session_dir) / "ca.key").exists()
        join_tls = f" --tls --tls-ca-dir={session.tls_dir(session_dir)}" if made_ca else ""
        click.echo(f"  add nodes: {auth.TOKEN_ENV}=$(cat {session_dir / 'token'}) ember start --address={node.gcs_address}{join_tls}")
        if tls_files:
            click.echo(f"  TLS:       mutual TLS on every TCP port (CA {tls_files.ca})")
        if config.metrics_enabled:
            click.echo(f"  metrics:   Prometheus targets of every node in {node.discovery_file} (file_sd_configs)")
        if dashboard_url:
            click.echo(f"  dashboard: {dashboard_url}   (log in with the token: {session_dir / 'token'})")
        if autoscaling_config:
            click.echo(f"  autoscaler: {autoscaling_config} (ember status shows what it does)")
        click.echo("  stop:      ember stop")
    else:
        click.echo(f"Ember node {node.node_id.hex()[:8]} joined the cluster at {address}")
        click.echo(f"  node id:   {node.node_id.hex()}")
        click.echo(f"  session:   {session_dir}")
        if config.metrics_enabled:
            ports = ", ".join(f"{name.split('-')[0]} {host}:{port}" for name, port in node.metrics_ports.items())
            click.echo(f"  metrics:   {ports} (listed in the head's {node_launcher.PROMETHEUS_SD_FILE})")
    if block:
        try:
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        except KeyboardInterrupt:
            pass
        node.stop()


def _check_gcs(address: str, token: str) -> str:
    """The GCS replicas of `address`, the one leading first (a raylet
    registers with the first: one that died since must not hold it up). A
    node joining during a GCS failover (the autoscaler's, say) waits it out."""
    leader, _ = _query_gcs(address, ("GetClusterInfo", gcs_pb2.GetClusterInfoRequest()), token=token,
                           failover_window_s=30)
    return ",".join([leader, *(a for a in address.split(",") if a.strip() and a.strip() != leader)])


@main.command()
@click.option("--timeout", "--grace-period", "timeout", type=float, default=10, show_default=True,
              help="Seconds to wait after SIGTERM before SIGKILL.")
@click.option("-f", "--force", is_flag=True, help="SIGKILL at once, without a graceful shutdown.")
@click.option("--node-id", default=None, help="Stop only this node (its id as `ember start` printed it, hex).")
def stop(timeout: float, force: bool, node_id: str | None) -> None:
    """Stop every Ember node started on this machine with `ember start`.

    Clusters that programs started for themselves (`ember.init()` without an
    address, `cluster_utils.Cluster`) are left to their programs."""
    root = pathlib.Path(Config.load().session_root)
    if node_id is not None:
        _stop_node(root, node_id.strip().lower(), timeout, force)
        return
    stopped = 0
    others: list[session.SessionOwner] = []
    for session_dir in sorted(root.glob("session_*")):
        if not session_dir.is_dir() or session_dir.is_symlink():
            continue
        who = session.owner(session_dir)
        if who is not None and who.started_by is not session.StartedBy.CLI:
            if any((session_dir / "nodes").glob("*.json")) and who.alive():
                others.append(who)
            continue
        stopped += node_launcher.stop_session(session_dir, timeout, force=force)
        for leftover in ("token", "cluster.json"):
            (session_dir / leftover).unlink(missing_ok=True)
    (root / session.LATEST).unlink(missing_ok=True)
    click.echo(f"Stopped {stopped} node(s).")
    if others:
        click.echo(f"Left {len(others)} cluster(s) that running programs started for themselves; each stops "
                   "when its program calls ember.shutdown() or exits:")
        for who in others:
            click.echo(f"  pid {who.pid} ({who.started_by.value}): {who.command}")


def _stop_node(root: pathlib.Path, node_id: str, timeout: float, force: bool) -> None:
    """One node `ember start` started here (an autoscaler's stop command);
    none such is no error (it may be stopped already)."""
    if len(node_id) != 32 or any(c not in "0123456789abcdef" for c in node_id):
        raise click.BadParameter(f"a node id is 32 hex digits, got {node_id!r}", param_hint="--node-id")
    stopped = 0
    for record in root.glob(f"session_*/nodes/{node_id}.json"):
        who = session.owner(record.parent.parent)
        if who is None or who.started_by is session.StartedBy.CLI:
            node_launcher.stop_recorded_node(record, timeout, force)
            stopped += 1
            if not any((record.parent).glob("*.json")):
                for leftover in ("token", "cluster.json"):
                    (record.parent.parent / leftover).unlink(missing_ok=True)
    click.echo(f"Stopped {stopped} node(s).")


def _resolve_cluster(address: str | None) -> tuple[str, str]:
    """(GCS address, token) of the cluster at `address` or this machine's latest."""
    from ember._private import runtime

    try:
        address, token, _ = runtime._resolve(address or "auto", os.environ.get(auth.TOKEN_ENV), Config.load())
    except ConnectionError as e:
        raise click.ClickException(str(e)) from None
    return address, token


def _query_gcs(address: str | None, *calls: tuple[str, Any], token: str | None = None,
               failover_window_s: float = 5) -> tuple[str, list[Any]]:
    """Answers of Gcs RPCs (method name, request) from the cluster at
    `address` (default: this machine's latest), from its leader replica; a
    clear error if unreachable."""
    from ember_common.gcs_client import GcsClient

    if token is None:
        address, token = _resolve_cluster(address)
    assert address is not None
    gcs = GcsClient(address, token, failover_window_s=failover_window_s)
    try:
        return gcs.address, [getattr(gcs, name)(request, timeout=10) for name, request in calls]
    except grpc.RpcError as e:
        hint = (" (if the cluster uses TLS: --tls, or EMBER_TLS_CERT/KEY/CA)"
                if e.code() == grpc.StatusCode.UNAVAILABLE and tls.active() is None else "")
        raise click.ClickException(f"cannot reach the GCS at {address}: {e.code().name}: {e.details()}{hint}") from None
    finally:
        gcs.close()


@main.command()
@_address_option
def status(address: str | None) -> None:
    """Show the cluster's nodes and their resources, and the autoscaler's view."""
    address, token = _resolve_cluster(address)
    gcs_address, (info, reply) = _query_gcs(address, ("GetClusterInfo", gcs_pb2.GetClusterInfoRequest()),
                                            ("GetAllNodes", gcs_pb2.GetAllNodesRequest()), token=token)
    nodes = reply.nodes
    click.echo(f"cluster {info.session_name} (GCS {gcs_address}, storage: {info.storage})")
    click.echo(f"leader: {info.leader_address or 'none (an election is under way)'}")
    alive = [n for n in nodes if n.alive]
    click.echo(f"nodes: {len(alive)} alive, {len(nodes) - len(alive)} dead")
    totals: dict[str, list[float]] = {}
    for n in nodes:
        state = "ALIVE" if n.alive else f"DEAD ({n.death_reason})"
        click.echo(f"  {n.node_id.hex()[:8]} {n.node_address}:{n.raylet_port} {'head ' if n.is_head else ''}{state}")
        if n.alive:
            for name, total in sorted(n.total.amounts.items()):
                used = total - n.available.amounts.get(name, 0.0)
                click.echo(f"      {name}: {_fmt(name, used)}/{_fmt(name, total)} used")
                t = totals.setdefault(name, [0.0, 0.0])
                t[0] += used
                t[1] += total
        for shape in n.infeasible:
            click.echo(f"      infeasible: {json.dumps(dict(shape.amounts))} (no node can run it)")
    click.echo("resources (cluster):")
    for name, (used, total) in sorted(totals.items()):
        click.echo(f"  {name}: {_fmt(name, used)}/{_fmt(name, total)} used")
    cli_autoscaler.echo_status(gcs_address, token)


@main.command()
@_address_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per object and node.")
def memory(address: str | None, as_json: bool) -> None:
    """Objects on every node: size, state, where stored (spilled?), who refers to them."""
    from ember.v1 import objectstore_pb2, objectstore_pb2_grpc, raylet_pb2, raylet_pb2_grpc

    address, token = _resolve_cluster(address)
    _, (reply,) = _query_gcs(address, ("GetAllNodes", gcs_pb2.GetAllNodesRequest()), token=token)
    nodes = [n for n in reply.nodes if n.alive]
    listed: list[tuple[Any, list[Any]]] = []
    stored: dict[bytes, set[bytes]] = {}  # node -> object ids stored there
    for node in nodes:
        try:
            objects = _call_node(f"{node.node_address}:{node.raylet_port}", token, raylet_pb2_grpc.RayletStub,
                                 "ListObjects", raylet_pb2.ListObjectsRequest()).objects
        except grpc.RpcError as e:
            click.echo(f"node {node.node_id.hex()[:8]}: cannot list objects: {e.code().name}", err=True)
            objects = []
        listed.append((node, list(objects)))
        for o in objects:
            if o.stored_on and not o.owner_node:
                stored.setdefault(o.stored_on, set()).add(o.object_id)
    spilled: set[bytes] = set()
    for node in nodes:
        if node.node_id in stored:
            try:
                located = _call_node(f"{node.node_address}:{node.object_store_port}", token,
                                     objectstore_pb2_grpc.ObjectStoreStub, "Locate",
                                     objectstore_pb2.LocateRequest(object_ids=list(stored[node.node_id])))
                spilled |= {e.object_id for e in located.entries if e.spilled}
            except grpc.RpcError:
                pass
    rows = []
    for node, objects in listed:
        for o in objects:
            where = ("inline" if o.inline else f"store@{o.stored_on.hex()[:8]}" if o.stored_on else "pending")
            rows.append({
                "node": node.node_id.hex(), "object_id": o.object_id.hex(), "size": o.size,
                "state": "ERROR" if o.is_error else "READY" if o.ready else "PENDING",
                "owner": f"node {o.owner_node.hex()[:8]}" if o.owner_node else "this node",
                "where": where + (" (spilled)" if o.object_id in spilled and not o.owner_node else "")
                         + (" +copy here" if o.local_copy else ""),
                "referenced_by": list(o.holders), "pins": o.pins, "lineage": o.lineage,
            })
    if as_json:
        _echo_json_lines(rows)
        return
    for node, objects in listed:
        mine = [r for r in rows if r["node"] == node.node_id.hex()]
        total = sum(r["size"] for r in mine)
        click.echo(f"node {node.node_id.hex()[:8]} ({node.node_address}): {len(mine)} object(s), {_bytes(total)}")
        _echo_table(mine, _OBJECT_COLUMNS, indent="  ")


_OBJECT_COLUMNS = [
    _Column("OBJECT_ID", 14, lambda r: r["object_id"]),
    _Column("SIZE", 10, lambda r: _bytes(r["size"]), align=">", clip=False),
    _Column("STATE", 8, lambda r: r["state"], clip=False),
    _Column("OWNER", 14, lambda r: r["owner"], clip=False),
    _Column("WHERE", 28, lambda r: r["where"]),
    _Column("PINS", 4, lambda r: r["pins"], align=">", clip=False),
    _Column("REFERENCED BY", 0, lambda r: ", ".join(r["referenced_by"]) or "-"),
]


def _call_node(address: str, token: str, stub: Any, method: str, request: Any) -> Any:
    """One RPC to a node's service at `address` on a channel of its own."""
    from ember_common import rpc

    channel = rpc.channel(address, token)
    try:
        return getattr(stub(channel), method)(request, timeout=10)
    finally:
        channel.close()


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}GiB"


main.add_command(cli_tls.tls)
main.add_command(cli_job.job)
cli_state.register(main)


if __name__ == "__main__":
    main()
