"""The autoscaler's part of `ember status` (as `ray status` shows it): nodes
by type, launches under way, idle nodes and for how long, demand it cannot
meet and why, recent events. Asked of the GCS leader's Autoscaler service."""

from __future__ import annotations

import json

import click
import grpc
from ember.v1 import autoscaler_pb2, autoscaler_pb2_grpc

from ember_common import rpc

_STATE = {v: name for name, v in autoscaler_pb2.AutoscalerInstance.State.items()}


def _shape(amounts: dict[str, float]) -> str:
    return json.dumps({k: (int(v) if float(v).is_integer() else v) for k, v in sorted(amounts.items())})


def echo_status(gcs_address: str, token: str) -> None:
    channel = rpc.channel(gcs_address, token)
    try:
        reply = autoscaler_pb2_grpc.AutoscalerStub(channel).GetAutoscalerStatus(
            autoscaler_pb2.GetAutoscalerStatusRequest(), timeout=10)
    except grpc.RpcError as e:
        click.echo(f"autoscaler: status unavailable ({e.code().name}: {e.details()})")
        return
    finally:
        channel.close()
    if not reply.enabled:
        click.echo("autoscaler: off (start the head with --autoscaling-config FILE to turn it on)")
        return
    click.echo(f"autoscaler: provider {reply.provider}, max_workers {reply.max_workers}")
    click.echo("  node types:")
    for t in reply.node_types:
        line = (f"    {t.name}: {t.running} running, {t.launching} launching "
                f"(min {t.min_workers}, max {t.max_workers}) {_shape(dict(t.resources.amounts))}")
        if t.failed_launches:
            line += f"; {t.failed_launches} failed launch(es) in a row: {t.last_failure}"
            line += "; given up" if t.gave_up else (f"; next try in {t.backoff_s:.1f}s" if t.backoff_s else "")
        click.echo(line)
    if reply.instances:
        click.echo("  nodes:")
        for i in reply.instances:
            node = i.node_id.hex()[:8] if i.node_id else "-"
            idle = f", idle {i.idle_s:.1f}s" if i.idle_s else ""
            click.echo(f"    {i.instance_id} {i.node_type} node {node} {_STATE.get(i.state, '?')}{idle}")
    if reply.requested_bundles:
        click.echo("  requested (request_resources): "
                   + ", ".join(_shape(dict(b.amounts)) for b in reply.requested_bundles))
    if reply.unmet:
        click.echo("  demand not met:")
        for u in reply.unmet:
            kind = "infeasible" if u.infeasible else "waiting"
            click.echo(f"    {_shape(dict(u.shape.amounts))} x{u.count}: {kind}: {u.reason}")
    if reply.recent_events:
        click.echo("  recent events:")
        for event in reply.recent_events[-10:]:
            click.echo(f"    {event}")
