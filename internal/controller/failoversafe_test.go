package controller

import (
	"strings"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// A witness Lease that does not outlast the operator's own takeover is
// flagged with both figures and what to change; one that does is True; an
// operator that knows no budget says nothing.
func TestFailoverSafeComparesTheWitnessLeaseWithTheTakeoverBudget(t *testing.T) {
	for _, tc := range []struct {
		lease, budget time.Duration
		status        metav1.ConditionStatus
		reason        string
		says          []string
	}{
		{4 * time.Second, 12 * time.Second, metav1.ConditionFalse, tandemv1.LeaseShorterThanTakeoverReason,
			[]string{"spec.witness.leaseDuration 4s is not longer than the operator's takeover budget 12s", "raise spec.witness.leaseDuration above 12s", "--leader-elect-lease-duration"}},
		{12 * time.Second, 12 * time.Second, metav1.ConditionFalse, tandemv1.LeaseShorterThanTakeoverReason, []string{"12s is not longer"}},
		{15 * time.Second, 12 * time.Second, metav1.ConditionTrue, tandemv1.LeaseOutlastsTakeoverReason, []string{"15s outlasts the operator's takeover budget 12s"}},
	} {
		pair := &tandemv1.HAPair{}
		setFailoverSafe(pair, tc.lease, tc.budget)
		c := apimeta.FindStatusCondition(pair.Status.Conditions, tandemv1.FailoverSafeCondition)
		if c == nil || c.Status != tc.status || c.Reason != tc.reason {
			t.Fatalf("lease %s, budget %s: FailoverSafe %+v; want %s/%s", tc.lease, tc.budget, c, tc.status, tc.reason)
		}
		for _, s := range tc.says {
			if !strings.Contains(c.Message, s) {
				t.Errorf("lease %s, budget %s: message %q lacks %q", tc.lease, tc.budget, c.Message, s)
			}
		}
		setFailoverSafe(pair, tc.lease, 0)
		if apimeta.FindStatusCondition(pair.Status.Conditions, tandemv1.FailoverSafeCondition) != nil {
			t.Fatalf("an operator without a takeover budget left FailoverSafe set")
		}
	}
}
