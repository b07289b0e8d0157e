"""ember-objectstore: the node's shared-memory object store.

Layout: `shm_store` (files in shared memory, capacity, sealing), `spilling`
(to disk and back), `store` (the two together: what a request may do, room
made by spilling; the only code the servicer calls), `transfer` (the TCP
data plane other nodes pull through), `metrics` (the Prometheus
collector), `servicer` (thin gRPC handlers), `service` (wiring), `main`.
"""
