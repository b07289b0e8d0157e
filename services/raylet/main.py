"""ember-raylet: run one node's raylet."""

from __future__ import annotations

import argparse
import json
import pathlib

from ember_common.config import Config
from ember_common.node_memory import default_memory_bytes, default_object_store_bytes
from ember_common.service import add_common_args, load_token, run_service
from ember_raylet.service import RayletService


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ember-raylet", description="Ember raylet: per-node scheduler and worker pool")
    add_common_args(parser)
    parser.add_argument("--node-id", required=True, help="hex node id (16 bytes)")
    parser.add_argument("--gcs-address", required=True, help="host:port or unix:path of the GCS")
    parser.add_argument("--store-address", required=True, help="unix:path (or host:port) of this node's object store")
    parser.add_argument("--store-dir", required=True, help="the object store's shared-memory directory")
    parser.add_argument("--store-port", type=int, default=0, help="the object store's TCP port (advertised)")
    parser.add_argument("--store-transfer-port", type=int, default=0,
                        help="the object store's data plane port, other nodes pull objects from (advertised)")
    parser.add_argument("--store-metrics-port", type=int, default=0,
                        help="the object store's Prometheus /metrics port (advertised; 0: it serves none)")
    parser.add_argument("--store-ready-file", default=None,
                        help="the object store's ready file: its ports are read from it at start (a launcher that "
                             "let the store pick free ports); overrides --store-port/--store-transfer-port/"
                             "--store-metrics-port")
    parser.add_argument("--node-address", default=None, help="address other nodes reach this one at (default --host)")
    parser.add_argument("--num-cpus", type=float, required=True)
    parser.add_argument("--num-gpus", type=float, default=0)
    parser.add_argument("--memory", type=float, default=0,
                        help="bytes of memory to offer as a resource (default: what the object store leaves of the available memory)")
    parser.add_argument("--object-store-memory", type=float, default=0,
                        help="the object store's capacity in bytes, offered as a resource (default: as the store sizes itself)")
    parser.add_argument("--resources", default="{}", help='custom resources as JSON, e.g. {"accel": 2}')
    parser.add_argument("--labels", default="{}", help="node labels as JSON")
    parser.add_argument("--head", action="store_true", help="this is the head node")
    parser.add_argument("--local-socket", default=None, help="unix socket of the local transport (default: next to --socket)")
    return parser


def _make(args: argparse.Namespace, config: Config) -> RayletService:
    node_id = bytes.fromhex(args.node_id)
    if len(node_id) != 16:
        raise SystemExit("--node-id must be 32 hex digits")
    resources = {"CPU": float(args.num_cpus)}
    if args.num_gpus:
        resources["GPU"] = float(args.num_gpus)
    # Every node offers memory and object_store_memory, sized as Ray does.
    store = args.object_store_memory or config.object_store_bytes or default_object_store_bytes(config.object_store_fraction)
    resources["memory"] = float(args.memory or default_memory_bytes(int(store)))
    resources["object_store_memory"] = float(store)
    for name, amount in json.loads(args.resources).items():
        resources[str(name)] = float(amount)
    session_dir = pathlib.Path(args.session_dir)
    args.socket = args.socket or str(session_dir / f"raylet-{args.node_id[:8]}.sock")
    local_socket = args.local_socket or args.socket.removesuffix(".sock") + ".local.sock"
    return RayletService(
        node_id=node_id,
        resources=resources,
        labels={str(k): str(v) for k, v in json.loads(args.labels).items()},
        session_dir=session_dir,
        gcs_address=args.gcs_address,
        store_address=args.store_address,
        store_dir=args.store_dir,
        store_port=args.store_port,
        store_transfer_port=args.store_transfer_port,
        store_metrics_port=args.store_metrics_port,
        store_ready_file=pathlib.Path(args.store_ready_file) if args.store_ready_file else None,
        node_address=args.node_address or args.host,
        socket_path=args.socket,
        local_socket_path=local_socket,
        token=load_token(session_dir),
        is_head=args.head,
        config=config,
        log_name=f"raylet-{args.node_id[:8]}",
    )


def main(argv: list[str] | None = None) -> None:
    run_service(_make, _parser(), argv)


if __name__ == "__main__":
    main()
