package policy_test

import (
	"testing"

	"nri-memqos/pkg/config"
	"nri-memqos/pkg/policy"
)

func TestSelectClass(t *testing.T) {
	koordOn := func() *config.Config {
		c := config.Default()
		c.Koordinator.Enabled = true
		return c
	}
	withNS := func() *config.Config {
		c := config.Default()
		c.DefaultClass = config.ClassBurstable
		c.NamespaceClasses = map[string]string{"batch": config.ClassBestEffort, "infra": config.ClassNone}
		return c
	}
	restricted := func() *config.Config {
		c := config.Default()
		c.Classes["gold"] = &config.Class{Min: f64(1), Namespaces: []string{"team-a", "team-b"}}
		return c
	}
	tests := []struct {
		name        string
		cfg         func() *config.Config
		ns          string
		labels      map[string]string
		annotations map[string]string
		wantClass   string
		wantSrc     policy.ClassSource
		// wantErr lists substrings of the expected *InputError message; nil means no error.
		wantErr []string
	}{
		{
			name:      "no label, no default: not opted in",
			cfg:       config.Default,
			ns:        "default",
			wantClass: "",
		},
		{
			name:      "pod label",
			cfg:       config.Default,
			ns:        "default",
			labels:    map[string]string{policy.LabelClass: "burstable"},
			wantClass: "burstable",
			wantSrc:   policy.ClassFromPodLabel,
		},
		{
			name:        "container annotation beats pod label",
			cfg:         config.Default,
			ns:          "default",
			labels:      map[string]string{policy.LabelClass: "burstable"},
			annotations: map[string]string{policy.AnnotationClassPrefix + "app": "latency-sensitive"},
			wantClass:   "latency-sensitive",
			wantSrc:     policy.ClassFromContainerAnnotation,
		},
		{
			name:        "annotation for another container ignored",
			cfg:         config.Default,
			ns:          "default",
			labels:      map[string]string{policy.LabelClass: "burstable"},
			annotations: map[string]string{policy.AnnotationClassPrefix + "sidecar": "latency-sensitive"},
			wantClass:   "burstable",
			wantSrc:     policy.ClassFromPodLabel,
		},
		{
			name:        "container annotation none opts out despite pod label",
			cfg:         config.Default,
			ns:          "default",
			labels:      map[string]string{policy.LabelClass: "burstable"},
			annotations: map[string]string{policy.AnnotationClassPrefix + "app": "none"},
			wantClass:   "",
		},
		{
			name:      "pod label none opts out despite defaults",
			cfg:       withNS,
			ns:        "batch",
			labels:    map[string]string{policy.LabelClass: "none"},
			wantClass: "",
		},
		{
			name:      "koordinator label ignored when disabled",
			cfg:       config.Default,
			ns:        "default",
			labels:    map[string]string{policy.LabelKoordinatorQoS: "LSE"},
			wantClass: "",
		},
		{
			name:      "koordinator unknown value ignored when disabled",
			cfg:       config.Default,
			ns:        "default",
			labels:    map[string]string{policy.LabelKoordinatorQoS: "GOLD"},
			wantClass: "",
		},
		{
			name: "koordinator label ignored when disabled, namespace default applies",
			cfg: func() *config.Config {
				c := withNS()
				c.Koordinator.Enabled = false
				return c
			},
			ns:        "batch",
			labels:    map[string]string{policy.LabelKoordinatorQoS: "LSE"},
			wantClass: "best-effort",
			wantSrc:   policy.ClassFromNamespaceDefault,
		},
		{
			name:      "koordinator LSE maps to latency-sensitive",
			cfg:       koordOn,
			ns:        "default",
			labels:    map[string]string{policy.LabelKoordinatorQoS: "LSE"},
			wantClass: "latency-sensitive",
			wantSrc:   policy.ClassFromKoordinator,
		},
		{
			name:      "koordinator LS maps to burstable",
			cfg:       koordOn,
			ns:        "default",
			labels:    map[string]string{policy.LabelKoordinatorQoS: "LS"},
			wantClass: "burstable",
			wantSrc:   policy.ClassFromKoordinator,
		},
		{
			name:      "koordinator BE maps to best-effort",
			cfg:       koordOn,
			ns:        "default",
			labels:    map[string]string{policy.LabelKoordinatorQoS: "BE"},
			wantClass: "best-effort",
			wantSrc:   policy.ClassFromKoordinator,
		},
		{
			name:      "koordinator SYSTEM opts out",
			cfg:       koordOn,
			ns:        "default",
			labels:    map[string]string{policy.LabelKoordinatorQoS: "SYSTEM"},
			wantClass: "",
		},
		{
			name: "koordinator SYSTEM opts out despite namespace default",
			cfg: func() *config.Config {
				c := withNS()
				c.Koordinator.Enabled = true
				return c
			},
			ns:        "batch",
			labels:    map[string]string{policy.LabelKoordinatorQoS: "SYSTEM"},
			wantClass: "",
		},
		{
			name:    "koordinator unknown value is an input error",
			cfg:     koordOn,
			ns:      "default",
			labels:  map[string]string{policy.LabelKoordinatorQoS: "GOLD"},
			wantErr: []string{"pod default/web", `container "app"`, "label koordinator.sh/qosClass", `"GOLD"`, "allowed: BE, LS, LSE, LSR, SYSTEM"},
		},
		{
			name:      "pod label beats koordinator label",
			cfg:       koordOn,
			ns:        "default",
			labels:    map[string]string{policy.LabelClass: "best-effort", policy.LabelKoordinatorQoS: "LSE"},
			wantClass: "best-effort",
			wantSrc:   policy.ClassFromPodLabel,
		},
		{
			name:      "namespace default beats defaultClass",
			cfg:       withNS,
			ns:        "batch",
			wantClass: "best-effort",
			wantSrc:   policy.ClassFromNamespaceDefault,
		},
		{
			name:      "namespace default none opts out despite defaultClass",
			cfg:       withNS,
			ns:        "infra",
			wantClass: "",
		},
		{
			name:      "defaultClass applies in other namespaces",
			cfg:       withNS,
			ns:        "web",
			wantClass: "burstable",
			wantSrc:   policy.ClassFromDefault,
		},
		{
			name:      "pod label beats namespace default",
			cfg:       withNS,
			ns:        "batch",
			labels:    map[string]string{policy.LabelClass: "latency-sensitive"},
			wantClass: "latency-sensitive",
			wantSrc:   policy.ClassFromPodLabel,
		},
		{
			name:    "unknown class in label",
			cfg:     config.Default,
			ns:      "default",
			labels:  map[string]string{policy.LabelClass: "gold"},
			wantErr: []string{"pod default/web", `container "app"`, "label memqos.nri.io/class", `"gold"`, "unknown class", "allowed: best-effort, burstable, latency-sensitive, none"},
		},
		{
			name:        "unknown class in container annotation",
			cfg:         config.Default,
			ns:          "default",
			annotations: map[string]string{policy.AnnotationClassPrefix + "app": "Burstable"},
			wantErr:     []string{"pod default/web", `container "app"`, "annotation memqos.nri.io/class.container.app", `"Burstable"`, "allowed:"},
		},
		{
			name:    "empty class label is unknown",
			cfg:     config.Default,
			ns:      "default",
			labels:  map[string]string{policy.LabelClass: ""},
			wantErr: []string{"label memqos.nri.io/class", `""`, "allowed:"},
		},
		{
			name:    "class restricted by namespaces: error in other namespace",
			cfg:     restricted,
			ns:      "team-c",
			labels:  map[string]string{policy.LabelClass: "gold"},
			wantErr: []string{"pod team-c/web", `container "app"`, "label memqos.nri.io/class", `"gold"`, `not allowed in namespace "team-c"`, "allowed: namespaces team-a, team-b"},
		},
		{
			name:      "class restricted by namespaces: ok in listed namespace",
			cfg:       restricted,
			ns:        "team-b",
			labels:    map[string]string{policy.LabelClass: "gold"},
			wantClass: "gold",
			wantSrc:   policy.ClassFromPodLabel,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustValidate(t, tc.cfg())
			p := policy.Pod{Namespace: tc.ns, Name: "web", Labels: tc.labels, Annotations: tc.annotations, CgroupParent: parentBurstable}
			c := policy.Container{Name: "app"}
			got, src, err := policy.SelectClass(cfg, p, c)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("SelectClass = %q (%s), want error", got, src)
				}
				ie := inputError(t, err)
				containsAll(t, err.Error(), tc.wantErr...)
				if ie.Namespace != tc.ns || ie.Pod != "web" || ie.Container != "app" {
					t.Errorf("InputError identifies %s/%s %s, want %s/web app", ie.Namespace, ie.Pod, ie.Container, tc.ns)
				}
				if got != "" || src != "" {
					t.Errorf("SelectClass returned %q (%s) with the error", got, src)
				}
				return
			}
			if err != nil {
				t.Fatalf("SelectClass: unexpected error %v", err)
			}
			if got != tc.wantClass || src != tc.wantSrc {
				t.Errorf("SelectClass = (%q, %q), want (%q, %q)", got, src, tc.wantClass, tc.wantSrc)
			}
		})
	}
}

// TestSelectClassRestrictedDefault: a configuration that validates must not
// make every unlabeled pod outside a class's namespaces fail creation. The
// doc of SelectClass promises an *InputError only when "a label or
// annotation" names a class the namespace may not use; a config default is
// neither. Acceptable behaviors: Parse rejects the configuration, or the pod
// is simply not opted in.
func TestSelectClassRestrictedDefault(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		ns   string
	}{
		{
			name: "defaultClass restricted to other namespaces",
			yaml: "defaultClass: gold\nclasses:\n  gold:\n    min: 1\n    namespaces: [team-a]\n",
			ns:   "team-b",
		},
		{
			name: "namespaceClasses names a class not allowed in that namespace",
			yaml: "namespaceClasses:\n  team-b: gold\nclasses:\n  gold:\n    min: 1\n    namespaces: [team-a]\n",
			ns:   "team-b",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(tc.yaml))
			if err != nil {
				return // rejecting the inconsistent config is fine
			}
			p := policy.Pod{Namespace: tc.ns, Name: "web"}
			got, src, err := policy.SelectClass(cfg, p, policy.Container{Name: "app"})
			if err != nil {
				t.Errorf("config accepted by Parse makes every unlabeled pod in %q fail: SelectClass error %v", tc.ns, err)
				return
			}
			if got != "" {
				t.Errorf("SelectClass = (%q, %q), want not opted in", got, src)
			}
		})
	}
}
