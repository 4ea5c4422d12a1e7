package policy

import (
	"fmt"
	"strconv"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/config"
)

// RequestSource tells where a container's memory request came from.
type RequestSource string

// Request sources, in the order they are consulted.
const (
	RequestFromContainerAnnotation RequestSource = "container annotation"
	RequestFromPodAnnotation       RequestSource = "pod annotation"
	RequestFromRecorded            RequestSource = "recorded at creation"
	RequestFromUnifiedMin          RequestSource = "kubelet memory.min"
	RequestFromUnifiedLow          RequestSource = "kubelet memory.low"
	RequestFromGuaranteedLimit     RequestSource = "guaranteed limit"
	RequestFromOOMScoreAdj         RequestSource = "oom_score_adj"
	RequestUnknown                 RequestSource = "unknown"
)

const quantityAllowed = "a memory quantity from 0 to 8Ei such as 256Mi or 1G"

// parseBytes parses a Kubernetes quantity into bytes.
func parseBytes(s string) (int64, error) { return config.ParseBytes(s) }

// ResolveRequest finds the container's memory request, which NRI does not
// carry. In order:
//  1. annotation memqos.nri.io/memory-request.container.<name>, then
//     memqos.nri.io/memory-request on the pod;
//  2. when the unified map is kubelet's own request (creation, resize):
//     its memory.min, else (Burstable pods, memoryReservationPolicy
//     TieredReservation) its memory.low;
//  3. the request the plugin resolved for this container before (its state,
//     else the annotation it put on the container at creation);
//  4. the unified map's memory.min / memory.low as in 2, when it may hold the
//     plugin's own values but nothing was recorded (containers created before
//     the plugin ran);
//  5. what Kubernetes' conventions imply: a Guaranteed container's limit, or
//     for Burstable the lower bound of the request behind its oom_score_adj
//     (kubelet sets 1000 - 1000*request/capacity);
//  6. zero.
//
// A request is bounded by the container's limit, else by the node's
// allocatable memory (Allocatable): an annotation above it fails the
// container; a request from kubelet or from the plugin's own records is
// clamped to it.
func ResolveRequest(cfg *config.Config, p Pod, c Container, qos QOSClass, n Node) (int64, RequestSource, error) {
	bound, boundName := c.Limit, "the container's memory limit"
	if bound <= 0 {
		bound, boundName = Allocatable(cfg, n), "the node's allocatable memory"
	}
	b, src, err := resolveRequest(p, c, qos, n, bound, boundName)
	if err == nil && bound > 0 && b > bound {
		b = bound
	}
	return b, src, err
}

func resolveRequest(p Pod, c Container, qos QOSClass, n Node, bound int64, boundName string) (int64, RequestSource, error) {
	for _, a := range []struct {
		key string
		src RequestSource
	}{
		{AnnotationRequestPrefix + c.Name, RequestFromContainerAnnotation},
		{AnnotationRequest, RequestFromPodAnnotation},
	} {
		v, ok := p.Annotations[a.key]
		if !ok {
			continue
		}
		b, err := parseBytes(v)
		if err != nil {
			return 0, "", inputErr(p, c, "annotation "+a.key, v, err.Error(), quantityAllowed)
		}
		if bound > 0 && b > bound {
			allowed := "at most the limit"
			if c.Limit <= 0 {
				allowed = fmt.Sprintf("at most %d", bound)
			}
			return 0, "", inputErr(p, c, "annotation "+a.key, v, fmt.Sprintf("above %s %d", boundName, bound), allowed)
		}
		return b, a.src, nil
	}
	if c.UnifiedFromKubelet {
		if b, src, ok := kubeletRequest(c, qos); ok {
			return b, src, nil
		}
	}
	if c.Recorded != nil && *c.Recorded >= 0 {
		return *c.Recorded, RequestFromRecorded, nil
	}
	// The plugin's own record on the container; not when the pod carries
	// the same value under that key: CRI-O copies pod annotations into the
	// container's, so it would be the tenant's word, not the plugin's (the
	// plugin's adjustment replaces it at creation).
	if v, ok := c.Annotations[AnnotationRecordedRequest]; ok && p.Annotations[AnnotationRecordedRequest] != v {
		if b, err := strconv.ParseInt(v, 10, 64); err == nil && b >= 0 {
			return b, RequestFromRecorded, nil
		}
	}
	if b, src, ok := kubeletRequest(c, qos); ok {
		return b, src, nil
	}
	switch qos {
	case QOSGuaranteed:
		if c.Limit > 0 {
			return c.Limit, RequestFromGuaranteedLimit, nil
		}
	case QOSBurstable:
		if adj := c.OOMScoreAdj; adj != nil && *adj >= 3 && *adj < 999 && n.MemTotal > 0 {
			// floor(1000*req/cap) = 1000-adj, so req >= (1000-adj)*cap/1000.
			b := (1000 - *adj) * (n.MemTotal / 1000)
			b -= b % n.pageSize()
			if c.Limit > 0 && b > c.Limit {
				b = c.Limit
			}
			return b, RequestFromOOMScoreAdj, nil
		}
	}
	return 0, RequestUnknown, nil
}

// kubeletRequest reads the request kubelet expresses in the unified map.
func kubeletRequest(c Container, qos QOSClass) (int64, RequestSource, bool) {
	if b, ok := unifiedBytes(c.Unified, cgroupfs.FileMin); ok && b > 0 {
		return b, RequestFromUnifiedMin, true
	}
	if qos == QOSBurstable {
		if b, ok := unifiedBytes(c.Unified, cgroupfs.FileLow); ok && b > 0 {
			return b, RequestFromUnifiedLow, true
		}
	}
	return 0, "", false
}

func unifiedBytes(u map[string]string, key string) (int64, bool) {
	v, ok := u[key]
	if !ok {
		return 0, false
	}
	b, err := strconv.ParseInt(v, 10, 64)
	if err != nil || b < 0 {
		return 0, false
	}
	return b, true
}
