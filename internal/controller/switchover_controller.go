package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/fence"
	"github.com/tandem-dev/tandem/internal/remote"
	"github.com/tandem-dev/tandem/internal/replicate"
	"github.com/tandem-dev/tandem/internal/switchover"
)

// SwitchoverReconciler reconciles Switchovers. It runs Failovers through
// the step machine on the cluster they target; Planned switchovers and
// drills are not built yet and say so in their status.
type SwitchoverReconciler struct {
	client.Client
	// ClusterName is the data center this operator runs in (--cluster-name).
	ClusterName string
	Pairs       *HAPairReconciler
	Events      events.EventRecorder
	// Clock is injected by tests; the real clock when nil.
	Clock clock.PassiveClock
}

// +kubebuilder:rbac:groups=tandem.dev,resources=switchovers,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=tandem.dev,resources=switchovers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tandem.dev,resources=switchovers/finalizers,verbs=update
// Promotion, demotion and fencing scale the pair's workloads on this cluster.
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;replicasets;daemonsets,verbs=patch
// +kubebuilder:rbac:groups="",resources=replicationcontrollers,verbs=patch
// +kubebuilder:rbac:groups=batch,resources=cronjobs,verbs=patch

// SetupWithManager registers the reconciler.
func (r *SwitchoverReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&tandemv1.Switchover{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("switchover").
		Complete(r)
}

// switchoverScope is the per-reconcile state.
type switchoverScope struct {
	obj    *tandemv1.Switchover
	pair   *tandemv1.HAPair
	health remote.Health
	probed bool
}

// Reconcile advances the step machine by one move and patches status once,
// with the resourceVersion as a precondition so two operators can never
// both believe they moved the same step.
func (r *SwitchoverReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	obj := &tandemv1.Switchover{}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.DeletionTimestamp.IsZero() || switchover.Finished(obj.Status.Phase) {
		return ctrl.Result{}, nil
	}
	before := obj.DeepCopy()
	defer func() {
		obj.Status.ObservedGeneration = obj.Generation
		setSwitchoverSummary(obj)
		r.emitTransitions(obj, before)
		if equality.Semantic.DeepEqual(before.Status, obj.Status) {
			return
		}
		if err := r.Status().Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("patching status of Switchover %s: %w", req.NamespacedName, err))
		}
	}()

	if obj.Spec.Type != tandemv1.SwitchoverFailover {
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionUnknown, tandemv1.NotImplementedReason,
			fmt.Sprintf("The Switchover controller of %s does not run %s switchovers yet: only Failover is implemented in this version; nothing was moved", r.ClusterName, obj.Spec.Type))
		return ctrl.Result{}, nil
	}
	if obj.Spec.TargetCluster != r.ClusterName {
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionUnknown, tandemv1.ProgressingReason,
			fmt.Sprintf("A Failover runs on the cluster it promotes: apply it on %s, not %s", obj.Spec.TargetCluster, r.ClusterName))
		return ctrl.Result{}, nil
	}
	s := &switchoverScope{obj: obj, pair: &tandemv1.HAPair{}}
	if err := r.Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: obj.Spec.PairRef}, s.pair); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("reading HAPair %s/%s: %w", obj.Namespace, obj.Spec.PairRef, err)
		}
		now := r.now()
		obj.Status.Phase, obj.Status.CompletionTime = tandemv1.PhaseFailed, &metav1.Time{Time: now}
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionFalse, tandemv1.InvalidSpecReason,
			fmt.Sprintf("spec.pairRef: HAPair %s/%s does not exist", obj.Namespace, obj.Spec.PairRef))
		return ctrl.Result{}, nil
	}
	s.health, s.probed = r.Pairs.Peers.Health(obj.Namespace, obj.Spec.PairRef)

	timeout := 2 * time.Minute
	if obj.Spec.StepTimeout != nil && obj.Spec.StepTimeout.Duration > 0 {
		timeout = obj.Spec.StepTimeout.Duration
	}
	now := r.now()
	d := switchover.Decide(&obj.Status, switchover.FailoverSteps, now, timeout)
	switch d.Action {
	case switchover.Done:
		return ctrl.Result{}, nil
	case switchover.Start:
		switchover.StartAll(&obj.Status, switchover.FailoverSteps, now)
		obj.Status.FromCluster = s.pair.Status.ActiveCluster
		obj.Status.Epoch = s.pair.Status.Epoch + 1
		return ctrl.Result{Requeue: true}, nil
	case switchover.Begin:
		if obj.Spec.Cancel && d.Step <= 1 {
			// Nothing has changed before the epoch is taken: a safe point.
			obj.Status.Phase, obj.Status.CompletionTime = tandemv1.PhaseCancelled, &metav1.Time{Time: now}
			return ctrl.Result{}, nil
		}
		switchover.BeginStep(&obj.Status, d.Step, now)
		return ctrl.Result{Requeue: true}, nil
	case switchover.TimeOut:
		switchover.EndStep(&obj.Status, d.Step, tandemv1.StepFailed,
			fmt.Sprintf("timed out after %s: %s", timeout, obj.Status.Steps[d.Step].Message), now)
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionFalse, tandemv1.StepTimedOutReason,
			fmt.Sprintf("Step %s timed out after %s: %s", obj.Status.Steps[d.Step].Name, timeout, obj.Status.Steps[d.Step].Message))
		return ctrl.Result{}, nil
	case switchover.Complete:
		r.complete(ctx, s, now)
		return ctrl.Result{}, nil
	}

	res, err := r.runFailoverStep(ctx, s, obj.Status.Steps[d.Step].Name)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("step %s of Switchover %s: %w", obj.Status.Steps[d.Step].Name, req.NamespacedName, err)
	}
	now = r.now()
	if res.Phase == "" {
		obj.Status.Steps[d.Step].Message = res.Message
		return ctrl.Result{RequeueAfter: res.Retry}, nil
	}
	switchover.EndStep(&obj.Status, d.Step, res.Phase, res.Message, now)
	if res.Phase == tandemv1.StepFailed {
		reason := tandemv1.StepFailedReason
		if d.Step == 0 {
			reason = tandemv1.PreconditionFailedReason
		}
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionFalse, reason,
			fmt.Sprintf("Step %s failed: %s", obj.Status.Steps[d.Step].Name, res.Message))
		return ctrl.Result{}, nil
	}
	return ctrl.Result{Requeue: true}, nil
}

func (r *SwitchoverReconciler) runFailoverStep(ctx context.Context, s *switchoverScope, step string) (switchover.Result, error) {
	switch step {
	case switchover.StepConfirmLoss:
		return r.confirmLoss(ctx, s)
	case switchover.StepPromote:
		return r.promote(ctx, s)
	case switchover.StepRestoreVolumes:
		return switchover.Skipped("Volume protection is not built in this version: the PVCs are used as " + r.ClusterName + " has them"), nil
	case switchover.StepScaleUp:
		return r.scaleUp(ctx, s)
	case switchover.StepFlipTraffic:
		if t := s.pair.Spec.Traffic; t == nil || (len(t.DNS) == 0 && len(t.Routes) == 0) {
			return switchover.Skipped("spec.traffic configures no DNS record or route"), nil
		}
		return switchover.Skipped("Traffic flips are not built in this version: the records and routes in spec.traffic were not changed"), nil
	case switchover.StepRecord:
		return r.recordDataLoss(s), nil
	}
	return switchover.Failed("unknown step " + step), nil
}

// confirmLoss runs the precondition chain, then takes the witness Lease at
// the Switchover's epoch when the pair has a witness. The Lease is what
// proves the old active side has stopped: it fences itself when it can
// renew neither the Lease nor reach this side.
func (r *SwitchoverReconciler) confirmLoss(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	v := switchover.ConfirmLoss(switchover.LossCheck{Pair: s.pair, Target: r.ClusterName, Health: s.health, Probed: s.probed})
	period := probePeriod(s.pair)
	switch {
	case v.Fail:
		return switchover.Failed(v.Message), nil
	case !v.OK:
		return switchover.Waiting(v.Message, period), nil
	case s.pair.Spec.Witness == nil:
		return switchover.Succeeded(v.Message + "; no witness configured"), nil
	}
	c, err := r.Pairs.witnessClient(ctx, s.pair)
	if err != nil {
		return switchover.Waiting(v.Message+"; the witness does not answer: "+err.Error(), period), nil
	}
	rctx, cancel := remoteContext(ctx, s.pair)
	defer cancel()
	err = r.Pairs.Witness.Acquire(rctx, c, leaseRef(s.pair), r.ClusterName, s.obj.Status.Epoch)
	switch {
	case fence.IsSuperseded(err):
		return switchover.Failed(err.Error()), nil
	case err != nil:
		return switchover.Waiting(v.Message+"; "+err.Error(), period), nil
	}
	return switchover.Succeeded(fmt.Sprintf("%s; took the witness Lease at epoch %d", v.Message, s.obj.Status.Epoch)), nil
}

// promote writes this cluster's role record: active at the Switchover's
// epoch. It repeats safely: a record already there is success, a higher
// epoch naming another cluster is a failure.
func (r *SwitchoverReconciler) promote(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	pair, epoch := s.pair, s.obj.Status.Epoch
	rec := recordOf(pair)
	want := fence.Record{Active: r.ClusterName, Epoch: epoch}
	switch {
	case rec == want:
		return switchover.Succeeded(fmt.Sprintf("%s is active at epoch %d", r.ClusterName, epoch)), nil
	case !fence.Supersedes(want, rec):
		return switchover.Failed(fmt.Sprintf("the pair's record moved on to %s", rec)), nil
	}
	before := pair.DeepCopy()
	setRecord(pair, want, s.obj.Status.FromCluster, r.ClusterName)
	pair.Status.LocalRole = tandemv1.RoleActive
	if err := r.Status().Patch(ctx, pair, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return switchover.Result{}, fmt.Errorf("writing the role record of HAPair %s: %w", pair.Name, err)
	}
	r.Pairs.event(pair, corev1.EventTypeNormal, tandemv1.PromotedReason, "%s became active at epoch %d through Switchover %s", r.ClusterName, epoch, s.obj.Name)
	log.FromContext(ctx).Info("Promoted", "pair", pair.Name, "epoch", epoch)
	return switchover.Succeeded(fmt.Sprintf("%s is active at epoch %d (was %s)", r.ClusterName, epoch, rec)), nil
}

// scaleUp restores the replica counts recorded on the standby's workloads
// and waits until every one is Available.
func (r *SwitchoverReconciler) scaleUp(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	ws, err := r.Pairs.protectedWorkloads(ctx, s.pair)
	if err != nil {
		return switchover.Result{}, err
	}
	var waiting []string
	for _, w := range ws {
		changed, err := replicate.Unpark(ctx, r.Client, w)
		if err != nil {
			return switchover.Result{}, err
		}
		if changed || !replicate.Available(w) {
			waiting = append(waiting, w.GetNamespace()+"/"+w.GetName())
		}
	}
	if len(waiting) > 0 {
		return switchover.Waiting(fmt.Sprintf("%d of %d workloads Available; waiting for %s", len(ws)-len(waiting), len(ws), firstN(waiting, 5)), time.Second), nil
	}
	return switchover.Succeeded(fmt.Sprintf("%d workloads Available", len(ws))), nil
}

// recordDataLoss measures the failover. Objects are copied within
// milliseconds while the sides are connected, so what a failover can lose
// is bounded by the time between the active side's last successful probe
// and the start of the failover; that bound is the data-loss window
// reported. The RTO runs from the first failed probe.
func (r *SwitchoverReconciler) recordDataLoss(s *switchoverScope) switchover.Result {
	st := &s.obj.Status
	start := st.StartTime.Time
	if !s.health.FirstFailure.IsZero() {
		start = s.health.FirstFailure
	}
	st.RTO = &metav1.Duration{Duration: r.now().Sub(start).Round(time.Millisecond)}
	msg := fmt.Sprintf("RTO %s from the first failed probe", st.RTO.Duration)
	if !s.health.LastSuccess.IsZero() {
		st.DataLossWindow = &metav1.Duration{Duration: st.StartTime.Sub(s.health.LastSuccess).Round(time.Millisecond)}
		msg += fmt.Sprintf("; data-loss window at most %s: object changes made on %s between its last successful probe and the start of the failover may be lost", st.DataLossWindow.Duration, st.FromCluster)
	}
	return switchover.Succeeded(msg)
}

func (r *SwitchoverReconciler) complete(ctx context.Context, s *switchoverScope, now time.Time) {
	st := &s.obj.Status
	t := metav1.NewTime(now)
	st.Phase, st.CompletionTime = tandemv1.PhaseSucceeded, &t
	pair := s.pair
	before := pair.DeepCopy()
	pair.Status.LastSwitchover = &tandemv1.SwitchoverSummary{
		Name: s.obj.Name, Type: s.obj.Spec.Type, Phase: st.Phase, CompletionTime: &t, RTO: st.RTO,
	}
	if err := r.Status().Patch(ctx, pair, client.MergeFrom(before)); err != nil {
		log.FromContext(ctx).Error(err, "Could not record the last switchover on the pair", "pair", pair.Name)
	}
}

func (r *SwitchoverReconciler) emitTransitions(obj, before *tandemv1.Switchover) {
	if r.Events == nil || before.Status.Phase == obj.Status.Phase {
		return
	}
	eventType := corev1.EventTypeNormal
	if obj.Status.Phase == tandemv1.PhaseFailed {
		eventType = corev1.EventTypeWarning
	}
	r.Events.Eventf(obj, nil, eventType, string(obj.Status.Phase), "Switchover", "%s switchover to %s is %s", obj.Spec.Type, obj.Spec.TargetCluster, obj.Status.Phase)
}

func (r *SwitchoverReconciler) now() time.Time {
	if r.Clock != nil {
		return r.Clock.Now()
	}
	return time.Now()
}

// setSwitchoverSummary derives Ready from the phase.
func setSwitchoverSummary(obj *tandemv1.Switchover) {
	switch obj.Status.Phase {
	case tandemv1.PhaseSucceeded:
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionTrue, tandemv1.SucceededReason,
			fmt.Sprintf("%s is active at epoch %d", obj.Spec.TargetCluster, obj.Status.Epoch))
	case tandemv1.PhaseCancelled:
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionFalse, tandemv1.CancelledReason, "Cancelled before the epoch was taken; nothing changed")
	case tandemv1.PhaseRunning:
		for _, st := range obj.Status.Steps {
			if st.Phase == tandemv1.StepRunning || st.Phase == tandemv1.StepPending {
				setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionUnknown, tandemv1.ProgressingReason,
					fmt.Sprintf("Step %s: %s", st.Name, orDash(st.Message)))
				return
			}
		}
	}
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
