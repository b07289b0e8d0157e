"""ember-autoscaler: adds nodes when work waits for resources no node has
free and removes idle ones, within the limits of an autoscaling config. Run
by the GCS leader (docs/autoscaler.md, docs/architecture.md "Autoscaler"):
`policy` decides (pure), `provider` and its implementations act,
`instance_table` keeps what was launched in the GCS tables, `demand`
gathers what waits, `autoscaler` runs the rounds."""
