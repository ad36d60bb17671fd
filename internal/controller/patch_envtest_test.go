package controller_test

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/controller"
)

// The role record is written under an optimistic lock against the pair's
// current resourceVersion: after the reconcile itself wrote the pair (the
// mirror's annotation), the record still lands; after anyone else wrote it,
// the record is refused and the newer one stays.
func TestRoleRecordIsWrittenUnderAnOptimisticLock(t *testing.T) {
	ctx := context.Background()
	ns := "patch-lock"
	apply(t, east.Client, ns, pairAndPolicy)
	// The manager would reconcile the pair; this test writes the record
	// itself, on a pair the operator ignores (suspended).
	pair := &tandemv1.HAPair{}
	key := client.ObjectKey{Namespace: ns, Name: "shop"}
	if err := east.Client.Get(ctx, key, pair); err != nil {
		t.Fatal(err)
	}
	orig := pair.DeepCopy()
	pair.Spec.Suspend = true
	if err := east.Client.Patch(ctx, pair, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}

	// Once the operator has reported the suspension it writes no more.
	waitFor(t, "the suspension reported", func(ctx context.Context) (bool, error) {
		p := &tandemv1.HAPair{}
		if err := east.Client.Get(ctx, key, p); err != nil {
			return false, err
		}
		c := apimeta.FindStatusCondition(p.Status.Conditions, tandemv1.SyncedCondition)
		return c != nil && c.Reason == tandemv1.SuspendedReason, nil
	})
	read := func() *tandemv1.HAPair {
		t.Helper()
		p := &tandemv1.HAPair{}
		if err := east.Client.Get(ctx, key, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write := func(obj *tandemv1.HAPair, p controller.PairPatcher, rec int64) error {
		obj.Status.ActiveCluster, obj.Status.Epoch = "dc-east", rec
		return p.PatchStatus(ctx, obj, true)
	}

	obj := read()
	p := controller.NewPairPatcher(east.Client, obj)
	metav1.SetMetaDataAnnotation(&obj.ObjectMeta, controller.MirrorAnnotation, "abc")
	if err := p.Patch(ctx, obj); err != nil {
		t.Fatalf("writing the mirror annotation: %v", err)
	}
	if err := write(obj, p, 7); err != nil {
		t.Fatalf("the record after the reconcile's own write was refused: %v", err)
	}
	if got := read(); got.Status.Epoch != 7 || got.Annotations[controller.MirrorAnnotation] != "abc" {
		t.Fatalf("stored epoch %d, annotation %q; want 7 and abc", got.Status.Epoch, got.Annotations[controller.MirrorAnnotation])
	}

	stale := read()
	ps := controller.NewPairPatcher(east.Client, stale)
	newer := read()
	newer.Status.Epoch = 9
	if err := east.Client.Status().Update(ctx, newer); err != nil {
		t.Fatal(err)
	}
	if err := write(stale, ps, 8); !apierrors.IsConflict(err) {
		t.Fatalf("a record from a stale read: %v, want a conflict", err)
	}
	if got := read(); got.Status.Epoch != 9 {
		t.Fatalf("stored epoch %d after the stale write, want 9", got.Status.Epoch)
	}
}
