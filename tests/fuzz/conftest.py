"""The fuzz campaign's count, printed at the end of the run (for the issue note)."""

from __future__ import annotations

from typing import Any

from tests.fuzz.harness import TALLY


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY.inputs():
        for line in TALLY.summary():
            terminalreporter.write_line(line)
