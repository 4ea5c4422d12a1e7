package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// envInVM marks the guest side of TestCgroupV2VM.
const envInVM = "E2E_IN_VM"

// envModules is the directory of the kernel modules the VM loads; envImage
// the plugin's OCI image tarball (make image).
const (
	envModules = "E2E_MODULES"
	envImage   = "E2E_IMAGE"
	// envDaemonSet is the DaemonSet manifest whose container the guest runs.
	envDaemonSet = "E2E_DAEMONSET"
	// envVMTests, when set, names the guest tests TestCgroupV2VM runs
	// (comma-separated) instead of all of them, e.g.
	// E2E_VM_TESTS=TestAncestorRepairV2.
	envVMTests = "E2E_VM_TESTS"
)

// TestCgroupV2VM boots Debian's cloud kernel (cgroup v2) under qemu with the
// runtime binaries, the plugin, its image and this test binary in an
// initramfs, and runs the guest tests there: the same scenarios, asserted on
// cgroup v2 files, the reconciler, and the plugin's image run as a pod.
func TestCgroupV2VM(t *testing.T) {
	guests := []string{"TestScenarios", "TestReconcilerV2", "TestImagePodV2", "TestDemoGuest", "TestAncestorRepairV2"}
	if only := os.Getenv(envVMTests); only != "" {
		guests = strings.Split(only, ",")
	}
	out, code := runGuest(t, "^("+strings.Join(guests, "|")+")$", nil)
	if slices.Contains(guests, "TestScenarios") && !strings.Contains(out, "cgroup v2") {
		t.Errorf("the guest did not run the scenarios on cgroup v2")
	}
	// Name each guest subtest's result in this test's failure.
	for _, m := range regexp.MustCompile(`--- (FAIL|SKIP): (Test\S*)`).FindAllStringSubmatch(out, -1) {
		t.Errorf("in the cgroup v2 VM: %s %s", m[1], m[2])
	}
	for _, name := range guests {
		if !regexp.MustCompile(`--- PASS: ` + name + ` `).MatchString(out) {
			t.Errorf("%s did not pass in the VM", name)
		}
	}
	if code != 0 {
		t.Errorf("guest test binary exited %d", code)
	}
}

// runGuest boots the cgroup v2 VM and runs the tests matching pattern of
// this package inside it; onLine, when set, gets the console lines.
func runGuest(t *testing.T, pattern string, onLine func(string)) (string, int) {
	t.Helper()
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
	image := os.Getenv(envImage)
	if image == "" {
		skipOrFail(t, "%s is not set", envImage)
	}

	// This package's test binary, static, to run inside the guest.
	testBin := filepath.Join(t.TempDir(), "e2e.test")
	build := exec.Command("go", "test", "-c", "-trimpath", "-ldflags", "-s -w", "-o", testBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}

	files := map[string]string{
		"/e2e/e2e.test":        testBin,
		"/e2e/busybox":         e.busybox,
		"/e2e/nri-memqos.tar":  image,
		"/e2e/daemonset.yaml":  "../../config/deploy/daemonset.yaml",
		"/e2e/nri-memqos.yaml": "../../config/nri-memqos.yaml",
	}
	// The virtio disk driver, loaded in dependency order (the package has no
	// modules.dep): page cache on a real filesystem is reclaimable, on the
	// initramfs tmpfs it is not.
	modDir := os.Getenv(envModules)
	if modDir == "" {
		skipOrFail(t, "%s is not set", envModules)
	}
	modules := []string{"virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "virtio_blk"}
	for _, m := range modules {
		files["/e2e/modules/"+m+".ko"] = filepath.Join(modDir, m+".ko")
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "crictl", "nri-memqos"} {
		files["/usr/local/bin/"+b] = filepath.Join(e.binDir, b)
	}
	var script strings.Builder
	for _, m := range modules {
		fmt.Fprintf(&script, "insmod /e2e/modules/%s.ko || exit 90\n", m)
	}
	fmt.Fprintf(&script, `mkdir -p /mnt/disk && mount -t ext4 /dev/vda /mnt/disk || exit 91
mkdir -p /mnt/disk/data
cd /e2e && ./e2e.test -test.run '%s' -test.v -test.count=1 -test.timeout 18m
`, pattern)
	// A guest that hangs in the emulator (errVMLockup) is booted once more,
	// on a fresh disk, with single-threaded TCG.
	for attempt := 1; ; attempt++ {
		disk, err := newGuestDisk(t)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		out, code, err := runVM(t, vmConfig{
			Kernel:       kernel,
			Files:        files,
			Script:       script.String(),
			QemuArgs:     []string{"-drive", "file=" + disk + ",if=virtio,format=raw"},
			MemoryMB:     2048,
			Timeout:      19 * time.Minute,
			OnLine:       onLine,
			SingleThread: attempt > 1,
			Env: map[string]string{
				envInVM:      "1",
				envRequired:  "1",
				envBinDir:    "/usr/local/bin",
				envBusybox:   "/e2e/busybox",
				envWorkDir:   "/mnt/disk",
				envDataDir:   "/mnt/disk/data",
				envImage:     "/e2e/nri-memqos.tar",
				envDaemonSet: "/e2e/daemonset.yaml",
			},
		})
		t.Logf("VM run %d took %v", attempt, time.Since(start).Round(time.Second))
		if errors.Is(err, errVMLockup) && attempt == 1 {
			t.Logf("VM: %v; booting again with single-threaded TCG", err)
			continue
		}
		if err != nil {
			t.Fatalf("VM: %v", err)
		}
		return out, code
	}
}

// newGuestDisk makes the guest's 3 GiB ext4 disk image, sparse.
func newGuestDisk(t *testing.T) (string, error) {
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Truncate(disk, 3<<30); err != nil {
		return "", err
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", disk).CombinedOutput(); err != nil {
		return "", fmt.Errorf("mkfs.ext4: %v\n%s", err, out)
	}
	return disk, nil
}
