// Package metrics exports what the plugin decided and what its reconciler
// did as Prometheus metrics, and serves /metrics, /healthz and /readyz.
// Values are read from their sources at scrape time: nothing is copied on
// the NRI event path except one histogram observation.
package metrics
