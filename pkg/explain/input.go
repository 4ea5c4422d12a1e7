package explain

import (
	"bytes"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"

	"nri-memqos/pkg/policy"
)

// File is one input document set: a name for messages and its bytes.
type File struct {
	Name string
	Data []byte
}

// Input kinds.
const (
	InputPod = "pod" // a Kubernetes Pod
	InputCRI = "cri" // a CRI pod sandbox config and container config
)

// Container types.
const (
	TypeContainer = "container"
	TypeInit      = "init"
	TypeSidecar   = "sidecar" // init container with restartPolicy: Always
)

// PodInput is one pod as the runtime would present it to the plugin.
type PodInput struct {
	// Kind is InputPod or InputCRI.
	Kind string
	// Pod is the policy's view of the pod: name, namespace, uid, labels,
	// annotations and cgroup parent.
	Pod policy.Pod
	// QOS is the Kubernetes QoS class: computed from the spec like Kubernetes
	// for a Pod, derived from the cgroup parent (policy.KubeQOS) for CRI input.
	QOS policy.QOSClass
	// NodeCritical is a Pod with priorityClassName system-node-critical:
	// kubelet gives its containers the Guaranteed oom_score_adj.
	NodeCritical bool
	// Containers in creation order: init containers, then the others.
	Containers []ContainerInput
	// Notes are what explain cannot model exactly for this pod.
	Notes []string
}

// ContainerInput is one container.
type ContainerInput struct {
	Name string
	// Type is TypeContainer, TypeInit or TypeSidecar.
	Type string
	// Annotations are the container's own (CRI container config).
	Annotations map[string]string
	// Limit is the memory limit in bytes the runtime passes (0: none).
	Limit int64
	// SpecRequest and SpecLimit are the memory request (after Kubernetes'
	// defaulting to the limit) and limit of the pod spec; nil when the spec
	// has none, and always nil for CRI input.
	SpecRequest *int64
	SpecLimit   *int64
	// OOMScoreAdj is the runtime's value for CRI input; nil for a Pod, where
	// Explain derives it like kubelet from the node's MemTotal.
	OOMScoreAdj *int64
	// Unified is the CRI container config's unified map; nil for a Pod, where
	// Explain fills it like kubelet when kubelet's MemoryQoS is on.
	Unified map[string]string
}

// Parse reads one Kubernetes Pod file (a Pod, a List of Pods or several YAML
// documents of kind Pod), or two files: a CRI pod sandbox config and a CRI
// container config as crictl takes them, in either order (told apart by
// their content). YAML or JSON.
func Parse(files ...File) ([]PodInput, error) {
	switch len(files) {
	case 1:
		docs, err := documents(files[0])
		if err != nil {
			return nil, err
		}
		var pods []PodInput
		for _, d := range docs {
			if _, ok := d.obj["kind"]; !ok {
				if looksLikeSandbox(d.obj) || looksLikeContainer(d.obj) {
					return nil, fmt.Errorf("%s: a CRI config without kind; allowed: a Kubernetes Pod (kind: Pod), or a CRI pod sandbox config and a container config as two files", d.name)
				}
				return nil, fmt.Errorf("%s: no kind; allowed: a Kubernetes Pod (apiVersion v1, kind Pod), or a CRI pod sandbox config and a container config as two files", d.name)
			}
			p, err := parseKube(d)
			if err != nil {
				return nil, err
			}
			pods = append(pods, p...)
		}
		return pods, nil
	case 2:
		var docs [2]doc
		for i, f := range files {
			ds, err := documents(f)
			if err != nil {
				return nil, err
			}
			if len(ds) != 1 {
				return nil, fmt.Errorf("%s: %d documents; allowed: one CRI config per file", f.Name, len(ds))
			}
			if k, ok := ds[0].obj["kind"]; ok {
				return nil, fmt.Errorf("%s: kind %v with a second file; allowed: one Kubernetes Pod file, or a CRI pod sandbox config and a container config", f.Name, k)
			}
			docs[i] = ds[0]
		}
		sb, ctr := docs[0], docs[1]
		if looksLikeContainer(sb.obj) && !looksLikeSandbox(sb.obj) && looksLikeSandbox(ctr.obj) && !looksLikeContainer(ctr.obj) {
			sb, ctr = ctr, sb // crictl create takes the container config first
		}
		p, err := parseCRI(sb, ctr)
		if err != nil {
			return nil, err
		}
		return []PodInput{p}, nil
	default:
		return nil, fmt.Errorf("%d input files; allowed: one Kubernetes Pod file, or a CRI pod sandbox config and a container config", len(files))
	}
}

// doc is one YAML or JSON document as JSON, with a generic view to detect
// what it is.
type doc struct {
	name string
	js   []byte
	obj  map[string]any
}

// documents splits a file into its YAML documents ("---" lines) and converts
// each to JSON. Empty documents are skipped.
func documents(f File) ([]doc, error) {
	var parts [][]byte
	var cur []byte
	for line := range bytes.Lines(f.Data) {
		if t := bytes.TrimRight(line, " \t\r\n"); bytes.Equal(t, []byte("---")) || bytes.HasPrefix(t, []byte("--- ")) {
			parts = append(parts, cur)
			cur = nil
			continue
		}
		cur = append(cur, line...)
	}
	parts = append(parts, cur)
	var docs []doc
	for i, p := range parts {
		if len(bytes.TrimSpace(p)) == 0 {
			continue
		}
		name := f.Name
		if len(parts) > 1 {
			name = fmt.Sprintf("%s (document %d)", f.Name, i+1)
		}
		js, err := yaml.YAMLToJSON(p)
		if err != nil {
			return nil, fmt.Errorf("%s: not YAML or JSON: %v", name, err)
		}
		var obj map[string]any
		if err := json.Unmarshal(js, &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("%s: not an object; allowed: a Kubernetes Pod or a CRI config", name)
		}
		docs = append(docs, doc{name: name, js: js, obj: obj})
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: empty; allowed: a Kubernetes Pod or a CRI config", f.Name)
	}
	return docs, nil
}

// scalar holds a JSON string or number as text.
type scalar string

func (s *scalar) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = scalar(v)
		return nil
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		*s = scalar(b)
		return nil
	}
	return fmt.Errorf("%s is not a string or a number", b)
}

func decode(d doc, v any) error {
	if err := json.Unmarshal(d.js, v); err != nil {
		return fmt.Errorf("%s: %v", d.name, jsonErr(err))
	}
	return nil
}

// jsonErr makes encoding/json's errors name the field and the expected type.
func jsonErr(err error) string {
	if te, ok := err.(*json.UnmarshalTypeError); ok {
		return fmt.Sprintf("%s: a %s where a %s is allowed", te.Field, te.Value, te.Type)
	}
	return err.Error()
}
