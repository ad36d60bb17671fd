package replicate

import (
	"context"
	"fmt"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
// the source stopped changing.
func Verify(ctx context.Context, source, target *rest.Config, spec tandemv1.SyncPolicySpec, opts Options, exclude map[plan.Ref]bool) (*Verification, error) {
	objs, kinds, err := SelectObjects(ctx, source, spec, exclude)
	if err != nil {
		return nil, fmt.Errorf("listing the source: %w", err)
	}
	dyn, err := dynamic.NewForConfig(target)
	if err != nil {
		return nil, err
	}
	gvrs := map[schema.GroupVersionKind]schema.GroupVersionResource{}
	for _, k := range kinds {
		gvrs[k.GVK] = k.GVR
	}
	// One list per kind on the target, not one get per object: the check
	// runs while the service is stopped.
	hashes := map[plan.Ref]string{}
	listed := map[schema.GroupVersionResource]bool{}
	for _, o := range objs {
		gvr, ok := gvrs[o.GroupVersionKind()]
		if !ok {
			return nil, fmt.Errorf("no resource for %s", o.GroupVersionKind())
		}
		if listed[gvr] {
			continue
		}
		listed[gvr] = true
		list, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing %s on the target: %w", gvr.GroupResource(), err)
		}
		for i := range list.Items {
			hashes[plan.RefOf(&list.Items[i])] = list.Items[i].GetAnnotations()[HashAnnotation]
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
