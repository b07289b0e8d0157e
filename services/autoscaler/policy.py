"""What to launch and what to remove: a pure function from the cluster as
the autoscaler sees it (nodes, their free resources, demand) to decisions,
tested without sockets (tests/unit/test_autoscaler_policy.py).

One round, in order:
1. each node type up to its min_workers;
2. explicit requests (request_resources): bundles packed onto the nodes'
   *total* resources (a floor on the cluster's size, as in Ray), new nodes
   for what does not fit;
3. placement groups not placed yet (gang demand): STRICT_SPREAD needs a node
   per bundle, STRICT_PACK one node holding them all, PACK and SPREAD their
   bundles anywhere; a group is launched for whole or not at all;
4. queued tasks' and actors' shapes, first onto free resources (running
   nodes' available, launching nodes' whole type), then onto new nodes.
New nodes for 3 and 4 are capped per round by upscaling_speed. No launch
ever takes a type above its max_workers or the cluster above max_workers.
A shape no node type (nor a node there already) can ever hold is
infeasible: reported, never launched for. Nodes idle past the timeout that
nothing above was packed onto are removed, never below a type's minimum.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import math
from typing import Iterable, Mapping, Sequence

from ember_autoscaler.config import AutoscalingConfig, NodeType

_EPS = 1e-9
# A shape queued this many times is packed as this many (more would plan no
# other launch: the limits stop far sooner).
_MAX_EXPANDED = 10_000
# Launches per round for demand are at most max(this, upscaling_speed x running nodes).
MIN_CONCURRENT_LAUNCHES = 5

Amounts = Mapping[str, float]


class Strategy(str, enum.Enum):
    PACK = "PACK"
    SPREAD = "SPREAD"
    STRICT_PACK = "STRICT_PACK"
    STRICT_SPREAD = "STRICT_SPREAD"


@dataclasses.dataclass
class NodeView:
    """A node as the policy sees it. `node_type` None: not the autoscaler's
    (the head, a node added by hand): used, never removed."""
    key: str
    node_type: str | None
    total: dict[str, float]
    available: dict[str, float]
    labels: dict[str, str]
    launching: bool = False
    idle_s: float = 0.0     # seconds with nothing running on it (0: busy)


@dataclasses.dataclass(frozen=True)
class Shape:
    amounts: tuple[tuple[str, float], ...]
    selector: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, amounts: Amounts, selector: Mapping[str, str] | None = None) -> "Shape":
        return cls(tuple(sorted((k, float(v)) for k, v in amounts.items() if v > 0)),
                   tuple(sorted((selector or {}).items())))

    @property
    def resources(self) -> dict[str, float]:
        return dict(self.amounts)

    def describe(self) -> str:
        text = ", ".join(f"{k}: {v:g}" for k, v in self.amounts) or "nothing"
        return "{" + text + "}" + (f" on labels {dict(self.selector)}" if self.selector else "")


@dataclasses.dataclass(frozen=True)
class Gang:
    """A placement group not placed yet."""
    name: str
    bundles: tuple[Shape, ...]
    strategy: Strategy


@dataclasses.dataclass
class Unmet:
    shape: Shape
    count: int
    reason: str
    infeasible: bool


@dataclasses.dataclass
class Decision:
    launches: dict[str, int]
    remove: list[str]                  # node keys
    unmet: list[Unmet]


def fits(request: Amounts, free: Amounts) -> bool:
    return all(free.get(k, 0.0) + _EPS >= v for k, v in request.items() if v > 0)


def _take(free: dict[str, float], request: Amounts) -> None:
    for k, v in request.items():
        free[k] = free.get(k, 0.0) - v


def _add(a: Amounts, b: Amounts) -> dict[str, float]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0.0) + v
    return out


def _labels_match(selector: Iterable[tuple[str, str]], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector)


@dataclasses.dataclass
class _Slot:
    """Room demand can be packed onto: a node, or one this round launches."""
    key: str | None           # the node's key; None for a new node
    node_type: str | None
    free: dict[str, float]
    labels: dict[str, str]
    used: bool = False

    def take(self, shape: Shape) -> bool:
        if _labels_match(shape.selector, self.labels) and fits(shape.resources, self.free):
            _take(self.free, shape.resources)
            self.used = True
            return True
        return False


class _Plan:
    def __init__(self, config: AutoscalingConfig, nodes: Sequence[NodeView], launchable: set[str]) -> None:
        self.config = config
        self.types = config.node_types
        self.launchable = launchable
        self.count = collections.Counter(n.node_type for n in nodes if n.node_type in self.types)
        self.launches: collections.Counter[str] = collections.Counter()
        self.new_for_demand = 0

    def total_workers(self) -> int:
        return sum(self.count.values()) + sum(self.launches.values())

    def blocked(self, name: str) -> str | None:
        """Why a node of this type cannot be launched now (None: it can)."""
        t = self.types[name]
        if self.count[name] + self.launches[name] >= t.max_workers:
            return f"node type {name} is at its max_workers ({t.max_workers})"
        if self.total_workers() >= self.config.max_workers:
            return f"the cluster is at max_workers ({self.config.max_workers})"
        if name not in self.launchable:
            return f"launches of node type {name} are backing off after failures"
        return None

    def launch(self, name: str) -> _Slot:
        self.launches[name] += 1
        t = self.types[name]
        return _Slot(None, name, dict(t.resources), dict(t.labels), used=True)


def _type_fits(t: NodeType, shape: Shape) -> bool:
    return _labels_match(shape.selector, t.labels) and fits(shape.resources, t.resources)


def _pick_type(plan: _Plan, shape: Shape, rest: Sequence[Shape]) -> tuple[str | None, str]:
    """The node type to launch for `shape`: of those that fit and may be
    launched, the one that would also hold most of the other waiting shapes;
    or None and why none."""
    candidates = [t for t in plan.types.values() if _type_fits(t, shape)]
    if not candidates:
        return None, "no node type fits it"
    reasons = []
    allowed = []
    for t in candidates:
        why = plan.blocked(t.name)
        (reasons.append(why) if why else allowed.append(t))
    if not allowed:
        return None, "; ".join(dict.fromkeys(reasons))

    def score(t: NodeType) -> tuple[int, int, float, str]:
        free = dict(t.resources)
        free_after = dict(free)
        _take(free_after, shape.resources)
        held = 0
        for other in rest[:200]:
            if _type_fits(t, other) and fits(other.resources, free_after):
                _take(free_after, other.resources)
                held += 1
        # then types without resources it does not ask for (keep accelerators for
        # work that needs them, as Ray's scorer does), then the smallest
        unasked = sum(1 for k, v in t.resources.items() if v > 0 and k not in shape.resources)
        return (-held, unasked, sum(t.resources.values()), t.name)

    return min(allowed, key=score).name, ""


def _feasible(shape: Shape, types: Mapping[str, NodeType], nodes: Sequence[NodeView]) -> bool:
    return any(_type_fits(t, shape) for t in types.values()) or any(
        _labels_match(shape.selector, n.labels) and fits(shape.resources, n.total) for n in nodes)


def decide(config: AutoscalingConfig, nodes: Sequence[NodeView], demand: Mapping[Shape, int],
           gangs: Sequence[Gang] = (), requests: Sequence[Shape] = (),
           launchable: set[str] | None = None) -> Decision:
    """One round's decisions. `demand`: queued shapes and how many of each;
    `launchable`: the node types that may be launched now (not backing off;
    default all)."""
    plan = _Plan(config, nodes, set(config.node_types) if launchable is None else launchable)
    unmet: list[Unmet] = []

    # 1. every type up to its minimum (these count as room for demand too)
    new_slots: list[_Slot] = []
    for name, t in sorted(plan.types.items()):
        while plan.count[name] + plan.launches[name] < t.min_workers and plan.blocked(name) is None:
            new_slots.append(plan.launch(name))

    # 2. explicit requests, against total resources
    totals = [_Slot(n.key, n.node_type, dict(n.total), n.labels) for n in nodes] + \
             [_Slot(None, s.node_type, dict(plan.types[s.node_type].resources), s.labels) for s in new_slots]
    needed: set[str] = set()
    for shape in sorted(requests, key=lambda s: -sum(v for _, v in s.amounts)):
        slot = next((s for s in totals if s.take(shape)), None)
        if slot is None:
            if not _feasible(shape, plan.types, nodes):
                unmet.append(Unmet(shape, 1, "requested, but no node type fits it", True))
                continue
            name, why = _pick_type(plan, shape, ())
            if name is None:
                unmet.append(Unmet(shape, 1, f"requested: {why}", False))
                continue
            new = plan.launch(name)
            new_slots.append(new)
            totals.append(_Slot(None, name, dict(new.free), new.labels))
            totals[-1].take(shape)
        elif slot.key is not None:
            needed.add(slot.key)

    # Free room for gangs and tasks: running nodes' available, launching
    # nodes' and new nodes' whole resources.
    slots = [_Slot(n.key, n.node_type, dict(n.total if n.launching else n.available), n.labels, used=False)
             for n in nodes] + new_slots
    running = sum(1 for n in nodes if n.node_type in plan.types and not n.launching)
    launching = sum(1 for n in nodes if n.node_type in plan.types and n.launching)
    allowance = max(MIN_CONCURRENT_LAUNCHES, math.ceil(config.upscaling_speed * running)) - launching

    def launch_for(shape: Shape, rest: Sequence[Shape]) -> tuple[_Slot | None, str]:
        if plan.new_for_demand >= allowance:
            return None, f"waiting: upscaling_speed allows {max(allowance, 0)} more launches now"
        name, why = _pick_type(plan, shape, rest)
        if name is None:
            return None, why
        plan.new_for_demand += 1
        slot = plan.launch(name)
        slot.used = False
        slots.append(slot)
        return slot, ""

    # 3. gangs: all or nothing each
    for gang in gangs:
        infeasible = next((b for b in gang.bundles if not _feasible(b, plan.types, nodes)), None)
        combined = Shape.of(_add_all(b.resources for b in gang.bundles))
        if infeasible is not None or (gang.strategy is Strategy.STRICT_PACK
                                      and not _feasible(combined, plan.types, nodes)):
            shape = infeasible or combined
            unmet.append(Unmet(shape, 1, f"placement group {gang.name}: no node type fits {shape.describe()}", True))
            continue
        if gang.strategy is Strategy.STRICT_SPREAD:
            possible = len(nodes) + config.max_workers - sum(plan.count.values())
            if len(gang.bundles) > possible:
                unmet.append(Unmet(gang.bundles[0], len(gang.bundles),
                                   f"placement group {gang.name} (STRICT_SPREAD) needs {len(gang.bundles)} nodes; "
                                   f"max_workers allows {possible}", True))
                continue
        saved = (_snapshot(slots), plan.launches.copy(), plan.new_for_demand, len(slots))
        why = _place_gang(gang, combined, slots, launch_for)
        if why:
            _restore(slots, saved[0])
            del slots[saved[3]:]
            plan.launches, plan.new_for_demand = saved[1], saved[2]
            unmet.append(Unmet(gang.bundles[0], len(gang.bundles), f"placement group {gang.name}: {why}", False))

    # 4. task and actor shapes, largest first
    expanded: list[Shape] = []
    for shape, n in sorted(demand.items(), key=lambda kv: -sum(v for _, v in kv[0].amounts)):
        expanded.extend([shape] * min(n, _MAX_EXPANDED))
    short: collections.Counter[Shape] = collections.Counter()
    reasons: dict[Shape, tuple[str, bool]] = {}
    for i, shape in enumerate(expanded):
        if any(s.take(shape) for s in slots):
            continue
        if not _feasible(shape, plan.types, nodes):
            short[shape] += 1
            reasons[shape] = ("no node type (nor any node) can ever hold it", True)
            continue
        slot, why = launch_for(shape, expanded[i + 1:])
        if slot is None:
            if any(_labels_match(shape.selector, n.labels) and fits(shape.resources, n.total) for n in nodes) \
                    and not any(_type_fits(t, shape) for t in plan.types.values()):
                continue  # only a node there already can run it: it waits for that node
            short[shape] += 1
            reasons[shape] = (why, False)
        else:
            slot.take(shape)
    for shape, n in short.items():
        reason, infeasible = reasons[shape]
        unmet.append(Unmet(shape, n, reason, infeasible))
    needed.update(s.key for s in slots if s.used and s.key is not None)

    # Idle nodes nothing was packed onto, oldest idle first, down to each type's minimum.
    remove = []
    keep = collections.Counter(plan.count)
    idle = sorted((n for n in nodes if n.node_type in plan.types and not n.launching and n.key not in needed
                   and n.idle_s >= config.idle_timeout_s), key=lambda n: -n.idle_s)
    for n in idle:
        assert n.node_type is not None
        if keep[n.node_type] > plan.types[n.node_type].min_workers and not plan.launches[n.node_type]:
            keep[n.node_type] -= 1
            remove.append(n.key)
    return Decision(dict(plan.launches), remove, unmet)


def _add_all(amounts: Iterable[Amounts]) -> dict[str, float]:
    out: dict[str, float] = {}
    for a in amounts:
        out = _add(out, a)
    return out


def _snapshot(slots: list[_Slot]) -> list[tuple[dict[str, float], bool]]:
    return [(dict(s.free), s.used) for s in slots]


def _restore(slots: list[_Slot], saved: list[tuple[dict[str, float], bool]]) -> None:
    for slot, (free, used) in zip(slots, saved):
        slot.free, slot.used = free, used


def _place_gang(gang: Gang, combined: Shape, slots: list[_Slot], launch_for) -> str:  # type: ignore[no-untyped-def]
    """Pack a gang onto slots, launching what it needs; '' or why not."""
    if gang.strategy is Strategy.STRICT_PACK:
        if any(s.take(combined) for s in slots):
            return ""
        slot, why = launch_for(combined, ())
        return "" if slot is not None and slot.take(combined) else (why or "no node type fits it")
    if gang.strategy is Strategy.STRICT_SPREAD:
        taken: set[int] = set()
        for bundle in sorted(gang.bundles, key=lambda b: -sum(v for _, v in b.amounts)):
            index = next((i for i, s in enumerate(slots) if i not in taken and s.take(bundle)), None)
            if index is None:
                slot, why = launch_for(bundle, ())
                if slot is None or not slot.take(bundle):
                    return why or "no node type fits a bundle"
                index = len(slots) - 1
            taken.add(index)
        return ""
    for bundle in gang.bundles:
        if not any(s.take(bundle) for s in slots):
            slot, why = launch_for(bundle, ())
            if slot is None or not slot.take(bundle):
                return why or "no node type fits a bundle"
    return ""
