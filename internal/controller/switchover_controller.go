package controller

import (
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// SwitchoverReconciler reconciles Switchovers. The step machine is not built
// yet; until it is, it only marks Switchovers Ready=Unknown with
// NotImplementedReason and never moves anything.
type SwitchoverReconciler struct {
	// ClusterName is the data center this operator runs in (--cluster-name).
	ClusterName string
}

// +kubebuilder:rbac:groups=tandem.dev,resources=switchovers,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=tandem.dev,resources=switchovers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tandem.dev,resources=switchovers/finalizers,verbs=update

// SetupWithManager registers the reconciler.
func (r *SwitchoverReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&tandemv1.Switchover{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("switchover").
		Complete(&notImplemented{
			Client: mgr.GetClient(),
			newObj: func() conditionedObject { return &tandemv1.Switchover{} },
			message: "The Switchover controller of " + r.ClusterName + " does not act yet: planned " +
				"switchover, failover and drills are not implemented in this version; nothing was moved",
		})
}
