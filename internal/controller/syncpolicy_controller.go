package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/plan"
	"github.com/tandem-dev/tandem/internal/replicate"
)

// SyncPolicyReconciler reports on SyncPolicies: the plan (waves, cycles,
// missing dependencies) and the copies on the standby. The syncs themselves
// are started by the HAPair controller, which knows the roles.
type SyncPolicyReconciler struct {
	client.Client
	// ClusterName is the data center this operator runs in (--cluster-name).
	ClusterName string
	Syncs       *replicate.Manager
	Events      events.EventRecorder
	// SyncEvents carries a policy to reconcile when its sync status changed.
	SyncEvents <-chan event.GenericEvent
}

// +kubebuilder:rbac:groups=tandem.dev,resources=syncpolicies,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=tandem.dev,resources=syncpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tandem.dev,resources=syncpolicies/finalizers,verbs=update

// SetupWithManager registers the reconciler.
func (r *SyncPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&tandemv1.SyncPolicy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&tandemv1.HAPair{}, handler.EnqueueRequestsFromMapFunc(policiesOfPair)).
		Named("syncpolicy")
	if r.SyncEvents != nil {
		b = b.WatchesRawSource(source.Channel(r.SyncEvents, &handler.EnqueueRequestForObject{}))
	}
	return b.Complete(r)
}

func policiesOfPair(_ context.Context, obj client.Object) []reconcile.Request {
	pair, ok := obj.(*tandemv1.HAPair)
	if !ok {
		return nil
	}
	out := make([]reconcile.Request, 0, len(pair.Spec.SyncPolicyRefs))
	for _, ref := range pair.Spec.SyncPolicyRefs {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Namespace: pair.Namespace, Name: ref.Name}})
	}
	return out
}

// Reconcile reports the sync of the policy and patches status once.
func (r *SyncPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	obj := &tandemv1.SyncPolicy{}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := obj.DeepCopy()
	defer func() {
		setSyncPolicySummary(obj)
		obj.Status.ObservedGeneration = obj.Generation
		if r.Events != nil {
			emitConditionTransition(r.Events, obj, before.Status.Conditions, obj.Status.Conditions, tandemv1.SyncedCondition)
			emitConditionTransition(r.Events, obj, before.Status.Conditions, obj.Status.Conditions, tandemv1.PlanValidCondition)
		}
		if equality.Semantic.DeepEqual(before.Status, obj.Status) {
			return
		}
		if err := r.Status().Patch(ctx, obj, client.MergeFrom(before)); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("patching status of SyncPolicy %s: %w", req.NamespacedName, err))
		}
	}()

	if obj.Spec.Suspend {
		setCondition(obj, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.SuspendedReason, "spec.suspend is set; nothing is copied")
		removeCondition(obj, tandemv1.PlanValidCondition)
		return ctrl.Result{}, nil
	}
	var pairs tandemv1.HAPairList
	if err := r.List(ctx, &pairs, client.InNamespace(obj.Namespace)); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing HAPairs in %s: %w", obj.Namespace, err)
	}
	var referring []tandemv1.HAPair
	for _, p := range pairs.Items {
		if refersTo(&p, obj.Name) {
			referring = append(referring, p)
		}
	}
	sort.Slice(referring, func(i, j int) bool { return referring[i].Name < referring[j].Name })
	if len(referring) == 0 {
		setCondition(obj, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.NotReferencedReason,
			"No HAPair in namespace "+obj.Namespace+" lists this policy in spec.syncPolicyRefs; nothing is copied")
		removeCondition(obj, tandemv1.PlanValidCondition)
		return ctrl.Result{}, nil
	}

	// A policy shared by several pairs reports on the first one with a
	// running sync.
	for _, p := range referring {
		if st, ok := r.Syncs.Status(replicate.Key{Namespace: p.Namespace, Pair: p.Name, Policy: obj.Name}); ok {
			setSyncPolicyStatus(obj, p.Status.StandbyCluster, st)
			return ctrl.Result{RequeueAfter: statusRefresh}, nil
		}
	}
	p := referring[0]
	if p.Status.ActiveCluster != "" && p.Status.ActiveCluster != r.ClusterName {
		setCondition(obj, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.StandbySideReason,
			fmt.Sprintf("This cluster is the standby of HAPair %s; %s copies the objects here and reports on them", p.Name, p.Status.ActiveCluster))
	} else {
		setCondition(obj, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.ProgressingReason,
			fmt.Sprintf("The sync for HAPair %s is not running; see its Synced condition", p.Name))
	}
	removeCondition(obj, tandemv1.PlanValidCondition)
	return ctrl.Result{RequeueAfter: statusRefresh}, nil
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
		selected: st.Selected, outOfSync: st.OutOfSync, failures: obj.Status.Failures,
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

// setSyncPolicySummary derives Ready from Synced and PlanValid.
func setSyncPolicySummary(obj *tandemv1.SyncPolicy) {
	synced := findCondition(obj, tandemv1.SyncedCondition)
	planValid := findCondition(obj, tandemv1.PlanValidCondition)
	switch {
	case synced == nil:
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionUnknown, tandemv1.ProgressingReason, "Not reconciled yet")
	case planValid != nil && planValid.Status == metav1.ConditionFalse:
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionFalse, planValid.Reason, planValid.Message)
	case synced.Reason == tandemv1.StandbySideReason:
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionTrue, synced.Reason, synced.Message)
	default:
		setCondition(obj, tandemv1.ReadyCondition, synced.Status, synced.Reason, synced.Message)
	}
}
