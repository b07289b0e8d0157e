"""Tables and JSON lines for the `ember` command's listings."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable

import click


@dataclasses.dataclass(frozen=True)
class Column:
    """A table column: its heading, its width (0: the last column, unpadded)
    and what a row shows in it."""

    heading: str
    width: int
    value: Callable[[dict[str, Any]], Any]
    align: str = "<"    # ">": right-aligned (numbers)
    clip: bool = True   # cut to the width (ids, names); else a longer value runs over

    def cell(self, row: dict[str, Any]) -> str:
        value = self.value(row)
        if self.clip:
            value = str(value)[:self.width]
        return f"{value:{self.align}{self.width}}"


def echo_listing(rows: list[dict[str, Any]], as_json: bool, title: str, columns: list[Column]) -> None:
    """The rows as JSON lines, or the title and a table."""
    if as_json:
        echo_json_lines(rows)
        return
    click.echo(title)
    echo_table(rows, columns)


def echo_table(rows: list[dict[str, Any]], columns: list[Column], indent: str = "") -> None:
    """A heading line and a line a row (nothing for no rows): the fixed-width
    columns one space apart, then two spaces and the last column, unpadded."""
    if not rows:
        return
    *fixed, last = columns

    def line(cells: list[str], tail: str) -> str:
        return indent + " ".join(cells) + "  " + tail

    click.echo(line([f"{c.heading:{c.align}{c.width}}" for c in fixed], last.heading))
    for r in rows:
        click.echo(line([c.cell(r) for c in fixed], str(last.value(r))))


def echo_json_lines(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        click.echo(json.dumps(row))


def amount(name: str, value: float) -> str:
    if name == "memory":
        return f"{value / 2**30:.2f}GiB"
    return f"{value:g}"
