"""What a driver shows its user: the job's task output (stdout and stderr
lines, prefixed with the task and its worker's pid, as Ray prints them),
warnings, and progress bars (ember.experimental.tqdm_ray): a task's bar
states arrive as lines of its output, recognised here and drawn as bars
instead (bar_state, progress_bars). Bars go to stderr.

Printing runs on the client's reader thread, so it must never raise: a
driver whose stdout is closed or broken (a closed pipe, a test's capture
torn down mid-write) loses the lines, not its connection to the raylet."""

from __future__ import annotations

import atexit
import builtins
import contextlib
import logging
import sys
import threading
import time
from typing import Any, Iterable, Iterator, TextIO

from ember.v1 import raylet_pb2

from ember._private import bar_state
from ember._private.progress_bars import BarDisplay

log = logging.getLogger(__name__)

_lock = threading.RLock()  # one writer at a time, so bars and lines do not mix
_bars = BarDisplay()
_print = builtins.print  # the original, whatever safe_print replaces
_drew_on_terminal = False


def _write(out: TextIO, text: str) -> None:
    if not text:
        return
    try:
        out.write(text)
        out.flush()
    except (OSError, ValueError) as e:  # ValueError: "I/O operation on closed file"
        log.debug("task output not shown (%s): %r", e, text[:200])


def _on_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _columns() -> int:
    import shutil  # (when bars are drawn only: it imports bz2 and lzma, ~3 ms of every driver's start)

    return shutil.get_terminal_size().columns


def _print_lines(out: TextIO, lines: list[str]) -> None:
    if not lines:
        return
    with _lock:
        _write(sys.stderr, _bars.clear())
        _write(out, "".join(line + "\n" for line in lines))
        _write(sys.stderr, _bars.redraw(time.monotonic(), _columns()))


def print_warnings(warnings: Iterable[str]) -> None:
    _print_lines(sys.stderr, [f"ember: warning: {warning}" for warning in warnings])


def print_logs(logs: Iterable[raylet_pb2.LogLines]) -> None:
    for lines in logs:
        prefix = f"({lines.task_name} pid={lines.pid}) "
        out = sys.stderr if lines.is_stderr else sys.stdout
        plain: list[str] = []
        for line in lines.lines:
            state = None
            if bar_state.MARKER in line:
                line, state = bar_state.decode(line)
            if line or state is None:
                plain.append(prefix + line)
            if state is not None:
                _print_lines(out, plain)  # in order: what came before the state first
                plain = []
                show_bar(state, str(lines.pid), prefix)
        _print_lines(out, plain)


def show_bar(state: bar_state.BarState, source: str, label: str) -> None:
    """Show a bar's new state (`label` prefixes its line)."""
    with _lock:
        terminal = _on_terminal()
        if terminal and not _drew_on_terminal:
            _first_terminal_bar()
        _write(sys.stderr, _bars.update(state, source, label, time.monotonic(), terminal, _columns()))


@contextlib.contextmanager
def bars_hidden() -> Iterator[None]:
    """Bars cleared for the duration, drawn again after (for other output)."""
    with _lock:
        _write(sys.stderr, _bars.clear())
        try:
            yield
        finally:
            _write(sys.stderr, _bars.redraw(time.monotonic(), _columns()))


def safe_print(*args: Any, **kwargs: Any) -> None:
    """print, without breaking the progress bars on the terminal."""
    if kwargs.get("file") not in (sys.stdout, sys.stderr, None):
        return _print(*args, **kwargs)
    with bars_hidden():
        _print(*args, **{**kwargs, "flush": True})  # written before the bars come back


def _first_terminal_bar() -> None:
    """Bars are drawn on the terminal from now on: print becomes safe_print,
    as in Ray (EMBER_TQDM_PATCH_PRINT=0 keeps the builtin), and at exit
    the cursor goes below the bars still open."""
    global _drew_on_terminal
    _drew_on_terminal = True
    from ember_common.config import Config

    if Config.load().tqdm_patch_print:
        builtins.print = safe_print
    atexit.register(_leave_bars)


def _leave_bars() -> None:
    with _lock:
        _write(sys.stderr, _bars.leave())
