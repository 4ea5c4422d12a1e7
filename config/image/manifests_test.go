package main

// Checks of the Kubernetes deployment in config/deploy and
// config/kustomization.yaml. They live here because a Go file anywhere else
// under config/ would make that directory a package.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
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

// deployObjects reads every YAML file of config/deploy (not of its
// subdirectories: components are checked by themselves), by file.
func deployObjects(t *testing.T) map[string][]obj {
	t.Helper()
	out := yamlFiles(t, deployDir)
	if len(out) == 0 {
		t.Fatal("no YAML in config/deploy")
	}
	return out
}

// yamlFiles reads every YAML file of dir, not of its subdirectories, by
// file name.
func yamlFiles(t *testing.T, dir string) map[string][]obj {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]obj{}
	for _, e := range entries {
		if n := e.Name(); !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			out[n] = readYAML(t, filepath.Join(dir, n))
		}
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
		if f != "kustomization.yaml" && f != cleanupJobFile {
			have = append(have, f)
		}
	}
	if slices.Contains(listed, cleanupJobFile) {
		t.Errorf("config/deploy/kustomization.yaml lists %s: it runs once per node at uninstall, after the DaemonSet is gone", cleanupJobFile)
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

	// GOMEMLIMIT: a Go memory limit ("48MiB") of at most three quarters of
	// limits.memory (the binary's pages are charged to the cgroup too).
	var goLimit string
	for _, e := range list(c, "env") {
		if str(e, "name") == "GOMEMLIMIT" {
			goLimit = str(e, "value")
		}
	}
	if n, ok := strings.CutSuffix(goLimit, "MiB"); !ok {
		t.Errorf("env GOMEMLIMIT %q; want a value in MiB", goLimit)
	} else if mib, err := strconv.Atoi(n); err != nil {
		t.Errorf("env GOMEMLIMIT %q: %v", goLimit, err)
	} else if lim, err := resource.ParseQuantity(str(c, "resources", "limits", "memory")); err != nil || int64(mib)<<20 > lim.Value()*3/4 || mib < 16 {
		t.Errorf("env GOMEMLIMIT %q; want 16MiB up to three quarters of limits.memory %q", goLimit, str(c, "resources", "limits", "memory"))
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
	checkExposure(t, "config/deploy", ds, false)
}

// Where the plugin listens, as the DaemonSet's arguments say.
type exposure struct {
	// healthPort and metricsPort are the ports of -health-address and
	// -metrics-address.
	healthPort, metricsPort int
}

// flagArgs maps the container's -flag=value arguments, the last of a flag
// winning as with Go's flag package.
func flagArgs(c any) map[string]string {
	args := map[string]string{}
	for _, a := range list(c, "args") {
		k, v, _ := strings.Cut(strings.TrimLeft(a.(string), "-"), "=")
		args[k] = v
	}
	return args
}

// splitAddr splits a listen address; the port is 0 when there is none.
func splitAddr(addr string) (host string, port int) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0
	}
	port, _ = strconv.Atoi(p)
	return host, port
}

// checkExposure checks where the DaemonSet ds has the plugin listen: the
// probes on -health-address, on the pod IP (the kubelet's probes come from
// the node), which serves no data; /metrics on -metrics-address, on the
// pod's loopback unless metricsExposed (the metrics-networkpolicy
// component), and then declared for Prometheus.
func checkExposure(t *testing.T, what string, ds obj, metricsExposed bool) exposure {
	t.Helper()
	tmpl := get(ds, "spec", "template")
	ctrs := list(tmpl, "spec", "containers")
	if len(ctrs) != 1 {
		t.Fatalf("%s: %d containers, want 1", what, len(ctrs))
	}
	c := ctrs[0]
	args := flagArgs(c)
	healthHost, healthPort := splitAddr(args["health-address"])
	metricsHost, metricsPort := splitAddr(args["metrics-address"])
	if healthPort == 0 || (healthHost != "" && healthHost != "0.0.0.0" && healthHost != "::") {
		t.Errorf("%s: -health-address %q: want :<port>, every address of the pod (the kubelet probes the pod IP)", what, args["health-address"])
	}
	ports := map[string]int{}
	for _, p := range list(c, "ports") {
		if get(p, "hostPort") != nil {
			t.Errorf("%s: port %v uses a hostPort", what, p)
		}
		n, _ := get(p, "containerPort").(float64)
		ports[str(p, "name")] = int(n)
	}
	if ports["health"] != healthPort {
		t.Errorf("%s: ports %v: want health: %d (-health-address)", what, ports, healthPort)
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		hg := get(c, probe, "httpGet")
		port := get(hg, "port")
		if str(hg, "path") != path || (port != "health" && port != float64(healthPort)) || get(hg, "host") != nil {
			t.Errorf("%s: %s %v: want httpGet %s on the health port, to the pod IP", what, probe, hg, path)
		}
	}
	if metricsPort == 0 || metricsPort == healthPort {
		t.Errorf("%s: -metrics-address %q: want a port of its own", what, args["metrics-address"])
	}
	annotations, _ := get(tmpl, "metadata", "annotations").(obj)
	if !metricsExposed {
		if metricsHost != "127.0.0.1" {
			t.Errorf("%s: -metrics-address %q: want 127.0.0.1:<port>, the pod's own loopback (/metrics names every managed pod)",
				what, args["metrics-address"])
		}
		if _, ok := ports["metrics"]; ok {
			t.Errorf("%s: ports %v declare a metrics port nothing outside the pod can reach", what, ports)
		}
		if annotations["prometheus.io/scrape"] != nil {
			t.Errorf("%s: annotations %v ask Prometheus to scrape an unreachable port", what, annotations)
		}
		return exposure{healthPort: healthPort, metricsPort: metricsPort}
	}
	if metricsHost != "" {
		t.Errorf("%s: -metrics-address %q: want :<port>, the pod IP", what, args["metrics-address"])
	}
	if ports["metrics"] != metricsPort {
		t.Errorf("%s: ports %v: want metrics: %d (-metrics-address)", what, ports, metricsPort)
	}
	if annotations["prometheus.io/scrape"] != "true" || annotations["prometheus.io/port"] != strconv.Itoa(metricsPort) ||
		annotations["prometheus.io/path"] != "/metrics" {
		t.Errorf("%s: annotations %v: want prometheus.io/scrape, port %d, path /metrics", what, annotations, metricsPort)
	}
	return exposure{healthPort: healthPort, metricsPort: metricsPort}
}

// checkNetworkPolicy checks that np selects the pods of ds, admits the
// metrics port only from the namespace named ns (through the
// kubernetes.io/metadata.name label, nothing else: no pod or IP peers) and
// at most the health port from elsewhere.
func checkNetworkPolicy(t *testing.T, what string, np, ds obj, ex exposure, ns string) {
	t.Helper()
	podLabels, _ := get(ds, "spec", "template", "metadata", "labels").(obj)
	sel, _ := get(np, "spec", "podSelector", "matchLabels").(obj)
	if len(sel) == 0 || get(np, "spec", "podSelector", "matchExpressions") != nil {
		t.Errorf("%s: podSelector %v: want matchLabels of the plugin's pods", what, get(np, "spec", "podSelector"))
	}
	for k, v := range sel {
		if podLabels[k] != v {
			t.Errorf("%s: podSelector %v does not select the plugin's pods (labels %v)", what, sel, podLabels)
		}
	}
	if !slices.Contains(list(np, "spec", "policyTypes"), any("Ingress")) {
		t.Errorf("%s: policyTypes %v: want Ingress", what, list(np, "spec", "policyTypes"))
	}
	isPort := func(p any, port int, name string) bool { return p == float64(port) || p == name }
	admitted := false
	for i, rule := range list(np, "spec", "ingress") {
		ports := list(rule, "ports")
		metrics := len(ports) == 0 // no ports: every port
		for _, p := range ports {
			if get(p, "endPort") != nil && !isPort(get(p, "port"), ex.healthPort, "health") {
				metrics = true // a range: may hold the metrics port
			}
			if !isPort(get(p, "port"), ex.healthPort, "health") {
				metrics = metrics || isPort(get(p, "port"), ex.metricsPort, "metrics")
				if !isPort(get(p, "port"), ex.metricsPort, "metrics") {
					t.Errorf("%s: ingress rule %d admits port %v: want only the metrics and health ports", what, i, get(p, "port"))
				}
			}
		}
		if !metrics {
			continue
		}
		from := list(rule, "from")
		if len(from) == 0 {
			t.Errorf("%s: ingress rule %d admits the metrics port from everywhere", what, i)
			continue
		}
		for _, peer := range from {
			want := obj{"namespaceSelector": obj{"matchLabels": obj{"kubernetes.io/metadata.name": ns}}}
			if !reflect.DeepEqual(peer, want) {
				t.Errorf("%s: ingress rule %d admits the metrics port from %v: want only %v", what, i, peer, want)
			}
		}
		admitted = true
	}
	if !admitted {
		t.Errorf("%s: no ingress rule admits the metrics port from namespace %s", what, ns)
	}
}

// metricsComponent is the opt-in component that exposes /metrics.
const metricsComponent = "../deploy/components/metrics-networkpolicy"

// TestMetricsComponent checks the metrics-networkpolicy component's files:
// a Component whose resources are its NetworkPolicy, which admits /metrics
// only from the monitoring namespace.
func TestMetricsComponent(t *testing.T) {
	files := yamlFiles(t, metricsComponent)
	k := files["kustomization.yaml"]
	if len(k) != 1 || k[0]["kind"] != "Component" || str(k[0], "apiVersion") != "kustomize.config.k8s.io/v1alpha1" {
		t.Fatalf("%s/kustomization.yaml: %v: want a kustomize Component", metricsComponent, k)
	}
	if res := list(k[0], "resources"); !reflect.DeepEqual(res, []any{"networkpolicy.yaml"}) {
		t.Errorf("component resources %v, want [networkpolicy.yaml]", res)
	}
	nps := findKind(t, files, "NetworkPolicy")
	if len(nps) != 1 {
		t.Fatalf("%d NetworkPolicies in the component, want 1", len(nps))
	}
	if ns := str(nps[0], "metadata", "namespace"); ns != namespace {
		t.Errorf("NetworkPolicy in namespace %q, want %q", ns, namespace)
	}
	ds := findKind(t, deployObjects(t), "DaemonSet")[0]
	ex := checkExposure(t, "config/deploy", ds, false)
	checkNetworkPolicy(t, metricsComponent, nps[0], ds, ex, "monitoring")
}

// TestKustomizeBuild renders config/ with kustomize (as kubectl does), and
// checks that the DaemonSet mounts the generated ConfigMap.
func TestKustomizeBuild(t *testing.T) {
	out, err := kustomizeBuild(configDir)
	if err != nil {
		t.Fatalf("kustomize build config/: %v", err)
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
			checkExposure(t, "kustomize build config/", m, false)
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

// kustomize renders dir with kustomize and returns its objects.
func kustomize(t *testing.T, dir string) []obj {
	t.Helper()
	out, err := kustomizeBuild(dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []obj
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		var m obj
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, m)
	}
	return objs
}

// TestKustomizeMetricsComponent renders an overlay of config/ with the
// metrics-networkpolicy component, as its comments tell an operator to
// write one, naming another monitoring namespace: /metrics is on the pod
// IP, declared for Prometheus, and a NetworkPolicy admits it from that
// namespace only; the probes stay on the health port.
func TestKustomizeMetricsComponent(t *testing.T) {
	for _, tc := range []struct {
		name, patch, ns string
	}{
		{name: "default namespace", ns: "monitoring"},
		{name: "another namespace", ns: "observability", patch: `
patches:
  - target:
      kind: NetworkPolicy
      name: nri-memqos-metrics
    patch: |-
      - op: replace
        path: /spec/ingress/0/from/0/namespaceSelector/matchLabels/kubernetes.io~1metadata.name
        value: observability
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			base, err := filepath.Abs(configDir)
			if err != nil {
				t.Fatal(err)
			}
			comp, err := filepath.Abs(metricsComponent)
			if err != nil {
				t.Fatal(err)
			}
			// kustomize takes relative paths only.
			relBase, err1 := filepath.Rel(dir, base)
			relComp, err2 := filepath.Rel(dir, comp)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\ncomponents:\n  - %s\n%s",
				relBase, relComp, tc.patch)
			if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
				t.Fatal(err)
			}
			objs := kustomize(t, dir)
			var dss, nps []obj
			for _, o := range objs {
				switch str(o, "kind") {
				case "DaemonSet":
					dss = append(dss, o)
				case "NetworkPolicy":
					nps = append(nps, o)
				}
			}
			if len(dss) != 1 || len(nps) != 1 {
				t.Fatalf("rendered %d DaemonSets and %d NetworkPolicies, want 1 and 1", len(dss), len(nps))
			}
			ex := checkExposure(t, "with the component", dss[0], true)
			if str(nps[0], "metadata", "namespace") != str(dss[0], "metadata", "namespace") {
				t.Errorf("NetworkPolicy in namespace %q, DaemonSet in %q", str(nps[0], "metadata", "namespace"), str(dss[0], "metadata", "namespace"))
			}
			checkNetworkPolicy(t, "with the component", nps[0], dss[0], ex, tc.ns)
		})
	}
}

// cleanupJobFile is the uninstall Job, run by hand per node (not in the
// kustomization).
const cleanupJobFile = "cleanup-job.yaml"

// TestCleanupJob checks the uninstall Job: one Job per node (nodeName to
// fill in, every taint tolerated) running `nri-memqos cleanup` with the
// DaemonSet's image, security context and state directory, mounting only
// what cleanup needs from the host (the cgroup filesystem and the state
// directory, both writable) where the DaemonSet does.
func TestCleanupJob(t *testing.T) {
	files := deployObjects(t)
	docs := files[cleanupJobFile]
	if len(docs) != 1 || str(docs[0], "kind") != "Job" || str(docs[0], "apiVersion") != "batch/v1" {
		t.Fatalf("%s: %v: want one batch/v1 Job", cleanupJobFile, docs)
	}
	job := docs[0]
	if ns := str(job, "metadata", "namespace"); ns != namespace {
		t.Errorf("Job in namespace %q, want %q", ns, namespace)
	}
	ds := findKind(t, files, "DaemonSet")[0]
	dsPod := get(ds, "spec", "template", "spec")
	dsCtr := list(dsPod, "containers")[0]
	pod := get(job, "spec", "template", "spec")

	// One per node, the name filled in by hand.
	const placeholder = "NODE_NAME"
	if str(pod, "nodeName") != placeholder || !strings.HasSuffix(str(job, "metadata", "name"), "-"+placeholder) {
		t.Errorf("nodeName %q, name %q: want %s to fill in, in both", str(pod, "nodeName"), str(job, "metadata", "name"), placeholder)
	}
	filled, err := yaml.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	var perNode obj
	if err := yaml.UnmarshalStrict(bytes.ReplaceAll(filled, []byte(placeholder), []byte("node-1.example")), &perNode); err != nil ||
		str(perNode, "spec", "template", "spec", "nodeName") != "node-1.example" || str(perNode, "metadata", "name") != "nri-memqos-cleanup-node-1.example" {
		t.Errorf("the Job with its node filled in: %v (%v)", perNode, err)
	}
	tolerateAll := false
	for _, tol := range list(pod, "tolerations") {
		tolerateAll = tolerateAll || (str(tol, "operator") == "Exists" && str(tol, "key") == "" && str(tol, "effect") == "")
	}
	if !tolerateAll {
		t.Errorf("tolerations %v: want {operator: Exists}, as the DaemonSet's (a tainted node has values to clean up too)", list(pod, "tolerations"))
	}
	if str(pod, "restartPolicy") != "Never" && str(pod, "restartPolicy") != "OnFailure" {
		t.Errorf("restartPolicy %q: a Job's pod must not restart always", str(pod, "restartPolicy"))
	}
	for _, k := range []string{"hostNetwork", "hostPID", "hostIPC"} {
		if v := get(pod, k); v != nil && v != false {
			t.Errorf("%s: %v", k, v)
		}
	}
	if get(pod, "automountServiceAccountToken") != false {
		t.Error("automountServiceAccountToken is not false")
	}
	if sa := str(pod, "serviceAccountName"); sa != "" && sa != str(dsPod, "serviceAccountName") {
		t.Errorf("serviceAccountName %q: want the DaemonSet's %q or none", sa, str(dsPod, "serviceAccountName"))
	}
	if !reflect.DeepEqual(get(pod, "securityContext"), get(dsPod, "securityContext")) {
		t.Errorf("pod securityContext %v, want the DaemonSet's %v", get(pod, "securityContext"), get(dsPod, "securityContext"))
	}

	ctrs := list(pod, "containers")
	if len(ctrs) != 1 || len(list(pod, "initContainers")) != 0 {
		t.Fatalf("%d containers and %d init containers, want 1 and 0", len(ctrs), len(list(pod, "initContainers")))
	}
	c := ctrs[0]
	if str(c, "image") != str(dsCtr, "image") {
		t.Errorf("image %q, want the DaemonSet's %q", str(c, "image"), str(dsCtr, "image"))
	}
	if !reflect.DeepEqual(get(c, "securityContext"), get(dsCtr, "securityContext")) {
		t.Errorf("container securityContext %v, want the DaemonSet's %v", get(c, "securityContext"), get(dsCtr, "securityContext"))
	}
	cmd := append(list(c, "command"), list(c, "args")...)
	if len(cmd) < 2 || cmd[0] != binaryPath || cmd[1] != "cleanup" {
		t.Errorf("command %v: want %s cleanup (the image's binary)", cmd, binaryPath)
	}
	args := map[string]string{}
	for _, a := range cmd[min(2, len(cmd)):] {
		k, v, ok := strings.Cut(strings.TrimLeft(a.(string), "-"), "=")
		if !ok {
			t.Errorf("argument %q: want -flag=value", a)
		}
		args[k] = v
	}
	if args["state-dir"] != flagArgs(dsCtr)["state-dir"] {
		t.Errorf("-state-dir %q, want the DaemonSet's %q", args["state-dir"], flagArgs(dsCtr)["state-dir"])
	}
	for _, r := range []string{"cpu", "memory"} {
		req, err1 := resource.ParseQuantity(str(c, "resources", "requests", r))
		lim, err2 := resource.ParseQuantity(str(c, "resources", "limits", r))
		if err1 != nil || err2 != nil || req.Cmp(lim) > 0 || req.IsZero() {
			t.Errorf("resources %s: request %q, limit %q", r, str(c, "resources", "requests", r), str(c, "resources", "limits", r))
		}
	}

	// Host paths: the cgroup filesystem and the state directory, as the
	// DaemonSet has them, nothing else; mounted where the DaemonSet mounts
	// them, writable.
	dsVols := map[string]obj{} // host path -> volume
	for _, v := range list(dsPod, "volumes") {
		if p := str(v, "hostPath", "path"); p != "" {
			dsVols[p] = v.(obj)
		}
	}
	dsMounts := map[string]string{} // host path -> mount path
	for _, m := range list(dsCtr, "volumeMounts") {
		for p, v := range dsVols {
			if str(v, "name") == str(m, "name") {
				dsMounts[p] = str(m, "mountPath")
			}
		}
	}
	stateDir := args["state-dir"]
	want := map[string]bool{"/sys/fs/cgroup": true, stateDir: true}
	hostPaths := map[string]string{} // volume name -> host path
	for _, v := range list(pod, "volumes") {
		p := str(v, "hostPath", "path")
		if p == "" {
			t.Errorf("volume %v: only the two host paths are expected", v)
			continue
		}
		if !want[p] {
			t.Errorf("host path %s: cleanup needs only %v", p, want)
		}
		if dv := dsVols[p]; dv == nil || str(v, "hostPath", "type") != str(dv, "hostPath", "type") {
			t.Errorf("host path %s of type %q: want the DaemonSet's (%v)", p, str(v, "hostPath", "type"), dv)
		}
		hostPaths[str(v, "name")] = p
	}
	mounted := map[string]bool{}
	for _, m := range list(c, "volumeMounts") {
		p := hostPaths[str(m, "name")]
		if p == "" {
			t.Errorf("mount %v of no host path volume", m)
			continue
		}
		mounted[p] = true
		if str(m, "mountPath") != dsMounts[p] || get(m, "readOnly") == true || str(m, "subPath") != "" {
			t.Errorf("%s mounted at %q (readOnly %v): want %s, writable, as the DaemonSet", p, str(m, "mountPath"), get(m, "readOnly"), dsMounts[p])
		}
	}
	if !reflect.DeepEqual(mounted, want) {
		t.Errorf("mounted %v, want %v", mounted, want)
	}
	if dsMounts[stateDir] != stateDir {
		t.Errorf("-state-dir %s is not where the DaemonSet mounts its state (%v)", stateDir, dsMounts)
	}
}

// kustomizeBuild renders a kustomization as `kubectl kustomize` does, with
// kustomize's own library (the one kubectl embeds): no binary needed.
func kustomizeBuild(dir string) ([]byte, error) {
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	return res.AsYaml()
}
