"""ember-gcs: run one GCS process."""

from __future__ import annotations

import argparse
import pathlib

from ember_common.config import DEFAULT_GCS_PORT, Config
from ember_common.service import add_common_args, load_token, run_service
from ember_gcs.service import GcsService


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ember-gcs", description="Ember GCS: cluster metadata service")
    add_common_args(parser)
    parser.set_defaults(port=DEFAULT_GCS_PORT)
    parser.add_argument("--storage", default="memory",
                        help="where the tables live: memory (default), or etcd://HOST:PORT[,HOST:PORT...]")
    parser.add_argument("--leader-lease-ttl", type=float, default=3.0,
                        help="with etcd: seconds a leader's lease lives without keepalive (failover takes up to this)")
    parser.add_argument("--cluster-name", default="default",
                        help="with etcd: this cluster's key prefix, so clusters can share one etcd")
    parser.add_argument("--autoscaling-config", default=None,
                        help="an autoscaling config (YAML or JSON, docs/autoscaler.md): the leader runs the autoscaler")
    parser.add_argument("--health-timeout", type=float, default=None, help="seconds of silence before a node is declared dead")
    return parser


def _make(args: argparse.Namespace, config: Config) -> GcsService:
    if args.health_timeout is not None:
        config.health_timeout_s = args.health_timeout
    try:
        return GcsService(args.storage, pathlib.Path(args.session_dir).name, config, args.cluster_name,
                          host=args.host, lease_ttl_s=args.leader_lease_ttl,
                          token=load_token(pathlib.Path(args.session_dir)),
                          session_dir=pathlib.Path(args.session_dir), autoscaling_config=args.autoscaling_config)
    except ValueError as e:
        raise SystemExit(f"ember-gcs: {e}") from None


def main(argv: list[str] | None = None) -> None:
    run_service(_make, _parser(), argv)


if __name__ == "__main__":
    main()
