// Package wait polls a condition until it holds, for tests that wait on
// processes, logs and files.
package wait

import (
	"testing"
	"time"
)

// For calls cond every 100ms until it holds; once timeout passed it fails
// the test at once, saying what it waited for.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Until calls cond every 20ms until it returns ""; once timeout passed it
// reports cond's last complaint as an error and returns false.
func Until(t testing.TB, timeout time.Duration, cond func() string) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return true
		}
		if time.Now().After(deadline) {
			t.Errorf("still after %v: %s", timeout, msg)
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
