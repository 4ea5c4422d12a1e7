package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"nri-memqos/test/internal/cgtest"
	"nri-memqos/test/internal/logbuf"
	"nri-memqos/test/internal/proc"
	"nri-memqos/test/internal/wait"
)

// Environment of the suite, set by `make e2e`.
const (
	envBinDir   = "E2E_BIN_DIR"  // containerd, containerd-shim-runc-v2, ctr, runc, crictl, nri-memqos
	envBusybox  = "E2E_BUSYBOX"  // a static busybox for the test image (default /usr/bin/busybox)
	envKernel   = "E2E_KERNEL"   // vmlinuz for the cgroup v2 VM
	envRequired = "E2E_REQUIRED" // "1": missing parts fail instead of skipping
	envWorkDir  = "E2E_WORK_DIR" // where runs keep their files (default: a temporary directory)

	testImage    = "docker.io/library/busybox:e2e"
	sandboxImage = "registry.k8s.io/pause:3.10.2"
	cgroupMount  = "/sys/fs/cgroup"
)

// suiteEnv is what a run needs from its machine.
type suiteEnv struct {
	binDir  string
	busybox string
	version int // cgroup version of this machine
}

func required() bool { return os.Getenv(envRequired) == "1" }

// skipOrFail skips a test when the suite is run by hand without its parts,
// and fails it under `make e2e` (E2E_REQUIRED=1), so CI never skips.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if required() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format+" (run `make e2e`)", args...)
}

func loadEnv(t *testing.T) *suiteEnv {
	t.Helper()
	e := &suiteEnv{binDir: os.Getenv(envBinDir), busybox: os.Getenv(envBusybox)}
	if e.busybox == "" {
		e.busybox = "/usr/bin/busybox"
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "the end-to-end suite needs root")
	}
	if e.binDir == "" {
		skipOrFail(t, "%s is not set", envBinDir)
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "crictl", "nri-memqos", "nri-memqos-oci-hook"} {
		if _, err := os.Stat(filepath.Join(e.binDir, b)); err != nil {
			skipOrFail(t, "missing %s in %s: %v", b, e.binDir, err)
		}
	}
	if _, err := os.Stat(e.busybox); err != nil {
		skipOrFail(t, "missing busybox: %v", err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(cgroupMount, &st); err != nil {
		t.Fatalf("statfs %s: %v", cgroupMount, err)
	}
	e.version = 1
	if st.Type == 0x63677270 { // CGROUP2_SUPER_MAGIC
		e.version = 2
	}
	return e
}

// workDir returns a fresh directory for one run. Unix socket paths are
// short, so it lives directly under /tmp (or E2E_WORK_DIR).
func workDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv(envWorkDir)
	if base == "" {
		base = "/tmp"
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(base, "e2e-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// runtime is one containerd with its own root, state, sockets and NRI
// socket, plugin and config directories.
type runtime struct {
	t       *testing.T
	env     *suiteEnv
	dir     string
	sock    string
	nriSock string
	// pluginDir and confDir are NRI's pre-registered plugin and config dirs.
	pluginDir, confDir string
	// cniConfDir is CRI's CNI configuration directory: empty, so only
	// host-network pods run, until a test writes a network into it
	// (containerd watches it). The CNI plugins are in <binDir>/cni.
	cniConfDir string
	proc       *proc.Process // nil: containerd is not running
	logPath    string
}

func (r *runtime) bin(name string) string { return filepath.Join(r.env.binDir, name) }

func newRuntime(t *testing.T, e *suiteEnv) *runtime {
	dir := workDir(t)
	r := &runtime{
		t: t, env: e, dir: dir,
		sock:       filepath.Join(dir, "containerd.sock"),
		nriSock:    filepath.Join(dir, "nri", "nri.sock"),
		pluginDir:  filepath.Join(dir, "nri-plugins"),
		confDir:    filepath.Join(dir, "nri-conf.d"),
		cniConfDir: filepath.Join(dir, "cni-net.d"),
		logPath:    filepath.Join(dir, "containerd.log"),
	}
	for _, d := range []string{r.pluginDir, r.confDir, r.cniConfDir, filepath.Dir(r.nriSock)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q

[grpc]
  address = %[3]q

[ttrpc]
  address = "%[3]s.ttrpc"

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = %[4]q
      SystemdCgroup = false

  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [%[8]q]
    conf_dir = %[9]q

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'native'

[plugins.'io.containerd.nri.v1.nri']
  disable = false
  socket_path = %[5]q
  plugin_path = %[6]q
  plugin_config_path = %[7]q
  plugin_registration_timeout = '5s'
  plugin_request_timeout = '5s'
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), r.sock, r.bin("runc"), r.nriSock, r.pluginDir, r.confDir,
		r.bin("cni"), r.cniConfDir)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	crictlCfg := fmt.Sprintf("runtime-endpoint: unix://%[1]s\nimage-endpoint: unix://%[1]s\ntimeout: 30\n", r.sock)
	if err := os.WriteFile(filepath.Join(dir, "crictl.yaml"), []byte(crictlCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.cleanup)
	r.start()
	return r
}

// start runs containerd and waits until CRI answers.
func (r *runtime) start() {
	t := r.t
	t.Helper()
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(r.bin("containerd"), "--config", filepath.Join(r.dir, "config.toml"), "--log-level", "info")
	cmd.Env = append(os.Environ(), "PATH="+r.env.binDir+":"+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p, err := proc.Start(cmd)
	// containerd writes to its own copy.
	if cerr := logf.Close(); cerr != nil {
		t.Errorf("close %s: %v", r.logPath, cerr)
	}
	if err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	r.proc = p
	wait.For(t, 60*time.Second, "containerd CRI to answer", func() bool {
		select {
		case <-p.Done():
			t.Fatalf("containerd exited:\n%s", r.logTail(40))
		default:
		}
		_, err := r.crictl("info")
		return err == nil
	})
}

// stop ends containerd (SIGTERM, then SIGKILL); pods keep running in their shims.
func (r *runtime) stop() {
	if r.proc == nil {
		return
	}
	r.proc.Stop(20 * time.Second)
	r.proc = nil
}

func (r *runtime) restart() {
	r.stop()
	r.start()
}

func (r *runtime) logTail(n int) string { return tail(r.logPath, n) }

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// crictl runs crictl against this containerd; the error carries stderr.
func (r *runtime) crictl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"--config", filepath.Join(r.dir, "crictl.yaml"), "--runtime-endpoint", "unix://" + r.sock,
		"--image-endpoint", "unix://" + r.sock, "--timeout", "30s"}, args...)
	cmd := exec.CommandContext(ctx, r.bin("crictl"), full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("crictl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

func (r *runtime) mustCrictl(args ...string) string {
	r.t.Helper()
	out, err := r.crictl(args...)
	if err != nil {
		r.t.Fatalf("%v\ncontainerd log:\n%s", err, r.logTail(30))
	}
	return out
}

// importImage imports the busybox image under the test and sandbox names.
func (r *runtime) importImage() {
	t := r.t
	t.Helper()
	tarball := filepath.Join(r.dir, "busybox.tar")
	if err := buildBusyboxImage(r.env.busybox, tarball, testImage, sandboxImage); err != nil {
		t.Fatalf("build image: %v", err)
	}
	r.importTarball(tarball)
}

// importTarball imports an OCI image tarball into CRI's namespace.
func (r *runtime) importTarball(tarball string) {
	r.t.Helper()
	out, err := exec.Command(r.bin("ctr"), "--address", r.sock, "-n", "k8s.io", "images", "import", "--local", "--snapshotter", "native", tarball).CombinedOutput()
	if err != nil {
		r.t.Fatalf("ctr import %s: %v: %s", tarball, err, out)
	}
}

// cleanup removes every pod, stops containerd, unmounts what it left and
// removes every cgroup directory the run made, so a second run starts clean.
func (r *runtime) cleanup() {
	if r.proc != nil {
		_, _ = r.crictl("rmp", "-fa")
	}
	r.stop()
	if r.t.Failed() {
		r.t.Logf("containerd log (tail):\n%s", r.logTail(60))
	}
	unmountUnder(r.dir)
	removeKubepodsCgroups()
	_ = os.RemoveAll(r.dir)
}

// unmountUnder lazily unmounts every mount below dir, deepest first.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			mounts = append(mounts, f[1])
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	for _, m := range mounts {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

// kubepodsDirs lists the kubepods cgroup directory of every hierarchy.
func kubepodsDirs() []string { return cgroupDirsNamed("kubepods") }

// cgroupDirsNamed lists the directories rel below the cgroup mount and
// below each of its hierarchies (cgroup v1).
func cgroupDirsNamed(rel string) []string {
	var dirs []string
	if d := filepath.Join(cgroupMount, rel); isDir(d) {
		dirs = append(dirs, d)
	}
	entries, _ := os.ReadDir(cgroupMount)
	for _, e := range entries {
		if d := filepath.Join(cgroupMount, e.Name(), rel); isDir(d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

func isDir(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}

// removeKubepodsCgroups removes the kubepods trees, deepest directories first
// (cgroup directories are removed with rmdir, their files go with them).
func removeKubepodsCgroups() { removeCgroupTrees(kubepodsDirs()) }

// removeCgroupTrees removes cgroup trees, deepest directories first.
func removeCgroupTrees(tops []string) {
	for _, top := range tops {
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			for i := 0; i < 50; i++ {
				if err := syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					break
				}
				time.Sleep(100 * time.Millisecond) // a dying process may still hold it
			}
		}
	}
}

// plugin is nri-memqos running as an external plugin, with its log.
type plugin struct {
	*proc.Process
	t   *testing.T
	log *logbuf.Buffer
}

// startPlugin starts nri-memqos on this runtime's NRI socket with the given
// configuration and waits until the runtime synchronized it.
func (r *runtime) startPlugin(cfgYAML string) *plugin {
	t := r.t
	t.Helper()
	cfgPath := filepath.Join(r.dir, "nri-memqos.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(r.bin("nri-memqos"), "-socket", r.nriSock, "-config", cfgPath,
		"-state-dir", filepath.Join(r.dir, "plugin-state"), "-log-level", "debug", "-reconnect-max", "500ms")
	log := &logbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	pr, err := proc.Start(cmd)
	if err != nil {
		t.Fatalf("start plugin: %v", err)
	}
	p := &plugin{Process: pr, t: t, log: log}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("plugin log:\n%s", p.log.String())
		}
	})
	p.waitSynced(1)
	return p
}

// waitSynced waits until the plugin logged its n-th Synchronize.
func (p *plugin) waitSynced(n int) {
	p.t.Helper()
	wait.For(p.t, 30*time.Second, "the plugin to synchronize", func() bool {
		select {
		case <-p.Done():
			p.t.Fatalf("plugin exited:\n%s", p.log.String())
		default:
		}
		return strings.Count(p.log.String(), "msg=synchronized") >= n
	})
}

// stop stops the plugin (SIGTERM), killing it after 10s.
func (p *plugin) stop() { p.Stop(10 * time.Second) }

// pod describes a host-network pod sandbox as kubelet would create it.
type pod struct {
	name        string
	uid         string
	qos         string // "guaranteed", "burstable" or "besteffort"
	labels      map[string]string
	annotations map[string]string
}

func (p pod) cgroupParent() string {
	if p.qos == "guaranteed" {
		return "/kubepods/pod" + p.uid
	}
	return "/kubepods/" + p.qos + "/pod" + p.uid
}

// container describes a container of a pod.
type container struct {
	name        string
	limit       int64
	unified     map[string]string
	oomScoreAdj int64
	command     []string // default: sleep 3600 (with the test image)
	args        []string
	image       string // default: the busybox test image
	mounts      []mount
	// security is the CRI linux.security_context of the container.
	security map[string]any
}

// mount is a bind mount from the host into a container, read-only unless rw.
type mount struct {
	host, container string
	rw              bool
}

func (r *runtime) writeJSON(name string, v any) string {
	r.t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		r.t.Fatal(err)
	}
	path := filepath.Join(r.dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		r.t.Fatal(err)
	}
	return path
}

func (p pod) config() map[string]any {
	return map[string]any{
		"metadata":      map[string]any{"name": p.name, "namespace": "e2e", "uid": p.uid, "attempt": 0},
		"labels":        p.labels,
		"annotations":   p.annotations,
		"log_directory": "",
		"linux": map[string]any{
			"cgroup_parent":    p.cgroupParent(),
			"security_context": map[string]any{"namespace_options": map[string]any{"network": 2}},
		},
	}
}

func (c container) config() map[string]any {
	res := map[string]any{"oom_score_adj": c.oomScoreAdj}
	if c.limit > 0 {
		res["memory_limit_in_bytes"] = c.limit
	}
	if len(c.unified) > 0 {
		res["unified"] = c.unified
	}
	image, cmd := c.image, c.command
	if image == "" {
		image = testImage
		if len(cmd) == 0 {
			cmd = []string{"/bin/sleep", "3600"}
		}
	}
	mounts := make([]map[string]any, 0, len(c.mounts))
	for _, m := range c.mounts {
		mounts = append(mounts, map[string]any{"host_path": m.host, "container_path": m.container, "readonly": !m.rw})
	}
	linux := map[string]any{"resources": res}
	if c.security != nil {
		linux["security_context"] = c.security
	}
	return map[string]any{
		"metadata": map[string]any{"name": c.name, "attempt": 0},
		"image":    map[string]any{"image": image},
		"command":  cmd,
		"args":     c.args,
		"mounts":   mounts,
		"linux":    linux,
	}
}

// runPod starts a pod sandbox and returns its ID.
func (r *runtime) runPod(p pod) string {
	r.t.Helper()
	return r.mustCrictl("runp", r.writeJSON("pod-"+p.name+".json", p.config()))
}

// create creates a container; the error carries crictl's stderr.
func (r *runtime) create(podID string, p pod, c container) (string, error) {
	podPath := r.writeJSON("pod-"+p.name+".json", p.config())
	ctrPath := r.writeJSON("ctr-"+p.name+"-"+c.name+".json", c.config())
	return r.crictl("create", podID, ctrPath, podPath)
}

// runContainer creates and starts a container and returns its ID.
func (r *runtime) runContainer(podID string, p pod, c container) string {
	r.t.Helper()
	id, err := r.create(podID, p, c)
	if err != nil {
		r.t.Fatalf("%v\ncontainerd log:\n%s", err, r.logTail(30))
	}
	r.mustCrictl("start", id)
	return id
}

// removePod stops and removes a pod with its containers.
func (r *runtime) removePod(podID string) {
	r.t.Helper()
	r.mustCrictl("stopp", podID)
	r.mustCrictl("rmp", podID)
}

// cgroupDir is the memory cgroup directory of a container.
func (r *runtime) cgroupDir(ctrID string) string {
	r.t.Helper()
	out := r.mustCrictl("inspect", "-o", "json", ctrID)
	var v struct {
		Info struct {
			RuntimeSpec struct {
				Linux struct {
					CgroupsPath string `json:"cgroupsPath"`
				} `json:"linux"`
			} `json:"runtimeSpec"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		r.t.Fatalf("crictl inspect: %v", err)
	}
	p := v.Info.RuntimeSpec.Linux.CgroupsPath
	if p == "" {
		r.t.Fatalf("container %s has no cgroups path", ctrID)
	}
	return memoryDir(r.env.version, p)
}

// memoryDir is the directory of a cgroup path in the memory hierarchy.
func memoryDir(version int, rel string) string {
	if version == 1 {
		return filepath.Join(cgroupMount, "memory", rel)
	}
	return filepath.Join(cgroupMount, rel)
}

// snapshot reads the given files of a directory.
func snapshot(t *testing.T, dir string, files []string) map[string]string {
	t.Helper()
	m := make(map[string]string, len(files))
	for _, f := range files {
		m[f] = cgtest.Read(t, dir, f)
	}
	return m
}
