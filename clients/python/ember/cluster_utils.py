"""Several nodes on one machine, for tests and local experiments (Ray's
`ray.cluster_utils.Cluster`, same calls):

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=2, resources={"accel": 1})
    cluster.connect()              # ember.init(address=cluster.address)
    ...
    cluster.remove_node(worker)
    cluster.shutdown()

Every node is a real set of processes (object store and raylet; the head
also runs the GCS) with its own session directory, ports and resources; all
share the head's cluster token. Nodes are stopped with the Cluster (and
with this process, like a driver's private cluster).
"""

from __future__ import annotations

import shutil
from typing import Any

from ember._private import node_launcher, runtime, session
from ember_common.config import Config

_NODE_ARGS = {"num_cpus", "num_gpus", "memory", "resources", "labels", "object_store_memory"}


class Cluster:
    def __init__(self, initialize_head: bool = False, connect: bool = False,
                 head_node_args: dict[str, Any] | None = None) -> None:
        self._config = Config.load()
        self._token: str | None = None
        self.head_node: node_launcher.NodeProcesses | None = None
        self.worker_nodes: list[node_launcher.NodeProcesses] = []
        self._connected = False
        if initialize_head:
            self.add_node(**(head_node_args or {}))
            if connect:
                self.connect()
        elif connect:
            raise ValueError("connect=True needs initialize_head=True")

    @property
    def address(self) -> str:
        """The GCS address, for `ember.init(address=...)` (which finds the token)."""
        if self.head_node is None:
            raise RuntimeError("the cluster has no head node yet: add_node() first")
        return self.head_node.gcs_address

    @property
    def token(self) -> str:
        if self._token is None:
            raise RuntimeError("the cluster has no head node yet: add_node() first")
        return self._token

    def add_node(self, wait: bool = True, **node_args: Any) -> node_launcher.NodeProcesses:
        """Start a node (the head, if there is none yet) and return it. Takes
        num_cpus (default 1), num_gpus, memory, resources, labels and
        object_store_memory."""
        unknown = set(node_args) - _NODE_ARGS
        if unknown:
            raise ValueError(f"add_node() does not take {sorted(unknown)}; it takes {sorted(_NODE_ARGS)}")
        session_dir, self._token = session.create(self._config.session_root, self._token,
                                                  session.StartedBy.TEST_CLUSTER)
        head = self.head_node is None
        try:
            # With EMBER_TLS=1, the head makes the cluster's CA and the other nodes' certificates come from it.
            tls_files = node_launcher.prepare_tls(
                session_dir, "127.0.0.1", enabled=self._config.tls,
                ca_dir=None if head else session.tls_dir(self.head_node.session_dir))
            node = node_launcher.start_node(
                session_dir, self._token, head=head, gcs_address=None if head else self.head_node.gcs_address,
                num_cpus=node_args.get("num_cpus", 1), num_gpus=node_args.get("num_gpus", 0),
                memory=node_args.get("memory", 0), resources=node_args.get("resources"),
                labels={k: str(v) for k, v in (node_args.get("labels") or {}).items()},
                object_store_bytes=node_args.get("object_store_memory"), config=self._config, tls_files=tls_files,
            )
        except BaseException:
            shutil.rmtree(session_dir, ignore_errors=True)
            raise
        if head:
            self.head_node = node
            # What `ember.init(address=cluster.address)` finds the token by,
            # in this process or another on this machine.
            session.write_json(session_dir / "cluster.json", {"gcs_address": node.gcs_address,
                                                              "session_dir": str(session_dir)})
        else:
            self.worker_nodes.append(node)
        return node

    def remove_node(self, node: node_launcher.NodeProcesses, allow_graceful: bool = True) -> None:
        """Stop a node: gracefully (it unregisters; its death is immediate),
        or with SIGKILL (the GCS notices by its silence)."""
        if node is self.head_node:
            raise ValueError("remove the worker nodes; the head goes with shutdown()")
        self.worker_nodes.remove(node)
        if allow_graceful:
            node.stop()
        else:
            node.kill()
        shutil.rmtree(node.session_dir, ignore_errors=True)

    def list_all_nodes(self) -> list[node_launcher.NodeProcesses]:
        return ([self.head_node] if self.head_node else []) + list(self.worker_nodes)

    def connect(self, namespace: str | None = None) -> dict[str, Any]:
        """`ember.init` against this cluster."""
        info = runtime.init(address=self.address, namespace=namespace, _token=self.token)
        self._connected = True
        return info

    def shutdown(self) -> None:
        """Disconnect (if connected) and stop every node."""
        if self._connected:
            runtime.shutdown()
            self._connected = False
        for node in reversed(self.list_all_nodes()):
            node.stop()
            shutil.rmtree(node.session_dir, ignore_errors=True)
        self.worker_nodes.clear()
        self.head_node = None
