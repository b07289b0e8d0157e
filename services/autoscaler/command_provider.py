"""Nodes started and stopped by commands the operator gives (a systemd
unit, a cloud CLI, a script). The start command runs with, in its
environment, what the node must be started with:

    EMBER_AUTOSCALER_INSTANCE_ID   this launch's id (also "%i" in the command)
    EMBER_NODE_TYPE                the node type's name (also "%t")
    EMBER_GCS_ADDRESS              the GCS replicas, for `ember start --address`
    EMBER_NODE_RESOURCES           the type's resources, JSON (CPU and GPU included)
    EMBER_NODE_LABELS              JSON: the node must carry these labels
    EMBER_START_ARGS               all of that as `ember start` arguments, shell-quoted:
                                   eval ember start --address "$EMBER_GCS_ADDRESS" $EMBER_START_ARGS
    EMBER_AUTH_TOKEN               the cluster token (for `ember start --token`)

It may print the started node's id (32 hex digits) as its last line of
output; otherwise the node is recognised by its labels when it registers.
The stop command gets the same instance id and EMBER_NODE_ID (hex, when
known). A command that exits non-zero or runs past command_timeout_s failed
(its output's end is in the error)."""

from __future__ import annotations

import json
import re
import shlex

from ember_autoscaler.config import ProviderConfig
from ember_autoscaler.local_provider import start_args
from ember_autoscaler.provider import Launched, LaunchRequest, NodeProvider, run_command
from ember_common import auth

_NODE_ID = re.compile(r"^[0-9a-f]{32}$")


class CommandProvider(NodeProvider):
    name = "command"

    def __init__(self, config: ProviderConfig, token: str) -> None:
        self._config = config
        self._token = token
        self._started: dict[str, str] = {}  # instance id -> node type, for non_terminated_nodes

    async def _run(self, command: str, env: dict[str, str]) -> str:
        return await run_command(command, env, self._config.command_timeout_s, f"`{command}`")

    async def create_node(self, request: LaunchRequest) -> Launched:
        iid, name = request.instance_id, request.node_type.name
        env = {"EMBER_AUTOSCALER_INSTANCE_ID": iid, "EMBER_NODE_TYPE": name,
               "EMBER_GCS_ADDRESS": request.gcs_address,
               "EMBER_NODE_RESOURCES": json.dumps(request.node_type.resources),
               "EMBER_NODE_LABELS": json.dumps(request.labels), "EMBER_START_ARGS": shlex.join(start_args(request)),
               auth.TOKEN_ENV: self._token}
        out = await self._run(self._config.start_command.replace("%i", iid).replace("%t", name), env)
        self._started[iid] = name
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        node_id = bytes.fromhex(lines[-1]) if lines and _NODE_ID.match(lines[-1]) else b""
        return Launched(provider_id=iid, node_id=node_id)

    async def terminate_node(self, provider_id: str, node_id: bytes) -> None:
        env = {"EMBER_AUTOSCALER_INSTANCE_ID": provider_id, "EMBER_NODE_ID": node_id.hex(),
               "EMBER_NODE_TYPE": self._started.get(provider_id, ""), auth.TOKEN_ENV: self._token}
        await self._run(self._config.stop_command.replace("%i", provider_id)
                        .replace("%t", self._started.get(provider_id, "")), env)
        self._started.pop(provider_id, None)

    async def non_terminated_nodes(self) -> list[str]:
        return list(self._started)  # (what this process started; commands have no list of their own)
