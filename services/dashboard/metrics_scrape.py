"""The live charts' numbers: each alive node's raylet and object store
/metrics, read when the page asks (every few seconds while a metrics page
is open; never otherwise), summed over the cluster. Only the current
values: the page keeps the history it draws."""

from __future__ import annotations

import concurrent.futures
import time
import urllib.error
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

_TIMEOUT_S = 3.0

# Chart series: (family, label to split by or None) -> summed over nodes.
_RAYLET = {"ember_tasks": "state", "ember_workers": "state", "ember_tasks_succeeded": None,
           "ember_tasks_failed": None, "ember_objects": None, "ember_node_memory_used_bytes": None,
           "ember_node_memory_total_bytes": None}
_STORE = {"ember_object_store_used_bytes": None, "ember_object_store_capacity_bytes": None,
          "ember_object_store_objects": None, "ember_object_store_spilled_objects": None,
          "ember_object_store_spilled_bytes": None, "ember_object_transfer_sent_bytes": None}


def _read(url: str) -> str:
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as reply:  # noqa: S310 (http only, our own nodes)
        return reply.read().decode("utf-8", "replace")


def _add(values: dict[str, float], text: str, wanted: dict[str, str | None]) -> None:
    for family in text_string_to_metric_families(text):
        if family.name not in wanted:
            continue
        label = wanted[family.name]
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            key = family.name if label is None else f"{family.name}{{{sample.labels.get(label, '')}}}"
            values[key] = values.get(key, 0.0) + sample.value


def sample(nodes: list[Any]) -> dict[str, Any]:
    """{"time": unix seconds, "values": {series: summed value}, "nodes": {node id hex:
    {series: value}}, "missing": [urls not read, and why]}."""
    targets = []
    for n in nodes:
        if not n.alive:
            continue
        if n.metrics_port:
            targets.append((n.node_id.hex(), f"http://{_host(n.node_address)}:{n.metrics_port}/metrics", _RAYLET))
        if n.object_store_metrics_port:
            targets.append((n.node_id.hex(), f"http://{_host(n.node_address)}:{n.object_store_metrics_port}/metrics",
                            _STORE))
    by_node: dict[str, dict[str, float]] = {}
    missing = []
    if targets:
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
            texts = [(node, url, wanted, pool.submit(_read, url)) for node, url, wanted in targets]
            for node, url, wanted, future in texts:
                try:
                    _add(by_node.setdefault(node, {}), future.result(), wanted)
                except (OSError, urllib.error.URLError, ValueError) as e:
                    missing.append(f"{url}: {e}")
    values: dict[str, float] = {}
    for node_values in by_node.values():
        for key, value in node_values.items():
            values[key] = values.get(key, 0.0) + value
    return {"time": time.time(), "values": values, "nodes": by_node, "missing": missing}


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address and not address.startswith("[") else address
