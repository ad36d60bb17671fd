package controller

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// PairPatcher exposes the reconcile's patcher to the tests against real API
// servers.
type PairPatcher struct{ p *patcher[*tandemv1.HAPair] }

func NewPairPatcher(c client.Client, obj *tandemv1.HAPair) PairPatcher {
	return PairPatcher{newPatcher(c, obj)}
}

func (p PairPatcher) Patch(ctx context.Context, obj *tandemv1.HAPair) error {
	return p.p.Patch(ctx, obj, true)
}

func (p PairPatcher) PatchStatus(ctx context.Context, obj *tandemv1.HAPair, lock bool) error {
	return p.p.PatchStatus(ctx, obj, lock)
}
