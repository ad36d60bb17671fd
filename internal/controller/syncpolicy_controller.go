package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/api/equality"
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
	if obj.Undecodable() != nil {
		return ctrl.Result{}, reportUndecodable(ctx, r.Client, r.Events, obj)
	}
	patch := newPatcher(r.Client, obj)
	denied, err := deniedOf(ctx, r.Client, obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	defer func() {
		before := patch.Before()
		if len(denied) > 0 {
			setPolicyNotGranted(obj, denied)
		}
		setPolicySpecInvalid(obj)
		setSyncPolicySummary(obj)
		if observedSpec(retErr) {
			obj.Status.ObservedGeneration = obj.Generation
		}
		if r.Events != nil {
			emitConditionTransition(r.Events, obj, before.Status.Conditions, obj.Status.Conditions, tandemv1.SyncedCondition)
			emitConditionTransition(r.Events, obj, before.Status.Conditions, obj.Status.Conditions, tandemv1.PlanValidCondition)
		}
		if equality.Semantic.DeepEqual(before.Status, obj.Status) {
			return
		}
		if err := patch.PatchStatus(ctx, obj, false); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("patching status of SyncPolicy %s: %w", req.NamespacedName, err))
		}
	}()

	if obj.Spec.Suspend {
		setPolicySuspended(obj)
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
		setPolicyNotReferenced(obj)
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
	setPolicyNotSyncingHere(obj, &referring[0], r.ClusterName)
	return ctrl.Result{RequeueAfter: statusRefresh}, nil
}
