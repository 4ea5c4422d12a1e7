package e2e

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"nri-memqos/test/internal/cgtest"
	"nri-memqos/test/internal/wait"
)

// daemonSet is the part of config/deploy/daemonset.yaml the guest runs.
type daemonSet struct {
	Spec struct {
		Template struct {
			Spec struct {
				Containers []struct {
					Name            string   `json:"name"`
					Image           string   `json:"image"`
					Command         []string `json:"command"`
					Args            []string `json:"args"`
					SecurityContext struct {
						ReadOnlyRootFilesystem   bool  `json:"readOnlyRootFilesystem"`
						AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
						RunAsUser                *int  `json:"runAsUser"`
						Capabilities             struct {
							Drop []string `json:"drop"`
						} `json:"capabilities"`
					} `json:"securityContext"`
					VolumeMounts []struct {
						Name      string `json:"name"`
						MountPath string `json:"mountPath"`
						ReadOnly  bool   `json:"readOnly"`
					} `json:"volumeMounts"`
				} `json:"containers"`
				Volumes []struct {
					Name     string `json:"name"`
					HostPath *struct {
						Path string `json:"path"`
					} `json:"hostPath"`
					ConfigMap *struct {
						Name string `json:"name"`
					} `json:"configMap"`
				} `json:"volumes"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

// TestImagePodV2 runs the plugin's image (make image) as a pod with the
// DaemonSet's command, security context and mounts, and proves it applies
// QoS to another pod: the DaemonSet path, not only the binary.
func TestImagePodV2(t *testing.T) {
	e := loadEnv(t)
	if e.version != 2 {
		t.Log("runs inside the VM of TestCgroupV2VM")
		return
	}
	image, dsPath := os.Getenv(envImage), os.Getenv(envDaemonSet)
	if image == "" || dsPath == "" {
		skipOrFail(t, "%s and %s must be set", envImage, envDaemonSet)
	}
	data, err := os.ReadFile(dsPath)
	if err != nil {
		t.Fatal(err)
	}
	var ds daemonSet
	if err := yaml.Unmarshal(data, &ds); err != nil {
		t.Fatalf("%s: %v", dsPath, err)
	}
	spec := ds.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers; want 1", dsPath, len(spec.Containers))
	}
	dc := spec.Containers[0]

	removeKubepodsCgroups()
	r := newRuntime(t, e)
	r.importImage()
	if out, err := exec.Command(r.bin("ctr"), "--address", r.sock, "-n", "k8s.io", "images", "import",
		"--local", "--snapshotter", "native", image).CombinedOutput(); err != nil {
		t.Fatalf("ctr import %s: %v: %s", image, err, out)
	}

	// The DaemonSet's host paths, mapped onto this runtime: its NRI socket
	// directory stands for /var/run/nri; the ConfigMap becomes a directory
	// holding the default configuration.
	cfgDir := filepath.Join(r.dir, "configmap")
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	def, err := os.ReadFile("/e2e/nri-memqos.yaml") // config/nri-memqos.yaml, shipped into the VM
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "nri-memqos.yaml"), def, 0o644); err != nil {
		t.Fatal(err)
	}
	hostPath := map[string]string{}
	for _, v := range spec.Volumes {
		switch {
		case v.HostPath != nil && v.HostPath.Path == "/var/run/nri":
			hostPath[v.Name] = filepath.Dir(r.nriSock)
		case v.HostPath != nil:
			hostPath[v.Name] = v.HostPath.Path
		case v.ConfigMap != nil:
			hostPath[v.Name] = cfgDir
		default:
			t.Fatalf("volume %s: neither hostPath nor configMap", v.Name)
		}
	}
	var mounts []mount
	for _, m := range dc.VolumeMounts {
		hp, ok := hostPath[m.Name]
		if !ok {
			t.Fatalf("volumeMount %s has no volume", m.Name)
		}
		if err := os.MkdirAll(hp, 0o755); err != nil {
			t.Fatal(err)
		}
		mounts = append(mounts, mount{host: hp, container: m.MountPath, rw: !m.ReadOnly})
	}
	sc := dc.SecurityContext
	security := map[string]any{
		"readonly_rootfs":   sc.ReadOnlyRootFilesystem,
		"capabilities":      map[string]any{"drop_capabilities": sc.Capabilities.Drop},
		"no_new_privs":      sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation,
		"namespace_options": map[string]any{"network": 2},
	}
	if sc.RunAsUser != nil {
		security["run_as_user"] = map[string]any{"value": *sc.RunAsUser}
	}
	if !sc.ReadOnlyRootFilesystem || len(sc.Capabilities.Drop) == 0 {
		t.Errorf("the DaemonSet runs with a writable root or keeps capabilities: %+v", sc)
	}

	agent := pod{name: "nri-memqos", uid: "00000000-0000-0000-0000-000000000401", qos: "burstable"}
	agentID := r.runPod(agent)
	r.runContainer(agentID, agent, container{name: dc.Name, image: dc.Image, command: dc.Command, args: dc.Args,
		mounts: mounts, security: security, limit: 64 * mi, oomScoreAdj: -997})

	// Ready once registered with the runtime and synchronized.
	addr := "127.0.0.1:9464"
	for _, a := range dc.Args {
		if v, ok := strings.CutPrefix(a, "-metrics-address="); ok {
			addr = strings.Replace(v, "0.0.0.0", "127.0.0.1", 1)
		}
	}
	wait.For(t, 60*time.Second, "the plugin pod to be ready", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return false
		}
		return resp.StatusCode == http.StatusOK
	})

	ls := classPod("served", "00000000-0000-0000-0000-000000000402", "burstable", "latency-sensitive")
	id := r.runPod(ls)
	ctr := r.runContainer(id, ls, container{name: "app", limit: limit, oomScoreAdj: 900})
	dir := r.cgroupDir(ctr)
	cgtest.CheckFiles(t, dir, map[string]string{"memory.min": cgtest.Itoa(request), "memory.swap.max": "0"})
	// The plugin in its pod raised the ancestors through the cgroupfs mount.
	if got := cgtest.ReadInt(t, memoryDir(2, "/kubepods/burstable/pod"+ls.uid), "memory.min"); got != request {
		t.Errorf("pod cgroup memory.min = %d; want %d", got, request)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if err := resp.Body.Close(); err != nil {
		t.Error(err)
	}
	want := `nri_memqos_container_memory_min_bytes{class="latency-sensitive",container="app",container_id="` + ctr[:12] + `",namespace="e2e",pod="served"} 2.68435456e+08`
	if !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %s", want)
	}
	r.removePod(id)
	r.removePod(agentID)
}
