// Package switchover is the step machine that moves a pair's service from
// one cluster to the other. Every step is recorded in the Switchover's
// status before it acts, so an operator restarted at any point resumes from
// status: a step found Running is run again, and every step is written to
// be safe to repeat.
package switchover

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// Action is what a reconcile does next.
type Action int

const (
	// Start records every step as Pending and the Switchover as Running.
	Start Action = iota
	// Begin records the step as Running; it acts on the next reconcile.
	Begin
	// Run acts on the Running step.
	Run
	// TimeOut fails the Running step: it ran longer than the step timeout.
	TimeOut
	// Complete records the Switchover as Succeeded.
	Complete
	// Done means the Switchover already ended; nothing to do.
	Done
)

// Decision is an action and the step it concerns.
type Decision struct {
	Action Action
	Step   int
}

// Finished says whether a phase is final.
func Finished(p tandemv1.SwitchoverPhase) bool {
	switch p {
	case tandemv1.PhaseSucceeded, tandemv1.PhaseFailed, tandemv1.PhaseRolledBack, tandemv1.PhaseCancelled:
		return true
	}
	return false
}

// Decide looks at the recorded status and the step names of the
// Switchover's type and says what happens next.
func Decide(st *tandemv1.SwitchoverStatus, steps []string, now time.Time, timeout time.Duration) Decision {
	if Finished(st.Phase) {
		return Decision{Action: Done}
	}
	if len(st.Steps) == 0 {
		return Decision{Action: Start}
	}
	for i, s := range st.Steps {
		switch s.Phase {
		case tandemv1.StepSucceeded, tandemv1.StepSkipped:
			continue
		case tandemv1.StepPending:
			return Decision{Action: Begin, Step: i}
		case tandemv1.StepRunning:
			if s.StartTime != nil && timeout > 0 && now.Sub(s.StartTime.Time) > timeout {
				return Decision{Action: TimeOut, Step: i}
			}
			return Decision{Action: Run, Step: i}
		case tandemv1.StepFailed:
			if !hasRollBack(st, i) {
				return Decision{Action: Done}
			}
		}
	}
	return Decision{Action: Complete}
}

// StepRollBack is appended after a step that failed where the switchover
// can still undo what it did (before traffic moved): it returns the pair
// to how it was, and the switchover ends RolledBack (or Cancelled).
const StepRollBack = "RollBack"

func hasRollBack(st *tandemv1.SwitchoverStatus, after int) bool {
	for _, s := range st.Steps[after+1:] {
		if s.Name == StepRollBack {
			return true
		}
	}
	return false
}

// RolledBack says whether the switchover ran a rollback.
func RolledBack(st *tandemv1.SwitchoverStatus) bool {
	for _, s := range st.Steps {
		if s.Name == StepRollBack {
			return true
		}
	}
	return false
}

// FailAndRollBack records step i as failed and appends the RollBack step;
// the Switchover keeps running until the rollback is done. Steps between
// the failed one and the rollback are skipped.
func FailAndRollBack(st *tandemv1.SwitchoverStatus, i int, message string, now time.Time) {
	t := metav1.NewMicroTime(now)
	st.Steps[i].Phase = tandemv1.StepFailed
	st.Steps[i].EndTime = &t
	st.Steps[i].Message = message
	if st.Steps[i].StartTime == nil {
		st.Steps[i].StartTime = &t
	}
	for j := i + 1; j < len(st.Steps); j++ {
		if st.Steps[j].Phase == tandemv1.StepPending {
			st.Steps[j].Phase = tandemv1.StepSkipped
			st.Steps[j].Message = "not run: " + st.Steps[i].Name + " failed"
		}
	}
	if !hasRollBack(st, i) {
		st.Steps = append(st.Steps, tandemv1.StepStatus{Name: StepRollBack, Phase: tandemv1.StepPending})
	}
}

// StartAll records the steps, all Pending, and the Switchover Running.
func StartAll(st *tandemv1.SwitchoverStatus, steps []string, now time.Time) {
	st.Steps = make([]tandemv1.StepStatus, len(steps))
	for i, name := range steps {
		st.Steps[i] = tandemv1.StepStatus{Name: name, Phase: tandemv1.StepPending}
	}
	t := metav1.NewMicroTime(now)
	st.Phase = tandemv1.PhaseRunning
	st.StartTime = &t
}

// BeginStep records step i as Running.
func BeginStep(st *tandemv1.SwitchoverStatus, i int, now time.Time) {
	t := metav1.NewMicroTime(now)
	st.Steps[i].Phase = tandemv1.StepRunning
	st.Steps[i].StartTime = &t
	st.Steps[i].Message = ""
}

// EndStep records the end of step i in phase p (Succeeded, Skipped or
// Failed). A failed step fails the Switchover.
func EndStep(st *tandemv1.SwitchoverStatus, i int, p tandemv1.StepPhase, message string, now time.Time) {
	t := metav1.NewMicroTime(now)
	st.Steps[i].Phase = p
	st.Steps[i].EndTime = &t
	st.Steps[i].Message = message
	if st.Steps[i].StartTime == nil {
		st.Steps[i].StartTime = &t
	}
	if p == tandemv1.StepFailed && !hasRollBack(st, i) {
		st.Phase = tandemv1.PhaseFailed
		st.CompletionTime = &t
	}
}

// Result is what running a step found.
type Result struct {
	// Phase is Succeeded, Skipped or Failed when the step ended; empty
	// while it waits for something outside, to be run again.
	Phase   tandemv1.StepPhase
	Message string
	// Retry is when to run a waiting step again.
	Retry time.Duration
}

// Succeeded, Skipped, Failed and Waiting build Results.
func Succeeded(msg string) Result { return Result{Phase: tandemv1.StepSucceeded, Message: msg} }
func Skipped(msg string) Result   { return Result{Phase: tandemv1.StepSkipped, Message: msg} }
func Failed(msg string) Result    { return Result{Phase: tandemv1.StepFailed, Message: msg} }
func Waiting(msg string, retry time.Duration) Result {
	return Result{Message: msg, Retry: retry}
}
