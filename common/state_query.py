"""Filters, limits and summaries over state rows (ember list|summary,
ember.util.state), with Ray's filter syntax: (key, "=" or "!=", value),
string values compared case-insensitively, on the columns a resource
allows. Pure functions (tests/unit/test_state_query.py)."""

from __future__ import annotations

import collections
from typing import Any, Iterable, Sequence

PREDICATES = ("=", "!=")
DEFAULT_LIMIT = 100

Filter = tuple[str, str, Any]


class StateQueryError(ValueError):
    """A query the caller got wrong: an unknown filter key, a bad predicate."""


def parse_filter(text: str) -> Filter:
    """A CLI filter, "key=value" or "key!=value", as a filter tuple."""
    if "!=" in text:
        key, _, value = text.partition("!=")
        predicate = "!="
    elif "=" in text:
        key, _, value = text.partition("=")
        predicate = "="
    else:
        raise StateQueryError(f"filter {text!r} must be KEY=VALUE or KEY!=VALUE")
    key, value = key.strip(), value.strip()
    if not key:
        raise StateQueryError(f"filter {text!r} has no key")
    return key, predicate, value


def check_filters(filters: Iterable[Sequence[Any]] | None, columns: Sequence[str], resource: str) -> list[Filter]:
    checked = []
    for f in filters or ():
        if not isinstance(f, (tuple, list)) or len(f) != 3:
            raise StateQueryError(f"a filter is (key, predicate, value), not {f!r}")
        key, predicate, value = f
        if key not in columns:
            raise StateQueryError(f"unknown filter key {key!r} for {resource}; one of: {', '.join(sorted(columns))}")
        if predicate not in PREDICATES:
            raise StateQueryError(f"unknown predicate {predicate!r} in filter on {key!r}; use '=' or '!='")
        checked.append((key, predicate, value))
    return checked


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).lower()


def matches(row: dict[str, Any], filters: Sequence[Filter]) -> bool:
    for key, predicate, value in filters:
        equal = _text(row.get(key)) == _text(value)
        if equal != (predicate == "="):
            return False
    return True


def select(rows: Iterable[dict[str, Any]], filters: Sequence[Filter], limit: int | None) -> list[dict[str, Any]]:
    """Rows that match every filter, at most `limit` of them (None: all)."""
    if limit is not None and limit < 0:
        raise StateQueryError(f"limit must be >= 0, not {limit}")
    out = []
    for row in rows:
        if limit is not None and len(out) >= limit:
            break
        if matches(row, filters):
            out.append(row)
    return out


def summarize_tasks(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Ray's task summary: counts by function (or method) and state."""
    summary: dict[str, dict[str, Any]] = {}
    total = total_actor_tasks = total_actor_scheduled = 0
    for row in rows:
        name = row["func_or_class_name"] or row["name"]
        entry = summary.setdefault(name, {"func_or_class_name": name, "type": row["type"], "state_counts": {}})
        counts = entry["state_counts"]
        counts[row["state"]] = counts.get(row["state"], 0) + 1
        total += 1
        if row["type"] == "ACTOR_TASK":
            total_actor_tasks += 1
        elif row["type"] == "ACTOR_CREATION_TASK":
            total_actor_scheduled += 1
    return {"cluster": {"summary": summary, "total_tasks": total - total_actor_tasks - total_actor_scheduled,
                        "total_actor_tasks": total_actor_tasks, "total_actor_scheduled": total_actor_scheduled,
                        "summary_by": "func_name"}}


def summarize_actors(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Ray's actor summary: counts by class and state."""
    summary: dict[str, dict[str, Any]] = {}
    total = 0
    for row in rows:
        entry = summary.setdefault(row["class_name"], {"class_name": row["class_name"], "state_counts": {}})
        entry["state_counts"][row["state"]] = entry["state_counts"].get(row["state"], 0) + 1
        total += 1
    return {"cluster": {"summary": summary, "total_actors": total, "summary_by": "class"}}


def summarize_objects(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Ray's object summary (grouped by call site, which Ember does not
    record: one group, "disabled", as Ray without call sites)."""
    rows = list(rows)
    states = collections.Counter(r["task_status"] for r in rows)
    refs = collections.Counter(r["reference_type"] for r in rows)
    size = sum(r["object_size"] or 0 for r in rows)
    group = {"total_objects": len(rows), "total_size_mb": size / 2**20,
             "total_num_workers": len({r["pid"] for r in rows if r["pid"]}),
             "total_num_nodes": len({r["ip"] for r in rows}), "task_state_counts": dict(states),
             "ref_type_counts": dict(refs)}
    return {"cluster": {"summary": {"disabled": group} if rows else {}, "total_objects": len(rows),
                        "total_size_mb": size / 2**20, "callsite_enabled": False,
                        "summary_by": "callsite"}}
