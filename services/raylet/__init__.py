"""ember-raylet: one per node; schedules tasks onto its worker pool and owns
the objects of the tasks submitted through it.

Layout. The logic (events in, messages out; no sockets, unit-tested):
`node_manager` (the client batch protocol and the scheduling loop, wiring
the parts below), `task_checks` (what a batch must hold), `task_placement`
(where a task with ready arguments goes), `worker_leases` (leases, blocked
and dead workers), `task_completion` (a task's end), `local_actors` and
`remote_actors` (actors hosted here; actors on other nodes),
`peer_forwarding` (spilling, forwarding, handing back, a lost peer),
`object_pulls` (pulls and lineage rebuilds), `cancellation`, `bundles`
(placement-group bundles). The state: `task_manager`, `object_directory`
(readiness, reference counts, subscriptions), `actor_table`, `lineage`,
`cluster_view`, `resources`, `client_session` (a client's outbox); policy:
`scheduling_policy`. Metrics: `metrics` (counters the logic bumps, the
collector reading state at scrape time), `user_metrics` (ember.util.metrics
values of the node's drivers and workers, aggregated). Transport and process: `client_stream` (a session's
start), `local_transport` (frames on the local socket), `servicer` (gRPC),
`peer_links` (streams to other raylets), `kv_cache`, `worker_pool` (worker
processes), `service` (GCS registration, reports, the store client), `main`.
"""
