"""The state of one progress bar (ember.experimental.tqdm_ray) as a task
reports it: a line on the task's stdout, which reaches the driver with the
task's other output and which the driver's log printer recognises, turns
back into a BarState and shows as a bar instead of printing (Ray's design)."""

from __future__ import annotations

import dataclasses
import json

# Marks a state line. Searched for anywhere in a line: if a task's own
# unfinished print got in front of it, that text is still shown.
MARKER = "__ember_tqdm_state__ "


@dataclasses.dataclass(frozen=True)
class BarState:
    uuid: str  # one bar, for its whole life
    desc: str
    n: float
    total: float | None
    unit: str
    position: int  # its place among its process's bars
    closed: bool


def encode(state: BarState) -> str:
    return MARKER + json.dumps(dataclasses.asdict(state), separators=(",", ":"))


def decode(line: str) -> tuple[str, BarState | None]:
    """(the text before a state, the state) of a line; (line, None) for an
    ordinary line or a state too damaged to read."""
    at = line.find(MARKER)
    if at < 0:
        return line, None
    try:
        fields = json.loads(line[at + len(MARKER):])
        return line[:at], BarState(**fields)
    except (ValueError, TypeError):
        return line, None
