package controller

import (
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/plan"
	"github.com/tandem-dev/tandem/internal/replicate"
)

func setPolicySuspended(obj *tandemv1.SyncPolicy) {
	setCondition(obj, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.SuspendedReason, "spec.suspend is set; nothing is copied")
	removeCondition(obj, tandemv1.PlanValidCondition)
}

func setPolicyNotReferenced(obj *tandemv1.SyncPolicy) {
	setCondition(obj, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.NotReferencedReason,
		"No HAPair in namespace "+obj.Namespace+" lists this policy in spec.syncPolicyRefs; nothing is copied")
	removeCondition(obj, tandemv1.PlanValidCondition)
}

// setPolicyNotSyncingHere says why no sync of the policy runs here for the
// first pair that refers to it: this cluster is its standby, or the pair
// does not run the sync (see its Synced condition).
func setPolicyNotSyncingHere(obj *tandemv1.SyncPolicy, p *tandemv1.HAPair, local string) {
	if p.Status.ActiveCluster != "" && p.Status.ActiveCluster != local {
		setCondition(obj, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.StandbySideReason,
			fmt.Sprintf("This cluster is the standby of HAPair %s; %s copies the objects here and reports on them", p.Name, p.Status.ActiveCluster))
	} else {
		setCondition(obj, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.ProgressingReason,
			fmt.Sprintf("The sync for HAPair %s is not running; see its Synced condition", p.Name))
	}
	removeCondition(obj, tandemv1.PlanValidCondition)
}

func setSyncPolicyStatus(obj *tandemv1.SyncPolicy, standby string, st replicate.Status) {
	obj.Status.Selected = int32(st.Selected)
	obj.Status.InSync = int32(st.InSync)
	obj.Status.OutOfSync = int32(st.OutOfSync)
	obj.Status.Failed = int32(len(st.Failures))
	obj.Status.Failures = st.FailureList()
	obj.Status.Waves = int32(st.Waves)
	if !st.LastFullSync.IsZero() {
		t := metav1.NewTime(st.LastFullSync)
		obj.Status.LastFullSync = &t
	}
	if st.Lag > 0 {
		obj.Status.Lag = &metav1.Duration{Duration: st.Lag.Round(time.Millisecond)}
	}
	setPlanValid(obj, st.Plan)

	setSyncedVerdict(obj, standby, syncCounts{
		err: st.Err, passed: !st.LastFullSync.IsZero(),
		selected: st.Selected, outOfSync: st.OutOfSync, failures: obj.Status.Failures, failed: len(st.Failures),
	})
}

func setPlanValid(obj *tandemv1.SyncPolicy, p *plan.Plan) {
	switch {
	case p == nil:
		removeCondition(obj, tandemv1.PlanValidCondition)
	case len(p.Cycles) > 0:
		msg := "Objects depend on each other in a " + p.CycleMessage() + "; they are not applied"
		if len(p.Blocked) > 0 {
			msg += fmt.Sprintf(", nor the %d objects that depend on them", len(p.Blocked))
		}
		setCondition(obj, tandemv1.PlanValidCondition, metav1.ConditionFalse, tandemv1.PlanCycleReason, msg)
	case len(p.Invalid) > 0:
		setCondition(obj, tandemv1.PlanValidCondition, metav1.ConditionFalse, tandemv1.InvalidSpecReason, errors.Join(p.Invalid...).Error())
	case len(p.Missing) > 0:
		var shown []string
		for i, e := range p.Missing {
			if i == 3 {
				shown = append(shown, fmt.Sprintf("and %d more", len(p.Missing)-3))
				break
			}
			shown = append(shown, fmt.Sprintf("%s needs %s (%s)", e.From, e.To, e.Reason))
		}
		setCondition(obj, tandemv1.PlanValidCondition, metav1.ConditionTrue, tandemv1.PlanMissingDependencyReason,
			fmt.Sprintf("%d objects in %d waves; dependencies not selected, assumed present on the standby: %s", p.Len(), len(p.Waves), strings.Join(shown, "; ")))
	default:
		setCondition(obj, tandemv1.PlanValidCondition, metav1.ConditionTrue, tandemv1.SucceededReason,
			fmt.Sprintf("%d objects in %d waves", p.Len(), len(p.Waves)))
	}
}

// setPolicyNotGranted says which parts of the spec reach beyond the
// namespace's grant: they are left out of the plan, so it is not valid as
// written, and only an admin's grant or an edit of the spec mends it.
func setPolicyNotGranted(obj *tandemv1.SyncPolicy, denied []string) {
	msg := strings.Join(denied[:min(len(denied), 3)], "; ")
	if len(denied) > 3 {
		msg += fmt.Sprintf("; and %d more", len(denied)-3)
	}
	setCondition(obj, tandemv1.PlanValidCondition, metav1.ConditionFalse, tandemv1.NotGrantedReason, msg+"; the rest of the policy is copied")
}

// setPolicySpecInvalid says which of the policy's JSON patches the sync
// refuses (replicate.CheckPatch: no JSON patch, too many operations, a
// path the sync owns), and an include entry's selector it cannot use. CEL
// cannot parse the JSON, nor afford to check every entry's selector, so
// this is where the author learns it.
func setPolicySpecInvalid(obj *tandemv1.SyncPolicy) {
	if err := replicate.CheckSelection(obj.Spec); err != nil {
		setCondition(obj, tandemv1.PlanValidCondition, metav1.ConditionFalse, tandemv1.InvalidSpecReason, err.Error()+"; the policy is not synced")
		return
	}
	var bad []string
	for i, p := range obj.Spec.Transforms.Patches {
		if _, err := replicate.CheckPatch(p.Patch); err != nil {
			bad = append(bad, fmt.Sprintf("spec.transforms.patches[%d].patch: %v", i, err))
		}
	}
	if len(bad) > 0 {
		setCondition(obj, tandemv1.PlanValidCondition, metav1.ConditionFalse, tandemv1.InvalidSpecReason,
			strings.Join(bad, "; ")+"; the objects they match are not copied")
	}
}

// setSyncPolicySummary derives Ready from Synced and PlanValid, and
// Reconciling and Stalled from Ready.
func setSyncPolicySummary(obj *tandemv1.SyncPolicy) {
	synced := findCondition(obj, tandemv1.SyncedCondition)
	planValid := findCondition(obj, tandemv1.PlanValidCondition)
	switch {
	case synced == nil:
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionUnknown, tandemv1.ProgressingReason, "Not reconciled yet")
	case planValid != nil && planValid.Status == metav1.ConditionFalse:
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionFalse, planValid.Reason, planValid.Message)
	case synced.Reason == tandemv1.StandbySideReason || synced.Reason == tandemv1.SuspendedReason:
		// A suspended object does what its spec asks, which is nothing:
		// kstatus reads it Current, with the reason saying why.
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionTrue, synced.Reason, synced.Message)
	default:
		setCondition(obj, tandemv1.ReadyCondition, synced.Status, synced.Reason, synced.Message)
	}
	// Ready says it all for a policy: working until its first pass
	// reports (or a pair refers to it), settled when Ready (or suspended),
	// stalled while its plan is invalid or its copies fail.
	ready := findCondition(obj, tandemv1.ReadyCondition)
	setProgress(obj, readyProgress(ready), ready)
}
