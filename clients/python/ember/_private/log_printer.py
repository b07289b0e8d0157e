"""What the raylet sends a driver to show its user: the job's task output
(stdout and stderr lines, prefixed with the task and its worker's pid, as
Ray prints them) and warnings."""

from __future__ import annotations

import sys
from typing import Iterable

from ember.v1 import raylet_pb2


def print_warnings(warnings: Iterable[str]) -> None:
    for warning in warnings:
        print(f"ember: warning: {warning}", file=sys.stderr)


def print_logs(logs: Iterable[raylet_pb2.LogLines]) -> None:
    for lines in logs:
        out = sys.stderr if lines.is_stderr else sys.stdout
        prefix = f"({lines.task_name} pid={lines.pid}) "
        out.write("".join(prefix + line + "\n" for line in lines.lines))
        out.flush()
