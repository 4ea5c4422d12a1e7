// Package metrics exports what the plugin decided and what its reconciler
// did as Prometheus metrics, and serves /metrics, /healthz and /readyz
// (Handler) or only the latter two (HealthHandler, for the kubelet's
// probes). Values are read from their sources at scrape time: nothing is
// copied on the NRI event path except one histogram observation. /healthz
// fails when a piece of work it watches (Liveness: NRI events, reconciler
// ticks) has not finished for longer than a bound.
package metrics
