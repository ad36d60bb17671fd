package fence

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func newWitness(t *testing.T) (client.Client, *clocktesting.FakeClock, LeaseRef) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := coordinationv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).Build(),
		clocktesting.NewFakeClock(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)),
		LeaseRef{Namespace: "tandem-system", Name: LeaseName("shop", "shop"), Duration: 15 * time.Second}
}

// The standby takes the Lease only after watching it go unrenewed for the
// whole duration on its own clock, and with a higher epoch.
func TestStandbyTakesTheLeaseOnlyAfterItExpired(t *testing.T) {
	ctx := context.Background()
	c, clk, ref := newWitness(t)
	east := &Witness{Clock: clk}
	west := &Witness{Clock: clk}

	if err := east.Renew(ctx, c, ref, "dc-east", 1); err != nil {
		t.Fatal(err)
	}
	if got := east.LastRenew(ref); !got.Equal(clk.Now()) {
		t.Fatalf("LastRenew = %v, want %v", got, clk.Now())
	}
	if err := west.Acquire(ctx, c, ref, "dc-west", 2); !IsHeld(err) {
		t.Fatalf("Acquire of a fresh Lease: %v, want HeldError", err)
	}
	clk.Step(10 * time.Second)
	if err := east.Renew(ctx, c, ref, "dc-east", 1); err != nil {
		t.Fatal(err)
	}
	clk.Step(10 * time.Second)
	// 20s since west first saw it, but it was renewed 10s ago.
	if err := west.Acquire(ctx, c, ref, "dc-west", 2); !IsHeld(err) {
		t.Fatalf("Acquire of a renewed Lease: %v, want HeldError", err)
	}
	clk.Step(16 * time.Second)
	if err := west.Acquire(ctx, c, ref, "dc-west", 1); !IsSuperseded(err) {
		t.Fatalf("Acquire at the holder's epoch: %v, want SupersededError", err)
	}
	if err := west.Acquire(ctx, c, ref, "dc-west", 2); err != nil {
		t.Fatalf("Acquire of an expired Lease: %v", err)
	}
	v, err := east.Read(ctx, c, ref)
	if err != nil {
		t.Fatal(err)
	}
	if v.Record() != (Record{Active: "dc-west", Epoch: 2}) || v.Expired {
		t.Fatalf("Lease after takeover = %+v", v)
	}
	// The old holder comes back and may not renew its lower epoch.
	if err := east.Renew(ctx, c, ref, "dc-east", 1); !IsSuperseded(err) {
		t.Fatalf("Renew by the old holder: %v, want SupersededError", err)
	}
	// Taking it again at the same epoch is a repeat after a crash: allowed.
	if err := west.Acquire(ctx, c, ref, "dc-west", 2); err != nil {
		t.Fatalf("repeated Acquire: %v", err)
	}
}

func TestAMissingLeaseIsTakenAtOnce(t *testing.T) {
	ctx := context.Background()
	c, clk, ref := newWitness(t)
	w := &Witness{Clock: clk}
	v, err := w.Read(ctx, c, ref)
	if err != nil || !v.Expired || v.Record().Known() {
		t.Fatalf("Read of a missing Lease = %+v, %v", v, err)
	}
	if err := w.Acquire(ctx, c, ref, "dc-west", 1); err != nil {
		t.Fatal(err)
	}
	var lease coordinationv1.Lease
	if err := c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, &lease); err != nil {
		t.Fatal(err)
	}
	if *lease.Spec.HolderIdentity != "dc-west" || lease.Annotations[EpochAnnotation] != "1" || *lease.Spec.LeaseDurationSeconds != 15 {
		t.Fatalf("Lease = %+v", lease)
	}
}

// A planned switchover hands the Lease over without waiting for expiry,
// only from its holder and only to the next epoch; repeating it is safe.
func TestHandoverPassesTheLeaseToTheNextEpoch(t *testing.T) {
	ctx := context.Background()
	c, clk, ref := newWitness(t)
	w := &Witness{Clock: clk}
	if err := w.Renew(ctx, c, ref, "dc-east", 1); err != nil {
		t.Fatal(err)
	}
	if err := w.Handover(ctx, c, ref, "dc-west", "dc-east", 2); !IsSuperseded(err) {
		t.Fatalf("handover by a cluster that does not hold the Lease: %v", err)
	}
	for range 2 {
		if err := w.Handover(ctx, c, ref, "dc-east", "dc-west", 2); err != nil {
			t.Fatalf("handover: %v", err)
		}
	}
	v, err := w.Read(ctx, c, ref)
	if err != nil || v.Record() != (Record{Active: "dc-west", Epoch: 2}) {
		t.Fatalf("Lease after the handover = %+v, %v", v, err)
	}
	if err := w.Renew(ctx, c, ref, "dc-east", 1); !IsSuperseded(err) {
		t.Fatalf("the old holder renewed after the handover: %v", err)
	}
}
