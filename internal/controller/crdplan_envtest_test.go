package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/test/testbed"
)

// widgetCRD is a vendor's CRD as applications ship it: no labels, so a
// policy selecting the application's namespace does not select it.
const widgetCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.vendor.tandem.test}
spec:
  group: vendor.tandem.test
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}`

// A custom resource whose CRD the policy does not select: the plan names
// the CRD as a dependency the standby must already serve, the resource
// fails while it does not, and once the CRD is installed there the failed
// apply heals within seconds (retried with back-off), not at the next
// full pass.
func TestAnUnselectedCRDIsNamedAndItsResourceHealsOnceServed(t *testing.T) {
	ns := "vendor-app"
	kc, err := west.Kubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	apply(t, east.Client, ns, widgetCRD)
	widget := testbed.MustDecode(t, strings.ReplaceAll(`
apiVersion: vendor.tandem.test/v1
kind: Widget
metadata: {name: gear, namespace: NS}
spec: {teeth: 12}`, "NS", ns))[0]
	apply(t, east.Client, ns, `
apiVersion: v1
kind: Namespace
metadata: {name: NS}`)
	waitFor(t, "dc-east serves Widgets", func(ctx context.Context) (bool, error) {
		err := east.Client.Create(ctx, widget.DeepCopy())
		return err == nil, nil
	})
	apply(t, east.Client, ns, pairOfApp+`---
apiVersion: tandem.dev/v1alpha1
kind: SyncPolicy
metadata: {name: app, namespace: NS}
spec:
  namespaces: {names: [NS]}`)
	kubeconfigSecret(t, ns, "dc-west-kubeconfig", kc)

	policy := &tandemv1.SyncPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}}
	const needs = "Widget.vendor.tandem.test vendor-app/gear needs CustomResourceDefinition.apiextensions.k8s.io widgets.vendor.tandem.test"
	waitFor(t, "PlanValid names the CRD and the Widget fails", func(ctx context.Context) (bool, error) {
		if err := east.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy); err != nil {
			return false, err
		}
		c := condition(policy.Status.Conditions, tandemv1.PlanValidCondition)
		failed := false
		for _, f := range policy.Status.Failures {
			failed = failed || strings.HasSuffix(f.Object, "vendor-app/gear")
		}
		return c != nil && c.Reason == tandemv1.PlanMissingDependencyReason && strings.Contains(c.Message, needs) && failed,
			fmt.Errorf("PlanValid %+v, failures %+v", c, policy.Status.Failures)
	})

	installed := time.Now()
	apply(t, west.Client, ns, widgetCRD)
	waitFor(t, "the Widget reaches dc-west", func(ctx context.Context) (bool, error) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(widget.GroupVersionKind())
		return west.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gear"}, u) == nil, nil
	})
	healed := time.Since(installed)
	if interval := 5 * time.Minute; healed > interval/2 {
		t.Fatalf("the Widget reached dc-west %s after its CRD: the failed apply waited for a full pass", healed)
	}
	t.Logf("the Widget reached dc-west %s after its CRD was installed there", healed.Round(10*time.Millisecond))
}

// A vendor's objects chosen per kind: an unlabelled CRD by name (granted
// to the namespace), the vendor's custom resources and the app's
// ConfigMaps by the policy's selector. Only what is named or matches
// reaches dc-west; an include entry's selector the sync cannot use is
// named in PlanValid, and the pair says the policy is not synced.
func TestIncludeEntriesChooseAVendorsObjects(t *testing.T) {
	ctx := context.Background()
	ns := "vendor-kinds"
	kc, err := west.Kubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	gadgets := strings.NewReplacer("widgets", "gadgets", "Widget", "Gadget", "widget", "gadget").Replace(widgetCRD)
	sprockets := strings.NewReplacer("widgets", "sprockets", "Widget", "Sprocket", "widget", "sprocket").Replace(widgetCRD)
	apply(t, east.Client, ns, gadgets+"\n---\n"+sprockets+`
---
apiVersion: v1
kind: Namespace
metadata:
  name: NS
  annotations: {tandem.dev/sync-cluster-kinds: CustomResourceDefinition.apiextensions.k8s.io}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: NS, labels: {app: vendor}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other, namespace: NS}`)
	gadget := testbed.MustDecode(t, strings.ReplaceAll(`
apiVersion: vendor.tandem.test/v1
kind: Gadget
metadata: {name: g1, namespace: NS, labels: {app: vendor}}`, "NS", ns))[0]
	waitFor(t, "dc-east serves Gadgets", func(ctx context.Context) (bool, error) {
		return east.Client.Create(ctx, gadget.DeepCopy()) == nil, nil
	})
	apply(t, east.Client, ns, pairOfApp+`---
apiVersion: tandem.dev/v1alpha1
kind: SyncPolicy
metadata: {name: app, namespace: NS}
spec:
  namespaces: {names: [NS]}
  selector: {matchLabels: {app: vendor}}
  resources:
    include:
    - {kind: ConfigMap}
    - {group: vendor.tandem.test, kind: Gadget}
    - {group: apiextensions.k8s.io, kind: CustomResourceDefinition, names: [gadgets.vendor.tandem.test]}`)
	kubeconfigSecret(t, ns, "dc-west-kubeconfig", kc)

	onWest := func(apiVersion, kind, namespace, name string) bool {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		return west.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, u) == nil
	}
	waitFor(t, "the named CRD, its Gadget and the labelled ConfigMap reach dc-west", func(context.Context) (bool, error) {
		return onWest("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "gadgets.vendor.tandem.test") &&
			onWest("vendor.tandem.test/v1", "Gadget", ns, "g1") && onWest("v1", "ConfigMap", ns, "cfg"), nil
	})
	if onWest("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "sprockets.vendor.tandem.test") || onWest("v1", "ConfigMap", ns, "other") {
		t.Fatal("an unnamed CRD or an unlabelled ConfigMap reached dc-west")
	}
	policy := &tandemv1.SyncPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}}
	if err := east.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy); err != nil {
		t.Fatal(err)
	}
	if c := condition(policy.Status.Conditions, tandemv1.PlanValidCondition); c == nil || strings.Contains(c.Message, "gadgets.vendor.tandem.test") {
		t.Fatalf("PlanValid %+v: the selected CRD is not a missing dependency", c)
	}

	policy.Spec.Resources.Include = append(policy.Spec.Resources.Include, tandemv1.KindSelection{
		GroupKind: tandemv1.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "Role"},
		Selector:  &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near", Values: []string{"x"}}}},
	})
	if err := east.Client.Update(ctx, policy); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "PlanValid and the pair's Synced name the bad selector", func(ctx context.Context) (bool, error) {
		if err := east.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy); err != nil {
			return false, err
		}
		var pair tandemv1.HAPair
		if err := east.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, &pair); err != nil {
			return false, err
		}
		plan, synced := condition(policy.Status.Conditions, tandemv1.PlanValidCondition), condition(pair.Status.Conditions, tandemv1.SyncedCondition)
		const field = "spec.resources.include[3].selector"
		return plan != nil && plan.Reason == tandemv1.InvalidSpecReason && strings.Contains(plan.Message, field) &&
				synced != nil && synced.Reason == tandemv1.InvalidSpecReason && strings.Contains(synced.Message, field),
			fmt.Errorf("PlanValid %+v, Synced %+v", plan, synced)
	})
}
