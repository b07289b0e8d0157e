"""Progress bars from tasks and actors, drawn by the driver, as Ray's
`ray.experimental.tqdm_ray` (a subset of tqdm's arguments):

    from ember.experimental import tqdm_ray

    @ember.remote
    def work(items):
        for item in tqdm_ray.tqdm(items, desc="work"):
            ...

In a task a bar reports its state, at most every flush_interval_s (and
when it reaches its total or closes), as a line of the task's output; the
driver recognises those lines and draws the bars (ember._private.log_printer)
instead of printing them. In the driver a bar is drawn directly. On the
driver's terminal `print` becomes `safe_print` once bars are drawn, so
output does not break them."""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any, Iterable, Iterator

from ember._private import bar_state, log_printer, runtime
from ember._private.log_printer import safe_print

__all__ = ["safe_print", "tqdm"]


class tqdm:
    """A progress bar shown in the driver, from wherever it is made."""

    DEFAULT_FLUSH_INTERVAL_SECONDS = 1.0

    def __init__(self, iterable: Iterable[Any] | None = None, desc: str | None = None, total: int | None = None,
                 unit: str | None = None, position: int | None = None,
                 flush_interval_s: float | None = None) -> None:
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except (TypeError, AttributeError):
                total = None
        self._iterable = iterable
        self._desc = desc or ""
        self._total = total
        self._unit = unit or "it"
        self._pos = position or 0
        self._uuid = uuid.uuid4().hex
        self._x: float = 0
        self._closed = False
        self._flush_interval_s = self.DEFAULT_FLUSH_INTERVAL_SECONDS if flush_interval_s is None else flush_interval_s
        self._last_flush = time.monotonic()
        self._dump_state(force=True)  # shown from the start

    def set_description(self, desc: str) -> None:
        self._desc = desc or ""
        self._dump_state()

    def update(self, n: float = 1) -> None:
        """Count n more done."""
        self._x += n
        self._dump_state()

    def refresh(self) -> None:
        self._dump_state(force=True)

    def close(self) -> None:
        """The bar's last state; it is not drawn any more (its last line stays)."""
        if self._closed:
            return
        self._closed = True
        self._dump_state(force=True)

    @property
    def total(self) -> int | None:
        return self._total

    @total.setter
    def total(self, total: int | None) -> None:
        self._total = total

    @property
    def n(self) -> float:
        return self._x

    @n.setter
    def n(self, n: float) -> None:
        self._x = n

    def __iter__(self) -> Iterator[Any]:
        if self._iterable is None:
            raise ValueError("No iterable provided")
        try:
            for x in self._iterable:
                self.update(1)
                yield x
        finally:  # exhausted, broken out of or dropped: done (as tqdm)
            self.close()

    def __enter__(self) -> "tqdm":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _dump_state(self, force: bool = False) -> None:
        now = time.monotonic()
        done = self._total is not None and self._x >= self._total
        if not (force or done) and now - self._last_flush < self._flush_interval_s:
            return
        self._last_flush = now
        state = bar_state.BarState(uuid=self._uuid, desc=self._desc, n=self._x, total=self._total, unit=self._unit,
                                   position=self._pos, closed=self._closed)
        if runtime.task_context().job_id is not None:
            # In a task: one write of one whole line, which the driver turns back into the state.
            sys.stdout.write(bar_state.encode(state) + "\n")
        else:
            log_printer.show_bar(state, source="", label="")
