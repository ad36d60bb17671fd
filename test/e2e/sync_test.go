package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/replicate"
	"github.com/tandem-dev/tandem/test/testbed"
)

// installTandem puts the CRDs and admission policy into a data center, with
// the operator's namespace.
func installTandem(t *testing.T, c *testbed.Cluster) {
	t.Helper()
	ctx := context.Background()
	root := testbed.RepoRoot()
	if err := testbed.ApplyDir(ctx, c.Client, filepath.Join(root, "config", "crd", "bases")); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tandem-system"}}); err != nil {
		t.Fatal(err)
	}
	// CRDs are served a moment after they are created.
	if err := testbed.Poll(ctx, 30*time.Second, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		err := c.Client.List(ctx, &tandemv1.HAPairList{})
		return err == nil, err
	}); err != nil {
		t.Fatal(err)
	}
	if err := testbed.ApplyDir(ctx, c.Client, filepath.Join(root, "config", "admission")); err != nil {
		t.Fatal(err)
	}
}

// pairNamespace creates namespace ns on the active cluster with the Secret
// holding the standby's kubeconfig (certificates embedded), as a platform
// team would before applying an HAPair, plus extra objects.
func pairNamespace(t *testing.T, active, standby *testbed.Cluster, ns string, extra ...client.Object) {
	t.Helper()
	kc, err := standby.FlatKubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	objs := append([]client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: standby.Name + "-kubeconfig"}, Data: map[string][]byte{"kubeconfig": kc}},
	}, extra...)
	for _, o := range objs {
		if err := active.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// The operator of dc-east, a local process with --cluster-name dc-east,
// copies the app to dc-west through a kubeconfig Secret: workloads run on
// dc-east and wait at 0 replicas on dc-west; a change and a deletion follow.
func TestOperatorSyncsTheActiveDataCenterToTheStandby(t *testing.T) {
	ctx := context.Background()
	_, clusters := upBed(t, testbed.UpOptions{Nodes: 1})
	east, west := clusters[testbed.East], clusters[testbed.West]
	installTandem(t, east)

	pairNamespace(t, east, west, "shop",
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "config"}, Data: map[string]string{"SITE": "east"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}})
	if err := createDeployment(ctx, east.Client, "shop", "web", 3); err != nil {
		t.Fatal(err)
	}
	if err := waitAvailable(ctx, east.Client, "shop", "web", 3); err != nil {
		t.Fatal(err)
	}

	op := testbed.StartOperator(t, east, testbed.East)
	if err := op.WaitHealthy(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, o := range []client.Object{
		&tandemv1.SyncPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "app"},
			Spec:       tandemv1.SyncPolicySpec{Namespaces: tandemv1.NamespaceSelection{Names: []string{"shop"}}},
		},
		&tandemv1.HAPair{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"},
			Spec: tandemv1.HAPairSpec{
				Clusters: []tandemv1.ClusterSpec{
					{Name: testbed.East},
					{Name: testbed.West, KubeconfigSecretRef: &tandemv1.SecretKeyRef{Name: "dc-west-kubeconfig"}},
				},
				Primary:        testbed.East,
				SyncPolicyRefs: []tandemv1.LocalObjectReference{{Name: "app"}},
			},
		},
	} {
		if err := east.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	var pair tandemv1.HAPair
	if err := testbed.Poll(ctx, 60*time.Second, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		if err := east.Client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "shop"}, &pair); err != nil {
			return false, err
		}
		for _, c := range pair.Status.Conditions {
			if c.Type == tandemv1.SyncedCondition && c.Status == metav1.ConditionTrue {
				return true, nil
			}
		}
		return false, fmt.Errorf("conditions %+v", pair.Status.Conditions)
	}); err != nil {
		t.Fatalf("the pair never reported Synced: %v\n%s", err, op.Logs())
	}
	t.Logf("dc-east synced %d objects to dc-west in %s", pair.Status.Sync.Selected, time.Since(start).Round(time.Millisecond))

	// On dc-west: the Deployment waits at 0 with the source's 3 kept, the
	// ConfigMap is there, the kubeconfig Secret is not.
	var d appsv1.Deployment
	if err := west.Client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, &d); err != nil {
		t.Fatalf("the Deployment is not on dc-west: %v", err)
	}
	if *d.Spec.Replicas != 0 || d.Annotations[replicate.ReplicasAnnotation] != "3" {
		t.Errorf("dc-west Deployment: %d replicas, annotation %q; want 0 and 3", *d.Spec.Replicas, d.Annotations[replicate.ReplicasAnnotation])
	}
	var pods corev1.PodList
	if err := west.Client.List(ctx, &pods, client.InNamespace("shop")); err != nil || len(pods.Items) != 0 {
		t.Errorf("dc-west runs %d pods of the warm standby (err %v)", len(pods.Items), err)
	}
	if err := west.Client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "dc-west-kubeconfig"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("the kubeconfig Secret reached dc-west (err %v)", err)
	}

	// dc-west's own controllers give the copied Service's EndpointSlice
	// the Service's labels, Tandem's among them: kubectl tandem copies
	// tells it from the copies.
	var slices discoveryv1.EndpointSliceList
	if err := testbed.Poll(ctx, 30*time.Second, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		err := west.Client.List(ctx, &slices, client.InNamespace("shop"), client.MatchingLabels{discoveryv1.LabelServiceName: "web", replicate.PairLabel: "shop"})
		return err == nil && len(slices.Items) > 0, err
	}); err != nil {
		t.Fatalf("dc-west made no EndpointSlice with the copied Service's labels: %v", err)
	}
	marked, _, err := replicate.FindMarked(ctx, west.Config, "shop", "shop")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, m := range marked {
		if m.Copy {
			kinds[m.Ref.String()] = "copy"
		} else {
			kinds[m.Ref.String()] = m.Why
		}
	}
	for _, want := range []string{"Deployment.apps shop/web", "Service shop/web", "ConfigMap shop/config"} {
		if kinds[want] != "copy" {
			t.Errorf("%s: %q, want a copy (found %v)", want, kinds[want], kinds)
		}
	}
	slice := "EndpointSlice.discovery.k8s.io shop/" + slices.Items[0].Name
	if kinds[slice] != "made by Service web" {
		t.Errorf("%s: %q, want it told apart as made by Service web (found %v)", slice, kinds[slice], kinds)
	}

	// A change follows within about a second; a deletion is pruned.
	var cm corev1.ConfigMap
	if err := east.Client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "config"}, &cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["SITE"] = "changed"
	changed := time.Now()
	if err := east.Client.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	if err := testbed.Poll(ctx, 10*time.Second, 20*time.Millisecond, func(ctx context.Context) (bool, error) {
		var got corev1.ConfigMap
		err := west.Client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "config"}, &got)
		return err == nil && got.Data["SITE"] == "changed", err
	}); err != nil {
		t.Fatalf("the change did not reach dc-west: %v", err)
	}
	t.Logf("a change reached dc-west %s after it was made on dc-east", time.Since(changed).Round(time.Millisecond))

	if err := east.Client.Delete(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	if err := testbed.Poll(ctx, 10*time.Second, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		err := west.Client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "config"}, &corev1.ConfigMap{})
		return apierrors.IsNotFound(err), err
	}); err != nil {
		t.Fatalf("the deleted ConfigMap was not pruned from dc-west: %v", err)
	}
	if !strings.Contains(op.Logs(), "Started a sync") {
		t.Errorf("the operator's log does not record the sync start:\n%s", op.Logs())
	}
}
