"""ember-raylet: one per node; schedules tasks onto its worker pool and owns
the objects of the tasks submitted through it.

Layout: `resources` (arithmetic), `object_directory` (object readiness,
reference counts, subscriptions), `task_manager` (task states, dependency
waits, queue), `worker_pool` (worker processes and leases), `node_manager`
(the logic tying them: client events in, messages out; no sockets),
`client_session` (per-client outbox), `servicer` (the gRPC stream
transport), `service` (GCS registration, reports, store client), `main`.
"""
