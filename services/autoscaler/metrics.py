"""The autoscaler's Prometheus metrics, served on the GCS's /metrics (read
from its state at scrape time): launches asked, failed and registered,
nodes removed, nodes by type and state, and demand it cannot meet."""

from __future__ import annotations

from typing import Iterator

from ember.v1 import autoscaler_pb2
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ember_autoscaler.autoscaler import Autoscaler
from ember_gcs.leader_gate import Leadership

_STATES = {v: name.lower() for name, v in autoscaler_pb2.AutoscalerInstance.State.items() if v}


class AutoscalerCollector:
    def __init__(self, autoscaler: Autoscaler, leadership: Leadership) -> None:
        self._autoscaler = autoscaler
        self._leadership = leadership

    def collect(self) -> Iterator[Metric]:
        a = self._autoscaler
        stats = a.stats
        for name, counter, help_text in (
                ("ember_autoscaler_launches", stats.launched, "Nodes the autoscaler asked its provider for, by type."),
                ("ember_autoscaler_launch_failures", stats.failed,
                 "Launches that failed (the provider said so, or the node never registered), by type."),
                ("ember_autoscaler_nodes_registered", stats.registered, "Launched nodes that registered, by type."),
                ("ember_autoscaler_nodes_removed", stats.removed, "Nodes the autoscaler removed, by type.")):
            family = CounterMetricFamily(name, help_text, labels=["node_type"])
            for node_type in sorted(a.config.node_types):
                family.add_metric([node_type], counter[node_type])
            yield family
        if not self._leadership.is_leader:
            return  # (a standby's table view is not the autoscaler's)
        nodes = GaugeMetricFamily("ember_autoscaler_nodes", "Nodes the autoscaler launched, by type and state.",
                                  labels=["node_type", "state"])
        counts: dict[tuple[str, str], int] = {(t, s): 0 for t in a.config.node_types for s in _STATES.values()}
        for inst in a.instances.all():
            key = (inst.node_type, _STATES.get(inst.state, "unknown"))
            counts[key] = counts.get(key, 0) + 1
        for (node_type, state), n in sorted(counts.items()):
            nodes.add_metric([node_type, state], n)
        yield nodes
        unmet = GaugeMetricFamily("ember_autoscaler_pending_demand",
                                  "Resource shapes waiting that the autoscaler cannot meet now, by kind "
                                  "(infeasible: no node type fits; limited: limits or backoff hold launches).",
                                  labels=["kind"])
        unmet.add_metric(["infeasible"], sum(u.count for u in a.last.unmet if u.infeasible))
        unmet.add_metric(["limited"], sum(u.count for u in a.last.unmet if not u.infeasible))
        yield unmet
