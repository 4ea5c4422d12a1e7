package policy

import (
	"fmt"
	"slices"
	"strings"

	"nri-memqos/pkg/config"
)

// ClassSource tells where a container's class came from.
type ClassSource string

// Class sources, in the order they are consulted.
const (
	ClassFromContainerAnnotation ClassSource = "container annotation"
	ClassFromPodLabel            ClassSource = "pod label"
	ClassFromKoordinator         ClassSource = "koordinator label"
	ClassFromNamespaceDefault    ClassSource = "namespace default"
	ClassFromDefault             ClassSource = "default class"
)

// SelectClass picks the class of one container. It returns "" when the
// container is not opted in (or opted out with "none"), and an *InputError
// when a label or annotation names an unknown class or one the pod's
// namespace may not use.
func SelectClass(cfg *config.Config, p Pod, c Container) (string, ClassSource, error) {
	name, key, src, found := "", "", ClassSource(""), false
	if v, ok := p.Annotations[AnnotationClassPrefix+c.Name]; ok {
		name, key, src, found = v, "annotation "+AnnotationClassPrefix+c.Name, ClassFromContainerAnnotation, true
	} else if v, ok := p.Labels[LabelClass]; ok {
		name, key, src, found = v, "label "+LabelClass, ClassFromPodLabel, true
	} else if v, ok := p.Labels[LabelKoordinatorQoS]; ok && cfg.Koordinator.Enabled {
		mapped, known := cfg.Koordinator.Classes[v]
		if !known {
			return "", "", inputErr(p, c, "label "+LabelKoordinatorQoS, v, "not a mapped Koordinator QoS class",
				strings.Join(sortedKeys(cfg.Koordinator.Classes), ", "))
		}
		name, key, src, found = mapped, "label "+LabelKoordinatorQoS, ClassFromKoordinator, true
	} else if v, ok := cfg.NamespaceClasses[p.Namespace]; ok {
		name, key, src, found = v, "config namespaceClasses."+p.Namespace, ClassFromNamespaceDefault, true
	} else if cfg.DefaultClass != "" {
		name, key, src, found = cfg.DefaultClass, "config defaultClass", ClassFromDefault, true
	}
	if !found || name == config.ClassNone {
		return "", "", nil
	}
	cl, ok := cfg.Classes[name]
	if !ok {
		return "", "", inputErr(p, c, key, name, "unknown class",
			strings.Join(append(cfg.ClassNames(), config.ClassNone), ", "))
	}
	if len(cl.Namespaces) > 0 && !slices.Contains(cl.Namespaces, p.Namespace) {
		return "", "", inputErr(p, c, key, name,
			fmt.Sprintf("class not allowed in namespace %q", p.Namespace),
			"namespaces "+strings.Join(cl.Namespaces, ", "))
	}
	return name, src, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
