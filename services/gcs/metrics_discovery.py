"""prometheus_sd.json: the Prometheus file service discovery list of every
metrics endpoint of the cluster (this GCS's, and each alive node's raylet
and object store), in the head's session directory, for `file_sd_configs`.
Rewritten atomically (a temporary file renamed over it) whenever the set
changes, so Prometheus never reads half a file."""

from __future__ import annotations

import json
import logging
import os
import pathlib
from typing import Iterable

from ember.v1 import gcs_pb2

log = logging.getLogger(__name__)

FILE_NAME = "prometheus_sd.json"


def targets(gcs_address: str, session_name: str, nodes: Iterable[gcs_pb2.NodeInfo]) -> list[dict]:
    """Target groups: one per endpoint, labelled with its service (and node)."""
    groups = []
    if gcs_address:
        groups.append({"targets": [gcs_address], "labels": {"ember_service": "gcs", "ember_session": session_name}})
    for node in sorted(nodes, key=lambda n: n.node_id):
        if not node.alive:
            continue
        for service, port in (("raylet", node.metrics_port), ("objectstore", node.object_store_metrics_port)):
            if port:
                groups.append({"targets": [f"{_host(node.node_address)}:{port}"],
                               "labels": {"ember_service": service, "ember_node_id": node.node_id.hex(),
                                          "ember_session": session_name}})
    return groups


class DiscoveryFile:
    """Keeps `path` listing the cluster's metrics endpoints."""

    def __init__(self, path: pathlib.Path, session_name: str) -> None:
        self.path = path
        self._session_name = session_name
        self.gcs_address = ""  # host:port of this GCS's /metrics ("" when off)
        self._written: list[dict] | None = None

    def update(self, nodes: Iterable[gcs_pb2.NodeInfo]) -> None:
        """Rewrite the file if the endpoints changed."""
        groups = targets(self.gcs_address, self._session_name, nodes)
        if groups == self._written:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(groups, indent=1) + "\n")
            os.replace(tmp, self.path)
        except OSError as e:  # metrics discovery must not take the GCS down
            log.warning("writing %s failed: %s", self.path, e)
            tmp.unlink(missing_ok=True)
            return
        self._written = groups


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address  # IPv6 in brackets
