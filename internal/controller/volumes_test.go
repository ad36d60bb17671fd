package controller

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/volume"
)

func TestVolumesProtectedCondition(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	claim := func(name string, rpo time.Duration, problem string) volume.ClaimState {
		c := volume.ClaimState{Key: volume.ClaimKey{Namespace: "shop", Name: name}, RPO: rpo, Problem: problem}
		if rpo >= 0 {
			c.NewestReplica = now.Add(-rpo)
		}
		return c
	}
	cases := []struct {
		name   string
		claims []volume.ClaimState
		status metav1.ConditionStatus
		reason string
		says   string
		rpo    string
	}{
		{"all within the objective", []volume.ClaimState{claim("a", 5*time.Second, ""), claim("b", 12*time.Second, "")},
			metav1.ConditionTrue, tandemv1.ProtectedReason, "the oldest is 12s old (objective 30s)", "12s"},
		{"one over the objective", []volume.ClaimState{claim("a", 5*time.Second, ""), claim("b", 45*time.Second, "")},
			metav1.ConditionFalse, tandemv1.RPOBreachedReason, "1 of 2 PVCs: shop/b (45s)", "45s"},
		{"a failed snapshot", []volume.ClaimState{claim("a", 5*time.Second, "snapshot a-1 failed: disk full")},
			metav1.ConditionFalse, tandemv1.SnapshotFailedReason, "shop/a: snapshot a-1 failed: disk full", "5s"},
		{"no copy yet", []volume.ClaimState{claim("a", 5*time.Second, ""), claim("b", -1, "no snapshot is usable on the standby yet")},
			metav1.ConditionFalse, tandemv1.ReplicaPendingReason, "1 of 2 PVCs have no snapshot usable on dc-west yet", ""},
		{"policies select no PVC", nil, metav1.ConditionTrue, tandemv1.NoVolumesReason, "select no PVC", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pair := &tandemv1.HAPair{Spec: tandemv1.HAPairSpec{Objectives: &tandemv1.Objectives{RPO: &metav1.Duration{Duration: 30 * time.Second}}},
				Status: tandemv1.HAPairStatus{Volumes: &tandemv1.VolumeSummary{}}}
			setClaims(pair, c.claims)
			setVolumesProtected(pair, c.claims, "dc-west")
			cond := findCondition(pair, tandemv1.VolumesProtectedCondition)
			if cond == nil || cond.Status != c.status || cond.Reason != c.reason || !strings.Contains(cond.Message, c.says) {
				t.Fatalf("VolumesProtected = %+v, want %s/%s saying %q", cond, c.status, c.reason, c.says)
			}
			got := ""
			if r := pair.Status.Volumes.CurrentRPO; r != nil {
				got = r.Duration.String()
			}
			if got != c.rpo {
				t.Errorf("currentRPO = %q, want %q (unset while a PVC has no copy)", got, c.rpo)
			}
		})
	}
}
