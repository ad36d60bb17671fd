package fence

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func servingLease(t *testing.T, c client.Client) *coordinationv1.Lease {
	t.Helper()
	var l coordinationv1.Lease
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: ServingLeaseName("shop")}, &l); err != nil {
		t.Fatal(err)
	}
	return &l
}

// The sidecar serves only while the operator's last confirmation is younger
// than the lease duration: a renewal keeps it open, silence closes it
// without anyone writing, and the operator's close is immediate.
func TestTheGateClosesWhenTheConfirmationIsOlderThanTheLease(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	if err := coordinationv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC))
	gate := &Gate{Clock: clk}

	if open, why := gate.Open(); open || !strings.Contains(why, "not been read") {
		t.Fatalf("before the first read: open=%v %q", open, why)
	}
	if err := WriteServing(ctx, c, "shop", "shop", Closed); err != nil {
		t.Fatal(err)
	}
	gate.Observe(nil)
	if open, _ := gate.Open(); open {
		t.Fatal("open without a Lease")
	}

	confirmed := clk.Now().Add(-time.Second)
	if err := WriteServing(ctx, c, "shop", "shop", Grant{Holder: "dc-east", Since: confirmed, For: 4 * time.Second}); err != nil {
		t.Fatal(err)
	}
	gate.Observe(servingLease(t, c))
	if open, why := gate.Open(); !open {
		t.Fatalf("confirmed 1s ago with a 4s lease: closed (%s)", why)
	}
	clk.Step(2900 * time.Millisecond)
	if open, _ := gate.Open(); !open {
		t.Fatal("closed 3.9s after the confirmation")
	}
	clk.Step(100 * time.Millisecond)
	if open, why := gate.Open(); open || !strings.Contains(why, "dc-east confirmed its role 4s ago") {
		t.Fatalf("4s after the confirmation: open=%v %q", open, why)
	}

	// A renewal opens it again; a frozen process that thaws a minute
	// later finds it closed without a new read.
	if err := WriteServing(ctx, c, "shop", "shop", Grant{Holder: "dc-east", Since: clk.Now(), For: 4 * time.Second}); err != nil {
		t.Fatal(err)
	}
	gate.Observe(servingLease(t, c))
	if open, _ := gate.Open(); !open {
		t.Fatal("closed after a renewal")
	}
	clk.Step(time.Minute)
	if open, _ := gate.Open(); open {
		t.Fatal("open a minute after the last confirmation")
	}

	// A confirmation stamped by a clock ahead of the sidecar's lasts no
	// longer than the duration from when the sidecar saw it.
	if err := WriteServing(ctx, c, "shop", "shop", Grant{Holder: "dc-east", Since: clk.Now().Add(10 * time.Second), For: 4 * time.Second}); err != nil {
		t.Fatal(err)
	}
	gate.Observe(servingLease(t, c))
	clk.Step(4 * time.Second)
	if open, _ := gate.Open(); open {
		t.Fatal("a grant from a clock ahead served past its duration")
	}

	if err := WriteServing(ctx, c, "shop", "shop", Grant{Holder: "dc-east", Since: clk.Now(), For: 4 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := WriteServing(ctx, c, "shop", "shop", Closed); err != nil {
		t.Fatal(err)
	}
	gate.Observe(servingLease(t, c))
	if open, why := gate.Open(); open || !strings.Contains(why, "not the active side") {
		t.Fatalf("after the operator closed it: open=%v %q", open, why)
	}

	if err := WriteServing(ctx, c, "shop", "shop", Grant{Suspended: true, Holder: "dc-east", Since: clk.Now(), For: 4 * time.Second}); err != nil {
		t.Fatal(err)
	}
	gate.Observe(servingLease(t, c))
	clk.Step(time.Hour)
	if open, _ := gate.Open(); !open {
		t.Fatal("a suspended pair's pods stopped serving")
	}
}

// Writing the same grant twice is one write: the operator repeats it every
// round.
func TestWritingTheSameGrantDoesNotWriteAgain(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	_ = coordinationv1.AddToScheme(scheme)
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	g := Grant{Holder: "dc-east", Since: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC), For: 4500 * time.Millisecond}
	if err := WriteServing(ctx, c, "shop", "shop", g); err != nil {
		t.Fatal(err)
	}
	before := servingLease(t, c)
	if got := *before.Spec.LeaseDurationSeconds; got != 4 {
		t.Fatalf("leaseDurationSeconds = %d, want 4 (rounded down)", got)
	}
	if err := WriteServing(ctx, c, "shop", "shop", g); err != nil {
		t.Fatal(err)
	}
	if after := servingLease(t, c); after.ResourceVersion != before.ResourceVersion {
		t.Fatalf("rewritten: %s -> %s", before.ResourceVersion, after.ResourceVersion)
	}
}
