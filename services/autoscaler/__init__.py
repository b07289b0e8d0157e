"""ember_autoscaler: adds nodes when work waits for resources no node has
free and removes idle ones, within the limits of an autoscaling config; run
by the GCS leader (docs/autoscaler.md; docs/architecture.md, "Autoscaler").

config            the config file (YAML or JSON, Ray's keys), checked whole
policy            pure: nodes and demand in, launches, removals, unmet demand out
provider          the provider interface; local_provider, command_provider
instance_table    launched nodes, in the GCS storage (etcd when the GCS is)
demand            what waits: raylets' queued shapes, pending groups, requests
drain             objects moved off a node before it goes (raylets' NodeDrain)
autoscaler        the rounds: match, track idle, decide, launch and remove
servicer          Autoscaler.GetAutoscalerStatus (for `ember status`)
metrics           the Prometheus collector (on the GCS's /metrics)
in_gcs            what the GCS builds from its tables
"""
