package controller_test

import (
	"context"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/controller"
)

// A pair applied on dc-east appears on dc-west with its SyncPolicy, so
// dc-west knows the pair even if dc-east is gone; an edit made on dc-west
// comes back to dc-east.
func TestPairAndPoliciesAreMirroredToThePeer(t *testing.T) {
	ctx := context.Background()
	ns := "shop-mirror"
	kc, err := west.Kubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	apply(t, east.Client, ns, "apiVersion: v1\nkind: Namespace\nmetadata: {name: NS}")
	apply(t, west.Client, ns, "apiVersion: v1\nkind: Namespace\nmetadata: {name: NS}")
	kubeconfigSecret(t, ns, "dc-west-kubeconfig", kc)
	apply(t, east.Client, ns, pairAndPolicy)

	key := client.ObjectKey{Namespace: ns, Name: "shop"}
	var theirs tandemv1.HAPair
	waitFor(t, "the pair mirrored to dc-west", func(ctx context.Context) (bool, error) {
		err := west.Client.Get(ctx, key, &theirs)
		return err == nil && theirs.Annotations[controller.MirrorAnnotation] != "", err
	})
	if theirs.Spec.Primary != "dc-east" || len(theirs.Spec.SyncPolicyRefs) != 1 {
		t.Fatalf("mirrored spec = %+v", theirs.Spec)
	}
	var policy tandemv1.SyncPolicy
	waitFor(t, "the SyncPolicy mirrored to dc-west", func(ctx context.Context) (bool, error) {
		err := west.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &policy)
		return err == nil, err
	})

	// An edit on the standby's copy is carried back to the active side.
	theirs.Spec.Failover.FailureThreshold = 7
	if err := west.Client.Update(ctx, &theirs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the edit made on dc-west carried to dc-east", func(ctx context.Context) (bool, error) {
		var ours tandemv1.HAPair
		err := east.Client.Get(ctx, key, &ours)
		return err == nil && ours.Spec.Failover.FailureThreshold == 7, err
	})
}
