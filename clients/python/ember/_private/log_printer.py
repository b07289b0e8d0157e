"""What the raylet sends a driver to show its user: the job's task output
(stdout and stderr lines, prefixed with the task and its worker's pid, as
Ray prints them) and warnings.

Printing runs on the client's reader thread, so it must never raise: a
driver whose stdout is closed or broken (a closed pipe, a test's capture
torn down mid-write) loses the lines, not its connection to the raylet."""

from __future__ import annotations

import logging
import sys
from typing import Iterable, TextIO

from ember.v1 import raylet_pb2

log = logging.getLogger(__name__)


def _write(out: TextIO, text: str) -> None:
    try:
        out.write(text)
        out.flush()
    except (OSError, ValueError) as e:  # ValueError: "I/O operation on closed file"
        log.debug("task output not shown (%s): %r", e, text[:200])


def print_warnings(warnings: Iterable[str]) -> None:
    for warning in warnings:
        _write(sys.stderr, f"ember: warning: {warning}\n")


def print_logs(logs: Iterable[raylet_pb2.LogLines]) -> None:
    for lines in logs:
        prefix = f"({lines.task_name} pid={lines.pid}) "
        _write(sys.stderr if lines.is_stderr else sys.stdout, "".join(prefix + line + "\n" for line in lines.lines))
