package replicate

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/plan"
)

// PreviewItem is one object of a previewed plan.
type PreviewItem struct {
	Wave int      `json:"wave"`
	Ref  plan.Ref `json:"object"`
	// Changes are what the transforms do to the copy, in words.
	Changes []string `json:"changes,omitempty"`
	// Error is why the object cannot be transformed (a bad JSON patch).
	Error string `json:"error,omitempty"`
}

// Preview is what a sync would apply to the standby, without applying.
type Preview struct {
	Items   []PreviewItem `json:"items"`
	Waves   int           `json:"waves"`
	Missing []plan.Edge   `json:"missingDependencies,omitempty"`
	Cycles  [][]plan.Ref  `json:"cycles,omitempty"`
	Blocked []plan.Ref    `json:"blocked,omitempty"`
	Invalid []string      `json:"invalidAnnotations,omitempty"`
}

// PreviewPlan lists what the policy selects on the cluster behind cfg (the
// active side), builds the plan and transforms every object, without
// touching any cluster.
func PreviewPlan(ctx context.Context, cfg *rest.Config, spec tandemv1.SyncPolicySpec, opts Options, exclude map[plan.Ref]bool) (*Preview, error) {
	objs, _, err := SelectObjects(ctx, cfg, nil, spec, exclude)
	if err != nil {
		return nil, err
	}

	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	crds, err := dyn.Resource(crdGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing CustomResourceDefinitions: %w", err)
	}
	items := make([]any, len(crds.Items))
	for i := range crds.Items {
		items[i] = &crds.Items[i]
	}
	p := plan.Build(plan.Input{Objects: objs, Extra: spec.ExtraDependencies, CRDs: crdNames(items)})
	out := &Preview{Waves: len(p.Waves), Missing: p.Missing, Cycles: p.Cycles, Blocked: p.Blocked}
	for _, e := range p.Invalid {
		out.Invalid = append(out.Invalid, e.Error())
	}
	for i, wave := range p.Waves {
		for _, o := range wave {
			item := PreviewItem{Wave: i + 1, Ref: plan.RefOf(o)}
			copied, _, err := Transform(o, opts)
			if err != nil {
				item.Error = err.Error()
			} else {
				item.Changes = describeChanges(o, copied, spec)
			}
			out.Items = append(out.Items, item)
		}
	}
	return out, nil
}

// describeChanges says in words what the transforms changed that a user
// would care about (not the metadata every copy loses).
func describeChanges(src, dst *unstructured.Unstructured, spec tandemv1.SyncPolicySpec) []string {
	var out []string
	if r, ok := dst.GetAnnotations()[ReplicasAnnotation]; ok {
		out = append(out, fmt.Sprintf("replicas %s -> 0 (warm standby; restored on promotion)", r))
	}
	if _, ok := dst.GetAnnotations()[SuspendAnnotation]; ok {
		out = append(out, "suspended (warm standby)")
	}
	if ns, _, _ := unstructured.NestedStringMap(dst.Object, "spec", "template", "spec", "nodeSelector"); ns[ParkedNodeSelector] != "" {
		out = append(out, "parked on no node (warm standby)")
	}
	before, after := images(src), images(dst)
	for i := range before {
		if i < len(after) && before[i] != after[i] {
			out = append(out, fmt.Sprintf("image %s -> %s", before[i], after[i]))
		}
	}
	if a, b := storageClass(src), storageClass(dst); a != b {
		out = append(out, fmt.Sprintf("storageClassName %s -> %s", a, b))
	}
	ref := plan.RefOf(src)
	for _, r := range spec.Transforms.RemoveFields {
		if !plan.Matches(r.Target, ref) {
			continue
		}
		for _, p := range r.Paths {
			if _, found, _ := unstructured.NestedFieldNoCopy(src.Object, strings.Split(p, ".")...); found {
				out = append(out, "removed "+p)
			}
		}
	}
	for i, p := range spec.Transforms.Patches {
		if plan.Matches(p.Target, ref) {
			out = append(out, fmt.Sprintf("JSON patch spec.transforms.patches[%d]", i))
		}
	}
	return out
}

// images lists the container images of obj's pod specs, in a fixed order,
// so the images before and after a transform can be compared pairwise.
func images(obj *unstructured.Unstructured) []string {
	var out []string
	for _, spec := range plan.PodSpecs(obj) {
		for _, field := range []string{"initContainers", "containers", "ephemeralContainers"} {
			cs, _, _ := unstructured.NestedSlice(spec, field)
			for _, c := range cs {
				if m, ok := c.(map[string]any); ok {
					img, _ := m["image"].(string)
					out = append(out, img)
				}
			}
		}
	}
	return out
}

func storageClass(obj *unstructured.Unstructured) string {
	sc, _, _ := unstructured.NestedString(obj.Object, "spec", "storageClassName")
	return sc
}

// readers are the discovery and dynamic clients a command's reads of every
// kind use.
func readers(cfg *rest.Config) (*discovery.DiscoveryClient, *dynamic.DynamicClient, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	return dc, dyn, err
}

// SelectObjects lists what the policy selects on the cluster behind cfg,
// within scope, with the kinds it discovered.
func SelectObjects(ctx context.Context, cfg *rest.Config, scope Scope, spec tandemv1.SyncPolicySpec, exclude map[plan.Ref]bool) ([]*unstructured.Unstructured, []Kind, error) {
	dc, dyn, err := readers(cfg)
	if err != nil {
		return nil, nil, err
	}
	kinds, err := DiscoverKinds(dc, spec)
	if err != nil {
		return nil, nil, err
	}
	sel, err := newSelector(spec)
	if err != nil {
		return nil, nil, err
	}
	nsList, err := dyn.Resource(namespacesGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("listing namespaces: %w", err)
	}
	nsLabels := map[string]map[string]string{}
	for _, n := range nsList.Items {
		nsLabels[n.GetName()] = n.GetLabels()
	}
	lookup := func(ns string) (map[string]string, bool) { l, ok := nsLabels[ns]; return l, ok }

	var objs []*unstructured.Unstructured
	for _, k := range kinds {
		err := scope.List(ctx, dyn.Resource(k.GVR), k.Namespaced, func(o *unstructured.Unstructured) {
			if sel.selects(o, exclude, lookup) {
				objs = append(objs, o)
			}
		})
		if err != nil {
			return nil, nil, fmt.Errorf("listing %s: %w", k.GVR.GroupResource(), err)
		}
	}
	return objs, kinds, nil
}

// crdNames maps the kinds of the CRDs in items ("Kind.group") to the CRDs'
// names, for plan.Input.
func crdNames(items []any) map[string]string {
	out := make(map[string]string, len(items))
	for _, item := range items {
		u, ok := item.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		group, _, _ := unstructured.NestedString(u.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(u.Object, "spec", "names", "kind")
		out[kind+"."+group] = u.GetName()
	}
	return out
}
