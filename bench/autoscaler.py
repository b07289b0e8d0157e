"""The autoscaler with the local provider (loopback, real processes): a head
started with an autoscaling config, then, each round, a task needing a
resource only the worker type has:

  demand to first task: from the task's submission to it starting on the
  node the autoscaler launched for it (the launch, `ember start --address`,
  the node registering, the raylet learning of it, a worker starting);
  idle to node gone: from the task's end to the node's removal being
  complete (no longer alive in the GCS, its launch record gone), and that
  minus the idle timeout (what the drain and the stop cost).

    python bench/autoscaler.py [--rounds 3] [--idle-timeout-s 2]

Prints one JSON line per round and a summary line (medians). Ember only:
Ray's autoscaler needs a cloud provider or its fake multi-node provider,
which is not compared here.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-timeout-s", type=float, default=2.0)
    args = parser.parse_args()

    root = tempfile.mkdtemp(prefix="ember-bench-as-")
    os.environ["EMBER_SESSION_ROOT"] = root  # (before ember reads its config)
    import ember
    from ember._private import node_launcher, session
    from ember.v1 import autoscaler_pb2, autoscaler_pb2_grpc, gcs_pb2, gcs_pb2_grpc
    from ember_common import auth, rpc

    config = pathlib.Path(root) / "autoscaling.json"
    config.write_text(json.dumps({
        "provider": {"type": "local"}, "max_workers": 1, "idle_timeout_minutes": args.idle_timeout_s / 60,
        "available_node_types": {"accel_worker": {"resources": {"CPU": 1, "accel": 1,
                                                                "object_store_memory": 64 * 1024 * 1024}}}}))
    session_dir, token = session.create(root, None, session.StartedBy.CLI)
    head = node_launcher.start_node(session_dir, token, head=True, num_cpus=1, object_store_bytes=64 * 1024 * 1024,
                                    autoscaling_config=config)
    os.environ[auth.TOKEN_ENV] = token
    channel = rpc.channel(head.gcs_address, token)
    gcs, autoscaler = gcs_pb2_grpc.GcsStub(channel), autoscaler_pb2_grpc.AutoscalerStub(channel)

    @ember.remote(resources={"accel": 1}, num_cpus=1)
    def stamp() -> tuple[float, str]:
        return time.time(), ember.get_runtime_context().get_node_id()

    rows = []
    try:
        ember.init(address=head.gcs_address)
        for i in range(args.rounds):
            cpu_before = time.process_time()
            submitted = time.time()
            started, node_id = ember.get(stamp.remote(), timeout=120)
            ended = time.time()

            def gone() -> bool:
                alive = {n.node_id.hex() for n in gcs.GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=5).nodes
                         if n.alive}
                status = autoscaler.GetAutoscalerStatus(autoscaler_pb2.GetAutoscalerStatusRequest(), timeout=5)
                return node_id not in alive and not status.instances

            while not gone():
                time.sleep(0.02)
            removed = time.time()
            row = {"round": i, "demand_to_first_task_s": round(started - submitted, 3),
                   "idle_to_node_gone_s": round(removed - ended, 3),
                   "beyond_idle_timeout_s": round(removed - ended - args.idle_timeout_s, 3),
                   "driver_cpu_s": round(time.process_time() - cpu_before, 3), "load_1m": os.getloadavg()[0]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        ember.shutdown()
        channel.close()
        head.stop()
        for other in pathlib.Path(root).glob("session_*"):
            node_launcher.stop_session(other, timeout=5)
    summary = {key: statistics.median(r[key] for r in rows)
               for key in ("demand_to_first_task_s", "idle_to_node_gone_s", "beyond_idle_timeout_s")}
    print(json.dumps({"summary": "median", "rounds": len(rows), "idle_timeout_s": args.idle_timeout_s, **summary}))


if __name__ == "__main__":
    main()
