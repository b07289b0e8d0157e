"""ember-gcs: the Global Control Store (cluster metadata).

Layout: `storage` (the backend interface), the tables (`node_table`,
`job_table`, `kv_table`: the only code that mutates state), `servicer`
(thin gRPC handlers: validate, call a table, map errors), `service` (wiring
and background work), `main` (flags).
"""
