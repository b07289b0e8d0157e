"""The driver's progress bars (ember.experimental.tqdm_ray): what to write
to show the bars' latest states. Pure: the caller (log_printer) writes
the text it returns, so this is tested without a terminal.

On a terminal the open bars are one block under the output, redrawn in
place, as tqdm draws them: the cursor rests at the start of the block, so
output nobody cleared the block for (a stray write to stderr) lands over
the bars rather than being erased by the next redraw. A closed bar's last
line stays above the block; other output is written with the block
cleared first (clear() / redraw()). Elsewhere (a pipe, a file) each change
of a bar is one line."""

from __future__ import annotations

import dataclasses

from ember._private.bar_state import BarState

BAR_WIDTH = 20
_UP = "\x1b[{}F"  # cursor up n lines, to the start of the line
_CLEAR_LINE = "\x1b[2K"
_CLEAR_BELOW = "\x1b[J"  # from the cursor to the end of the screen


def render(label: str, state: BarState, elapsed: float) -> str:
    """One bar as tqdm shows it: `desc: 40%|########            | 4/10 [00:02<00:03, 2.00it/s]`."""
    desc = label + state.desc
    head = f"{desc}: " if desc else ""
    rate = state.n / elapsed if elapsed > 0 and state.n > 0 else None
    rate_text = f"{rate:.2f}{state.unit}/s" if rate else f"?{state.unit}/s"
    if state.total:
        fraction = min(max(state.n / state.total, 0.0), 1.0)
        filled = int(fraction * BAR_WIDTH)
        remaining = (state.total - state.n) / rate if rate else None
        return (f"{head}{fraction:4.0%}|{'#' * filled}{' ' * (BAR_WIDTH - filled)}| "
                f"{_number(state.n)}/{_number(state.total)} [{_duration(elapsed)}<{_duration(remaining)}, {rate_text}]")
    return f"{head}{_number(state.n)}{state.unit} [{_duration(elapsed)}, {rate_text}]"


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def _duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


@dataclasses.dataclass
class _Bar:
    state: BarState
    label: str
    order: tuple[int, int, int]  # (its source's rank, its position, its rank): where it is drawn
    started: float
    shown: tuple[object, ...] = ()  # what the last line showed (pipes: print only changes)


class BarDisplay:
    """The open bars of every task (and of the driver itself). Not thread-
    safe: the caller serialises calls (and the writes of their text)."""

    def __init__(self) -> None:
        self._bars: dict[str, _Bar] = {}
        self._sources: dict[str, int] = {}
        self._seen = 0
        self._drawn = 0  # lines of the block now on the terminal
        self._cleared = False  # clear() erased the block: redraw() draws it again

    def update(self, state: BarState, source: str, label: str, now: float, terminal: bool,
               columns: int = 80) -> str:
        """Apply a bar's state; the text that shows it. `source` groups the
        bars of one process, `label` prefixes its lines ("(task pid=N) ")."""
        bar = self._bars.get(state.uuid)
        if bar is None:
            rank = self._sources.setdefault(source, len(self._sources))
            self._seen += 1
            bar = self._bars[state.uuid] = _Bar(state, label, (rank, state.position, self._seen), now)
        bar.state = state
        if state.closed:
            del self._bars[state.uuid]
        if terminal:
            kept = [render(bar.label, state, now - bar.started)] if state.closed else []
            return self._draw(kept, now, columns)
        shown = (state.n, state.total, state.desc)  # (closing changes nothing shown)
        if shown == bar.shown:
            return ""
        bar.shown = shown
        return render(bar.label, state, now - bar.started) + "\n"

    def clear(self) -> str:
        """Erase the block (terminals), so other output can be written."""
        if not self._drawn:
            return ""
        self._drawn = 0
        self._cleared = True
        return "\r" + _CLEAR_BELOW

    def redraw(self, now: float, columns: int = 80) -> str:
        """Draw the block clear() erased again, under what was written since."""
        if not self._cleared:
            return ""
        return self._draw([], now, columns)

    def leave(self) -> str:
        """Move below the block (at exit: what comes next must not overwrite it)."""
        text = "\n" * self._drawn
        self._drawn = 0
        return text

    def _draw(self, kept: list[str], now: float, columns: int) -> str:
        """Lines that stay (closed bars), then the block of open bars, over
        the old block; the cursor back at the block's start."""
        block = [render(b.label, b.state, now - b.started) for b in sorted(self._bars.values(), key=lambda b: b.order)]
        self._cleared = False
        if not kept and not block and not self._drawn:
            return ""
        self._drawn = len(block)
        # A line wider than the terminal would wrap and break the cursor arithmetic.
        width = max(columns - 1, 1)
        text = "\r" + "".join(f"{_CLEAR_LINE}{line[:width]}\n" for line in kept)
        text += "\n".join(f"{_CLEAR_LINE}{line[:width]}" for line in block) + _CLEAR_BELOW
        if block:
            text += _UP.format(len(block) - 1) if len(block) > 1 else "\r"
        return text
