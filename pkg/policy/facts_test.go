package policy_test

import (
	"reflect"
	"strings"
	"testing"

	"nri-memqos/pkg/config"
	"nri-memqos/pkg/policy"
)

func TestKubeQOS(t *testing.T) {
	tests := []struct {
		name   string
		parent string
		want   policy.QOSClass
	}{
		{"cgroupfs burstable", "/kubepods/burstable/pod123", policy.QOSBurstable},
		{"cgroupfs besteffort", "/kubepods/besteffort/pod1", policy.QOSBestEffort},
		{"cgroupfs guaranteed", "/kubepods/pod1", policy.QOSGuaranteed},
		{"cgroupfs bare kubepods", "kubepods", policy.QOSGuaranteed},
		{"cgroupfs trailing slash", "/kubepods/burstable/pod123/", policy.QOSBurstable},
		{"cgroupfs custom root", "/custom/kubepods/besteffort/pod9", policy.QOSBestEffort},
		{"systemd burstable bare", "kubepods-burstable-pod123.slice", policy.QOSBurstable},
		{"systemd besteffort full path", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podx.slice", policy.QOSBestEffort},
		{"systemd burstable full path", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice", policy.QOSBurstable},
		{"systemd guaranteed bare", "kubepods-podx.slice", policy.QOSGuaranteed},
		{"systemd guaranteed full path", "/kubepods.slice/kubepods-podx.slice", policy.QOSGuaranteed},
		{"systemd kubepods slice", "kubepods.slice", policy.QOSGuaranteed},
		{"non-kube system slice", "/system.slice", policy.QOSUnknown},
		{"non-kube user slice", "/user.slice/user-1000.slice", policy.QOSUnknown},
		{"empty", "", policy.QOSUnknown},
		{"root", "/", policy.QOSUnknown},
		{"kubepods prefix only", "/kubepodsfoo/pod1", policy.QOSUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := policy.KubeQOS(tc.parent); got != tc.want {
				t.Errorf("KubeQOS(%q) = %q, want %q", tc.parent, got, tc.want)
			}
		})
	}
}

// TestKept: a kept pod or container decides exactly as the whole one, and
// holds none of the labels and annotations the policy does not read.
func TestKept(t *testing.T) {
	p := policy.Pod{Namespace: "ns", Name: "p", UID: "u", CgroupParent: "/kubepods/burstable/podu",
		Labels: map[string]string{policy.LabelClass: "burstable", "app": "web", policy.LabelKoordinatorQoS: "LS"},
		Annotations: map[string]string{policy.AnnotationRequest: "256Mi", "kubectl.kubernetes.io/last-applied-configuration": strings.Repeat("x", 4096),
			policy.AnnotationPrefix + "memory.high.factor.container.c": "0.5"}}
	c := policy.Container{Name: "c", Limit: 512 << 20, Annotations: map[string]string{policy.AnnotationRecordedRequest: "1", "io.kubernetes.container.hash": "abc"},
		Unified: map[string]string{"memory.min": "5"}}
	kp, kc := p.Kept(), c.Kept()
	n := policy.Node{MemTotal: 8 << 30, PageSize: 4096}
	whole, err1 := policy.Decide(config.Default(), p, c, n)
	kept, err2 := policy.Decide(config.Default(), kp, kc, n)
	if err1 != nil || err2 != nil || whole == nil || !reflect.DeepEqual(whole, kept) {
		t.Errorf("Decide(kept) = %+v, %v; Decide(whole) = %+v, %v; want the same", kept, err2, whole, err1)
	}
	if !reflect.DeepEqual(kp.Labels, map[string]string{policy.LabelClass: "burstable", policy.LabelKoordinatorQoS: "LS"}) {
		t.Errorf("kept labels = %v", kp.Labels)
	}
	if !reflect.DeepEqual(kp.Annotations, map[string]string{policy.AnnotationRequest: "256Mi", policy.AnnotationPrefix + "memory.high.factor.container.c": "0.5"}) {
		t.Errorf("kept pod annotations = %v", kp.Annotations)
	}
	if !reflect.DeepEqual(kc.Annotations, map[string]string{policy.AnnotationRecordedRequest: "1"}) || !reflect.DeepEqual(kc.Unified, c.Unified) {
		t.Errorf("kept container = %+v", kc)
	}
	if kp.Namespace != p.Namespace || kp.CgroupParent != p.CgroupParent || kp.Name != p.Name || kp.UID != p.UID {
		t.Errorf("kept pod identity = %+v", kp)
	}
	if got := (policy.Pod{}).Kept(); got.Labels != nil || got.Annotations != nil {
		t.Errorf("an empty pod kept = %+v; want no maps", got)
	}
}
