package main

// Checks of the Kubernetes deployment in config/deploy and
// config/kustomization.yaml. They live here because a Go file anywhere else
// under config/ would make that directory a package.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

const (
	configDir = ".."
	deployDir = "../deploy"

	configMapName = "nri-memqos-config"
	namespace     = "nri-memqos"
)

// wantHostPaths is everything the pod may take from the host.
var wantHostPaths = map[string]string{
	"/var/run/nri":    "Directory",
	"/sys/fs/cgroup":  "Directory",
	"/run/nri-memqos": "DirectoryOrCreate",
}

type obj = map[string]any

// get walks nested maps; nil when a key is missing.
func get(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(obj)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any, path ...string) string { s, _ := get(v, path...).(string); return s }
func list(v any, path ...string) []any { l, _ := get(v, path...).([]any); return l }

// readYAML parses every document of a YAML file.
func readYAML(t *testing.T, path string) []obj {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs []obj
	for i, doc := range bytes.Split(b, []byte("\n---")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var m obj
		if err := yaml.UnmarshalStrict(doc, &m); err != nil {
			t.Fatalf("%s (document %d): %v", path, i, err)
		}
		if m != nil {
			docs = append(docs, m)
		}
	}
	return docs
}

// deployObjects reads every YAML file under config/deploy, by file.
func deployObjects(t *testing.T) map[string][]obj {
	t.Helper()
	out := map[string][]obj{}
	err := filepath.WalkDir(deployDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			rel, _ := filepath.Rel(deployDir, p)
			out[rel] = readYAML(t, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no YAML under config/deploy")
	}
	return out
}

func findKind(t *testing.T, files map[string][]obj, kind string) []obj {
	t.Helper()
	var found []obj
	for _, docs := range files {
		for _, d := range docs {
			if d["kind"] == kind {
				found = append(found, d)
			}
		}
	}
	return found
}

func TestDeployKustomizations(t *testing.T) {
	files := deployObjects(t)

	// config/deploy/kustomization.yaml lists every other file there, and
	// only files that exist.
	base := files["kustomization.yaml"]
	if len(base) != 1 || base[0]["kind"] != "Kustomization" {
		t.Fatalf("config/deploy/kustomization.yaml: %v", base)
	}
	var listed []string
	for _, r := range list(base[0], "resources") {
		listed = append(listed, r.(string))
	}
	var have []string
	for f := range files {
		if f != "kustomization.yaml" {
			have = append(have, f)
		}
	}
	sort.Strings(listed)
	sort.Strings(have)
	if !reflect.DeepEqual(listed, have) {
		t.Errorf("config/deploy/kustomization.yaml resources %v, files %v", listed, have)
	}
	if str(base[0], "namespace") != namespace {
		t.Errorf("config/deploy namespace %q", str(base[0], "namespace"))
	}
	if get(base[0], "configMapGenerator") != nil {
		t.Error("config/deploy/kustomization.yaml has a configMapGenerator: kustomize cannot read ../nri-memqos.yaml from there")
	}

	// Every object is a Kubernetes object in the plugin's namespace.
	for f, docs := range files {
		for _, d := range docs {
			if str(d, "apiVersion") == "" || str(d, "kind") == "" {
				t.Errorf("%s: no apiVersion or kind", f)
			}
			if d["kind"] == "Kustomization" || d["kind"] == "Namespace" {
				continue
			}
			if ns := str(d, "metadata", "namespace"); ns != namespace {
				t.Errorf("%s: %s in namespace %q", f, str(d, "kind"), ns)
			}
		}
	}
	ns := findKind(t, files, "Namespace")
	if len(ns) != 1 || str(ns[0], "metadata", "name") != namespace {
		t.Errorf("namespaces %v", ns)
	}

	// config/kustomization.yaml: the deploy base plus the ConfigMap generated
	// from config/nri-memqos.yaml, read from inside its own directory.
	top := readYAML(t, filepath.Join(configDir, "kustomization.yaml"))
	if len(top) != 1 || top[0]["kind"] != "Kustomization" {
		t.Fatalf("config/kustomization.yaml: %v", top)
	}
	if !slices.Contains(list(top[0], "resources"), any("deploy")) {
		t.Errorf("config/kustomization.yaml resources %v: want deploy", list(top[0], "resources"))
	}
	if str(top[0], "namespace") != namespace {
		t.Errorf("config/kustomization.yaml namespace %q", str(top[0], "namespace"))
	}
	gens := list(top[0], "configMapGenerator")
	if len(gens) != 1 || str(gens[0], "name") != configMapName {
		t.Fatalf("configMapGenerator %v: want one, %s", gens, configMapName)
	}
	var keys []string
	for _, f := range list(gens[0], "files") {
		key, path, ok := strings.Cut(f.(string), "=")
		if !ok {
			path = key
			key = filepath.Base(path)
		}
		// kustomize's LoadRestrictionsRootOnly: no file outside the
		// kustomization's directory.
		if filepath.IsAbs(path) || slices.Contains(strings.Split(filepath.ToSlash(path), "/"), "..") {
			t.Errorf("configMapGenerator file %q is outside config/: kustomize refuses it", path)
		}
		abs, _ := filepath.Abs(filepath.Join(configDir, path))
		want, _ := filepath.Abs(filepath.Join(configDir, "nri-memqos.yaml"))
		if abs != want {
			t.Errorf("configMapGenerator file %q is not config/nri-memqos.yaml", path)
		}
		keys = append(keys, key)
	}
	if !reflect.DeepEqual(keys, []string{"nri-memqos.yaml"}) {
		t.Errorf("ConfigMap keys %v, want [nri-memqos.yaml]", keys)
	}
	imgs := list(top[0], "images")
	if len(imgs) != 1 || str(imgs[0], "name") != "localhost/nri-memqos" {
		t.Errorf("images %v: want an entry for localhost/nri-memqos", imgs)
	}

	// The service account carries no token.
	sas := findKind(t, files, "ServiceAccount")
	if len(sas) != 1 || get(sas[0], "automountServiceAccountToken") != false {
		t.Errorf("service accounts %v: want one, automountServiceAccountToken: false", sas)
	}
	if roles := append(findKind(t, files, "ClusterRoleBinding"), findKind(t, files, "RoleBinding")...); len(roles) != 0 {
		t.Errorf("the plugin needs no API access, yet there are role bindings: %v", roles)
	}
}

func TestDaemonSetSecurity(t *testing.T) {
	files := deployObjects(t)
	dss := findKind(t, files, "DaemonSet")
	if len(dss) != 1 {
		t.Fatalf("%d DaemonSets, want 1", len(dss))
	}
	ds := dss[0]
	pod := get(ds, "spec", "template", "spec")
	if pod == nil {
		t.Fatal("DaemonSet without a pod template")
	}

	if got := str(pod, "priorityClassName"); got != "system-node-critical" {
		t.Errorf("priorityClassName %q", got)
	}
	for _, k := range []string{"hostNetwork", "hostPID", "hostIPC"} {
		if v := get(pod, k); v != nil && v != false {
			t.Errorf("%s: %v", k, v)
		}
	}
	if v := get(pod, "hostUsers"); v == false {
		t.Error("hostUsers: false maps uid 0 to an unprivileged host uid: no cgroup writes")
	}
	if get(pod, "automountServiceAccountToken") != false {
		t.Error("automountServiceAccountToken is not false")
	}
	sa := str(pod, "serviceAccountName")
	if sas := findKind(t, files, "ServiceAccount"); sa == "" || len(sas) != 1 || str(sas[0], "metadata", "name") != sa {
		t.Errorf("serviceAccountName %q is not the ServiceAccount here", sa)
	}
	tolerateAll := false
	for _, tol := range list(pod, "tolerations") {
		if str(tol, "operator") == "Exists" && str(tol, "key") == "" && str(tol, "effect") == "" {
			tolerateAll = true
		}
	}
	if !tolerateAll {
		t.Errorf("tolerations %v: want {operator: Exists} (every taint)", list(pod, "tolerations"))
	}
	if sel := get(ds, "spec", "selector", "matchLabels"); sel == nil ||
		!reflect.DeepEqual(sel, get(ds, "spec", "template", "metadata", "labels")) {
		t.Errorf("selector %v does not match the template's labels", sel)
	}

	if l := list(pod, "initContainers"); len(l) != 0 {
		t.Errorf("init containers: %v", l)
	}
	ctrs := list(pod, "containers")
	if len(ctrs) != 1 {
		t.Fatalf("%d containers, want 1", len(ctrs))
	}
	c := ctrs[0]
	if img := str(c, "image"); img != "localhost/nri-memqos:dev" {
		t.Errorf("image %q", img)
	}

	// The container's security context.
	sc := get(c, "securityContext")
	if get(sc, "readOnlyRootFilesystem") != true {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if get(sc, "allowPrivilegeEscalation") != false {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if v := get(sc, "privileged"); v != nil && v != false {
		t.Errorf("privileged: %v", v)
	}
	if drop := list(sc, "capabilities", "drop"); !reflect.DeepEqual(drop, []any{"ALL"}) {
		t.Errorf("capabilities.drop %v, want [ALL]", drop)
	}
	if add := list(sc, "capabilities", "add"); len(add) != 0 {
		t.Errorf("capabilities.add %v", add)
	}
	if uid, ok := get(sc, "runAsUser").(float64); !ok || uid != 0 {
		t.Errorf("runAsUser %v, want 0 (cgroup files belong to root)", get(sc, "runAsUser"))
	}
	if get(sc, "seccompProfile", "type") != "RuntimeDefault" && get(pod, "securityContext", "seccompProfile", "type") != "RuntimeDefault" {
		t.Error("no RuntimeDefault seccomp profile")
	}

	// Resources: requests and limits for CPU and memory, requests <= limits.
	for _, r := range []string{"cpu", "memory"} {
		req, err1 := resource.ParseQuantity(str(c, "resources", "requests", r))
		lim, err2 := resource.ParseQuantity(str(c, "resources", "limits", r))
		if err1 != nil || err2 != nil {
			t.Errorf("resources %s: request %q, limit %q", r, str(c, "resources", "requests", r), str(c, "resources", "limits", r))
			continue
		}
		if req.Cmp(lim) > 0 || req.IsZero() {
			t.Errorf("resources %s: request %s, limit %s", r, req.String(), lim.String())
		}
	}

	// Volumes: exactly the three host paths, and the ConfigMap; nothing
	// else from the host.
	hostPaths := map[string]string{}
	volPath := map[string]string{} // volume name -> host path
	configVol := ""
	for _, v := range list(pod, "volumes") {
		name := str(v, "name")
		m := v.(obj)
		switch {
		case m["hostPath"] != nil:
			p := str(v, "hostPath", "path")
			hostPaths[p] = str(v, "hostPath", "type")
			volPath[name] = p
		case m["configMap"] != nil:
			if got := str(v, "configMap", "name"); got != configMapName {
				t.Errorf("volume %s: ConfigMap %q, want %q (the generator's)", name, got, configMapName)
			}
			configVol = name
		default:
			t.Errorf("volume %s: %v; only the three hostPaths and the ConfigMap are expected", name, m)
		}
	}
	if !reflect.DeepEqual(hostPaths, wantHostPaths) {
		t.Errorf("hostPath volumes %v, want %v", hostPaths, wantHostPaths)
	}
	if configVol == "" {
		t.Error("no ConfigMap volume")
	}

	// Mounts: each host path where the plugin expects it, the cgroup
	// filesystem writable, the ConfigMap as a directory (so updates reach
	// the plugin, which reloads on change).
	mounts := map[string]obj{}
	for _, m := range list(c, "volumeMounts") {
		mounts[str(m, "name")] = m.(obj)
		if sp := str(m, "subPath"); sp != "" {
			t.Errorf("mount %s uses subPath %q: ConfigMap updates would not reach it", str(m, "name"), sp)
		}
	}
	if len(mounts) != len(volPath)+1 {
		t.Errorf("%d mounts for %d volumes", len(mounts), len(volPath)+1)
	}
	for name, p := range volPath {
		if got := str(mounts[name], "mountPath"); got != p {
			t.Errorf("volume %s (%s) mounted at %q", name, p, got)
		}
	}
	for name, p := range volPath {
		if p == "/sys/fs/cgroup" && get(mounts[name], "readOnly") == true {
			t.Error("/sys/fs/cgroup mounted read-only: the plugin writes cgroup files")
		}
	}
	configMount := str(mounts[configVol], "mountPath")
	if configMount != "/etc/nri-memqos" || get(mounts[configVol], "readOnly") != true {
		t.Errorf("ConfigMap mounted at %q (readOnly %v), want /etc/nri-memqos read-only", configMount, get(mounts[configVol], "readOnly"))
	}

	// Arguments agree with the mounts and the port.
	args := map[string]string{}
	for _, a := range list(c, "args") {
		k, v, ok := strings.Cut(strings.TrimLeft(a.(string), "-"), "=")
		if !ok {
			t.Errorf("argument %q: want -flag=value", a)
		}
		args[k] = v
	}
	if args["socket"] != "/var/run/nri/nri.sock" || args["config"] != configMount+"/nri-memqos.yaml" ||
		args["state-dir"] != "/run/nri-memqos" {
		t.Errorf("args %v", args)
	}
	var metricsPort float64
	for _, p := range list(c, "ports") {
		if get(p, "hostPort") != nil {
			t.Errorf("port %v uses a hostPort", p)
		}
		if str(p, "name") == "metrics" {
			metricsPort, _ = get(p, "containerPort").(float64)
		}
	}
	if metricsPort == 0 || args["metrics-address"] != fmt.Sprintf("0.0.0.0:%d", int(metricsPort)) {
		t.Errorf("-metrics-address %q, metrics port %v: want 0.0.0.0:<port> (httpGet probes come from the node, to the pod IP)",
			args["metrics-address"], metricsPort)
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		hg := get(c, probe, "httpGet")
		port := get(hg, "port")
		if str(hg, "path") != path || (port != "metrics" && port != metricsPort) || get(hg, "host") != nil {
			t.Errorf("%s %v: want httpGet %s on the metrics port, to the pod IP", probe, hg, path)
		}
	}
}

// TestKustomizeBuild renders config/ with kubectl's kustomize, when there
// is one, and checks that the DaemonSet mounts the generated ConfigMap.
func TestKustomizeBuild(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	out, err := exec.Command(kubectl, "kustomize", configDir).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize config/: %v\n%s", err, out)
	}
	var kinds []string
	cmName, cmData, volCM, image := "", "", "", ""
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		var m obj
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, str(m, "kind"))
		switch str(m, "kind") {
		case "ConfigMap":
			cmName = str(m, "metadata", "name")
			cmData = str(m, "data", "nri-memqos.yaml")
		case "DaemonSet":
			for _, v := range list(m, "spec", "template", "spec", "volumes") {
				if n := str(v, "configMap", "name"); n != "" {
					volCM = n
				}
			}
			image = str(list(m, "spec", "template", "spec", "containers")[0], "image")
		}
	}
	sort.Strings(kinds)
	if want := []string{"ConfigMap", "DaemonSet", "Namespace", "ResourceQuota", "ServiceAccount"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("rendered %v, want %v", kinds, want)
	}
	if !strings.HasPrefix(cmName, configMapName+"-") || volCM != cmName {
		t.Errorf("ConfigMap %q, DaemonSet mounts %q: want the generated, hash-suffixed name", cmName, volCM)
	}
	want, err := os.ReadFile(filepath.Join(configDir, "nri-memqos.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cmData != string(want) {
		t.Error("the ConfigMap's nri-memqos.yaml is not config/nri-memqos.yaml")
	}
	if image != "localhost/nri-memqos:dev" {
		t.Errorf("image %q", image)
	}
}
