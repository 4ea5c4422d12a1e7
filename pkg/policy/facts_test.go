package policy_test

import (
	"testing"

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
