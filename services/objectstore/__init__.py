"""ember-objectstore: the node's shared-memory object store.

Layout: `shm_store` (the state: files, capacity, sealing; the only code that
mutates it), `servicer` (thin gRPC handlers), `service` (wiring), `main`.
"""
