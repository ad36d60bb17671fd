package controller

import (
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// HAPairReconciler reconciles HAPairs. Peer access, roles and fencing are not
// built yet; until they are, it only marks pairs Ready=Unknown with
// NotImplementedReason.
type HAPairReconciler struct {
	// ClusterName is the data center this operator runs in (--cluster-name).
	ClusterName string
}

// +kubebuilder:rbac:groups=tandem.dev,resources=hapairs,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=tandem.dev,resources=hapairs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tandem.dev,resources=hapairs/finalizers,verbs=update

// SetupWithManager registers the reconciler.
func (r *HAPairReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&tandemv1.HAPair{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("hapair").
		Complete(&notImplemented{
			Client: mgr.GetClient(),
			newObj: func() conditionedObject { return &tandemv1.HAPair{} },
			message: "The HAPair controller of " + r.ClusterName + " does not act yet: peer probing, roles, " +
				"fencing, sync, volume protection and traffic flips are not implemented in this version",
		})
}
