package replicate

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/plan"
)

// workloadKinds are the kinds that run pods on their own: the ones parked on
// a standby, a fenced or a demoted side and restored on promotion.
var workloadKinds = []schema.GroupVersionKind{
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"},
	{Group: "apps", Version: "v1", Kind: "ReplicaSet"},
	{Group: "apps", Version: "v1", Kind: "DaemonSet"},
	{Version: "v1", Kind: "ReplicationController"},
	{Group: "batch", Version: "v1", Kind: "CronJob"},
}

// Workloads lists the workloads the policies select on the cluster c reads,
// and the webhook configurations they copy: the pair's protected workloads
// on that side, parked and restored together. The same selection on both
// sides finds the originals on the active one and their copies on the
// standby.
func Workloads(ctx context.Context, c client.Reader, policies []tandemv1.SyncPolicySpec, exclude map[plan.Ref]bool) ([]*unstructured.Unstructured, error) {
	var namespaces corev1.NamespaceList
	if err := c.List(ctx, &namespaces); err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	nsLabels := map[string]map[string]string{}
	for _, ns := range namespaces.Items {
		nsLabels[ns.Name] = ns.Labels
	}
	lookup := func(ns string) (map[string]string, bool) { l, ok := nsLabels[ns]; return l, ok }

	selectors := make([]*selector, 0, len(policies))
	for _, p := range policies {
		s, err := newSelector(p)
		if err != nil {
			return nil, err
		}
		selectors = append(selectors, s)
	}
	kinds := workloadKinds
	// Webhook configurations are listed only where a policy copies them:
	// a cluster-scoped kind is copied only when an include entry names it.
	for _, gvk := range webhookKinds {
		if slices.ContainsFunc(policies, func(p tandemv1.SyncPolicySpec) bool {
			return kindSelected(p.Resources, gvk.GroupKind(), false, true)
		}) {
			kinds = append(slices.Clip(kinds), gvk)
		}
	}
	seen := map[plan.Ref]bool{}
	var out []*unstructured.Unstructured
	for _, gvk := range kinds {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(ctx, list); err != nil {
			return nil, fmt.Errorf("listing %s: %w", gvk.Kind, err)
		}
		for i := range list.Items {
			obj := &list.Items[i]
			ref := plan.RefOf(obj)
			if seen[ref] {
				continue
			}
			for _, s := range selectors {
				if s.selects(obj, exclude, lookup) {
					seen[ref] = true
					out = append(out, obj)
					break
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return plan.RefOf(out[i]).String() < plan.RefOf(out[j]).String() })
	return out, nil
}

// rewriteWebhooks parks or unparks the webhook configuration obj with
// rewrite and patches what changed.
func rewriteWebhooks(ctx context.Context, c client.Writer, obj *unstructured.Unstructured, rewrite func(*unstructured.Unstructured) (bool, error)) (bool, error) {
	want := obj.DeepCopy()
	changed, err := rewrite(want)
	if err != nil || !changed {
		return false, err
	}
	return true, patchWebhooks(ctx, c, obj, want)
}

// Park stops a workload from running pods, recording how to restore it in
// the same annotations a warm copy carries: replicas to 0, a CronJob
// suspended, a DaemonSet pinned to no node, a webhook configuration's
// webhooks matching nothing. It is idempotent and reports
// whether it changed anything.
func Park(ctx context.Context, c client.Writer, obj *unstructured.Unstructured) (bool, error) {
	if IsWebhookConfiguration(obj) {
		return rewriteWebhooks(ctx, c, obj, parkWebhooks)
	}
	ann := obj.GetAnnotations()
	patch := map[string]any{}
	switch plan.RefOf(obj).GroupKind().String() {
	case "Deployment.apps", "StatefulSet.apps", "ReplicaSet.apps", "ReplicationController":
		replicas, found, _ := unstructured.NestedInt64(obj.Object, "spec", "replicas")
		if !found {
			replicas = 1
		}
		if replicas == 0 {
			return false, nil
		}
		// A parked workload scaled up by hand is parked again with its new
		// count, so the count restored later is the last one asked for.
		patch = map[string]any{
			"metadata": map[string]any{"annotations": map[string]any{ReplicasAnnotation: strconv.FormatInt(replicas, 10)}},
			"spec":     map[string]any{"replicas": 0},
		}
	case "CronJob.batch":
		suspend, _, _ := unstructured.NestedBool(obj.Object, "spec", "suspend")
		if _, parked := ann[SuspendAnnotation]; parked && suspend {
			return false, nil
		}
		patch = map[string]any{
			"metadata": map[string]any{"annotations": map[string]any{SuspendAnnotation: strconv.FormatBool(suspend)}},
			"spec":     map[string]any{"suspend": true},
		}
	case "DaemonSet.apps":
		if v, _, _ := unstructured.NestedString(obj.Object, "spec", "template", "spec", "nodeSelector", ParkedNodeSelector); v == "parked" {
			return false, nil
		}
		patch = map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"nodeSelector": map[string]any{ParkedNodeSelector: "parked"}}}}}
	default:
		return false, nil
	}
	return true, mergePatch(ctx, c, obj, patch)
}

// Unpark restores a workload parked by Park or by the warm standby copy. A
// workload without the annotations is left alone: it was never parked.
func Unpark(ctx context.Context, c client.Writer, obj *unstructured.Unstructured) (bool, error) {
	if IsWebhookConfiguration(obj) {
		return rewriteWebhooks(ctx, c, obj, unparkWebhooks)
	}
	ann := obj.GetAnnotations()
	var patch map[string]any
	switch plan.RefOf(obj).GroupKind().String() {
	case "Deployment.apps", "StatefulSet.apps", "ReplicaSet.apps", "ReplicationController":
		v, ok := ann[ReplicasAnnotation]
		if !ok {
			return false, nil
		}
		replicas, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return false, fmt.Errorf("%s: annotation %s=%q is not a replica count", plan.RefOf(obj), ReplicasAnnotation, v)
		}
		patch = map[string]any{
			"metadata": map[string]any{"annotations": map[string]any{ReplicasAnnotation: nil}},
			"spec":     map[string]any{"replicas": replicas},
		}
	case "CronJob.batch":
		v, ok := ann[SuspendAnnotation]
		if !ok {
			return false, nil
		}
		patch = map[string]any{
			"metadata": map[string]any{"annotations": map[string]any{SuspendAnnotation: nil}},
			"spec":     map[string]any{"suspend": v == "true"},
		}
	case "DaemonSet.apps":
		if v, _, _ := unstructured.NestedString(obj.Object, "spec", "template", "spec", "nodeSelector", ParkedNodeSelector); v != "parked" {
			return false, nil
		}
		patch = map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"nodeSelector": map[string]any{ParkedNodeSelector: nil}}}}}
	default:
		return false, nil
	}
	return true, mergePatch(ctx, c, obj, patch)
}

// Available says whether a workload runs what it asks for; kinds without
// replicas count as available.
func Available(obj *unstructured.Unstructured) bool {
	if IsWebhookConfiguration(obj) {
		// No status: a restored configuration serves as soon as it is
		// written.
		return true
	}
	gen := obj.GetGeneration()
	observed, _, _ := unstructured.NestedInt64(obj.Object, "status", "observedGeneration")
	if observed < gen {
		return false
	}
	switch plan.RefOf(obj).GroupKind().String() {
	case "Deployment.apps", "ReplicaSet.apps", "ReplicationController", "StatefulSet.apps":
		want, found, _ := unstructured.NestedInt64(obj.Object, "spec", "replicas")
		if !found {
			want = 1
		}
		field := "availableReplicas"
		if plan.RefOf(obj).Kind == "StatefulSet" {
			field = "readyReplicas"
		}
		got, _, _ := unstructured.NestedInt64(obj.Object, "status", field)
		return got >= want
	case "DaemonSet.apps":
		want, _, _ := unstructured.NestedInt64(obj.Object, "status", "desiredNumberScheduled")
		got, _, _ := unstructured.NestedInt64(obj.Object, "status", "numberAvailable")
		return got >= want
	}
	return true
}

func mergePatch(ctx context.Context, c client.Writer, obj *unstructured.Unstructured, patch map[string]any) error {
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	if err := c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, data)); err != nil {
		return fmt.Errorf("patching %s: %w", plan.RefOf(obj), err)
	}
	return nil
}
