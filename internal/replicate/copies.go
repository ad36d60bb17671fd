package replicate

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/tandem-dev/tandem/internal/plan"
)

// Marked is an object that carries a pair's labels on a cluster: a copy the
// sync wrote, or an object the cluster's own controllers derived from one
// and gave its labels or annotations (the EndpointSlices of a copied
// Service, the ReplicaSets of a copied Deployment).
type Marked struct {
	Ref    plan.Ref `json:"ref"`
	Policy string   `json:"policy"`
	// Copy says the sync wrote it: it has no controlling owner, carries
	// the copy's content hash and is applied by the sync's field manager.
	Copy bool `json:"copy"`
	// Created says the sync created it (rather than adopting an object
	// that was there): only those are ever pruned.
	Created bool `json:"created,omitempty"`
	// Why says, for an object that is not a copy, what made it.
	Why string `json:"why,omitempty"`
}

// FindMarked lists every object on the cluster cfg reaches that carries the
// labels of pair (in namespace pairNamespace), copies first, sorted. It
// reads every kind the cluster lists, so it is a command's work, not the
// sync's. A kind the caller may not list is skipped and named in skipped.
func FindMarked(ctx context.Context, cfg *rest.Config, pairNamespace, pair string) (found []Marked, skipped []string, err error) {
	// One list per kind: at client-go's default 5 requests/s the ~60 kinds
	// of a bare cluster took 9 s.
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 100, 200
	dc, dyn, err := readers(cfg)
	if err != nil {
		return nil, nil, err
	}
	lists, err := discovery.ServerPreferredResources(dc)
	if err != nil && len(lists) == 0 {
		return nil, nil, fmt.Errorf("discovering the API: %w", err)
	}
	selector := PairLabel + "=" + pair
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			objs, err := dyn.Resource(gv.WithResource(r.Name)).List(ctx, metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				skipped = append(skipped, fmt.Sprintf("%s: %v", schema.GroupResource{Group: gv.Group, Resource: r.Name}, err))
				continue
			}
			for i := range objs.Items {
				obj := &objs.Items[i]
				if !ofPair(obj, pairNamespace) {
					continue
				}
				m := Marked{Ref: plan.RefOf(obj), Policy: obj.GetLabels()[PolicyLabel]}
				m.Why = notACopy(obj)
				m.Copy = m.Why == ""
				_, m.Created = obj.GetAnnotations()[CreatedAnnotation]
				m.Created = m.Created && m.Copy
				found = append(found, m)
			}
		}
	}
	sort.Slice(found, func(i, j int) bool {
		if found[i].Copy != found[j].Copy {
			return found[i].Copy
		}
		return found[i].Ref.String() < found[j].Ref.String()
	})
	return found, skipped, nil
}

// ofPair says whether obj's labels name the pair of that namespace; an
// object labelled before tandem.dev/pair-namespace existed counts only in
// the pair's own namespace, as for the sync (isOurs).
func ofPair(obj *unstructured.Unstructured, pairNamespace string) bool {
	if ns, ok := obj.GetLabels()[PairNamespaceLabel]; ok {
		return ns == pairNamespace
	}
	return obj.GetNamespace() == pairNamespace
}

// notACopy says why an object with a pair's labels is not one of its
// copies, or "" when it is. The sync never copies an object with a
// controlling owner (skipReason), always records the content hash, and
// writes with its own field manager; a controller that copies labels or
// annotations onto what it makes gets at most the first two wrong.
func notACopy(obj *unstructured.Unstructured) string {
	if o := metav1.GetControllerOfNoCopy(obj); o != nil {
		return "made by " + o.Kind + " " + o.Name
	}
	if _, ok := obj.GetAnnotations()[HashAnnotation]; !ok {
		return "labels inherited: no " + HashAnnotation
	}
	applied := slices.ContainsFunc(obj.GetManagedFields(), func(f metav1.ManagedFieldsEntry) bool {
		return f.Manager == FieldManager && f.Operation == metav1.ManagedFieldsOperationApply
	})
	if !applied {
		return "not applied by field manager " + FieldManager
	}
	return ""
}
