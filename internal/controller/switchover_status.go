package controller

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// setSwitchoverSummary sets Ready, then Reconciling and Stalled from the
// phase.
func setSwitchoverSummary(obj *tandemv1.Switchover, v *verdict) {
	setSwitchoverReady(obj, v)
	setProgress(obj, switchoverProgress(obj, v), findCondition(obj, tandemv1.ReadyCondition))
}

// setSwitchoverReady is where a Switchover's Ready is computed: from the
// phase and the steps, and from the verdict of this reconcile where the
// phase does not tell why (a precondition, a step that failed or timed out,
// a Switchover that cannot run here).
func setSwitchoverReady(obj *tandemv1.Switchover, v *verdict) {
	st := obj.Status
	switch st.Phase {
	case tandemv1.PhaseSucceeded:
		msg := fmt.Sprintf("%s is active at epoch %d", obj.Spec.TargetCluster, st.Epoch)
		if obj.Spec.Type == tandemv1.SwitchoverDrill && st.Report != nil {
			msg = st.Report.Summary
		}
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionTrue, tandemv1.SucceededReason, msg)
	case tandemv1.PhaseCancelled:
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionFalse, tandemv1.CancelledReason,
			"Cancelled at a safe point; the pair is as it was before the switchover")
	case tandemv1.PhaseRolledBack:
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionFalse, tandemv1.RolledBackReason,
			"A step failed before the service moved; the pair is as it was before the switchover: "+failedStep(st))
	case tandemv1.PhaseFailed:
		if obj.Spec.Type == tandemv1.SwitchoverDrill && st.Report != nil {
			setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionFalse, tandemv1.StepFailedReason, st.Report.Summary)
		} else if v != nil {
			setCondition(obj, tandemv1.ReadyCondition, v.status, v.reason, v.message)
		}
	case "":
		if v != nil {
			setCondition(obj, tandemv1.ReadyCondition, v.status, v.reason, v.message)
		}
	case tandemv1.PhaseRunning:
		if v != nil {
			// A step overdue past the point of no return.
			setCondition(obj, tandemv1.ReadyCondition, v.status, v.reason, v.message)
			return
		}
		for _, s := range st.Steps {
			if s.Phase == tandemv1.StepRunning || s.Phase == tandemv1.StepPending {
				setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionUnknown, tandemv1.ProgressingReason,
					fmt.Sprintf("Step %s: %s", s.Name, orDash(s.Message)))
				return
			}
		}
	}
}

// switchoverProgress: a Switchover that ended without moving (or proving)
// the service is Stalled, since only a new Switchover can change that, and
// so is one whose step went past its timeout where it cannot be undone: it
// keeps retrying, but only a fix of what it waits for moves it on. One
// still running, or waiting to start, is Reconciling.
func switchoverProgress(obj *tandemv1.Switchover, v *verdict) progress {
	switch obj.Status.Phase {
	case tandemv1.PhaseSucceeded:
		return settled
	case tandemv1.PhaseFailed, tandemv1.PhaseRolledBack, tandemv1.PhaseCancelled:
		return stalled
	case tandemv1.PhaseRunning:
		if v != nil && v.reason == tandemv1.StepTimedOutReason {
			return stalled
		}
		return working
	default:
		return working
	}
}

func failedStep(st tandemv1.SwitchoverStatus) string {
	for _, s := range st.Steps {
		if s.Phase == tandemv1.StepFailed {
			return s.Name + ": " + s.Message
		}
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstN(items []string, n int) string {
	if len(items) <= n {
		return fmt.Sprint(items)
	}
	return fmt.Sprintf("%v and %d more", items[:n], len(items)-n)
}
