"""What the dashboard's /api/ answers, read through the same StateClient as
`ember list|summary` (one GCS query, and one call per alive node for
per-node state, per request: nothing is cached or polled while nobody
looks).

Paths and JSON are Ray's dashboard's where Ray has them:
`/api/v0/{tasks,actors,objects,workers,nodes,jobs,placement_groups}` with
`limit`, `filter_keys`, `filter_predicates`, `filter_values`, and
`/api/v0/{tasks,actors,objects}/summarize`, answering
`{"result": true, "msg": "", "data": {"result": ...}}`. The pages' own:
`/api/cluster` (nodes with resources used/total), `/api/waterfall`
(recent task attempts per worker and the critical path), `/api/metrics`
(a few current values for the charts).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Mapping, Sequence

from ember_common import state_query
from ember_common.state_client import COLUMNS, StateClient

from ember_dashboard import metrics_scrape, waterfall

MAX_LIMIT = 10000
WATERFALL_DEFAULT = 300


class ApiError(Exception):
    """A request the caller got wrong (400) or for nothing there is (404)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _one(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _limit(query: Mapping[str, Sequence[str]], default: int) -> int:
    raw = _one(query, "limit")
    if raw is None:
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(400, f"limit must be an integer, not {raw!r}") from None
    if not 0 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"limit must be between 0 and {MAX_LIMIT}, not {limit}")
    return limit


def _filters(query: Mapping[str, Sequence[str]], resource: str) -> list[state_query.Filter]:
    keys = list(query.get("filter_keys", ()))
    predicates = list(query.get("filter_predicates", ()))
    values = list(query.get("filter_values", ()))
    if not (len(keys) == len(predicates) == len(values)):
        raise ApiError(400, "filter_keys, filter_predicates and filter_values must come in equal numbers")
    try:
        return state_query.check_filters(list(zip(keys, predicates, values)), COLUMNS[resource], resource)
    except state_query.StateQueryError as e:
        raise ApiError(400, str(e)) from None


def _ray_reply(result: Any) -> dict[str, Any]:
    return {"result": True, "msg": "", "data": {"result": result}}


class Api:
    def __init__(self, state: StateClient) -> None:
        self._state = state
        # One query at a time: the client's warnings are those of its last query.
        self._lock = threading.Lock()

    def answer(self, path: str, query: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        """The JSON for GET `path` (under /api/); ApiError for a bad request."""
        with self._lock:
            return self._answer(path, query)

    def _answer(self, path: str, query: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["v0"] and len(parts) in (2, 3):
            resource = parts[1]
            if resource not in COLUMNS:
                raise ApiError(404, f"no resource {resource!r}; one of: {', '.join(sorted(COLUMNS))}")
            if len(parts) == 3:
                if parts[2] != "summarize" or resource not in _SUMMARIES:
                    raise ApiError(404, f"no such path /api/{path.strip('/')}")
                return self._summary(resource)
            return self._list(resource, query)
        handler = self._pages.get(tuple(parts))
        if handler is None:
            raise ApiError(404, f"no such path /api/{path.strip('/')}")
        return handler(self, query)

    def _list(self, resource: str, query: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        filters = _filters(query, resource)
        limit = _limit(query, state_query.DEFAULT_LIMIT)
        rows = getattr(self._state, resource)()
        matched = [r for r in rows if state_query.matches(r, filters)]
        out = matched[-limit:] if resource == "tasks" and limit else matched[:limit]  # the latest tasks
        warnings = self._state.warnings() if resource in ("tasks", "objects", "workers") else []
        return _ray_reply({"total": len(rows), "num_filtered": len(matched), "num_after_truncation": len(out),
                           "result": out, "partial_failure_warning": "; ".join(warnings) or None,
                           "warnings": warnings or None})

    def _summary(self, resource: str) -> dict[str, Any]:
        rows = getattr(self._state, resource)()
        summary = _SUMMARIES[resource](rows)
        return _ray_reply({"node_id_to_summary": summary, "partial_failure_warning": None, "warnings": None})

    def cluster(self, query: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        nodes, totals = [], {}
        for n in self._state.node_infos():
            total = dict(n.total.amounts)
            available = dict(n.available.amounts)
            used = {name: total[name] - available.get(name, 0.0) for name in total} if n.alive else {}
            nodes.append({
                "node_id": n.node_id.hex(), "node_ip": n.node_address, "is_head_node": n.is_head,
                "state": "ALIVE" if n.alive else "DEAD", "resources_total": total, "resources_used": used,
                "labels": dict(n.labels), "start_time_ms": int(n.start_time * 1000),
                "end_time_ms": int(n.end_time * 1000) if n.end_time else None,
                "state_message": n.death_reason or None,
                "infeasible": [dict(shape.amounts) for shape in n.infeasible],
            })
            if n.alive:
                for name, amount in total.items():
                    entry = totals.setdefault(name, {"used": 0.0, "total": 0.0})
                    entry["used"] += used[name]
                    entry["total"] += amount
        nodes.sort(key=lambda r: (not r["is_head_node"], r["state"] != "ALIVE", r["start_time_ms"]))
        alive = sum(1 for r in nodes if r["state"] == "ALIVE")
        return {"nodes": nodes, "resources": totals, "alive": alive, "dead": len(nodes) - alive}

    def waterfall(self, query: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        limit = _limit(query, WATERFALL_DEFAULT)
        job = _one(query, "job_id")
        rows = self._state.tasks()
        if job:
            rows = [r for r in rows if r["job_id"] == job.lower()]
        out = waterfall.waterfall(rows, limit)
        out["warnings"] = self._state.warnings()
        return out

    def metrics(self, query: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        return metrics_scrape.sample(self._state.node_infos())

    _pages: dict[tuple[str, ...], Callable[["Api", Mapping[str, Sequence[str]]], dict[str, Any]]] = {
        ("cluster",): cluster, ("waterfall",): waterfall, ("metrics",): metrics,
    }


_SUMMARIES = {"tasks": state_query.summarize_tasks, "actors": state_query.summarize_actors,
              "objects": state_query.summarize_objects}
