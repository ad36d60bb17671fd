package controller

import (
	"context"
	"fmt"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// conditionedObject is a Tandem object with status conditions and an
// observed generation.
type conditionedObject interface {
	client.Object
	GetConditions() []metav1.Condition
	SetConditions([]metav1.Condition)
	SetObservedGeneration(int64)
}

// notImplemented is the reconcile of a kind whose controller is not built
// yet. It says so on the object instead of pretending: Ready=Unknown with
// NotImplementedReason, and nothing else happens.
type notImplemented struct {
	client.Client
	newObj  func() conditionedObject
	message string
}

func (r *notImplemented) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := r.newObj()
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		return ctrl.Result{}, nil
	}

	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	conditions := obj.GetConditions()
	apimeta.SetStatusCondition(&conditions, metav1.Condition{
		Type:               tandemv1.ReadyCondition,
		Status:             metav1.ConditionUnknown,
		Reason:             tandemv1.NotImplementedReason,
		Message:            r.message,
		ObservedGeneration: obj.GetGeneration(),
	})
	obj.SetConditions(conditions)
	obj.SetObservedGeneration(obj.GetGeneration())
	if err := r.Status().Patch(ctx, obj, patch); err != nil {
		return ctrl.Result{}, fmt.Errorf("patching status of %s: %w", req.NamespacedName, err)
	}
	log.FromContext(ctx).V(1).Info("Recorded that the controller is not implemented yet")
	return ctrl.Result{}, nil
}
