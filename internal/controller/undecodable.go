package controller

import (
	"context"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// A HAPair, SyncPolicy or Switchover whose stored body does not decode
// reaches the controllers with its metadata only (api/v1alpha1/decode.go):
// its own reconcile reports it on it, and every other reader acts on
// nothing it says.

// decodable is a Tandem object that may not have decoded.
type decodable interface {
	conditioned
	client.Object
	SetObservedGeneration(int64)
	Undecodable() *tandemv1.DecodeError
}

// reportUndecodable writes on obj, which did not decode, why, and nothing
// else: its spec is unknown. Ready=False with Stalled is what kstatus reads
// as Failed; fixing the field mends it, as the message says.
func reportUndecodable[T decodable](ctx context.Context, c client.Client, rec events.EventRecorder, obj T) error {
	patch := newPatcher(c, obj)
	before := obj.GetConditions()
	setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionFalse, tandemv1.UndecodableReason,
		obj.Undecodable().Error()+"; nothing acts on this object until that field is fixed")
	setProgress(obj, stalled, findCondition(obj, tandemv1.ReadyCondition))
	obj.SetObservedGeneration(obj.GetGeneration())
	if rec != nil {
		emitConditionTransition(rec, obj, before, obj.GetConditions(), tandemv1.ReadyCondition)
	}
	if err := patch.PatchStatus(ctx, obj, false); err != nil {
		return fmt.Errorf("reporting that %s/%s does not decode: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// undecodableRef is the error of a reference to an object that did not
// decode, naming it and its field.
func undecodableRef(kind string, obj decodable) error {
	return fmt.Errorf("%s %s/%s: %w", kind, obj.GetNamespace(), obj.GetName(), obj.Undecodable())
}

// isUndecodable reports whether err is (or wraps) an object that did not
// decode: the rest of what was read can still be acted on.
func isUndecodable(err error) bool {
	var e *tandemv1.DecodeError
	return errors.As(err, &e)
}

// readPair reads a pair for its role record, on the peer mostly: one that
// does not decode is an error (the peer did not answer), never a pair with
// an empty record.
func readPair(ctx context.Context, c client.Reader, key client.ObjectKey, into *tandemv1.HAPair) error {
	if err := c.Get(ctx, key, into); err != nil {
		return err
	}
	if into.Undecodable() != nil {
		return undecodableRef("HAPair", into)
	}
	return nil
}
