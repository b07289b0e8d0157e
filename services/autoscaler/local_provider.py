"""Nodes on this machine, started exactly as an operator adds one: by
`ember start --address` (an object store and a raylet, detached, in a
session of their own, so they outlive a GCS failover and `ember stop` stops
them), and stopped by `ember stop --node-id`. The node id is read back from
what `ember start` prints. For tests and laptops."""

from __future__ import annotations

import json
import pathlib
import re
import sys

from ember_autoscaler.provider import Launched, LaunchError, LaunchRequest, NodeProvider, run_command
from ember_common import auth
from ember_common.config import Config

# Resource names `ember start` takes as flags of their own, not as custom resources.
_FLAGS = {"CPU": "--num-cpus", "GPU": "--num-gpus", "memory": "--memory", "object_store_memory": "--object-store-memory"}
_NODE_ID = re.compile(r"^\s*node id:\s+([0-9a-f]{32})\s*$", re.MULTILINE)


def start_args(request: LaunchRequest) -> list[str]:
    """`ember start` arguments giving a node the type's resources and the
    launch's labels (the command provider's EMBER_START_ARGS too)."""
    resources = request.node_type.resources
    args = ["--labels", json.dumps(request.labels),
            "--resources", json.dumps({k: v for k, v in resources.items() if k not in _FLAGS}),
            "--num-cpus", str(resources.get("CPU", 0.0))]
    for name, flag in _FLAGS.items():
        if name != "CPU" and resources.get(name):
            amount = resources[name]
            args += [flag, str(int(amount) if name == "object_store_memory" else amount)]
    return args


def ember_command(*args: str) -> list[str]:
    """The `ember` command of this installation (python -m ember)."""
    return [sys.executable, "-m", "ember", *args]


class LocalProvider(NodeProvider):
    name = "local"

    def __init__(self, token: str, host: str = "127.0.0.1", start_timeout_s: float = 120.0) -> None:
        self._token = token
        self._host = host
        self._start_timeout_s = start_timeout_s

    async def _run(self, args: list[str]) -> str:
        return await run_command(args, {auth.TOKEN_ENV: self._token}, self._start_timeout_s, f"`ember {args[3]}`")

    async def create_node(self, request: LaunchRequest) -> Launched:
        out = await self._run(ember_command("start", "--address", request.gcs_address, "--host", self._host,
                                            *start_args(request)))
        found = _NODE_ID.search(out)
        if found is None:
            raise LaunchError(f"`ember start` did not print the node's id: {out.strip()[-300:]}")
        return Launched(provider_id=found.group(1), node_id=bytes.fromhex(found.group(1)))

    def fallback_id(self, instance_id: str, node_id: bytes) -> str:
        return node_id.hex()  # (`ember stop --node-id` takes the node id)

    async def terminate_node(self, provider_id: str, node_id: bytes) -> None:
        await self._run(ember_command("stop", "--node-id", provider_id))

    async def non_terminated_nodes(self) -> list[str]:
        root = pathlib.Path(Config.load().session_root)
        return [record.stem for record in root.glob("session_*/nodes/*.json")]
