"""The autoscaler as the GCS runs it: built from the GCS's own tables when
the head was started with an autoscaling config, its rounds run by the
leader only (GcsService spawns `step` while leading)."""

from __future__ import annotations

from typing import Any, Callable

from ember_autoscaler.autoscaler import Autoscaler
from ember_autoscaler.command_provider import CommandProvider
from ember_autoscaler.config import AutoscalingConfig, load
from ember_autoscaler.demand import DemandBoard
from ember_autoscaler.drain import ObjectEvacuation
from ember_autoscaler.instance_table import InstanceTable
from ember_autoscaler.local_provider import LocalProvider
from ember_autoscaler.metrics import AutoscalerCollector
from ember_autoscaler.provider import NodeProvider
from ember_autoscaler.servicer import AutoscalerServicer
from ember_gcs.leader_gate import Leadership
from ember_gcs.storage import Storage

# Seconds between rounds.
ROUND_S = 0.5


def make_provider(config: AutoscalingConfig, token: str, host: str) -> NodeProvider:
    if config.provider.type == "local":
        return LocalProvider(token, host, start_timeout_s=config.provider.launch_timeout_s)
    return CommandProvider(config.provider, token)


class GcsAutoscaler:
    """What the GCS holds of the autoscaler: the stored launches (a table it
    loads with its others), the demand board raylets report into, the loop
    step, the status servicer and the metrics."""

    def __init__(self, config_path: str, storage: Storage, tables: Any, leadership: Leadership,
                 token: str, host: str, raylet_channel: Callable[[Any], Any]) -> None:
        """`tables`: the GcsService (nodes, placement_groups, kv, actors, membership);
        `raylet_channel`: the GCS's channel to a node's raylet.
        ConfigError (a ValueError) if the config is not valid."""
        self.config = load(config_path)
        self.instances = InstanceTable(storage)
        self.board = DemandBoard()

        def gcs_address() -> str:
            return ",".join(r for r in leadership.replicas if r) or leadership.leader

        self.evacuation = ObjectEvacuation(raylet_channel)
        self.autoscaler = Autoscaler(self.config, make_provider(self.config, token, host),
                                     self.instances, tables.nodes, tables.placement_groups, tables.kv, tables.actors,
                                     tables.membership, self.board, gcs_address, self.evacuation.remaining)
        self.servicer = AutoscalerServicer(self.autoscaler, leadership)
        self.collector = AutoscalerCollector(self.autoscaler, leadership)
        self.step: Callable[[], Any] = self.autoscaler.step
