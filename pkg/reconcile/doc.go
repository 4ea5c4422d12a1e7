// Package reconcile is the loop that acts while containers run: it repairs
// values someone else changed, reclaims in the background before a container
// reaches its limit, reclaims first from the containers furthest above their
// request when the node runs short, keeps memory.high from stalling a
// container forever, reclaims cold memory for classes that opt in, and
// counts OOM and throttling events.
//
// plan.go holds the decisions as pure functions; loop.go runs the ticks, and
// reclaim.go, guard.go, drift.go and events.go read, call them and write.
package reconcile
