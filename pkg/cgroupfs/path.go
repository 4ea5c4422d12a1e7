// Package cgroupfs reads and writes the memory controller files of container
// cgroups and their ancestors, on cgroup v1 and v2, under a configurable root.
// It resolves a container's cgroup directory from the OCI cgroupsPath for both
// the cgroupfs and the systemd cgroup driver.
package cgroupfs

import (
	"fmt"
	"path"
	"strings"
)

// RelPath turns an OCI cgroupsPath into a path relative to the root of a
// cgroup hierarchy (always starting with "/").
//
//   - cgroupfs driver: "/kubepods/burstable/pod<uid>/<id>" is used as is;
//   - systemd driver: "slice:prefix:name", e.g.
//     "kubepods-burstable-pod<uid>.slice:cri-containerd:<id>", becomes
//     "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope".
func RelPath(cgroupsPath string) (string, error) {
	if cgroupsPath == "" {
		return "", fmt.Errorf("empty cgroups path")
	}
	if strings.HasPrefix(cgroupsPath, "/") || !strings.Contains(cgroupsPath, ":") {
		p := path.Clean("/" + cgroupsPath)
		if p == "/" {
			return "", fmt.Errorf("cgroups path %q names the cgroup root", cgroupsPath)
		}
		return p, nil
	}
	parts := strings.Split(cgroupsPath, ":")
	if len(parts) != 3 {
		return "", fmt.Errorf("systemd cgroups path %q is not of the form slice:prefix:name", cgroupsPath)
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if slice == "" {
		slice = "system.slice"
	}
	dir, err := expandSlice(slice)
	if err != nil {
		return "", fmt.Errorf("systemd cgroups path %q: %w", cgroupsPath, err)
	}
	unit := name
	if !strings.HasSuffix(name, ".slice") {
		if prefix == "" || name == "" {
			return "", fmt.Errorf("systemd cgroups path %q has no unit prefix or name", cgroupsPath)
		}
		unit = prefix + "-" + name + ".scope"
	}
	return path.Join(dir, unit), nil
}

// Ancestors returns the ancestors of rel below the hierarchy root, outermost
// first: "/kubepods/burstable/pod1/c1" gives "/kubepods",
// "/kubepods/burstable", "/kubepods/burstable/pod1".
func Ancestors(rel string) []string {
	var out []string
	for p := path.Dir(path.Clean(rel)); p != "/" && p != "."; p = path.Dir(p) {
		out = append(out, p)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// expandSlice turns a systemd slice unit name into its cgroup path:
// "kubepods-burstable.slice" is "/kubepods.slice/kubepods-burstable.slice",
// each dash a level (systemd.slice(5)); "-.slice" is the root. It is the
// rule runc's systemd driver (opencontainers/cgroups/systemd.ExpandSlice)
// applies, written here because that package links the D-Bus client and
// the whole cgroup manager for this one function.
func expandSlice(slice string) (string, error) {
	const suffix = ".slice"
	name, ok := strings.CutSuffix(slice, suffix)
	if !ok || name == "" || strings.Contains(slice, "/") {
		return "", fmt.Errorf("invalid slice name %q: want a systemd slice unit, e.g. kubepods-burstable.slice", slice)
	}
	if name == "-" {
		return "/", nil
	}
	var dir strings.Builder
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '-' {
			continue
		}
		if i == 0 || name[i-1] == '-' {
			// "-a", "a-" and "a--b" name no slice.
			return "", fmt.Errorf("invalid slice name %q: want a systemd slice unit, e.g. kubepods-burstable.slice", slice)
		}
		dir.WriteString("/" + name[:i] + suffix)
	}
	return dir.String(), nil
}
