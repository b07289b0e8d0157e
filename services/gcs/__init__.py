"""ember-gcs: the Global Control Store (cluster metadata).

Layout: `storage` (the backend interface and the in-memory backend),
`etcd_storage` (etcd, writes fenced by the leader key's revision),
`etcd_mirror` (a standby's warm copy), `leader_election` and `leader_gate`
(one replica leads; standbys answer UNAVAILABLE naming it), the tables
(`node_table`, `job_table`, `kv_table`, `actor_table`,
`placement_group_table`: the only code that mutates state),
`placement_policy` (which node each bundle goes to), `membership` (a node's
death and a job's end across the tables), `raylet_client` (bundle
reservations on raylets), `servicer` (thin gRPC handlers: validate, call one
logic method, map errors), `metrics` (RPC latency, the collector reading
the tables at scrape time), `metrics_discovery` (prometheus_sd.json),
`service` (wiring and background work), `main`.
"""
