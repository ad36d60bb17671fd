package replicate

import (
	"context"
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/plan"
)

// Verification compares every object a policy selects on the source with
// its copy on the target, by content hash.
type Verification struct {
	Checked int
	// Differ are the objects whose copy is missing or has another hash.
	Differ []string
}

// Verify checks that the target holds, for every object the policy selects
// on the source, a copy whose recorded hash is the hash of the source's
// transformed content: the copy is exactly what a sync of the source as it
// is now would apply. It is the final check of a planned switchover, after
// the source stopped changing. Both clusters are read within scope.
func Verify(ctx context.Context, source, target *rest.Config, scope Scope, spec tandemv1.SyncPolicySpec, opts Options, exclude map[plan.Ref]bool) (*Verification, error) {
	objs, kinds, err := SelectObjects(ctx, source, scope, spec, exclude)
	if err != nil {
		return nil, fmt.Errorf("listing the source: %w", err)
	}
	dyn, err := dynamic.NewForConfig(target)
	if err != nil {
		return nil, err
	}
	byGVK := map[schema.GroupVersionKind]Kind{}
	for _, k := range kinds {
		byGVK[k.GVK] = k
	}
	// One list per kind on the target, not one get per object: the check
	// runs while the service is stopped.
	hashes := map[plan.Ref]string{}
	listed := map[schema.GroupVersionResource]bool{}
	for _, o := range objs {
		k, ok := byGVK[o.GroupVersionKind()]
		if !ok {
			return nil, fmt.Errorf("no resource for %s", o.GroupVersionKind())
		}
		if listed[k.GVR] {
			continue
		}
		listed[k.GVR] = true
		err := scope.List(ctx, dyn.Resource(k.GVR), k.Namespaced, func(u *unstructured.Unstructured) {
			hashes[plan.RefOf(u)] = u.GetAnnotations()[HashAnnotation]
		})
		if err != nil {
			return nil, fmt.Errorf("listing %s on the target: %w", k.GVR.GroupResource(), err)
		}
	}
	out := &Verification{}
	for _, o := range objs {
		ref := plan.RefOf(o)
		_, want, err := Transform(o, opts)
		if err != nil {
			out.Differ = append(out.Differ, fmt.Sprintf("%s: %v", ref, err))
			continue
		}
		out.Checked++
		switch got, ok := hashes[ref]; {
		case !ok:
			out.Differ = append(out.Differ, ref.String()+": missing")
		case got != want:
			out.Differ = append(out.Differ, ref.String()+": differs")
		}
	}
	sort.Strings(out.Differ)
	return out, nil
}
