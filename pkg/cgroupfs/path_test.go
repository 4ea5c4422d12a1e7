package cgroupfs_test

import (
	"slices"
	"strings"
	"testing"

	"nri-memqos/pkg/cgroupfs"
)

func TestRelPath(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string // substring of the error; "" means no error
	}{
		// cgroupfs driver
		{name: "cgroupfs absolute", in: "/kubepods/burstable/pod1/abc", want: "/kubepods/burstable/pod1/abc"},
		{name: "cgroupfs without leading slash", in: "kubepods/pod1/abc", want: "/kubepods/pod1/abc"},
		{name: "cgroupfs trailing slash", in: "/kubepods/pod1/abc/", want: "/kubepods/pod1/abc"},
		{name: "cgroupfs dot-dot cleaned", in: "/kubepods/burstable/../besteffort/./pod2//abc", want: "/kubepods/besteffort/pod2/abc"},
		{name: "cgroupfs dot-dot cannot escape root", in: "/../../kubepods/pod1/abc", want: "/kubepods/pod1/abc"},
		{name: "relative dot-dot cannot escape root", in: "../../etc", want: "/etc"},
		{name: "cgroupfs with colon in absolute path", in: "/kubepods/pod1/a:b", want: "/kubepods/pod1/a:b"},
		{name: "root", in: "/", wantErr: "names the cgroup root"},
		{name: "root via dot-dot", in: "/kubepods/..", wantErr: "names the cgroup root"},
		{name: "dot", in: ".", wantErr: "names the cgroup root"},
		{name: "empty", in: "", wantErr: "empty cgroups path"},

		// systemd driver
		{
			name: "systemd burstable containerd",
			in:   "kubepods-burstable-pod1.slice:cri-containerd:abc",
			want: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope",
		},
		{
			name: "systemd guaranteed crio",
			in:   "kubepods-pod1.slice:crio:abc",
			want: "/kubepods.slice/kubepods-pod1.slice/crio-abc.scope",
		},
		{
			name: "systemd besteffort",
			in:   "kubepods-besteffort-pod2.slice:cri-containerd:def",
			want: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod2.slice/cri-containerd-def.scope",
		},
		{
			name: "systemd name is a slice",
			in:   "kubepods-burstable.slice:cri-containerd:kubepods-burstable-pod9.slice",
			want: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod9.slice",
		},
		{
			name: "systemd name is a slice, empty prefix allowed",
			in:   "kubepods.slice::kubepods-pod9.slice",
			want: "/kubepods.slice/kubepods-pod9.slice",
		},
		{
			name: "systemd empty slice is system.slice",
			in:   ":cri-containerd:abc",
			want: "/system.slice/cri-containerd-abc.scope",
		},
		{
			name: "systemd root slice",
			in:   "-.slice:docker:abc",
			want: "/docker-abc.scope",
		},
		{name: "systemd two fields", in: "a:b", wantErr: "not of the form slice:prefix:name"},
		{name: "systemd four fields", in: "a.slice:b:c:d", wantErr: "not of the form slice:prefix:name"},
		{name: "systemd slice without .slice suffix", in: "bad_slice:x:y", wantErr: "invalid slice name"},
		{name: "systemd slice with empty component", in: "kubepods--x.slice:p:n", wantErr: "invalid slice name"},
		{name: "systemd slice with leading dash", in: "-kubepods.slice:p:n", wantErr: "invalid slice name"},
		{name: "systemd slice only suffix", in: ".slice:p:n", wantErr: "invalid slice name"},
		{name: "systemd empty prefix", in: "kubepods.slice::abc", wantErr: "no unit prefix or name"},
		{name: "systemd empty name", in: "kubepods.slice:crio:", wantErr: "no unit prefix or name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cgroupfs.RelPath(tc.in)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("RelPath(%q) = %q, nil; want error containing %q", tc.in, got, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("RelPath(%q) error = %q; want it to contain %q", tc.in, err, tc.wantErr)
				}
				if tc.in != "" && !strings.Contains(err.Error(), tc.in) {
					t.Errorf("RelPath(%q) error = %q; want it to name the input", tc.in, err)
				}
				if got != "" {
					t.Errorf("RelPath(%q) returned %q with an error; want \"\"", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("RelPath(%q) error: %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("RelPath(%q) = %q; want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestAncestors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{
			name: "deep cgroupfs",
			in:   "/kubepods/burstable/pod1/c1",
			want: []string{"/kubepods", "/kubepods/burstable", "/kubepods/burstable/pod1"},
		},
		{
			name: "guaranteed cgroupfs",
			in:   "/kubepods/pod1/c1",
			want: []string{"/kubepods", "/kubepods/pod1"},
		},
		{name: "shallow", in: "/a", want: nil},
		{name: "root", in: "/", want: nil},
		{name: "empty", in: "", want: nil},
		{name: "two levels", in: "/a/b", want: []string{"/a"}},
		{
			name: "unclean input",
			in:   "/kubepods//burstable/./pod1/c1/",
			want: []string{"/kubepods", "/kubepods/burstable", "/kubepods/burstable/pod1"},
		},
		{
			name: "systemd expanded",
			in:   "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope",
			want: []string{
				"/kubepods.slice",
				"/kubepods.slice/kubepods-burstable.slice",
				"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := cgroupfs.Ancestors(tc.in)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Ancestors(%q) = %q; want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestRelPathAncestors checks the two together, the way the plugin uses them.
func TestRelPathAncestors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{
			name: "systemd crio guaranteed",
			in:   "kubepods-pod1.slice:crio:abc",
			want: []string{"/kubepods.slice", "/kubepods.slice/kubepods-pod1.slice"},
		},
		{
			name: "cgroupfs besteffort",
			in:   "kubepods/besteffort/pod3/xyz",
			want: []string{"/kubepods", "/kubepods/besteffort", "/kubepods/besteffort/pod3"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rel, err := cgroupfs.RelPath(tc.in)
			if err != nil {
				t.Fatalf("RelPath(%q): %v", tc.in, err)
			}
			if got := cgroupfs.Ancestors(rel); !slices.Equal(got, tc.want) {
				t.Fatalf("Ancestors(RelPath(%q)=%q) = %q; want %q", tc.in, rel, got, tc.want)
			}
		})
	}
}

func TestRelPathSlices(t *testing.T) {
	for in, want := range map[string]string{
		"a.slice:p:n":       "/a.slice/p-n.scope",
		"a-b-c.slice:p:n":   "/a.slice/a-b.slice/a-b-c.slice/p-n.scope",
		"a-.slice:p:n":      "",
		"-.slice:p:x.slice": "/x.slice",
		"a/b.slice:p:n":     "",
		"a.slice.slice:p:n": "/a.slice.slice/p-n.scope",
	} {
		got, err := cgroupfs.RelPath(in)
		if want == "" {
			if err == nil || !strings.Contains(err.Error(), "slice") {
				t.Errorf("RelPath(%q) = %q, %v; want an error naming the slice", in, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("RelPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
