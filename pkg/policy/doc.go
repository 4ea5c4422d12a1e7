// Package policy turns plain facts about a pod, a container and the node into
// the memory QoS values the container should get. It is pure: no I/O, no
// clocks, no globals. The NRI handlers, Synchronize, the reconciler and
// `explain` all call the same functions.
package policy
