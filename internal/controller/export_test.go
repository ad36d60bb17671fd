package controller

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/switchover"
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

// FenceWrites runs a planned switchover's FenceWrites step on c (as the
// cluster named cluster) and LiftWriteFence undoes it, for the tests
// against a real API server.
func FenceWrites(ctx context.Context, c client.Client, cluster string, so *tandemv1.Switchover, pair *tandemv1.HAPair) (switchover.Result, error) {
	r := &SwitchoverReconciler{Client: c, ClusterName: cluster}
	return r.fenceWrites(ctx, &switchoverScope{obj: so, pair: pair})
}

func LiftWriteFence(ctx context.Context, c client.Client, so *tandemv1.Switchover) error {
	return (&SwitchoverReconciler{Client: c}).liftWriteFence(ctx, so)
}

// CheckJobAllowed exposes the check Job rules to the tests against a real
// API server.
func CheckJobAllowed(ctx context.Context, c client.Reader, cluster, check string, job *tandemv1.JobCheck, images []string) error {
	return checkJobAllowed(ctx, c, cluster, check, job, images)
}

// Waiting names the workloads (and webhook configurations) an unpark
// still waits for.
func (r workloadRun) Waiting() []string { return r.waiting }
