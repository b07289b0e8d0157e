"""ember_common: what the three services and the SDK share, and nothing
that is only one side's. Services import this and the generated stubs
(`ember.v1`), never the SDK (tests/unit/test_layering.py pins it).

Layout: `errors` (the errors a handler answers with a status code; no
dependencies), `rpc` (channel options, the token interceptor, `map_errors`),
`service` (the runner every service's main() calls: flags, logging, health,
metrics endpoint, ready file, stop), `background` (tasks a service keeps,
shared runs), `backoff`, `gcs_client` (the leader-following GCS client,
sync and asyncio), `config`, `auth` (the cluster token), `tls` (mutual TLS
files and credentials), `ports` (listening exclusively, and why not),
`metrics_server`, `loop_metrics` and `metric_names` (the Prometheus
endpoint, lock-free counters for code on one loop, naming rules), `ids`,
`frames` (length-prefixed frames on unix sockets), `placement`
(placement-group resource names), `object_layout` (how an object's bytes
are laid out; runtime failures), `node_memory` (the memory a node offers
by default, as Ray sizes it).
"""
