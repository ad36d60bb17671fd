package controller

import (
	"errors"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// conditioned is a Tandem object with conditions.
type conditioned interface {
	runtime.Object
	GetConditions() []metav1.Condition
	SetConditions([]metav1.Condition)
	GetGeneration() int64
}

// setCondition sets one condition, keeping its transition time when the
// status does not change.
func setCondition(obj conditioned, condType string, status metav1.ConditionStatus, reason, message string) {
	conds := obj.GetConditions()
	apimeta.SetStatusCondition(&conds, metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: obj.GetGeneration(),
	})
	obj.SetConditions(conds)
}

func removeCondition(obj conditioned, condType string) {
	conds := obj.GetConditions()
	apimeta.RemoveStatusCondition(&conds, condType)
	obj.SetConditions(conds)
}

func findCondition(obj conditioned, condType string) *metav1.Condition {
	return apimeta.FindStatusCondition(obj.GetConditions(), condType)
}

// emitConditionTransition records an event when a condition changes status
// or reason: Warning when it turns False (True for Degraded), Normal
// otherwise.
func emitConditionTransition(rec events.EventRecorder, obj runtime.Object, before, after []metav1.Condition, condType string) {
	now := apimeta.FindStatusCondition(after, condType)
	if now == nil {
		return
	}
	was := apimeta.FindStatusCondition(before, condType)
	if was != nil && was.Status == now.Status && was.Reason == now.Reason {
		return
	}
	eventType := corev1.EventTypeNormal
	// Degraded is abnormal-true: its True is the warning.
	if (now.Status == metav1.ConditionFalse) != (condType == tandemv1.DegradedCondition) && now.Status != metav1.ConditionUnknown {
		eventType = corev1.EventTypeWarning
	}
	rec.Eventf(obj, nil, eventType, now.Reason, condType, "%s", now.Message)
}

// pairEvent records an event on a pair, with the action the operator took;
// nothing without a recorder (tests).
func pairEvent(rec events.EventRecorder, pair *tandemv1.HAPair, eventType, reason, action, format string, args ...any) {
	if rec != nil {
		rec.Eventf(pair, nil, eventType, reason, action, format, args...)
	}
}

// progress is what kstatus (sigs.k8s.io/cli-utils/pkg/kstatus, and with it
// Flux's health checks, Argo CD and `kubectl wait`-based pipelines) is told
// about an object. kstatus reads no Ready: an object whose observed
// generation is current is InProgress while Reconciling is True, Failed
// while Stalled is True, and Current otherwise. So every summary ends in
// setProgress, and the two conditions are there only while they are True.
type progress int

const (
	// settled: the controller is not working towards anything the user
	// waits for; Ready says whether the result is good.
	settled progress = iota
	// working: the controller is moving towards the spec and will get
	// there without anyone's help (a switchover step, a first sync).
	working
	// stalled: the controller cannot get there until someone changes the
	// spec or the environment, or it ended without success.
	stalled
)

// readyProgress is what Ready alone says: True is settled, Unknown is
// still on its way, False needs someone to look.
func readyProgress(ready *metav1.Condition) progress {
	switch ready.Status {
	case metav1.ConditionTrue:
		return settled
	case metav1.ConditionUnknown:
		return working
	default:
		return stalled
	}
}

// observedSpec reports whether a reconcile that returned err has acted on
// the whole spec: it did when it ended without error, or with one only a
// change to the spec or the environment mends (a terminal error).
func observedSpec(err error) bool {
	return err == nil || errors.Is(err, reconcile.TerminalError(nil))
}

// setProgress sets Reconciling and Stalled for p, with the reason and
// message of the condition that explains it (usually Ready).
func setProgress(obj conditioned, p progress, why *metav1.Condition) {
	reason, message := tandemv1.ProgressingReason, ""
	if why != nil {
		reason, message = why.Reason, why.Message
	}
	switch p {
	case working:
		setCondition(obj, tandemv1.ReconcilingCondition, metav1.ConditionTrue, reason, message)
		removeCondition(obj, tandemv1.StalledCondition)
	case stalled:
		setCondition(obj, tandemv1.StalledCondition, metav1.ConditionTrue, reason, message)
		removeCondition(obj, tandemv1.ReconcilingCondition)
	default:
		removeCondition(obj, tandemv1.ReconcilingCondition)
		removeCondition(obj, tandemv1.StalledCondition)
	}
}
