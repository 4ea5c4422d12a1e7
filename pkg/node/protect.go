package node

import (
	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/protection"
	"nri-memqos/pkg/state"
)

// promise records a container's protection and has its ancestors raised
// (v2) before it starts. Callers hold n.mu.
func (n *Node) promise(l *logrus.Entry, id string, t *tracked) {
	if paths := n.setPromise(id, t); len(paths) > 0 {
		n.ancestorsLater(l, paths, protection.RaiseOnly)
	}
}

// setPromise records a container's protection in the ledger, which also
// counts the node-wide memory.min cap on both cgroup versions, and returns
// the ancestors to write (cgroup v2 only). Callers hold n.mu.
func (n *Node) setPromise(id string, t *tracked) []string {
	var ancestors []string
	if n.fs.Version == 2 && t.rel != "" {
		ancestors = cgroupfs.Ancestors(t.rel)
	}
	p := protection.Promise{Ancestors: ancestors, Min: t.decision.ProtectedMin(), Low: t.decision.ProtectedLow()}
	n.notePromise(id, &state.Promise{Path: t.rel, Min: p.Min, Low: p.Low})
	return n.ledger.Set(id, p)
}

// applyAncestors brings ancestors to the ledger's sums (the ledger locks
// itself and journals its writes).
func (n *Node) applyAncestors(l *logrus.Entry, fs *cgroupfs.FS, paths []string, mode protection.Mode) {
	changes, err := n.ledger.Apply(fs, paths, mode)
	for _, c := range changes {
		l.WithFields(logrus.Fields{"cgroup": c.Path, "file": c.File, "from": c.From, "to": c.To}).Debug("ancestor protection")
	}
	if err != nil {
		l.Warnf("%v", err)
	}
}
