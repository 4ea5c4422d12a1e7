package policy

import "testing"

// TestInputErrorSubject checks the one-line message for a container of a
// pod (NRI, CRI-O's hook), a container without a pod (podman's hook) and
// one without even a name.
func TestInputErrorSubject(t *testing.T) {
	for _, c := range []struct {
		e    InputError
		want string
	}{
		{InputError{Namespace: "team-a", Pod: "web", Container: "app", Key: AnnotationRequest, Value: "lots", Reason: "not a quantity", Allowed: "256Mi"},
			`memqos: pod team-a/web container "app": memqos.nri.io/memory-request "lots": not a quantity; allowed: 256Mi`},
		{InputError{Container: "app", Key: LabelClass, Value: "gold", Allowed: "burstable"},
			`memqos: container "app": memqos.nri.io/class "gold"; allowed: burstable`},
		{InputError{Key: AnnotationRequest, Value: "lots", Reason: "not a quantity"},
			`memqos: memqos.nri.io/memory-request "lots": not a quantity`},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}
