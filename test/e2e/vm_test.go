package e2e

// runVM boots a Linux kernel under qemu (TCG) with a generated initramfs and
// runs a shell script in it. Facts learned while building it (Debian 6.1
// cloud kernel, qemu TCG on 2 cores, containerd 2.4.2, runc 1.5.3):
//
//   - KVM hangs on this machine kind: always -accel tcg. -nic none drops the
//     default NIC nobody uses.
//   - The serial console carries terminal escapes (ESC c, ESC [?7l, ESC [2J
//     from SeaBIOS and at kernel start) and, around the kernel's UART setup,
//     bytes can be lost so two lines run together ("Booting from
//     ROM..E2E-INIT"): runVM strips the escapes and the init prints an empty
//     line before each marker.
//   - busybox --install -s needs /proc mounted (it reads /proc/self/exe).
//   - The kernel's initramfs unpacker does not create missing parents: the
//     archive lists directories first. The kernel's built-in initramfs
//     supplies /dev/console; the archive carries one too.
//   - runc's pivot_root fails on the initramfs rootfs: the first /init run
//     copies everything into a tmpfs and switch_roots (which frees the
//     initramfs). /tmp, /run, /dev, /proc and /sys are mounted over, so
//     Files may not put anything there.
//   - `ctr images import --snapshotter native` fails with "unable to
//     initialize unpacker: no unpack platforms defined" (the transfer
//     service path); `--local --snapshotter native` works. overlayfs is a
//     module, so CRI uses the native snapshotter.
//   - A pause image whose command is /bin/sh exits at once; containerd then
//     drops the sandbox shim and StartContainer fails with "failed to load
//     sandbox task ... failed to create TTRPC connection". The test image's
//     default command is therefore a sleep (see busyboxImageCmd).
//   - restrict_oom_score_adj is not needed in the VM (init runs as real
//     root); it is only needed on the host, where the tests run in a
//     container. containerd warns "Configuration migrated from version 3",
//     warns about fsverity on tmpfs and about missing CNI config: harmless.
//   - runc enables the controllers down the cgroup_parent path; the pod
//     cgroup keeps memory.min=0 while the container has what CRI asked for.
//   - Timings seen: busybox-only initramfs 1.1 MiB, built in 30 ms, script
//     starts at guest uptime 1.7 s, marker 2.3-3.5 s after qemu starts. With
//     containerd, shim, runc, ctr, crictl (unstripped) and the image: 85 MiB
//     gzip -1, built in 1.2-1.5 s; script starts at uptime 4-5.5 s;
//     containerd answers 2-4 s later; image import about 1-2 s; pod
//     running after 1.5-3.5 s; container started 1 s later; whole VM run
//     11-19 s.

import (
	"bufio"
	"compress/gzip"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

type vmConfig struct {
	Kernel string // path to vmlinuz
	// Files maps guest path -> host path. Regular files are copied with
	// their mode (symlinks on the host are followed); a directory is
	// copied recursively (symlinks inside it stay symlinks). For each
	// dynamically linked ELF file, the shared libraries `ldd` lists and
	// the dynamic loader are added at the same absolute paths in the
	// guest. /bin/busybox defaults to the host's /usr/bin/busybox, which
	// must be static. Guest paths under /proc, /sys, /dev, /run and /tmp
	// are refused: the init mounts file systems over them.
	Files map[string]string
	// Script is the busybox sh script the guest runs as /e2e-run.sh after
	// the base init; its exit code is reported.
	Script   string
	MemoryMB int               // default 2048
	Timeout  time.Duration     // overall timeout for boot+script (default 10m); qemu is killed on expiry
	Env      map[string]string // exported to the script
	QemuArgs []string          // extra qemu arguments, e.g. -drive file=disk.img,if=virtio,format=raw
	// OnLine, when set, gets each console line instead of the test log.
	OnLine func(line string)
	// SingleThread runs both virtual CPUs on one host thread
	// (-accel tcg,thread=single) instead of one thread each: half the
	// speed, but no cross-vCPU race in qemu's multi-threaded TCG.
	SingleThread bool
	// CgroupV1 mounts the cgroup v1 hierarchies (memory, cpu+cpuacct,
	// pids, and the rest a runtime expects) instead of cgroup2.
	CgroupV1 bool
}

// errVMLockup reports a guest whose kernel watchdog saw a CPU stuck for
// longer than vmLockupAfter: under multi-threaded TCG on this machine kind a
// guest has twice hung that way (jbd2 on one vCPU, runc on the other, both
// stuck until the timeout, soft-lockup reports growing every 28 s). It is
// the emulator's failure, not the plugin's: runGuest retries once with
// SingleThread.
var errVMLockup = errors.New("guest kernel soft lockup")

// vmLockupAfter is how long a reported soft lockup must have lasted before
// runVM ends the VM: short stalls of a starved TCG guest clear by themselves.
const vmLockupAfter = 90

var vmLockupRE = regexp.MustCompile(`watchdog: BUG: soft lockup - CPU#[0-9]+ stuck for ([0-9]+)s!`)

const (
	vmExitMarker     = "E2E-EXIT="
	vmInitMarker     = "E2E-INIT"
	vmDefaultBusybox = "/usr/bin/busybox"
)

var (
	vmExitRE  = regexp.MustCompile(vmExitMarker + `(-?[0-9]+)$`)
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// ansiRE matches the terminal escapes SeaBIOS and the kernel print
	// (ESC c, ESC [?7l, ESC [2J, ...).
	ansiRE = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\^_c])`)
)

// vmInit is the guest's /init. The first run (on the initramfs rootfs)
// copies everything into a tmpfs and switch_roots into it, since runc's
// pivot_root fails on the initramfs rootfs; the second run sets up the
// system and runs the script.
const vmInit = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /run /tmp /etc /newroot /bin /sbin /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin /root /var
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s
export PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin
export HOME=/root
if [ ! -e /.e2e-newroot ]; then
	echo
	echo "init: copying the initramfs into a tmpfs, uptime $(cut -d' ' -f1 /proc/uptime)"
	kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
	mount -t tmpfs -o size=$((kb * 3 / 4))k,mode=0755 tmpfs /newroot || poweroff -f
	for e in /*; do
		case "$e" in /newroot|/proc|/sys|/dev) continue ;; esac
		cp -a "$e" /newroot/ || echo "init: copying $e failed"
	done
	mkdir -p /newroot/proc /newroot/sys /newroot/dev
	: > /newroot/.e2e-newroot
	umount /proc
	exec switch_root /newroot /init
	echo "init: switch_root failed"
	poweroff -f
fi
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
if [ -e /e2e-cgroup-v1 ]; then
	mount -t tmpfs -o mode=0755 cgroup /sys/fs/cgroup
	for c in memory cpu,cpuacct pids cpuset blkio devices freezer hugetlb perf_event net_cls,net_prio; do
		mkdir -p /sys/fs/cgroup/$c && mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c || echo "init: cgroup v1 $c failed"
	done
	ln -s cpu,cpuacct /sys/fs/cgroup/cpu
	ln -s cpu,cpuacct /sys/fs/cgroup/cpuacct
	ln -s net_cls,net_prio /sys/fs/cgroup/net_cls
	ln -s net_cls,net_prio /sys/fs/cgroup/net_prio
	mkdir -p /sys/fs/cgroup/systemd && mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
	echo 1 > /sys/fs/cgroup/memory/memory.use_hierarchy
else
	mount -t cgroup2 cgroup2 /sys/fs/cgroup
	echo "+memory +cpu +pids" > /sys/fs/cgroup/cgroup.subtree_control
fi
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
echo "127.0.0.1 localhost" > /etc/hosts
echo "nameserver 127.0.0.1" > /etc/resolv.conf
hostname e2e-vm
ip link set lo up
. /e2e-env
cd /
echo
echo "` + vmInitMarker + ` uptime=$(cut -d' ' -f1 /proc/uptime)"
sh /e2e-run.sh </dev/null 2>&1
rc=$?
echo
echo "` + vmExitMarker + `$rc"
sync
poweroff -f
`

// runVM builds a gzip'ed newc initramfs holding busybox, cfg.Files (with
// their shared libraries), /init and the script; boots qemu-system-x86_64
// with TCG; streams the serial console line by line to t.Logf (prefixed
// "vm: ") and returns the full console output and the script's exit code,
// read from the "E2E-EXIT=<n>" line the init prints. It returns exit code -1
// and an error if qemu exits or the timeout hits without that line.
func runVM(t *testing.T, cfg vmConfig) (output string, exitCode int, err error) {
	t.Helper()
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = 2048
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Minute
	}
	start := time.Now()
	initrd := filepath.Join(t.TempDir(), "initrd.gz")
	size, err := buildInitramfs(initrd, cfg)
	if err != nil {
		return "", -1, fmt.Errorf("initramfs: %w", err)
	}
	t.Logf("runVM: initramfs %.1f MiB gzip'ed, built in %v", float64(size)/(1<<20), time.Since(start).Round(time.Millisecond))

	// The timeout covers boot and script, not the build.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	accel := "tcg" // KVM hangs on this machine kind
	if cfg.SingleThread {
		accel = "tcg,thread=single"
	}
	args := []string{
		"-accel", accel,
		"-m", strconv.Itoa(cfg.MemoryMB),
		"-smp", "2",
		"-nographic", "-no-reboot",
		"-nic", "none",
		"-kernel", cfg.Kernel,
		"-initrd", initrd,
		"-append", "console=ttyS0 quiet panic=-1",
	}
	args = append(args, cfg.QemuArgs...)
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", -1, err
	}
	if err := cmd.Start(); err != nil {
		return "", -1, fmt.Errorf("starting qemu: %w", err)
	}
	booted := time.Now()

	var (
		out     strings.Builder
		initAt  time.Duration
		exitAt  time.Duration
		gotExit bool
		lockup  string
	)
	exitCode = -1
	r := bufio.NewReader(stdout)
	for {
		line, rerr := r.ReadString('\n')
		if line != "" {
			line = strings.TrimRight(line, "\r\n")
			line = ansiRE.ReplaceAllString(line, "")
			line = strings.TrimLeft(line, "\r")
			out.WriteString(line)
			out.WriteByte('\n')
			if cfg.OnLine != nil {
				cfg.OnLine(line)
			} else {
				t.Logf("vm: %s", line)
			}
			switch {
			case initAt == 0 && strings.Contains(line, vmInitMarker):
				initAt = time.Since(booted)
			case !gotExit && vmExitRE.MatchString(line):
				gotExit = true
				exitAt = time.Since(booted)
				exitCode, _ = strconv.Atoi(vmExitRE.FindStringSubmatch(line)[1])
				// poweroff -f should end qemu at once; do not let a
				// hung shutdown eat the whole timeout.
				defer time.AfterFunc(30*time.Second, cancel).Stop()
			case lockup == "" && !gotExit:
				if m := vmLockupRE.FindStringSubmatch(line); m != nil {
					if secs, _ := strconv.Atoi(m[1]); secs >= vmLockupAfter {
						lockup = line
						cancel()
					}
				}
			}
		}
		if rerr != nil {
			break
		}
	}
	werr := cmd.Wait()
	at := func(d time.Duration) string {
		if d == 0 {
			return "never"
		}
		return d.Round(time.Millisecond).String()
	}
	t.Logf("runVM: after qemu start: init second stage %s, exit marker %s, qemu end %s",
		at(initAt), at(exitAt), at(time.Since(booted)))
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("runVM: qemu stderr: %s", s)
	}
	if !gotExit && lockup != "" {
		return out.String(), -1, fmt.Errorf("%w (%q): qemu stopped after %v", errVMLockup, lockup, time.Since(booted).Round(time.Second))
	}
	if !gotExit {
		why := fmt.Sprintf("qemu exited (%v)", werr)
		if ctx.Err() != nil {
			why = fmt.Sprintf("timeout after %v", cfg.Timeout)
		}
		return out.String(), -1, fmt.Errorf("no %s line in the console output: %s; qemu stderr: %q", vmExitMarker, why, stderr.String())
	}
	return out.String(), exitCode, nil
}

// cpioEntry is one file of the initramfs.
type cpioEntry struct {
	mode   uint32 // type and permission bits (S_IF* | perm)
	host   string // content from this host file (regular files)
	data   []byte // or this content (regular files, symlink targets)
	rdev   [2]uint32
	source string // for error messages
}

const (
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFLNK = 0o120000
	sIFCHR = 0o020000
)

// vmReservedDirs are mounted over by the init; files under them would be
// hidden.
var vmReservedDirs = []string{"/proc", "/sys", "/dev", "/run", "/tmp", "/newroot"}

func checkGuestPath(p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return fmt.Errorf("guest path %q: want a clean absolute path", p)
	}
	for _, d := range vmReservedDirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return fmt.Errorf("guest path %q: %s is mounted over by the init", p, d)
		}
	}
	switch p {
	case "/init", "/e2e-run.sh", "/e2e-env", "/.e2e-newroot", "/e2e-cgroup-v1":
		return fmt.Errorf("guest path %q is reserved", p)
	}
	return nil
}

// cpioModeBits converts a Go file mode to the permission, setuid, setgid and
// sticky bits of a Unix mode.
func cpioModeBits(m fs.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

// elfDeps returns the shared libraries and dynamic loader a dynamically
// linked ELF file needs, as absolute host paths (which are also their guest
// paths). It returns nothing for other files and static executables.
func elfDeps(host string) ([]string, error) {
	f, err := elf.Open(host)
	if err != nil {
		return nil, nil // not ELF
	}
	interp := ""
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				_ = f.Close() // the read error is the one to report
				return nil, err
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if interp == "" {
		return nil, nil // static
	}
	out, err := exec.Command("ldd", host).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %v", host, err)
	}
	deps := []string{interp}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) >= 3 && fields[1] == "=>":
			if fields[2] == "not" {
				return nil, fmt.Errorf("ldd %s: %s", host, strings.TrimSpace(line))
			}
			if strings.HasPrefix(fields[2], "/") {
				deps = append(deps, fields[2])
			}
		case len(fields) >= 1 && strings.HasPrefix(fields[0], "/"):
			deps = append(deps, fields[0])
		}
	}
	return deps, nil
}

// initramfsEntries collects the guest file tree: guest path -> entry.
func initramfsEntries(cfg vmConfig) (map[string]*cpioEntry, error) {
	entries := map[string]*cpioEntry{}
	var regular []string // guest paths of regular files from the host, for ELF deps
	addFile := func(guest, host string, fi fs.FileInfo) {
		entries[guest] = &cpioEntry{mode: sIFREG | cpioModeBits(fi.Mode()), host: host, source: host}
		regular = append(regular, guest)
	}
	files := map[string]string{"/bin/busybox": vmDefaultBusybox}
	for g, h := range cfg.Files {
		files[g] = h
	}
	guests := make([]string, 0, len(files))
	for g := range files {
		guests = append(guests, g)
	}
	sort.Strings(guests)
	for _, guest := range guests {
		host := files[guest]
		if err := checkGuestPath(guest); err != nil {
			return nil, err
		}
		fi, err := os.Stat(host)
		if err != nil {
			return nil, err
		}
		switch {
		case fi.Mode().IsRegular():
			addFile(guest, host, fi)
		case fi.IsDir():
			err := filepath.WalkDir(host, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, err := filepath.Rel(host, p)
				if err != nil {
					return err
				}
				g := path.Join(guest, filepath.ToSlash(rel))
				info, err := d.Info()
				if err != nil {
					return err
				}
				switch {
				case d.IsDir():
					entries[g] = &cpioEntry{mode: sIFDIR | cpioModeBits(info.Mode()), source: p}
				case info.Mode()&fs.ModeSymlink != 0:
					target, err := os.Readlink(p)
					if err != nil {
						return err
					}
					entries[g] = &cpioEntry{mode: sIFLNK | 0o777, data: []byte(target), source: p}
				case info.Mode().IsRegular():
					addFile(g, p, info)
				default:
					return fmt.Errorf("%s: unsupported file type %v", p, info.Mode().Type())
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%s: unsupported file type %v", host, fi.Mode().Type())
		}
	}
	// Shared libraries and loaders of dynamically linked executables, at
	// their host paths; explicit entries win.
	checked := map[string]bool{}
	for i := 0; i < len(regular); i++ {
		host := entries[regular[i]].host
		if checked[host] {
			continue
		}
		checked[host] = true
		deps, err := elfDeps(host)
		if err != nil {
			return nil, err
		}
		for _, dep := range deps {
			if _, ok := entries[dep]; ok {
				continue
			}
			fi, err := os.Stat(dep)
			if err != nil {
				return nil, fmt.Errorf("library of %s: %w", host, err)
			}
			addFile(dep, dep, fi)
		}
	}

	// The init, the script and its environment.
	var env strings.Builder
	keys := make([]string, 0, len(cfg.Env))
	for k := range cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !envNameRE.MatchString(k) {
			return nil, fmt.Errorf("environment variable name %q", k)
		}
		fmt.Fprintf(&env, "export %s=%s\n", k, vmShellQuote(cfg.Env[k]))
	}
	entries["/init"] = &cpioEntry{mode: sIFREG | 0o755, data: []byte(vmInit), source: "init"}
	entries["/e2e-run.sh"] = &cpioEntry{mode: sIFREG | 0o755, data: []byte(cfg.Script), source: "script"}
	entries["/e2e-env"] = &cpioEntry{mode: sIFREG | 0o644, data: []byte(env.String()), source: "env"}
	if cfg.CgroupV1 {
		entries["/e2e-cgroup-v1"] = &cpioEntry{mode: sIFREG | 0o644, source: "cgroup v1"}
	}
	entries["/dev/console"] = &cpioEntry{mode: sIFCHR | 0o600, rdev: [2]uint32{5, 1}, source: "console"}

	// Mount points and the parents of every entry.
	for _, d := range []string{"/proc", "/sys", "/dev", "/run", "/tmp", "/etc", "/root", "/var", "/newroot",
		"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"} {
		if _, ok := entries[d]; !ok {
			entries[d] = &cpioEntry{mode: sIFDIR | 0o755, source: "base"}
		}
	}
	entries["/tmp"].mode = sIFDIR | 0o1777
	for p := range entries {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if e, ok := entries[d]; !ok {
				entries[d] = &cpioEntry{mode: sIFDIR | 0o755, source: "parent of " + p}
			} else if e.mode&0o170000 != sIFDIR {
				return nil, fmt.Errorf("%s is both a file (%s) and a parent of %s", d, e.source, p)
			}
		}
	}
	return entries, nil
}

func vmShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// buildInitramfs writes a gzip'ed (BestSpeed) newc cpio archive of the
// guest tree to dst and returns its size.
func buildInitramfs(dst string, cfg vmConfig) (int64, error) {
	entries, err := initramfsEntries(cfg)
	if err != nil {
		return 0, err
	}
	names := make([]string, 0, len(entries))
	for p := range entries {
		names = append(names, p)
	}
	// Directories first (sorted, so parents precede children), then the
	// rest: the kernel does not create missing parents.
	sort.Slice(names, func(i, j int) bool {
		di := entries[names[i]].mode&0o170000 == sIFDIR
		dj := entries[names[j]].mode&0o170000 == sIFDIR
		if di != dj {
			return di
		}
		return names[i] < names[j]
	})

	f, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		return 0, err
	}
	cw := &newcWriter{w: zw}
	for _, p := range names {
		if err := cw.add(strings.TrimPrefix(p, "/"), entries[p]); err != nil {
			return 0, err
		}
	}
	if err := cw.close(); err != nil {
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), f.Close()
}

// newcWriter writes a cpio archive in the "newc" (SVR4, no CRC) format the
// kernel's initramfs unpacker reads.
type newcWriter struct {
	w   io.Writer
	ino uint32
	n   int64 // bytes written, for padding
}

func (c *newcWriter) write(b []byte) error {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return err
}

func (c *newcWriter) pad() error {
	if r := c.n % 4; r != 0 {
		return c.write(make([]byte, 4-r))
	}
	return nil
}

func (c *newcWriter) header(name string, mode uint32, nlink uint32, size int64, rdev [2]uint32) error {
	if size > 0xffffffff {
		return fmt.Errorf("%s: too large for newc", name)
	}
	c.ino++
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev[0], rdev[1], len(name)+1, 0)
	if err := c.write([]byte(hdr)); err != nil {
		return err
	}
	if err := c.write(append([]byte(name), 0)); err != nil {
		return err
	}
	return c.pad()
}

func (c *newcWriter) add(name string, e *cpioEntry) error {
	switch e.mode & 0o170000 {
	case sIFDIR:
		return c.header(name, e.mode, 2, 0, [2]uint32{})
	case sIFCHR:
		return c.header(name, e.mode, 1, 0, e.rdev)
	case sIFLNK:
		if err := c.header(name, e.mode, 1, int64(len(e.data)), [2]uint32{}); err != nil {
			return err
		}
		if err := c.write(e.data); err != nil {
			return err
		}
		return c.pad()
	}
	if e.host == "" {
		if err := c.header(name, e.mode, 1, int64(len(e.data)), [2]uint32{}); err != nil {
			return err
		}
		if err := c.write(e.data); err != nil {
			return err
		}
		return c.pad()
	}
	f, err := os.Open(e.host)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := c.header(name, e.mode, 1, fi.Size(), [2]uint32{}); err != nil {
		return err
	}
	n, err := io.CopyN(c.w, f, fi.Size())
	c.n += n
	if err != nil {
		return fmt.Errorf("%s: %w", e.host, err)
	}
	return c.pad()
}

func (c *newcWriter) close() error {
	if err := c.header("TRAILER!!!", 0, 1, 0, [2]uint32{}); err != nil {
		return err
	}
	// Pad the archive to a multiple of 512 bytes, as cpio does.
	if r := c.n % 512; r != 0 {
		return c.write(make([]byte, 512-r))
	}
	return nil
}

// vmTestKernel is the kernel the VM tests boot (E2E_KERNEL).
func vmTestKernel(t *testing.T) string {
	t.Helper()
	k := os.Getenv(envKernel)
	if k == "" {
		skipOrFail(t, "%s is not set", envKernel)
	}
	if _, err := os.Stat(k); err != nil {
		skipOrFail(t, "no kernel: %v", err)
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		skipOrFail(t, "no qemu-system-x86_64")
	}
	return k
}

func TestNewcWriter(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		skipOrFail(t, "no cpio tool")
	}
	dir := t.TempDir()
	host := filepath.Join(dir, "hello")
	if err := os.WriteFile(host, []byte("hello, world\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(dir, "initrd.gz")
	cfg := vmConfig{
		Files:  map[string]string{"/opt/x/hello": host},
		Script: "echo hi\n",
		Env:    map[string]string{"A": "it's"},
	}
	if _, err := buildInitramfs(initrd, cfg); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", "gzip -dc "+initrd+" | cpio -itv --quiet").CombinedOutput()
	if err != nil {
		t.Fatalf("cpio: %v\n%s", err, out)
	}
	listing := string(out)
	for _, want := range []string{"-rw-r-----", "opt/x/hello", "-rwxr-xr-x", "bin/busybox", "init", "e2e-run.sh", "drwxrwxrwt", "crw-------"} {
		if !strings.Contains(listing, want) {
			t.Errorf("listing lacks %q:\n%s", want, listing)
		}
	}
	x := filepath.Join(dir, "x")
	if err := os.Mkdir(x, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "gzip -dc "+initrd+" | cpio -id --quiet")
	cmd.Dir = x
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id: %v\n%s", err, out)
	}
	for p, want := range map[string]string{"opt/x/hello": "hello, world\n", "e2e-env": "export A='it'\\''s'\n", "e2e-run.sh": "echo hi\n"} {
		got, err := os.ReadFile(filepath.Join(x, p))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", p, got, err, want)
		}
	}

	if _, err := initramfsEntries(vmConfig{Files: map[string]string{"/tmp/x": host}}); err == nil {
		t.Error("a file under /tmp: want an error")
	}
}

func TestVMBoots(t *testing.T) {
	kernel := vmTestKernel(t)
	out, code, err := runVM(t, vmConfig{
		Kernel: kernel,
		Script: `cat /sys/fs/cgroup/cgroup.controllers
cat /sys/fs/cgroup/cgroup.subtree_control
uname -r
echo "GREETING=$GREETING"
echo "rootfs=$(awk '$2 == "/" { print $3 }' /proc/mounts | tail -n 1)"
exit 3
`,
		Env:     map[string]string{"GREETING": "hello 'vm'"},
		Timeout: 5 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	if !strings.Contains(out, "memory") {
		t.Error("no memory controller in the output")
	}
	if !strings.Contains(out, "GREETING=hello 'vm'") {
		t.Error("environment not exported to the script")
	}
	if !strings.Contains(out, "rootfs=tmpfs") {
		t.Error("the script does not run on the tmpfs root (switch_root)")
	}
}

// TestVMNoMarker checks that runVM reports a VM that ends, or hangs, before
// the exit marker.
func TestVMNoMarker(t *testing.T) {
	kernel := vmTestKernel(t)
	for _, tc := range []struct {
		name, script string
		timeout      time.Duration
		want         string
	}{
		{"poweroff", "poweroff -f\n", 2 * time.Minute, "qemu exited"},
		{"timeout", "sleep 600\n", 10 * time.Second, "timeout"},
		// A stall that clears (30 s) is left alone; one past vmLockupAfter
		// ends the VM long before the timeout (errVMLockup).
		{"lockup", "echo 'watchdog: BUG: soft lockup - CPU#1 stuck for 30s! [runc:241]'\n" +
			"echo 'watchdog: BUG: soft lockup - CPU#0 stuck for 95s! [jbd2/vda-8:134]'\nsleep 600\n",
			2 * time.Minute, "soft lockup (\"watchdog: BUG: soft lockup - CPU#0 stuck for 95s!"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, code, err := runVM(t, vmConfig{Kernel: kernel, Script: tc.script, MemoryMB: 256, Timeout: tc.timeout})
			if tc.name == "lockup" && (!errors.Is(err, errVMLockup) || time.Since(start) > time.Minute) {
				t.Errorf("runVM took %v and returned %v; want errVMLockup at once", time.Since(start), err)
			}
			if err == nil || code != -1 || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("runVM = %d, %v; want -1 and an error with %q", code, err, tc.want)
			}
		})
	}
}
