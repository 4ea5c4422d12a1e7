package integration

import (
	"maps"
	"testing"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/runtime-tools/generate"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// specGen is a minimal generate.UnderlyingGenerator over an OCI spec, as a
// container runtime would use to apply NRI adjustments.
// (github.com/opencontainers/runtime-tools v0.9.0 does not compile against
// runtime-spec v1.3.0.) The methods NRI calls for annotation, memory and
// unified adjustments do real work; every other method only records its
// name, and the tests fail if any of them is called: this plugin has no
// business touching mounts, env, devices, hooks, namespaces, ...
type specGen struct {
	spec       *rspec.Spec
	unexpected []string
}

var _ generate.UnderlyingGenerator = (*specGen)(nil)

func (g *specGen) Spec() *rspec.Spec { return g.spec }

func (g *specGen) AddAnnotation(key, value string) {
	if g.spec.Annotations == nil {
		g.spec.Annotations = map[string]string{}
	}
	g.spec.Annotations[key] = value
}

func (g *specGen) RemoveAnnotation(key string) { delete(g.spec.Annotations, key) }

func (g *specGen) resources() *rspec.LinuxResources {
	if g.spec.Linux == nil {
		g.spec.Linux = &rspec.Linux{}
	}
	if g.spec.Linux.Resources == nil {
		g.spec.Linux.Resources = &rspec.LinuxResources{}
	}
	return g.spec.Linux.Resources
}

func (g *specGen) memory() *rspec.LinuxMemory {
	r := g.resources()
	if r.Memory == nil {
		r.Memory = &rspec.LinuxMemory{}
	}
	return r.Memory
}

func (g *specGen) AddLinuxResourcesUnified(key, val string) {
	r := g.resources()
	if r.Unified == nil {
		r.Unified = map[string]string{}
	}
	r.Unified[key] = val
}

func (g *specGen) SetLinuxResourcesMemoryLimit(limit int64) { g.memory().Limit = &limit }
func (g *specGen) SetLinuxResourcesMemorySwap(swap int64)   { g.memory().Swap = &swap }

func (g *specGen) SetLinuxCgroupsPath(path string) {
	g.resources()
	g.spec.Linux.CgroupsPath = path
}

func (g *specGen) Mounts() []rspec.Mount { return g.spec.Mounts }

func (g *specGen) record(name string) { g.unexpected = append(g.unexpected, name) }

func (g *specGen) AddDevice(rspec.LinuxDevice) { g.record("AddDevice") }
func (g *specGen) AddOrReplaceLinuxNamespace(string, string) error {
	g.record("AddOrReplaceLinuxNamespace")
	return nil
}
func (g *specGen) AddPostStartHook(rspec.Hook)  { g.record("AddPostStartHook") }
func (g *specGen) AddPostStopHook(rspec.Hook)   { g.record("AddPostStopHook") }
func (g *specGen) AddPreStartHook(rspec.Hook)   { g.record("AddPreStartHook") }
func (g *specGen) AddProcessEnv(string, string) { g.record("AddProcessEnv") }
func (g *specGen) AddLinuxResourcesDevice(bool, string, *int64, *int64, string) {
	g.record("AddLinuxResourcesDevice")
}
func (g *specGen) AddLinuxResourcesHugepageLimit(string, uint64) {
	g.record("AddLinuxResourcesHugepageLimit")
}
func (g *specGen) AddMount(rspec.Mount)              { g.record("AddMount") }
func (g *specGen) AddLinuxSysctl(string, string)     { g.record("AddLinuxSysctl") }
func (g *specGen) ClearMounts()                      { g.record("ClearMounts") }
func (g *specGen) ClearProcessEnv()                  { g.record("ClearProcessEnv") }
func (g *specGen) RemoveDevice(string)               { g.record("RemoveDevice") }
func (g *specGen) RemoveLinuxNamespace(string) error { g.record("RemoveLinuxNamespace"); return nil }
func (g *specGen) RemoveMount(string)                { g.record("RemoveMount") }
func (g *specGen) RemoveLinuxSysctl(string)          { g.record("RemoveLinuxSysctl") }
func (g *specGen) SetProcessArgs([]string)           { g.record("SetProcessArgs") }
func (g *specGen) SetLinuxResourcesCPUCpus(string)   { g.record("SetLinuxResourcesCPUCpus") }
func (g *specGen) SetLinuxResourcesCPUMems(string)   { g.record("SetLinuxResourcesCPUMems") }
func (g *specGen) SetLinuxResourcesCPUPeriod(uint64) { g.record("SetLinuxResourcesCPUPeriod") }
func (g *specGen) SetLinuxResourcesCPUQuota(int64)   { g.record("SetLinuxResourcesCPUQuota") }
func (g *specGen) SetLinuxResourcesCPURealtimePeriod(uint64) {
	g.record("SetLinuxResourcesCPURealtimePeriod")
}
func (g *specGen) SetLinuxResourcesCPURealtimeRuntime(int64) {
	g.record("SetLinuxResourcesCPURealtimeRuntime")
}
func (g *specGen) SetLinuxResourcesCPUShares(uint64) { g.record("SetLinuxResourcesCPUShares") }
func (g *specGen) SetLinuxRootPropagation(string) error {
	g.record("SetLinuxRootPropagation")
	return nil
}
func (g *specGen) SetProcessOOMScoreAdj(int) { g.record("SetProcessOOMScoreAdj") }

// containerSpec is the OCI spec a runtime would have generated for ctr
// before NRI: its annotations, cgroups path and original resources (memory
// limit, swap = limit, kubelet's unified map).
func containerSpec(ctr *api.Container) *rspec.Spec {
	res := ctr.GetLinux().GetResources()
	spec := &rspec.Spec{
		Version:     rspec.Version,
		Process:     &rspec.Process{Args: []string{"/app"}},
		Annotations: maps.Clone(ctr.GetAnnotations()),
		Linux: &rspec.Linux{
			CgroupsPath: ctr.GetLinux().GetCgroupsPath(),
			Resources:   &rspec.LinuxResources{Unified: maps.Clone(res.GetUnified())},
		},
	}
	if spec.Annotations == nil {
		spec.Annotations = map[string]string{}
	}
	if l := res.GetMemory().GetLimit(); l != nil {
		limit, swap := l.GetValue(), l.GetValue()
		spec.Linux.Resources.Memory = &rspec.LinuxMemory{Limit: &limit, Swap: &swap}
	}
	return spec
}

// applyAdjustment applies a CreateContainer adjustment to spec with NRI's
// own spec generator, as containerd and CRI-O do.
func applyAdjustment(t *testing.T, spec *rspec.Spec, adjust *api.ContainerAdjustment) {
	t.Helper()
	gen := &specGen{spec: spec}
	if err := generate.SpecGenerator(gen).Adjust(adjust); err != nil {
		t.Fatalf("applying the adjustment to the OCI spec: %v", err)
	}
	if len(gen.unexpected) > 0 {
		t.Errorf("the adjustment touched more than annotations, memory and unified: %v", gen.unexpected)
	}
}
