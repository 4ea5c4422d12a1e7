package e2e

// A real Kubernetes node inside the VM: etcd, kube-apiserver and kubelet
// (make kube-bin), on the suite's containerd, with pods created through the
// API with kubectl. Facts learned while building it (kubelet, apiserver and
// kubectl v1.37.2, etcd v3.7.3, qemu TCG on 2 cores):
//
//   - The VM has no network device. The node IP is a documentation address
//     (RFC 5737) added to lo: kubelet refuses a loopback node IP but accepts
//     any address an interface holds; apiserver advertises it. Nothing
//     leaves the VM.
//   - The test pods carry nodeName and need no scheduler. The DaemonSet
//     scenario starts kube-controller-manager (only the controllers it
//     needs) and kube-scheduler (a DaemonSet's pods are bound by the
//     scheduler). The ServiceAccount admission plugin is off (no token
//     controller runs) and pods do not mount a token.
//   - The test pods are host-network: until the DaemonSet scenario writes a
//     CNI network (ptp, host-local; veth from the kernel's modules),
//     containerd reports the network not ready and kubelet runs
//     host-network pods only.
//   - kubelet needs /etc/passwd and /etc/group (user namespace mappings);
//     the test writes minimal ones into the VM.
//   - runc must be built with seccomp: containerd gives every sandbox a
//     seccomp profile.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"nri-memqos/test/internal/proc"
	"nri-memqos/test/internal/wait"
)

// envKubeBin is the directory of kubeBinaries.
const envKubeBin = "E2E_KUBE_BIN"

const (
	kubeNodeIP      = "192.0.2.10"      // TEST-NET-1, on lo
	kubeServiceCIDR = "198.51.100.0/24" // TEST-NET-2
	kubeNodeName    = "e2e-vm"
)

var kubeBinaries = []string{"kubelet", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd"}

// kubeNode is etcd, kube-apiserver and one kubelet on runtime r.
type kubeNode struct {
	t          *testing.T
	r          *runtime
	dir        string
	bin        string
	kubeconfig string
	etcd, api  *proc.Process
	kubelet    *proc.Process
	// controllers and scheduler run for the DaemonSet scenario only.
	controllers, scheduler *proc.Process
	kubeletCfg             string
	// kubeletArgs are the running kubelet's arguments.
	kubeletArgs []string
}

// kubeletOptions is what differs between the kubelets a test starts.
type kubeletOptions struct {
	// reservation is kubelet's memoryReservationPolicy: None or
	// TieredReservation.
	reservation string
	// memoryQoS is the MemoryQoS feature gate.
	memoryQoS bool
}

// startControlPlane starts etcd and kube-apiserver and waits until the
// apiserver is ready.
func startControlPlane(t *testing.T, r *runtime) *kubeNode {
	t.Helper()
	bin := os.Getenv(envKubeBin)
	if bin == "" {
		skipOrFail(t, "%s is not set", envKubeBin)
	}
	for _, b := range kubeBinaries {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			skipOrFail(t, "missing %s (make kube-bin): %v", b, err)
		}
	}
	k := &kubeNode{t: t, r: r, dir: filepath.Join(r.dir, "kube"), bin: bin}
	for _, d := range []string{"pki", "etcd", "manifests", "kubelet", "logs"} {
		if err := os.MkdirAll(filepath.Join(k.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("ip", "addr", "add", kubeNodeIP+"/32", "dev", "lo").CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "File exists") {
		t.Fatalf("ip addr add %s: %v: %s", kubeNodeIP, err, out)
	}
	// kubelet reads them (user namespace mappings); the VM has neither.
	for path, content := range map[string]string{"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "/etc/group": "root:x:0:\n"} {
		if _, err := os.Stat(path); os.IsNotExist(err) {
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	token := randomHex(t, 16)
	k.writeFile("pki/tokens.csv", token+",admin,admin,system:masters\n")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k.writeFile("pki/sa.key", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})))
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	k.writeFile("pki/sa.pub", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
	k.kubeconfig = k.writeFile("kubeconfig", fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: https://127.0.0.1:6443
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: e2e
  context: {cluster: e2e, user: admin}
current-context: e2e
`, token))

	start := time.Now()
	k.etcd = k.start("etcd", "--name", "e2e", "--data-dir", filepath.Join(k.dir, "etcd"),
		"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "e2e=http://127.0.0.1:2380", "--unsafe-no-fsync", "--log-level", "warn")
	k.api = k.start("kube-apiserver", "--etcd-servers", "http://127.0.0.1:2379",
		"--bind-address", "127.0.0.1", "--secure-port", "6443", "--advertise-address", kubeNodeIP,
		"--cert-dir", filepath.Join(k.dir, "pki"), "--token-auth-file", filepath.Join(k.dir, "pki/tokens.csv"),
		"--authorization-mode", "AlwaysAllow", "--service-cluster-ip-range", kubeServiceCIDR,
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", filepath.Join(k.dir, "pki/sa.pub"),
		"--service-account-signing-key-file", filepath.Join(k.dir, "pki/sa.key"),
		// kubectl logs: the apiserver reaches kubelet on its node IP.
		"--kubelet-preferred-address-types", "InternalIP",
		"--disable-admission-plugins", "ServiceAccount", "--enable-priority-and-fairness=false",
		"--profiling=false", "--v=1")
	t.Cleanup(k.stop)
	wait.For(t, 4*time.Minute, "kube-apiserver to be ready", func() bool {
		k.checkAlive()
		out, err := k.kubectl("get", "--raw", "/readyz")
		return err == nil && strings.TrimSpace(out) == "ok"
	})
	t.Logf("control plane ready after %v", time.Since(start).Round(100*time.Millisecond))
	return k
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func (k *kubeNode) writeFile(rel, content string) string {
	k.t.Helper()
	p := filepath.Join(k.dir, rel)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		k.t.Fatal(err)
	}
	return p
}

// start runs one of the binaries with its output in logs/<name>.log.
func (k *kubeNode) start(name string, args ...string) *proc.Process {
	k.t.Helper()
	logPath := filepath.Join(k.dir, "logs", name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		k.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(k.bin, name), args...)
	cmd.Env = append(os.Environ(), "PATH="+k.r.env.binDir+":"+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p, err := proc.Start(cmd)
	if err != nil {
		k.t.Fatalf("start %s: %v", name, err)
	}
	return p
}

// checkAlive fails the test when a control-plane process exited.
func (k *kubeNode) checkAlive() {
	k.t.Helper()
	for name, p := range map[string]*proc.Process{"etcd": k.etcd, "kube-apiserver": k.api, "kubelet": k.kubelet,
		"kube-controller-manager": k.controllers, "kube-scheduler": k.scheduler} {
		if p == nil {
			continue
		}
		select {
		case <-p.Done():
			k.t.Fatalf("%s exited:\n%s", name, tail(filepath.Join(k.dir, "logs", name+".log"), 40))
		default:
		}
	}
}

// startKubelet starts kubelet with o and waits until its node is registered.
func (k *kubeNode) startKubelet(o kubeletOptions) {
	t := k.t
	t.Helper()
	if o.reservation == "" {
		o.reservation = "None"
	}
	k.kubeletCfg = k.writeFile("kubelet.yaml", fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%s
failSwapOn: false
failCgroupV1: false
staticPodPath: %s
address: %s
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
featureGates:
  MemoryQoS: %t
memoryReservationPolicy: %s
memoryThrottlingFactor: 0.9
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  imagefs.available: 1%%
  nodefs.inodesFree: 1%%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
resolvConf: /etc/resolv.conf
syncFrequency: 10s
podLogsDir: %s
`, k.r.sock, filepath.Join(k.dir, "manifests"), kubeNodeIP, o.memoryQoS, o.reservation, filepath.Join(k.dir, "pods-logs")))
	k.kubeletArgs = []string{"--config", k.kubeletCfg, "--kubeconfig", k.kubeconfig,
		"--root-dir", filepath.Join(k.dir, "kubelet"), "--node-ip", kubeNodeIP,
		"--hostname-override", kubeNodeName, "--v=2"}
	start := time.Now()
	k.kubelet = k.start("kubelet", k.kubeletArgs...)
	k.waitRegistered()
	t.Logf("kubelet ready after %v (memoryReservationPolicy %s, MemoryQoS %t)", time.Since(start).Round(100*time.Millisecond), o.reservation, o.memoryQoS)
}

// restartKubelet stops kubelet and starts it again with the same arguments,
// without waiting for it (waitRegistered does).
func (k *kubeNode) restartKubelet() {
	k.stopKubelet()
	k.kubelet = k.start("kubelet", k.kubeletArgs...)
}

// waitRegistered waits until kubelet's node is registered and kubelet's
// /healthz answers ok. (The node never turns Ready: without a CNI
// configuration containerd reports the network not ready; kubelet runs
// host-network pods all the same.)
func (k *kubeNode) waitRegistered() {
	k.t.Helper()
	wait.For(k.t, 3*time.Minute, "kubelet to be healthy and its node registered", func() bool {
		k.checkAlive()
		resp, err := http.Get("http://127.0.0.1:10248/healthz")
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if strings.TrimSpace(string(body)) != "ok" {
			return false
		}
		_, err = k.kubectl("get", "node", kubeNodeName)
		return err == nil
	})
}

// stopKubelet stops kubelet; its pods keep running.
func (k *kubeNode) stopKubelet() {
	if k.kubelet != nil {
		k.kubelet.Stop(20 * time.Second)
		k.kubelet = nil
	}
}

func (k *kubeNode) stop() {
	if k.t.Failed() {
		for _, name := range []string{"kubelet", "kube-controller-manager", "kube-scheduler", "kube-apiserver", "etcd"} {
			k.t.Logf("%s log (tail):\n%s", name, tail(filepath.Join(k.dir, "logs", name+".log"), 40))
		}
	}
	// Pods go first, through kubelet, so it removes their cgroups.
	if k.kubelet != nil && k.api != nil {
		_, _ = k.kubectl("delete", "pods", "--all", "--wait=true", "--timeout=60s")
	}
	k.stopKubelet()
	for _, p := range []*proc.Process{k.controllers, k.scheduler, k.api, k.etcd} {
		if p != nil {
			p.Stop(20 * time.Second)
		}
	}
	k.controllers, k.scheduler, k.api, k.etcd = nil, nil, nil, nil
}

// kubeControllers are the kube-controller-manager controllers the
// DaemonSet scenario needs: daemonset (its pods), resourcequota (config/
// has a ResourceQuota: its admission refuses pods in the namespace until
// the controller fills in the quota's status), job (the cleanup Job),
// garbagecollector (kubectl delete --cascade=foreground waits for it) and
// namespace (kubectl delete -k deletes the namespace).
const kubeControllers = "daemonset,resourcequota,job,garbagecollector,namespace"

// startControllers starts kube-controller-manager and kube-scheduler on
// loopback and waits until both are healthy.
func (k *kubeNode) startControllers() {
	t := k.t
	t.Helper()
	start := time.Now()
	k.controllers = k.start("kube-controller-manager", "--kubeconfig", k.kubeconfig,
		"--authentication-kubeconfig", k.kubeconfig, "--authorization-kubeconfig", k.kubeconfig,
		"--controllers", kubeControllers, "--leader-elect=false", "--bind-address", "127.0.0.1",
		"--secure-port", "10257", "--profiling=false", "--v=1")
	k.scheduler = k.start("kube-scheduler", "--kubeconfig", k.kubeconfig,
		"--authentication-kubeconfig", k.kubeconfig, "--authorization-kubeconfig", k.kubeconfig,
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", "10259",
		"--profiling=false", "--v=1")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		// Their serving certificates are self-signed; only /healthz is read.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback, self-signed, no data
	}}
	for _, port := range []string{"10257", "10259"} {
		wait.For(t, 3*time.Minute, "kube-controller-manager and kube-scheduler to be healthy", func() bool {
			k.checkAlive()
			resp, err := client.Get("https://127.0.0.1:" + port + "/healthz")
			if err != nil {
				return false
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			return strings.TrimSpace(string(body)) == "ok"
		})
	}
	t.Logf("kube-controller-manager (%s) and kube-scheduler healthy after %v", kubeControllers, time.Since(start).Round(100*time.Millisecond))
}

// kubectl runs kubectl against the apiserver; the error carries stderr.
func (k *kubeNode) kubectl(args ...string) (string, error) {
	return k.kubectlIn(nil, args...)
}

func (k *kubeNode) kubectlIn(stdin []byte, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(k.bin, "kubectl"), append([]string{"--kubeconfig", k.kubeconfig}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (k *kubeNode) mustKubectl(args ...string) string {
	k.t.Helper()
	out, err := k.kubectl(args...)
	if err != nil {
		k.t.Fatal(err)
	}
	return out
}

// apply creates the objects of a manifest with kubectl apply -f.
func (k *kubeNode) apply(manifest string) {
	k.t.Helper()
	if out, err := k.kubectlIn([]byte(manifest), "apply", "-f", "-"); err != nil {
		k.t.Fatalf("%v\n%s", err, out)
	}
}
