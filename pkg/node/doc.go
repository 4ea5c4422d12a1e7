// Package node is the plugin's core on one node: the containers it manages
// and what it decided for each, the protection ledger and the ancestor
// values it wrote, the state kept across restarts, the configuration in
// force and its reloads, and the reconciler's view of all of it.
//
// Its API speaks policy facts (pod, container, resources), not the types of
// a runtime protocol: the NRI adapter in plugin/ translates NRI objects into
// a Container and the decisions back into adjustments and updates; an OCI
// hook or `explain` can call the same core. Each event method takes the
// node's lock, so events, reloads and the reconciler's reads are serialized.
package node
