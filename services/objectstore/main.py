"""ember-objectstore: run one node's object store."""

from __future__ import annotations

import argparse
import os
import pathlib

from ember_common.config import Config
from ember_common.service import add_common_args, load_token, run_service
from ember_objectstore.service import ObjectStoreService
from ember_common.node_memory import default_object_store_bytes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ember-objectstore", description="Ember object store (shared memory)")
    add_common_args(parser)
    parser.add_argument("--directory", default=None, help="shared-memory directory (default /dev/shm/ember-<pid>)")
    parser.add_argument("--capacity", type=int, default=None, help="bytes (default: 30%% of RAM)")
    parser.add_argument("--transfer-port", type=int, default=0,
                        help="TCP port of the data plane other nodes pull objects from (0 picks one)")
    parser.add_argument("--spill-directory", default=None,
                        help="where objects go when the store is full, in a spill-<pid> directory (default: the session directory)")
    parser.add_argument("--node-id", default="", help="the node's id (hex), named in the store's spans (docs/tracing.md)")
    return parser


def _make(args: argparse.Namespace, config: Config) -> ObjectStoreService:
    directory = pathlib.Path(args.directory or f"/dev/shm/ember-{os.getpid()}")
    capacity = args.capacity or config.object_store_bytes or default_object_store_bytes(config.object_store_fraction)
    spill = pathlib.Path(args.spill_directory or config.object_spilling_directory or args.session_dir) / f"spill-{os.getpid()}"
    service = ObjectStoreService(directory, capacity, load_token(pathlib.Path(args.session_dir)), spill,
                                 host=args.host, transfer_port=args.transfer_port,
                                 fs_capacity_threshold=config.local_fs_capacity_threshold)
    if args.node_id:
        service.trace_attributes = {"ember.node_id": args.node_id}
    return service


def main(argv: list[str] | None = None) -> None:
    run_service(_make, _parser(), argv)


if __name__ == "__main__":
    main()
