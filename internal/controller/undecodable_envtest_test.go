package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/test/testbed"
)

// An object that passed no admission (written while a CRD's schema was
// looser, or straight into etcd) and does not decode stops nothing else:
// lists that hold it still decode, so every other pair is probed and
// synced; it is reported on itself, naming the field; a pair referring to
// a policy that does not decode syncs its other policies and names the
// broken one; and fixing the field mends it.
func TestAnUndecodableObjectStopsNoOtherPair(t *testing.T) {
	ctx := context.Background()
	good, bad := "undecodable-good", "undecodable-bad"
	kc, err := west.Kubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	apply(t, east.Client, good, pairAndPolicy+"---"+app)
	apply(t, east.Client, bad, "apiVersion: v1\nkind: Namespace\nmetadata: {name: NS}\n")
	kubeconfigSecret(t, good, "dc-west-kubeconfig", kc)
	kubeconfigSecret(t, bad, "dc-west-kubeconfig", kc)
	waitFor(t, "the good pair's ConfigMap reaches dc-west", func(ctx context.Context) (bool, error) {
		return west.Client.Get(ctx, client.ObjectKey{Namespace: good, Name: "config"}, &corev1.ConfigMap{}) == nil, nil
	})

	// Below admission: the CRDs' spec schemas are loosened, the objects
	// stored, the schemas put back.
	belowAdmission(t, "hapairs.tandem.dev", func() {
		createRaw(t, bad, `
apiVersion: tandem.dev/v1alpha1
kind: HAPair
metadata: {name: shop, namespace: NS}
spec:
  clusters: [{name: dc-east}, {name: dc-west, kubeconfigSecretRef: {name: dc-west-kubeconfig}}]
  primary: dc-east
  traffic: {verifyTimeout: soon}`)
	})
	belowAdmission(t, "syncpolicies.tandem.dev", func() {
		createRaw(t, good, `
apiVersion: tandem.dev/v1alpha1
kind: SyncPolicy
metadata: {name: broken, namespace: NS}
spec:
  namespaces: {names: [NS]}
  fullResyncInterval: 99999999999999999999h`)
	})

	// What an informer does when it starts: the list decodes, the bad
	// object flagged, the others whole.
	fresh, err := client.New(east.Config, client.Options{Scheme: testbed.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	var pairs tandemv1.HAPairList
	if err := fresh.List(ctx, &pairs); err != nil {
		t.Fatalf("listing HAPairs with one that does not decode: %v", err)
	}
	flagged := 0
	for i := range pairs.Items {
		if e := pairs.Items[i].Undecodable(); e != nil {
			flagged++
			if pairs.Items[i].Namespace != bad || e.Field != "spec.traffic.verifyTimeout" {
				t.Errorf("%s/%s flagged: %v", pairs.Items[i].Namespace, pairs.Items[i].Name, e)
			}
		}
	}
	if flagged != 1 || len(pairs.Items) < 2 {
		t.Fatalf("%d of %d pairs flagged, want the bad one only", flagged, len(pairs.Items))
	}

	// Reported on itself, naming the field: kstatus reads Failed.
	badPair := &tandemv1.HAPair{ObjectMeta: metav1.ObjectMeta{Namespace: bad, Name: "shop"}}
	kstatusIs(t, east.Client, badPair, kstatus.FailedStatus, `spec.traffic.verifyTimeout cannot be decoded: time: invalid duration "soon"`)
	broken := &tandemv1.SyncPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: good, Name: "broken"}}
	kstatusIs(t, east.Client, broken, kstatus.FailedStatus, "spec.fullResyncInterval cannot be decoded")

	// The good pair refers to the broken policy too: its first policy
	// still syncs, and Synced names the broken one.
	var pair tandemv1.HAPair
	if err := east.Client.Get(ctx, client.ObjectKey{Namespace: good, Name: "shop"}, &pair); err != nil {
		t.Fatal(err)
	}
	base := pair.DeepCopy()
	pair.Spec.SyncPolicyRefs = append(pair.Spec.SyncPolicyRefs, tandemv1.LocalObjectReference{Name: "broken"})
	if err := east.Client.Patch(ctx, &pair, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	waitPair(t, good, tandemv1.SyncedCondition, "the good pair names the broken policy", func(_ *tandemv1.HAPair, c *metav1.Condition) bool {
		return c.Reason == tandemv1.InvalidSpecReason && strings.Contains(c.Message, "SyncPolicy "+good+"/broken: spec.fullResyncInterval cannot be decoded")
	})
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: good, Name: "config"}}
	if err := east.Client.Get(ctx, client.ObjectKeyFromObject(cm), cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["SITE"] = "east-2"
	if err := east.Client.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the good policy's change reaches dc-west", func(ctx context.Context) (bool, error) {
		var got corev1.ConfigMap
		err := west.Client.Get(ctx, client.ObjectKeyFromObject(cm), &got)
		return err == nil && got.Data["SITE"] == "east-2", fmt.Errorf("%v %v", err, got.Data)
	})

	// Fixing the field mends the pair: it is acted on again.
	fix := &unstructured.Unstructured{}
	fix.SetGroupVersionKind(tandemv1.GroupVersion.WithKind("HAPair"))
	fix.SetNamespace(bad)
	fix.SetName("shop")
	if err := east.Client.Patch(ctx, fix, client.RawPatch(client.Merge.Type(), []byte(`{"spec":{"traffic":{"verifyTimeout":"30s"}}}`))); err != nil {
		t.Fatalf("fixing the field: %v", err)
	}
	waitPair(t, bad, tandemv1.PeerReachableCondition, "the mended pair probes its peer", func(p *tandemv1.HAPair, c *metav1.Condition) bool {
		ready := condition(p.Status.Conditions, tandemv1.ReadyCondition)
		return c.Status == metav1.ConditionTrue && ready != nil && ready.Reason != tandemv1.UndecodableReason
	})
}

// belowAdmission runs store while the CRD's spec schema accepts anything,
// and puts the schema back; it waits until the API server serves each.
func belowAdmission(t *testing.T, crd string, store func()) {
	t.Helper()
	ctx := context.Background()
	get := func() *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("apiextensions.k8s.io/v1")
		u.SetKind("CustomResourceDefinition")
		if err := east.Client.Get(ctx, client.ObjectKey{Name: crd}, u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	saved, _, _ := unstructured.NestedSlice(get().Object, "spec", "versions")
	setVersions := func(versions []any) {
		waitFor(t, "updating CRD "+crd, func(ctx context.Context) (bool, error) {
			u := get()
			if err := unstructured.SetNestedSlice(u.Object, versions, "spec", "versions"); err != nil {
				return false, err
			}
			return east.Client.Update(ctx, u) == nil, nil
		})
	}
	loose := runtime.DeepCopyJSONValue(saved).([]any)
	v := loose[0].(map[string]any)
	if err := unstructured.SetNestedField(v, map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true},
		"schema", "openAPIV3Schema", "properties", "spec"); err != nil {
		t.Fatal(err)
	}
	unstructured.RemoveNestedField(v, "schema", "openAPIV3Schema", "x-kubernetes-validations")
	setVersions(loose)
	store()
	setVersions(saved)
}

// createRaw creates the object as written, retrying while the API server
// still validates with the schema it served before.
func createRaw(t *testing.T, ns, doc string) {
	t.Helper()
	u := testbed.MustDecode(t, strings.ReplaceAll(doc, "NS", ns))[0]
	waitFor(t, "storing "+u.GetKind()+" "+u.GetName()+" below admission", func(ctx context.Context) (bool, error) {
		err := east.Client.Create(ctx, u.DeepCopy())
		return err == nil, err
	})
}
