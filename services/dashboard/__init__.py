"""ember-dashboard: the cluster's web UI, one process on the head.

Layout. `web_auth` (who may see it: the token as a Bearer header, or the
session cookie a login form sets; pure), `api` (what /api/ answers: the
state API's rows as Ray's dashboard shapes them, read through
`ember_common.state_client.StateClient`, as the CLI does), `waterfall`
(recent task attempts per worker and the critical path through them;
pure), `metrics_scrape` (a few numbers read from the nodes' /metrics for
the live charts), `http_server` (the HTTP transport: routing, auth, static
files), `main` (flags, ready file, stop). The pages are static files in
`static/` (no framework, nothing fetched from elsewhere).
"""
