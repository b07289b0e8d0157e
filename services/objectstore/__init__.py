"""ember-objectstore: the node's shared-memory object store.

Layout: `arena_allocator` (where objects go in the arena), `shm_store` (the
shared-memory arena: capacity, sealing, pins, recycling), `reader_leases`
(which reader holds what; dead readers' pins released), `spilling` (to disk
and back), `store` (them together: what a request may do, room made by
spilling; the only code the servicers call), `transfer` (the TCP
data plane other nodes pull through), `metrics` (the Prometheus
collector), `servicer` (thin gRPC handlers), `service` (wiring), `main`.
"""
