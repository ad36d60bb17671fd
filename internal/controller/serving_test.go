package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/fence"
)

// The standby sees the active side's grant lapse only after watching it
// unrenewed for its duration and the witness grace, on its own clock; a
// renewal or a closed grant is seen at once.
func TestTheStandbySeesTheActiveSidesGrantLapse(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	if err := coordinationv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	pair := &tandemv1.HAPair{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"},
		Spec: tandemv1.HAPairSpec{
			Witness:  &tandemv1.WitnessSpec{LeaseDuration: &metav1.Duration{Duration: 4 * time.Second}},
			Failover: tandemv1.FailoverSpec{ProbePeriod: &metav1.Duration{Duration: time.Second}, ProbeTimeout: &metav1.Duration{Duration: 500 * time.Millisecond}, DataPlaneFence: tandemv1.DataPlaneFenceSidecar},
		},
		Status: tandemv1.HAPairStatus{ActiveCluster: "dc-east", Epoch: 1}}
	g := &PeerGrants{}
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)

	if lapsed, _, err := g.Lapsed(ctx, c, pair, now); err != nil || lapsed {
		t.Fatalf("no serving Lease (an older operator): lapsed=%v %v", lapsed, err)
	}
	if err := fence.WriteServing(ctx, c, "shop", "shop", fence.Grant{Holder: "dc-east", Since: now.Add(-time.Hour), For: 4 * time.Second}); err != nil {
		t.Fatal(err)
	}
	// Seen for the first time: just renewed, whatever time it carries.
	if lapsed, _, _ := g.Lapsed(ctx, c, pair, now); lapsed {
		t.Fatal("a grant seen for the first time lapsed at once")
	}
	// 4s + grace (1s + 3 x 0.5s) = 6.5s.
	if lapsed, _, _ := g.Lapsed(ctx, c, pair, now.Add(6400*time.Millisecond)); lapsed {
		t.Fatal("lapsed before its duration and the grace")
	}
	lapsed, why, _ := g.Lapsed(ctx, c, pair, now.Add(6500*time.Millisecond))
	if !lapsed || !strings.Contains(why, "dc-east has not renewed its serving Lease for 6.5s (it lasts 4s)") {
		t.Fatalf("after 6.5s unrenewed: lapsed=%v %q", lapsed, why)
	}
	if err := fence.WriteServing(ctx, c, "shop", "shop", fence.Grant{Holder: "dc-east", Since: now, For: 4 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if lapsed, _, _ := g.Lapsed(ctx, c, pair, now.Add(7*time.Second)); lapsed {
		t.Fatal("a renewed grant still lapsed")
	}
	if err := fence.WriteServing(ctx, c, "shop", "shop", fence.Closed); err != nil {
		t.Fatal(err)
	}
	if lapsed, why, _ := g.Lapsed(ctx, c, pair, now.Add(7*time.Second)); !lapsed || !strings.Contains(why, "closed its serving Lease") {
		t.Fatalf("a closed grant: lapsed=%v %q", lapsed, why)
	}
	if !sidecarFenced(pair) {
		t.Fatal("a pair with a witness and dataPlaneFence Sidecar is not sidecar-fenced")
	}
	pair.Spec.Failover.DataPlaneFence = tandemv1.DataPlaneFenceNone
	if sidecarFenced(pair) {
		t.Fatal("dataPlaneFence None takes over from a lapsed grant: pods without the sidecar would serve twice")
	}
}

// The grant starts at the newer of the two confirmations MustFence counts,
// so the sidecars close exactly when the operator would fence.
func TestTheGrantStartsAtTheNewestConfirmation(t *testing.T) {
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	renew, peer := now.Add(-3*time.Second), now.Add(-time.Second)
	if got := servingConfirmed(fence.HoldInput{Witness: true, LastRenew: renew, LastPeerContact: peer}, now); !got.Equal(peer) {
		t.Fatalf("peer newer: %v, want %v", got, peer)
	}
	if got := servingConfirmed(fence.HoldInput{Witness: true, LastRenew: peer, LastPeerContact: renew}, now); !got.Equal(peer) {
		t.Fatalf("renewal newer: %v, want %v", got, peer)
	}
	if got := servingConfirmed(fence.HoldInput{}, now); !got.Equal(now) {
		t.Fatalf("no witness: %v, want now", got)
	}
}
