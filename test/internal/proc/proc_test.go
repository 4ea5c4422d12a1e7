package proc

import (
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestStopTerminates(t *testing.T) {
	p, err := Start(exec.Command("sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Exited() || p.Err() != nil {
		t.Fatalf("Exited() = %v, Err() = %v right after Start; want false, nil", p.Exited(), p.Err())
	}
	began := time.Now()
	p.Stop(10 * time.Second)
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("Stop took %v: SIGTERM did not end sleep", d)
	}
	var ee *exec.ExitError
	if !errors.As(p.Err(), &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("Err() = %v, want termination by SIGTERM", p.Err())
	}
	p.Stop(time.Second) // a second Stop returns at once
}

func TestStopKillsAfterGrace(t *testing.T) {
	// SIGTERM stays ignored across exec: sleep ignores it too.
	cmd := exec.Command("sh", "-c", "trap '' TERM; echo ready; exec sleep 60")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := out.Read(make([]byte, 6)); err != nil {
		t.Fatal(err)
	}
	p.Stop(300 * time.Millisecond)
	var ee *exec.ExitError
	if !errors.As(p.Err(), &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("Err() = %v, want a kill by SIGKILL after the grace period", p.Err())
	}
}

func TestKill(t *testing.T) {
	p, err := Start(exec.Command("sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	p.Kill()
	select {
	case <-p.Done():
	default:
		t.Fatal("Done() not closed after Kill")
	}
	if !p.Exited() {
		t.Error("Exited() = false after Kill")
	}
}
