"""The resources a placement group's bundle becomes on its node once
committed, and how a task scheduled into a group asks for them (Ray's
scheme). Shared by the SDK (rewriting a task's request) and the raylet
(adding and removing the resources).

Bundle i of group G with {"CPU": 2} adds, on its node:
    CPU_group_i_G: 2, CPU_group_G: 2, bundle_group_i_G: 1000, bundle_group_G: 1000
A task in bundle i asks for CPU_group_i_G (any bundle: CPU_group_G) instead
of CPU, plus a sliver of bundle_group_*, so even a task that asks for no
resources lands on a node holding the group.
"""

from __future__ import annotations

from typing import Mapping

BUNDLE_UNITS = 1000.0
_SLIVER = 0.001


def group_resource(name: str, group_hex: str, index: int = -1) -> str:
    return f"{name}_group_{group_hex}" if index < 0 else f"{name}_group_{index}_{group_hex}"


def is_group_resource(name: str) -> bool:
    return "_group_" in name


def bundle_resources(group_hex: str, index: int, amounts: Mapping[str, float]) -> dict[str, float]:
    """What committing bundle `index` adds to its node's resources."""
    out: dict[str, float] = {}
    for name, amount in {**amounts, "bundle": BUNDLE_UNITS}.items():
        if amount > 0:
            out[group_resource(name, group_hex, index)] = amount
            out[group_resource(name, group_hex)] = amount
    return out


def task_request(shape: Mapping[str, float], group_hex: str, index: int = -1) -> dict[str, float]:
    """A task's resource request, moved into the group (bundle `index`, or
    any bundle if -1)."""
    out = {group_resource(name, group_hex, index): amount for name, amount in shape.items() if amount > 0}
    out[group_resource("bundle", group_hex, index)] = _SLIVER
    return out


def group_of(request: Mapping[str, float]) -> str | None:
    """The hex id of the group a request was moved into (task_request), if any."""
    for name in request:
        if name.startswith("bundle_group_"):
            return name.rsplit("_", 1)[1]
    return None


def base_request(request: Mapping[str, float]) -> dict[str, float]:
    """A request as the task asked for it: group resources back to their
    plain names (CPU_group_0_G -> CPU), the bundle sliver dropped."""
    out: dict[str, float] = {}
    for name, amount in request.items():
        if is_group_resource(name):
            name = name.split("_group_", 1)[0]
            if name == "bundle":
                continue
        out[name] = amount
    return out
