// Package explain shows, without touching the node, what nri-memqos would do
// for a pod: per container the class, where the memory request comes from and
// every value the plugin would set on cgroup v1 and v2. It runs the plugin's
// own policy (policy.Decide, Decision.UnifiedV2, Decision.V1) on the facts
// the runtime would hand the plugin at container creation.
package explain
