package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/controller"
	"github.com/tandem-dev/tandem/internal/tenancy"
)

// A team that may create SyncPolicies and HAPairs in its own namespace
// reaches only that namespace until a cluster admin grants more on the
// Namespace: the API server refuses a policy naming another team's
// namespace, and a policy whose namespace selector and included kinds
// reach further copies and parks only what is granted, and says what it
// left out. With the grant, the same policy copies the rest.
func TestATeamReachesOnlyWhatItIsGranted(t *testing.T) {
	ctx := context.Background()
	own, other := "team-a", "team-b"
	kc, err := west.Kubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{own, other} {
		apply(t, east.Client, ns, `
apiVersion: v1
kind: Namespace
metadata: {name: NS, labels: {tenancy-test: "yes", shop: "yes"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config, namespace: NS, labels: {shop: "yes"}}
data: {TEAM: NS}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS, labels: {shop: "yes"}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: registry.example/web:1}]}`)
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "team-a-reader", Labels: map[string]string{"shop": "yes"}}}
	if err := east.Client.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	kubeconfigSecret(t, own, "dc-west-kubeconfig", kc)

	// Naming another team's namespace is refused at admission, naming
	// the field and how to grant it.
	named := &tandemv1.SyncPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: own, Name: "named"},
		Spec: tandemv1.SyncPolicySpec{Namespaces: tandemv1.NamespaceSelection{Names: []string{own, other}}}}
	err = east.Client.Create(ctx, named.DeepCopy())
	if err == nil || !strings.Contains(err.Error(), "spec.namespaces.names: namespace team-b is not granted to the policies of namespace team-a") ||
		!strings.Contains(err.Error(), tenancy.NamespacesAnnotation) {
		t.Fatalf("creating a policy naming team-b: %v; want it refused naming the field and the annotation", err)
	}
	// A route in another namespace likewise.
	routed := &tandemv1.HAPair{ObjectMeta: metav1.ObjectMeta{Namespace: own, Name: "routed"}, Spec: tandemv1.HAPairSpec{
		Clusters: []tandemv1.ClusterSpec{{Name: "dc-east"}, {Name: "dc-west", KubeconfigSecretRef: &tandemv1.SecretKeyRef{Name: "dc-west-kubeconfig"}}},
		Primary:  "dc-east",
		Traffic:  &tandemv1.TrafficSpec{Routes: []tandemv1.RouteRef{{Kind: "Ingress", Namespace: other, Name: "web"}}},
	}}
	if err := east.Client.Create(ctx, routed.DeepCopy()); err == nil || !strings.Contains(err.Error(), "spec.traffic.routes: namespace team-b is not granted") {
		t.Fatalf("creating a pair routing in team-b: %v; want it refused naming the field", err)
	}

	// A selector and a cluster-scoped kind cannot be judged at admission:
	// the operator narrows them.
	apply(t, east.Client, own, pairOfApp+`---
apiVersion: tandem.dev/v1alpha1
kind: SyncPolicy
metadata: {name: app, namespace: NS}
spec:
  namespaces: {selector: {matchLabels: {tenancy-test: "yes"}}}
  selector: {matchLabels: {shop: "yes"}}
  resources:
    include:
    - {group: rbac.authorization.k8s.io, kind: ClusterRole}
    - {kind: ConfigMap}
    - {group: apps, kind: Deployment}`)
	onWest := func(obj client.Object) bool {
		err := west.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}
	ownConfig := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: own, Name: "config"}}
	otherConfig := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "config"}}
	waitFor(t, "team-a's ConfigMap reaches dc-west", func(context.Context) (bool, error) {
		return onWest(ownConfig.DeepCopy()), nil
	})
	var policy tandemv1.SyncPolicy
	waitFor(t, "the policy says the ClusterRole is not granted", func(ctx context.Context) (bool, error) {
		if err := east.Client.Get(ctx, client.ObjectKey{Namespace: own, Name: "app"}, &policy); err != nil {
			return false, err
		}
		c := condition(policy.Status.Conditions, tandemv1.PlanValidCondition)
		return c != nil && c.Reason == tandemv1.NotGrantedReason && policy.Status.InSync > 0, fmt.Errorf("status %+v", policy.Status)
	})
	want := "spec.resources.include[0]: ClusterRole.rbac.authorization.k8s.io is cluster-scoped"
	if c := condition(policy.Status.Conditions, tandemv1.PlanValidCondition); c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, want) {
		t.Fatalf("PlanValid = %+v; want False saying %q", c, want)
	}
	kstatusIs(t, east.Client, &policy, kstatus.FailedStatus, want)
	if c := condition(policy.Status.Conditions, tandemv1.PlanValidCondition); !strings.Contains(c.Message,
		"spec.namespaces.selector matches namespace team-b, not granted to the policies of namespace team-a") {
		t.Errorf("PlanValid %q does not name team-b, which the selector matches", c.Message)
	}
	if policy.Status.Selected != 3 {
		t.Errorf("selected %d, want 3 (team-a's Namespace, ConfigMap and Deployment)", policy.Status.Selected)
	}
	if onWest(otherConfig.DeepCopy()) || onWest(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role.Name}}) {
		t.Fatal("team-b's ConfigMap or the ClusterRole reached dc-west without a grant")
	}
	// Local actions (parking on demotion, fencing, quiesce) work on the
	// same narrowed policies: team-b's Deployment is not among them.
	var pair tandemv1.HAPair
	if err := east.Client.Get(ctx, client.ObjectKey{Namespace: own, Name: "shop"}, &pair); err != nil {
		t.Fatal(err)
	}
	workloads := func() []string {
		ws, err := controller.Workloads{Policies: east.Client}.On(ctx, east.Client, &pair)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, w := range ws {
			out = append(out, w.GetNamespace()+"/"+w.GetName())
		}
		return out
	}
	if got := workloads(); strings.Join(got, ",") != "team-a/web" {
		t.Fatalf("workloads parked on demotion: %v, want only team-a/web", got)
	}

	// The cluster admin grants team-b and ClusterRoles.
	var nsObj corev1.Namespace
	if err := east.Client.Get(ctx, client.ObjectKey{Name: own}, &nsObj); err != nil {
		t.Fatal(err)
	}
	base := nsObj.DeepCopy()
	nsObj.Annotations = map[string]string{tenancy.NamespacesAnnotation: other, tenancy.ClusterKindsAnnotation: "ClusterRole.rbac.authorization.k8s.io"}
	if err := east.Client.Patch(ctx, &nsObj, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "with the grant, team-b's ConfigMap and the ClusterRole reach dc-west", func(context.Context) (bool, error) {
		return onWest(otherConfig.DeepCopy()) && onWest(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role.Name}}), nil
	})
	kstatusIs(t, east.Client, &policy, kstatus.CurrentStatus, "")
	if got := workloads(); strings.Join(got, ",") != "team-a/web,team-b/web" {
		t.Fatalf("workloads with the grant: %v, want both teams'", got)
	}
	// And the API server now accepts the policy naming team-b.
	if err := east.Client.Create(ctx, named.DeepCopy()); err != nil {
		t.Fatalf("with the grant, creating a policy naming team-b: %v", err)
	}
}
