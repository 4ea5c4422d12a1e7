package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// envInVM marks the guest side of TestCgroupV2VM.
const envInVM = "E2E_IN_VM"

// TestCgroupV2VM boots Debian's cloud kernel (cgroup v2) under qemu with the
// runtime binaries, the plugin and this test binary in an initramfs, and
// runs TestScenarios there: the same scenarios, asserted on cgroup v2 files.
func TestCgroupV2VM(t *testing.T) {
	if os.Getenv(envInVM) == "1" {
		t.Skip("already inside the VM")
	}
	e := loadEnv(t)
	kernel := os.Getenv(envKernel)
	if kernel == "" {
		skipOrFail(t, "%s is not set", envKernel)
	}
	if _, err := os.Stat(kernel); err != nil {
		skipOrFail(t, "kernel: %v", err)
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		skipOrFail(t, "qemu-system-x86_64: %v", err)
	}

	// This package's test binary, static, to run inside the guest.
	testBin := filepath.Join(t.TempDir(), "e2e.test")
	build := exec.Command("go", "test", "-c", "-trimpath", "-ldflags", "-s -w", "-o", testBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}

	files := map[string]string{
		"/e2e/e2e.test": testBin,
		"/e2e/busybox":  e.busybox,
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "crictl", "nri-memqos"} {
		files["/usr/local/bin/"+b] = filepath.Join(e.binDir, b)
	}
	script := `cd /e2e && ./e2e.test -test.run '^TestScenarios$' -test.v -test.count=1 -test.timeout 12m`
	start := time.Now()
	out, code, err := runVM(t, vmConfig{
		Kernel:   kernel,
		Files:    files,
		Script:   script,
		MemoryMB: 2048,
		Timeout:  14 * time.Minute,
		Env: map[string]string{
			envInVM:     "1",
			envRequired: "1",
			envBinDir:   "/usr/local/bin",
			envBusybox:  "/e2e/busybox",
		},
	})
	t.Logf("VM run took %v", time.Since(start).Round(time.Second))
	if err != nil {
		t.Fatalf("VM: %v", err)
	}
	if !strings.Contains(out, "cgroup v2") {
		t.Errorf("the guest did not run the scenarios on cgroup v2")
	}
	// Name each guest subtest's result in this test's failure.
	for _, m := range regexp.MustCompile(`--- (FAIL|SKIP): (TestScenarios\S*)`).FindAllStringSubmatch(out, -1) {
		t.Errorf("in the cgroup v2 VM: %s %s", m[1], m[2])
	}
	if !regexp.MustCompile(`--- PASS: TestScenarios `).MatchString(out) {
		t.Errorf("TestScenarios did not pass in the VM")
	}
	if code != 0 {
		t.Errorf("guest test binary exited %d", code)
	}
}
