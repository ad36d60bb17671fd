package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/switchover"
)

// timeoutRunner is a switchover type made of one step of each kind.
type timeoutRunner struct{ ran map[string]int }

func (tr *timeoutRunner) steps(*switchoverScope) []step {
	wait := func(name string) func(context.Context, *switchoverScope) (switchover.Result, error) {
		return func(context.Context, *switchoverScope) (switchover.Result, error) {
			tr.ran[name]++
			return switchover.Waiting("waiting for shop/web", time.Second), nil
		}
	}
	return []step{
		{name: "Check", run: wait("Check")},
		{name: "Undoable", run: wait("Undoable"), canRollBack: true},
		{name: "MustFinish", run: wait("MustFinish"), mustFinish: true},
		{name: "Hold", run: wait("Hold"), mustFinish: true, waits: func(*switchoverScope) time.Duration { return 10 * time.Minute }},
		{name: "Report", run: wait("Report")},
	}
}

func (tr *timeoutRunner) runsHere(*switchoverScope) (bool, string) { return true, "" }

func (tr *timeoutRunner) rollBack(context.Context, *switchoverScope) (switchover.Result, error) {
	return switchover.Succeeded("rolled back"), nil
}

// A step that outlives the step timeout fails when nothing has changed
// yet, rolls back where it can, and goes on, overdue and Stalled, where
// giving up would leave the service half moved; a step that waits by
// design (a live drill's hold) gets that time on top; any other fails.
func TestATimedOutStepFailsRollsBackOrGoesOn(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		step      int
		phase     tandemv1.SwitchoverPhase
		stepPhase tandemv1.StepPhase
		ran       bool
		ready     string
		kstatus   status.Status
	}{
		{0, tandemv1.PhaseFailed, tandemv1.StepFailed, false, tandemv1.StepTimedOutReason, status.FailedStatus},
		{1, tandemv1.PhaseRunning, tandemv1.StepFailed, false, tandemv1.ProgressingReason, status.InProgressStatus},
		{2, tandemv1.PhaseRunning, tandemv1.StepRunning, true, tandemv1.StepTimedOutReason, status.FailedStatus},
		{3, tandemv1.PhaseRunning, tandemv1.StepRunning, true, tandemv1.ProgressingReason, status.InProgressStatus},
		{4, tandemv1.PhaseFailed, tandemv1.StepFailed, false, tandemv1.StepTimedOutReason, status.FailedStatus},
	}
	for _, c := range cases {
		tr := &timeoutRunner{ran: map[string]int{}}
		steps := tr.steps(nil)
		name := steps[c.step].name
		t.Run(name, func(t *testing.T) {
			started := metav1.NewMicroTime(t0)
			so := &tandemv1.Switchover{ObjectMeta: metav1.ObjectMeta{Name: "to-west", Generation: 1},
				Status: tandemv1.SwitchoverStatus{Phase: tandemv1.PhaseRunning, StartTime: &started, ObservedGeneration: 1}}
			for i, st := range steps {
				ss := tandemv1.StepStatus{Name: st.name, Phase: tandemv1.StepPending}
				switch {
				case i < c.step:
					ss.Phase, ss.StartTime, ss.EndTime = tandemv1.StepSucceeded, &started, &started
				case i == c.step:
					ss.Phase, ss.StartTime, ss.Message = tandemv1.StepRunning, &started, "waiting for shop/web"
				}
				so.Status.Steps = append(so.Status.Steps, ss)
			}
			var clk clock.PassiveClock = clocktesting.NewFakePassiveClock(t0.Add(3 * time.Minute))
			r := &SwitchoverReconciler{Clock: clk}
			s := &switchoverScope{obj: so, pair: &tandemv1.HAPair{}, timeout: 2 * time.Minute}
			if _, err := r.decide(context.Background(), s, tr); err != nil {
				t.Fatal(err)
			}
			setSwitchoverSummary(so, s.verdict)
			ready := findCondition(so, tandemv1.ReadyCondition)
			if so.Status.Phase != c.phase || so.Status.Steps[c.step].Phase != c.stepPhase || (tr.ran[name] > 0) != c.ran ||
				ready == nil || ready.Reason != c.ready {
				t.Fatalf("phase %s, step %s, ran %d, Ready %+v; want %s, %s, ran %v, %s", so.Status.Phase, so.Status.Steps[c.step].Phase,
					tr.ran[name], ready, c.phase, c.stepPhase, c.ran, c.ready)
			}
			if c.step == 1 && so.Status.Steps[len(so.Status.Steps)-1].Name != switchover.StepRollBack {
				t.Fatalf("no RollBack step appended: %+v", so.Status.Steps)
			}
			if c.step == 2 && !strings.Contains(ready.Message, "Step MustFinish has run longer than its 2m0s timeout and cannot be undone") {
				t.Fatalf("Ready of the overdue step: %s", ready.Message)
			}
			if got := kstatusOf(t, so).Status; got != c.kstatus {
				t.Fatalf("kstatus %s, want %s", got, c.kstatus)
			}
		})
	}
}
