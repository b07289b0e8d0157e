"""Resource amounts as plain dicts: {"CPU": 2.0, "GPU": 0, "memory": ...}."""

from __future__ import annotations

from typing import Mapping

Resources = dict[str, float]
_EPS = 1e-9


def fits(request: Mapping[str, float], available: Mapping[str, float]) -> bool:
    for k, v in request.items():  # (a loop, not all(<genexpr>): on every scheduling step)
        if v > 0 and available.get(k, 0.0) + _EPS < v:
            return False
    return True


def subtract(available: Resources, request: Mapping[str, float]) -> None:
    for k, v in request.items():
        if v > 0:
            available[k] = available.get(k, 0.0) - v


def add(available: Resources, request: Mapping[str, float]) -> None:
    for k, v in request.items():
        if v > 0:
            available[k] = available.get(k, 0.0) + v


def key(request: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    """A hashable scheduling class for a resource shape."""
    return tuple(sorted((k, v) for k, v in request.items() if v > 0))


def describe(request: Mapping[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(request.items()) if v > 0) + "}"
