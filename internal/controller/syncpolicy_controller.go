package controller

import (
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// SyncPolicyReconciler reconciles SyncPolicies. The sync engine is not built
// yet; until it is, it only marks policies Ready=Unknown with
// NotImplementedReason.
type SyncPolicyReconciler struct {
	// ClusterName is the data center this operator runs in (--cluster-name).
	ClusterName string
}

// +kubebuilder:rbac:groups=tandem.dev,resources=syncpolicies,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=tandem.dev,resources=syncpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tandem.dev,resources=syncpolicies/finalizers,verbs=update

// SetupWithManager registers the reconciler.
func (r *SyncPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&tandemv1.SyncPolicy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("syncpolicy").
		Complete(&notImplemented{
			Client: mgr.GetClient(),
			newObj: func() conditionedObject { return &tandemv1.SyncPolicy{} },
			message: "The SyncPolicy controller of " + r.ClusterName + " does not act yet: selection, " +
				"the dependency plan and replication to the standby are not implemented in this version",
		})
}
