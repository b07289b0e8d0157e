"""The one interface every node provider implements: create a node of a
type, terminate one, list those that are not terminated. The autoscaler
knows nothing else of how machines come and go."""

from __future__ import annotations

import abc
import dataclasses

from ember_autoscaler.config import NodeType

# Labels every launched node carries: its type, and the launch it came from,
# so the autoscaler (this leader or the next) recognises it when it registers.
NODE_TYPE_LABEL = "ember.io/node-type"
INSTANCE_LABEL = "ember.io/autoscaler-instance"


class LaunchError(RuntimeError):
    """A node could not be started; the message says why (for the operator)."""


@dataclasses.dataclass(frozen=True)
class LaunchRequest:
    instance_id: str
    node_type: NodeType
    gcs_address: str      # every GCS replica, comma-separated

    @property
    def labels(self) -> dict[str, str]:
        return {**self.node_type.labels, NODE_TYPE_LABEL: self.node_type.name, INSTANCE_LABEL: self.instance_id}


@dataclasses.dataclass(frozen=True)
class Launched:
    provider_id: str          # the provider's name for the node (to terminate it)
    node_id: bytes = b""      # when the provider knows it (else: found by its labels at registration)


class NodeProvider(abc.ABC):
    name: str

    @abc.abstractmethod
    async def create_node(self, request: LaunchRequest) -> Launched:
        """Start one node; returns once the provider has started it (it
        registers with the GCS by itself). LaunchError if it could not."""

    @abc.abstractmethod
    async def terminate_node(self, provider_id: str, node_id: bytes) -> None:
        """Stop a node; idempotent (a node already gone is no error)."""

    def fallback_id(self, instance_id: str, node_id: bytes) -> str:
        """The provider id of a launch whose create_node answer was never
        stored (the leader died meanwhile), from what is known; "" if none."""
        return instance_id

    @abc.abstractmethod
    async def non_terminated_nodes(self) -> list[str]:
        """Provider ids of the nodes it started that still run (as far as it can tell)."""
