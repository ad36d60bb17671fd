package switchover

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/remote"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// statusAt is a Failover recorded up to step i: steps before it ended,
// step i in phase p, the rest Pending.
func statusAt(i int, p tandemv1.StepPhase, started time.Time) *tandemv1.SwitchoverStatus {
	st := &tandemv1.SwitchoverStatus{}
	StartAll(st, failoverSteps, t0)
	for j := 0; j < i; j++ {
		EndStep(st, j, tandemv1.StepSucceeded, "", t0)
	}
	if i < len(failoverSteps) {
		st.Steps[i].Phase = p
		if p == tandemv1.StepRunning {
			ts := metav1.NewMicroTime(started)
			st.Steps[i].StartTime = &ts
		}
	}
	return st
}

// Resuming from status after a restart, from every step: a Pending step is
// recorded Running first, a Running step is run again (steps are
// idempotent), a step past its timeout fails, the end completes.
func TestDecideResumesFromEveryStep(t *testing.T) {
	timeout := time.Minute
	if d := Decide(&tandemv1.SwitchoverStatus{}, failoverSteps, t0, timeout); d.Action != Start {
		t.Fatalf("new Switchover: %+v, want Start", d)
	}
	for i := range failoverSteps {
		if d := Decide(statusAt(i, tandemv1.StepPending, t0), failoverSteps, t0, timeout); d != (Decision{Action: Begin, Step: i}) {
			t.Errorf("step %d Pending: %+v, want Begin %d", i, d, i)
		}
		if d := Decide(statusAt(i, tandemv1.StepRunning, t0), failoverSteps, t0.Add(timeout), timeout); d != (Decision{Action: Run, Step: i}) {
			t.Errorf("step %d Running within the timeout: %+v, want Run %d", i, d, i)
		}
		if d := Decide(statusAt(i, tandemv1.StepRunning, t0), failoverSteps, t0.Add(timeout+time.Second), timeout); d != (Decision{Action: TimeOut, Step: i}) {
			t.Errorf("step %d Running past the timeout: %+v, want TimeOut %d", i, d, i)
		}
		if d := Decide(statusAt(i, tandemv1.StepFailed, t0), failoverSteps, t0, timeout); d.Action != Done {
			t.Errorf("step %d Failed: %+v, want Done", i, d)
		}
	}
	if d := Decide(statusAt(len(failoverSteps), "", t0), failoverSteps, t0, timeout); d.Action != Complete {
		t.Fatalf("all steps ended: %+v, want Complete", d)
	}
	skipped := statusAt(2, tandemv1.StepPending, t0)
	EndStep(skipped, 2, tandemv1.StepSkipped, "nothing configured", t0)
	if d := Decide(skipped, failoverSteps, t0, timeout); d != (Decision{Action: Begin, Step: 3}) {
		t.Fatalf("after a skipped step: %+v, want Begin 3", d)
	}
	failed := statusAt(1, tandemv1.StepRunning, t0)
	EndStep(failed, 1, tandemv1.StepFailed, "boom", t0)
	if failed.Phase != tandemv1.PhaseFailed || failed.CompletionTime == nil {
		t.Fatalf("a failed step must fail the Switchover: %+v", failed)
	}
	if d := Decide(failed, failoverSteps, t0, timeout); d.Action != Done {
		t.Fatalf("failed Switchover: %+v, want Done", d)
	}
}

func TestConfirmLoss(t *testing.T) {
	pair := func(mutate func(*tandemv1.HAPair)) *tandemv1.HAPair {
		p := &tandemv1.HAPair{}
		p.Name = "shop"
		p.Spec.Failover.FailureThreshold = 3
		p.Status.ActiveCluster, p.Status.Epoch, p.Status.LocalRole = "dc-east", 1, tandemv1.RoleStandby
		if mutate != nil {
			mutate(p)
		}
		return p
	}
	failing := func(n int) remote.Health {
		return remote.Health{ConsecutiveFailures: n, LastProbe: t0, LastSuccess: t0.Add(-time.Duration(n) * time.Second), LastError: "/readyz: refused"}
	}
	for _, tc := range []struct {
		name     string
		pair     *tandemv1.HAPair
		health   remote.Health
		probed   bool
		fenced   bool
		fresh    bool
		ok, fail bool
	}{
		{name: "lost after the threshold", pair: pair(nil), health: failing(3), probed: true, ok: true},
		{name: "below the threshold waits", pair: pair(nil), health: failing(2), probed: true},
		{name: "not probed yet waits", pair: pair(nil)},
		{name: "peer answers: refused", pair: pair(nil), health: remote.Health{LastProbe: t0, LastSuccess: t0}, probed: true, fail: true},
		{name: "target already active", pair: pair(func(p *tandemv1.HAPair) { p.Status.ActiveCluster = "dc-west" }), health: failing(3), probed: true, fail: true},
		{name: "target fenced", pair: pair(func(p *tandemv1.HAPair) { p.Status.LocalRole = tandemv1.RoleFenced }), health: failing(3), probed: true, fail: true},
		{name: "pair suspended", pair: pair(func(p *tandemv1.HAPair) { p.Spec.Suspend = true }), health: failing(3), probed: true, fail: true},
		{name: "no role record yet waits", pair: pair(func(p *tandemv1.HAPair) { p.Status.ActiveCluster = "" }), health: failing(3), probed: true},
		{name: "peer answers but is fenced", pair: pair(nil), health: remote.Health{LastProbe: t0, LastSuccess: t0}, probed: true, fenced: true, ok: true},
		{name: "lost to the probes but the heartbeat is fresh: waits", pair: pair(nil), health: failing(5), probed: true, fresh: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := ConfirmLoss(LossCheck{Pair: tc.pair, Target: "dc-west", Health: tc.health, Probed: tc.probed, PeerFenced: tc.fenced, HeartbeatFresh: tc.fresh, Heartbeat: 700 * time.Millisecond})
			if v.OK != tc.ok || v.Fail != tc.fail || v.Message == "" {
				t.Fatalf("ConfirmLoss = %+v, want ok=%v fail=%v with a message", v, tc.ok, tc.fail)
			}
		})
	}
}

// A step that fails before traffic moved rolls back: the rollback step is
// appended and run, the steps in between are skipped, and the Switchover
// completes (as RolledBack) after it.
func TestDecideRunsTheRollBackAfterAFailure(t *testing.T) {
	st := statusAt(2, tandemv1.StepRunning, t0)
	FailAndRollBack(st, 2, "timed out", t0)
	if st.Phase != tandemv1.PhaseRunning || !RolledBack(st) {
		t.Fatalf("after FailAndRollBack: phase %s, steps %+v", st.Phase, st.Steps)
	}
	rb := len(st.Steps) - 1
	if d := Decide(st, failoverSteps, t0, time.Minute); d != (Decision{Action: Begin, Step: rb}) {
		t.Fatalf("after the failure: %+v, want Begin %d (the rollback)", d, rb)
	}
	for j := 3; j < rb; j++ {
		if st.Steps[j].Phase != tandemv1.StepSkipped {
			t.Fatalf("step %d after the failure: %s, want Skipped", j, st.Steps[j].Phase)
		}
	}
	BeginStep(st, rb, t0)
	if d := Decide(st, failoverSteps, t0, time.Minute); d != (Decision{Action: Run, Step: rb}) {
		t.Fatalf("rollback running: %+v", d)
	}
	EndStep(st, rb, tandemv1.StepSucceeded, "restored", t0)
	if d := Decide(st, failoverSteps, t0, time.Minute); d.Action != Complete {
		t.Fatalf("after the rollback: %+v, want Complete", d)
	}
	// A rollback that fails fails the Switchover.
	st2 := statusAt(2, tandemv1.StepRunning, t0)
	FailAndRollBack(st2, 2, "timed out", t0)
	EndStep(st2, len(st2.Steps)-1, tandemv1.StepFailed, "could not restore", t0)
	if st2.Phase != tandemv1.PhaseFailed {
		t.Fatalf("failed rollback: phase %s", st2.Phase)
	}
}

func TestPlannedPreconditions(t *testing.T) {
	synced := []metav1.Condition{{Type: tandemv1.SyncedCondition, Status: metav1.ConditionTrue, Reason: "Succeeded", Message: "9 objects in sync"}}
	pair := func(mutate func(*tandemv1.HAPair)) *tandemv1.HAPair {
		p := &tandemv1.HAPair{}
		p.Name = "shop"
		p.Spec.Clusters = []tandemv1.ClusterSpec{{Name: "dc-east"}, {Name: "dc-west"}}
		p.Status.ActiveCluster, p.Status.Epoch, p.Status.LocalRole = "dc-east", 3, tandemv1.RoleActive
		p.Status.Conditions = synced
		if mutate != nil {
			mutate(p)
		}
		return p
	}
	peer := func(mutate func(*tandemv1.HAPair)) *tandemv1.HAPair {
		p := pair(mutate)
		p.Status.LocalRole = tandemv1.RoleStandby
		return p
	}
	ok := PlannedCheck{Pair: pair(nil), Local: "dc-east", Target: "dc-west", PeerPair: peer(nil), MaxLag: 10 * time.Second}
	for _, tc := range []struct {
		name   string
		mutate func(*PlannedCheck)
		says   string
	}{
		{name: "all good"},
		{name: "target is this cluster", mutate: func(c *PlannedCheck) { c.Target = "dc-east" }, says: "is the cluster this switchover runs on"},
		{name: "target not in the pair", mutate: func(c *PlannedCheck) { c.Target = "dc-north" }, says: "not one of HAPair shop's clusters"},
		{name: "peer unreachable", mutate: func(c *PlannedCheck) { c.PeerErr = errString("connection refused"); c.PeerPair = nil }, says: "dc-west cannot be reached"},
		{name: "peer lacks the pair", mutate: func(c *PlannedCheck) { c.PeerPair = nil }, says: "does not have HAPair shop"},
		{name: "run on the standby", mutate: func(c *PlannedCheck) {
			c.Pair = pair(func(p *tandemv1.HAPair) {
				p.Status.LocalRole = tandemv1.RoleStandby
				p.Status.ActiveCluster = "dc-north"
			})
		}, says: "runs on the active side"},
		{name: "target already active", mutate: func(c *PlannedCheck) {
			c.Pair = pair(func(p *tandemv1.HAPair) { p.Status.ActiveCluster = "dc-west" })
		}, says: "already the active side"},
		{name: "fenced", mutate: func(c *PlannedCheck) {
			c.Pair = pair(func(p *tandemv1.HAPair) { p.Status.LocalRole = tandemv1.RoleFenced })
		}, says: "fenced"},
		{name: "another switchover", mutate: func(c *PlannedCheck) { c.Others = []string{"drill-1"} }, says: "another switchover of HAPair shop is running: drill-1"},
		{name: "records disagree", mutate: func(c *PlannedCheck) { c.PeerPair = peer(func(p *tandemv1.HAPair) { p.Status.Epoch = 4 }) }, says: "role records disagree"},
		{name: "not in sync", mutate: func(c *PlannedCheck) {
			c.Pair = pair(func(p *tandemv1.HAPair) {
				p.Status.Conditions = []metav1.Condition{{Type: tandemv1.SyncedCondition, Status: metav1.ConditionFalse, Message: "2 of 9 objects are out of sync"}}
			})
		}, says: "not in sync: 2 of 9"},
		{name: "first sync still running: wait", mutate: func(c *PlannedCheck) {
			c.Pair = pair(func(p *tandemv1.HAPair) {
				p.Status.Conditions = []metav1.Condition{{Type: tandemv1.SyncedCondition, Status: metav1.ConditionUnknown, Message: "The first sync to dc-west is running"}}
			})
		}, says: "wait:not in sync"},
		{name: "lagging", mutate: func(c *PlannedCheck) {
			c.Pair = pair(func(p *tandemv1.HAPair) {
				p.Status.Sync = &tandemv1.SyncSummary{Lag: &metav1.Duration{Duration: time.Minute}}
			})
		}, says: "lags 1m0s"},
		{name: "suspended", mutate: func(c *PlannedCheck) { c.Pair = pair(func(p *tandemv1.HAPair) { p.Spec.Suspend = true }) }, says: "suspended"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			if tc.mutate != nil {
				tc.mutate(&c)
			}
			v := PlannedPreconditions(c)
			if msg, ok := strings.CutPrefix(tc.says, "wait:"); ok {
				if v.OK || v.Fail || !strings.Contains(v.Message, msg) {
					t.Fatalf("verdict %+v, want a wait saying %q", v, msg)
				}
				return
			}
			if tc.says == "" {
				if !v.OK {
					t.Fatalf("refused: %s", v.Message)
				}
				return
			}
			if !v.Fail || !strings.Contains(v.Message, tc.says) {
				t.Fatalf("verdict %+v, want a failure saying %q", v, tc.says)
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// failoverSteps are the steps of a Failover, in the controller's table.
var failoverSteps = []string{StepConfirmLoss, StepBumpEpoch, StepRestoreVolumes, StepScaleUp, StepFlipTraffic, StepRecordDataLoss}
