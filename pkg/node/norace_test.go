//go:build !race

package node_test

// raceSlowdown scales time bounds: 1 without the race detector.
const raceSlowdown = 1
