"""The one interface every node provider implements: create a node of a
type, terminate one, list those that are not terminated. The autoscaler
knows nothing else of how machines come and go."""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import os
from typing import Any

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


async def run_command(command: list[str] | str, env: dict[str, str], timeout_s: float, what: str) -> str:
    """Run a provider's command (a list: as is; a string: by the shell) in
    a session of its own, with `env` added; its output, or LaunchError
    naming `what` with the end of its output."""
    options: dict[str, Any] = dict(stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                   stderr=asyncio.subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True)
    if isinstance(command, list):
        proc = await asyncio.create_subprocess_exec(*command, **options)
    else:
        proc = await asyncio.create_subprocess_shell(command, **options)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=timeout_s)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise LaunchError(f"{what} ran past {timeout_s:g}s") from None
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(text.strip().splitlines()[-5:])
        raise LaunchError(f"{what} exited with code {proc.returncode}: {tail}")
    return text
