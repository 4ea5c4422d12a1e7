package policy

import "fmt"

// InputError is a bad label or annotation value on a pod. Its message is one
// line naming the pod, the container, the key, the value and what is allowed;
// the runtime shows it to the user when the container's creation fails.
type InputError struct {
	Namespace string
	Pod       string
	Container string
	Key       string
	Value     string
	Reason    string
	Allowed   string
}

func (e *InputError) Error() string {
	var msg string
	switch {
	case e.Namespace != "" || e.Pod != "":
		msg = fmt.Sprintf("memqos: pod %s/%s container %q: %s %q", e.Namespace, e.Pod, e.Container, e.Key, e.Value)
	case e.Container != "":
		// No pod: a container of podman's, seen by the OCI hook.
		msg = fmt.Sprintf("memqos: container %q: %s %q", e.Container, e.Key, e.Value)
	default:
		msg = fmt.Sprintf("memqos: %s %q", e.Key, e.Value)
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Allowed != "" {
		msg += "; allowed: " + e.Allowed
	}
	return msg
}

func inputErr(p Pod, c Container, key, value, reason, allowed string) error {
	return &InputError{Namespace: p.Namespace, Pod: p.Name, Container: c.Name, Key: key, Value: value, Reason: reason, Allowed: allowed}
}
