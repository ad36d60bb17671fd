// Package plan turns the objects selected on the active cluster into a
// dependency-ordered plan: a graph where an edge A -> B means "B must exist
// before A", sorted into waves that can each be applied in parallel. It is
// pure: no client calls, so every rule is table-testable.
package plan

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Ref identifies an object across clusters: the same Ref names the source
// object on the active side and its copy on the standby.
type Ref struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// RefOf returns the Ref of an object.
func RefOf(obj *unstructured.Unstructured) Ref {
	gvk := obj.GroupVersionKind()
	return Ref{Group: gvk.Group, Kind: gvk.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// GroupKind of the referenced object.
func (r Ref) GroupKind() schema.GroupKind { return schema.GroupKind{Group: r.Group, Kind: r.Kind} }

// String renders a Ref the way kubectl names objects: kind.group
// namespace/name, e.g. "Deployment.apps shop/web" or "Namespace shop".
func (r Ref) String() string {
	kind := r.Kind
	if r.Group != "" {
		kind += "." + r.Group
	}
	if r.Namespace == "" {
		return kind + " " + r.Name
	}
	return kind + " " + r.Namespace + "/" + r.Name
}

// DependsOnAnnotation lists dependencies no rule can see, comma-separated,
// each as kind[.group]/name or kind[.group]/namespace/name. The namespace
// defaults to the annotated object's, or none for cluster-scoped kinds.
// Example: "configmap/flags, deployment.apps/other/api".
const DependsOnAnnotation = "tandem.dev/depends-on"

// parseDependsOn parses the annotation of obj into references. Kinds are
// matched case-insensitively against the selected objects later, so they are
// returned lower-cased.
func parseDependsOn(value, defaultNamespace string) ([]Ref, error) {
	var refs []Ref
	for _, item := range strings.Split(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.Split(item, "/")
		if len(parts) < 2 || len(parts) > 3 {
			return nil, fmt.Errorf("%q is not kind[.group]/name or kind[.group]/namespace/name", item)
		}
		kind, group, _ := strings.Cut(strings.ToLower(parts[0]), ".")
		ref := Ref{Group: group, Kind: kind, Namespace: defaultNamespace, Name: parts[len(parts)-1]}
		if len(parts) == 3 {
			ref.Namespace = parts[1]
		}
		if kind == "" || ref.Name == "" {
			return nil, fmt.Errorf("%q has an empty kind or name", item)
		}
		refs = append(refs, ref)
	}
	return refs, nil
}
