package controller

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
)

// reconcileMirror copies the pair and its SyncPolicies to the peer.
func (r *HAPairReconciler) reconcileMirror(ctx context.Context, s *hapairScope) (ctrl.Result, error) {
	return ctrl.Result{}, nil
}
