package e2e

import (
	"errors"
	"fmt"
	"io"
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

// envModules is the directory of the kernel modules the VM loads; envImage
// the plugin's OCI image tarball (make image).
const (
	envModules = "E2E_MODULES"
	envImage   = "E2E_IMAGE"
	// envVMTests, when set, names the guest tests TestCgroupV2VM runs
	// (comma-separated) instead of all of them, e.g.
	// E2E_VM_TESTS=TestAncestorRepairV2.
	envVMTests = "E2E_VM_TESTS"
)

// TestCgroupV2VM boots Debian's cloud kernel (cgroup v2) under qemu with the
// runtime binaries, the plugin, its image and this test binary in an
// initramfs, and runs the guest tests there: the reconciler, priority-aware
// reclaim, the demo and the ancestor repair on cgroup v2 files. (The class,
// restart, resize and DaemonSet scenarios run in that VM under a real
// kubelet: TestKubeNodeVM.)
func TestCgroupV2VM(t *testing.T) {
	guests := []string{"TestReconcilerV2", "TestTiersV2", "TestDemoGuest", "TestAncestorRepairV2", "TestOCIHookRuncV2"}
	if only := os.Getenv(envVMTests); only != "" {
		guests = strings.Split(only, ",")
	}
	out, code := runGuest(t, guestRun{pattern: "^(" + strings.Join(guests, "|") + ")$"})
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

// guestRun is what runGuest boots.
type guestRun struct {
	pattern string       // the guest tests to run (-test.run)
	onLine  func(string) // when set, gets the console lines
	// disk maps a path on the guest's ext4 disk (mounted at /mnt/disk) to
	// a host file: large binaries go there instead of the initramfs, whose
	// copy lives in the guest's memory.
	disk     map[string]string
	memoryMB int               // default 2048
	timeout  time.Duration     // default 19m
	env      map[string]string // added to the guest's environment
	// cgroupV1 mounts the cgroup v1 hierarchies instead of cgroup2.
	cgroupV1 bool
}

// runGuest boots the VM and runs the tests of this package that g.pattern
// matches inside it.
func runGuest(t *testing.T, g guestRun) (string, int) {
	t.Helper()
	if g.memoryMB == 0 {
		g.memoryMB = 2048
	}
	if g.timeout == 0 {
		g.timeout = 19 * time.Minute
	}
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
		"/e2e/e2e.test":       testBin,
		"/e2e/busybox":        e.busybox,
		"/e2e/nri-memqos.tar": image,
		"/e2e/testdata":       "testdata",
		"/e2e/config":         "../../config",
	}
	// The virtio disk driver, loaded in dependency order (the package has no
	// modules.dep): page cache on a real filesystem is reclaimable, on the
	// initramfs tmpfs it is not.
	modDir := os.Getenv(envModules)
	if modDir == "" {
		skipOrFail(t, "%s is not set", envModules)
	}
	// veth: the real node's pod network (CNI ptp).
	modules := []string{"virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "virtio_blk", "veth"}
	for _, m := range modules {
		files["/e2e/modules/"+m+".ko"] = filepath.Join(modDir, m+".ko")
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "crictl", "nri-memqos", "nri-memqos-oci-hook",
		"cni/ptp", "cni/host-local", "cni/loopback"} {
		files["/usr/local/bin/"+b] = filepath.Join(e.binDir, b)
	}
	var script strings.Builder
	for _, m := range modules {
		fmt.Fprintf(&script, "insmod /e2e/modules/%s.ko || exit 90\n", m)
	}
	fmt.Fprintf(&script, `mkdir -p /mnt/disk && mount -t ext4 /dev/vda /mnt/disk || exit 91
mkdir -p /mnt/disk/data
cd /e2e && ./e2e.test -test.run '%s' -test.v -test.count=1 -test.timeout %s
`, g.pattern, (g.timeout - time.Minute).String())
	// A guest that hangs in the emulator (errVMLockup) is booted once more,
	// on a fresh disk, with single-threaded TCG.
	for attempt := 1; ; attempt++ {
		disk, err := newGuestDisk(t, g.disk)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		out, code, err := runVM(t, vmConfig{
			Kernel:       kernel,
			Files:        files,
			Script:       script.String(),
			QemuArgs:     []string{"-drive", "file=" + disk + ",if=virtio,format=raw"},
			MemoryMB:     g.memoryMB,
			Timeout:      g.timeout,
			OnLine:       g.onLine,
			CgroupV1:     g.cgroupV1,
			SingleThread: attempt > 1,
			Env: mergeEnv(g.env, map[string]string{
				envInVM:     "1",
				envRequired: "1",
				envBinDir:   "/usr/local/bin",
				envBusybox:  "/e2e/busybox",
				envWorkDir:  "/mnt/disk",
				envDataDir:  "/mnt/disk/data",
				envImage:    "/e2e/nri-memqos.tar",
			}),
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

// mergeEnv returns base with extra's entries added.
func mergeEnv(extra, base map[string]string) map[string]string {
	for k, v := range extra {
		base[k] = v
	}
	return base
}

// newGuestDisk makes the guest's 3 GiB ext4 disk image, sparse, holding
// files (disk path -> host path; hard-linked, else copied, into a staging
// directory that mkfs.ext4 -d copies in).
func newGuestDisk(t *testing.T, files map[string]string) (string, error) {
	tmp := t.TempDir()
	disk := filepath.Join(tmp, "disk.img")
	args := []string{"-q", "-F"}
	if len(files) > 0 {
		root := filepath.Join(tmp, "root")
		for dst, src := range files {
			p := filepath.Join(root, filepath.FromSlash(dst))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return "", err
			}
			if err := os.Link(src, p); err != nil {
				if err := copyFile(src, p); err != nil {
					return "", err
				}
			}
		}
		args = append(args, "-d", root)
	}
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Truncate(disk, 3<<30); err != nil {
		return "", err
	}
	if out, err := exec.Command("mkfs.ext4", append(args, disk)...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("mkfs.ext4: %v\n%s", err, out)
	}
	return disk, nil
}

// copyFile copies src to dst with src's mode bits.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
