package main

import (
	"strconv"

	"github.com/containerd/nri/pkg/api"

	"nri-memqos/pkg/node"
	"nri-memqos/pkg/policy"
)

// facts translates an NRI pod and container into the core's input. res,
// when not nil, replaces the container's own resources (an update request).
func facts(pod *api.PodSandbox, ctr *api.Container, res *api.LinuxResources) node.Container {
	return node.Container{
		ID:          ctr.GetId(),
		Pod:         podFacts(pod),
		Ctr:         containerFacts(ctr, res),
		CgroupsPath: ctr.GetLinux().GetCgroupsPath(),
		CreatedAt:   ctr.GetCreatedAt(),
	}
}

// resyncFacts translates what Synchronize lists: containers that are
// neither created nor running, or whose pod is not listed, are inactive.
func resyncFacts(pods []*api.PodSandbox, ctrs []*api.Container) []node.Container {
	byID := make(map[string]*api.PodSandbox, len(pods))
	for _, pod := range pods {
		byID[pod.GetId()] = pod
	}
	out := make([]node.Container, 0, len(ctrs))
	for _, ctr := range ctrs {
		pod := byID[ctr.GetPodSandboxId()]
		if pod == nil {
			out = append(out, node.Container{ID: ctr.GetId(), Inactive: true})
			continue
		}
		c := facts(pod, ctr, nil)
		switch ctr.GetState() {
		case api.ContainerState_CONTAINER_CREATED, api.ContainerState_CONTAINER_RUNNING:
		default:
			c.Inactive = true
		}
		out = append(out, c)
	}
	return out
}

// podFacts translates an NRI pod into policy input.
func podFacts(p *api.PodSandbox) policy.Pod {
	return policy.Pod{
		Namespace:    p.GetNamespace(),
		Name:         p.GetName(),
		UID:          p.GetUid(),
		Labels:       p.GetLabels(),
		Annotations:  p.GetAnnotations(),
		CgroupParent: p.GetLinux().GetCgroupParent(),
	}
}

// containerFacts translates an NRI container into policy input. res, when
// not nil, replaces the container's own resources (an update request).
func containerFacts(c *api.Container, res *api.LinuxResources) policy.Container {
	if res == nil {
		res = c.GetLinux().GetResources()
	}
	f := policy.Container{
		Name:        c.GetName(),
		Annotations: c.GetAnnotations(),
		Unified:     res.GetUnified(),
	}
	if l := res.GetMemory().GetLimit().GetValue(); l > 0 {
		f.Limit = l
	}
	if adj := c.GetLinux().GetOomScoreAdj(); adj != nil {
		v := adj.GetValue()
		f.OOMScoreAdj = &v
	}
	return f
}

// unifiedFunc gives a decision's unified keys to send: none on cgroup v1
// (runc refuses to create a container with them there), and on cgroup v2
// only those the kernel offers.
type unifiedFunc func(*policy.Decision) map[string]string

// unified is the plugin's unifiedFunc.
func (p *plugin) unified(d *policy.Decision) map[string]string {
	if p.core.Version() != 2 {
		return nil
	}
	return p.core.UnifiedV2(d)
}

// creationAdjustment turns a decision into the adjustment returned from
// CreateContainer.
func creationAdjustment(d *policy.Decision, unified unifiedFunc) *api.ContainerAdjustment {
	a := &api.ContainerAdjustment{}
	if d.RequestSource != policy.RequestFromRecorded {
		a.AddAnnotation(policy.AnnotationRecordedRequest, strconv.FormatInt(d.Request, 10))
	}
	if d.SetLimit > 0 {
		a.SetLinuxMemoryLimit(d.SetLimit)
	}
	for k, v := range unified(d) {
		a.AddLinuxUnified(k, v)
	}
	return a
}

// containerUpdates turns Resync's decisions into updates the runtime may
// fail to apply without failing the synchronization.
func containerUpdates(decided []node.Update, unified unifiedFunc) []*api.ContainerUpdate {
	var updates []*api.ContainerUpdate
	for _, d := range decided {
		if u := containerUpdate(d.ID, d.Decision, unified); u != nil {
			u.SetIgnoreFailure()
			updates = append(updates, u)
		}
	}
	return updates
}

// containerUpdate turns a decision into an update of a running container, or
// nil when there is nothing to send (cgroup v1 values are written directly).
func containerUpdate(id string, d *policy.Decision, unified unifiedFunc) *api.ContainerUpdate {
	u := &api.ContainerUpdate{}
	u.SetContainerId(id)
	send := false
	if d.SetLimit > 0 {
		u.SetLinuxMemoryLimit(d.SetLimit)
		send = true
	}
	for k, v := range unified(d) {
		u.AddLinuxUnified(k, v)
		send = true
	}
	if !send {
		return nil
	}
	return u
}
