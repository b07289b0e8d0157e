"""The autoscaling config: Ray's cluster-config keys where they fit, read
from YAML or JSON and checked whole, so a mistake is one clear error at
`ember start`, not a cluster that scales wrongly later.

    provider: {type: local}            # or {type: command, start_command: ..., stop_command: ...}
    max_workers: 10                     # cluster-wide, the head not counted
    idle_timeout_minutes: 5             # fractions allowed (0.1 = 6 s)
    upscaling_speed: 1.0
    available_node_types:
      cpu_worker: {resources: {CPU: 2}, min_workers: 0, max_workers: 5}
      accel_worker: {resources: {CPU: 1, accel: 1}, labels: {zone: a}, max_workers: 2}
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import re
from typing import Any, Mapping

# Ray keys that describe how Ray's own launcher sets machines up (ssh,
# docker, file sync): accepted, so a Ray config loads, and not used.
_RAY_KEYS_NOT_USED = {"cluster_name", "auth", "docker", "file_mounts", "cluster_synced_files",
                      "file_mounts_sync_continuously", "rsync_exclude", "rsync_filter", "initialization_commands",
                      "setup_commands", "head_setup_commands", "worker_setup_commands", "head_start_ray_commands",
                      "worker_start_ray_commands", "head_node", "worker_nodes", "min_workers", "target_utilization_fraction"}
_TOP_KEYS = {"provider", "max_workers", "idle_timeout_minutes", "upscaling_speed", "available_node_types",
             "head_node_type"} | _RAY_KEYS_NOT_USED
_NODE_TYPE_KEYS = {"resources", "labels", "min_workers", "max_workers", "node_config", "worker_setup_commands",
                   "docker"}
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PROVIDER_TYPES = ("local", "command")


class ConfigError(ValueError):
    """The autoscaling config is not valid; the message says where and why."""


@dataclasses.dataclass(frozen=True)
class NodeType:
    name: str
    resources: dict[str, float]
    labels: dict[str, str]
    min_workers: int
    max_workers: int


@dataclasses.dataclass(frozen=True)
class ProviderConfig:
    type: str
    start_command: str = ""        # command provider
    stop_command: str = ""
    command_timeout_s: float = 120.0
    # A launch whose node has not registered by then failed (it is stopped).
    launch_timeout_s: float = 120.0
    # Launches of a type failing this many times in a row: no more tries
    # (reported) until the GCS restarts, so a broken command never loops.
    max_launch_failures: int = 5
    # The first retry's delay after a failed launch; doubles each time, up to 60 s.
    launch_backoff_s: float = 2.0


@dataclasses.dataclass(frozen=True)
class AutoscalingConfig:
    provider: ProviderConfig
    node_types: dict[str, NodeType]
    max_workers: int
    idle_timeout_s: float
    upscaling_speed: float

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def _number(where: str, value: Any, *, minimum: float = 0.0, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{where} must be at least {minimum:g}, got {value!r}")
    if integer and value != int(value):
        raise ConfigError(f"{where} must be a whole number, got {value!r}")
    return value


def _mapping(where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _unknown(where: str, given: Mapping[str, Any], known: set[str]) -> None:
    extra = sorted(set(given) - known)
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {extra}; known: {sorted(known)}")


def _provider(raw: Any) -> ProviderConfig:
    raw = _mapping("provider", raw)
    fields = {f.name for f in dataclasses.fields(ProviderConfig)}
    _unknown("provider", raw, fields)
    kind = raw.get("type")
    if kind not in PROVIDER_TYPES:
        raise ConfigError(f"provider.type must be one of {list(PROVIDER_TYPES)}, got {kind!r}")
    values: dict[str, Any] = {"type": kind}
    for key in ("start_command", "stop_command"):
        if key in raw:
            if not isinstance(raw[key], str) or not raw[key].strip():
                raise ConfigError(f"provider.{key} must be a non-empty command string")
            values[key] = raw[key]
    if kind == "command" and not values.get("start_command"):
        raise ConfigError("provider.type command needs provider.start_command (and stop_command to remove nodes)")
    if kind == "command" and not values.get("stop_command"):
        raise ConfigError("provider.type command needs provider.stop_command: nodes it starts must be removable")
    for key in ("command_timeout_s", "launch_timeout_s", "launch_backoff_s"):
        if key in raw:
            values[key] = float(_number(f"provider.{key}", raw[key], minimum=0.01))
    if "max_launch_failures" in raw:
        values["max_launch_failures"] = int(_number("provider.max_launch_failures", raw["max_launch_failures"],
                                                    minimum=1, integer=True))
    return ProviderConfig(**values)


def _node_type(name: str, raw: Any) -> NodeType:
    where = f"available_node_types.{name}"
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"node type name {name!r}: 1-64 letters, digits, '_', '.', '-'")
    raw = _mapping(where, raw)
    _unknown(where, raw, _NODE_TYPE_KEYS)
    resources = {}
    for key, amount in _mapping(f"{where}.resources", raw.get("resources", {})).items():
        if not isinstance(key, str) or not key or "_group_" in key:
            raise ConfigError(f"{where}.resources: bad resource name {key!r}")
        resources[key] = float(_number(f"{where}.resources.{key}", amount))
    if not any(v > 0 for v in resources.values()):
        raise ConfigError(f"{where}.resources must offer some resource (e.g. {{CPU: 1}})")
    labels = {}
    for key, value in _mapping(f"{where}.labels", raw.get("labels", {})).items():
        if not isinstance(key, str) or not isinstance(value, (str, int, float)) or key.startswith("ember.io/"):
            raise ConfigError(f"{where}.labels: {key!r}: string keys (not ember.io/...) and string values")
        labels[key] = str(value)
    min_workers = int(_number(f"{where}.min_workers", raw.get("min_workers", 0), integer=True))
    max_workers = int(_number(f"{where}.max_workers", raw.get("max_workers", 1_000_000), integer=True))
    if min_workers > max_workers:
        raise ConfigError(f"{where}: min_workers {min_workers} is above max_workers {max_workers}")
    return NodeType(name, resources, labels, min_workers, max_workers)


def parse(raw: Any) -> AutoscalingConfig:
    """The config from its decoded YAML/JSON; ConfigError if not valid."""
    raw = _mapping("the autoscaling config", raw)
    _unknown("the autoscaling config", raw, _TOP_KEYS)
    if "provider" not in raw:
        raise ConfigError("the autoscaling config needs a provider: {type: local} or {type: command, ...}")
    provider = _provider(raw["provider"])
    types_raw = _mapping("available_node_types", raw.get("available_node_types", {}))
    head_type = raw.get("head_node_type")
    node_types = {name: _node_type(name, spec) for name, spec in types_raw.items() if name != head_type}
    if not node_types:
        raise ConfigError("available_node_types must name at least one worker node type")
    max_workers = int(_number("max_workers", raw.get("max_workers", sum(min(t.max_workers, 1_000_000)
                                                                       for t in node_types.values())), integer=True))
    minimum = sum(t.min_workers for t in node_types.values())
    if minimum > max_workers:
        raise ConfigError(f"the node types' min_workers add up to {minimum}, above max_workers {max_workers}")
    idle_minutes = _number("idle_timeout_minutes", raw.get("idle_timeout_minutes", 5))
    speed = _number("upscaling_speed", raw.get("upscaling_speed", 1.0), minimum=0.01)
    return AutoscalingConfig(provider, node_types, max_workers, float(idle_minutes) * 60.0, float(speed))


def load(path: str | pathlib.Path) -> AutoscalingConfig:
    """Read a config file: JSON if it parses as JSON, else YAML."""
    path = pathlib.Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read the autoscaling config {path}: {e.strerror}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        import yaml

        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is neither JSON nor valid YAML: {e}") from None
    try:
        return parse(raw)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
