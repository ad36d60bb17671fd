package controller

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/fence"
	"github.com/tandem-dev/tandem/internal/replicate"
	"github.com/tandem-dev/tandem/internal/switchover"
)

// plannedRunner moves a live service from the active side, where it runs,
// to the standby with nothing lost: stop the workloads here, prove by hash
// that the standby holds exactly what is here, pause the sync, start the
// workloads there, then swap the roles at the next epoch and let the sync
// flow back. Until the standby's workloads are up, a failure or a cancel
// rolls back.
type plannedRunner struct{ r *SwitchoverReconciler }

// steps of a Planned switchover. Until PromoteTarget has succeeded the
// service can go back to where it was, and until the roles swap the old
// side still holds the epoch: a failure or a cancel up to FlipTraffic (a
// refused update, servers that never answer the target) rolls back, and
// the rollback points the records back.
func (p *plannedRunner) steps(*switchoverScope) []step {
	r := p.r
	return []step{
		{name: switchover.StepPreconditions, run: r.plannedPreconditions},
		{name: switchover.StepQuiesce, run: r.quiesce, canRollBack: true},
		{name: switchover.StepFenceWrites, run: r.fenceWrites, canRollBack: true},
		{name: switchover.StepFinalSync, run: r.finalSync, canRollBack: true},
		{name: switchover.StepFinalVolumeSnapshot, run: r.finalVolumes, canRollBack: true},
		{name: switchover.StepPauseSync, run: r.pauseSync, canRollBack: true},
		{name: switchover.StepRestoreVolumes, run: r.restoreVolumes, canRollBack: true},
		{name: switchover.StepPromoteTarget, run: r.startOnPeer, canRollBack: true},
		{name: switchover.StepFlipTraffic, run: r.flipTrafficAfter(switchover.StepPromoteTarget), canRollBack: true},
		{name: switchover.StepSwapRoles, run: r.swapRoles, mustFinish: true},
		{name: switchover.StepReverseSync, run: r.reverseSync},
	}
}

func (p *plannedRunner) runsHere(s *switchoverScope) (bool, string) {
	// A Switchover applied on the standby fails there, fast, with the
	// precondition that says where to apply it.
	return true, ""
}

// quiesce stops the workloads on this side, their replica counts recorded.
func (r *SwitchoverReconciler) quiesce(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	n, err := r.Workloads.Park(ctx, r.Client, s.pair)
	if err != nil {
		return switchover.Result{}, err
	}
	return switchover.Succeeded(fmt.Sprintf("%d workloads on %s scaled to 0, their replica counts recorded", n, r.ClusterName)), nil
}

func (r *SwitchoverReconciler) finalVolumes(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	return r.volumes().FinalSnapshot(ctx, r.move(s))
}

// pauseSync pauses the pair's sync until the roles are swapped.
func (r *SwitchoverReconciler) pauseSync(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	if err := r.pausePairSync(ctx, s.pair, s.obj.Name); err != nil {
		return switchover.Result{}, err
	}
	r.Syncs.StopPair(s.pair.Namespace, s.pair.Name, nil)
	return switchover.Succeeded("The sync to " + s.obj.Spec.TargetCluster + " is paused, so it cannot scale the workloads there back to 0"), nil
}

// rollBack returns the pair to how it was: the standby's workloads back to
// 0, this side's restored, the sync running again.
func (p *plannedRunner) rollBack(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	r := p.r
	// This side stays the active one: its clients' writes are kept, so
	// they are accepted again before anything else is put back.
	if err := r.liftWriteFence(ctx, s.obj); err != nil {
		return switchover.Result{}, err
	}
	if s.peer == nil {
		return switchover.Waiting(fmt.Sprintf("waiting for %s to answer, to scale it back to 0: %v", s.obj.Spec.TargetCluster, s.peerErr), probePeriod(s.pair)), nil
	}
	if st := findStep(s.obj, switchover.StepFlipTraffic); st != nil && st.Phase != tandemv1.StepPending {
		// The flip may have moved some records or routes: point them back
		// before the old side serves again.
		back := r.move(s)
		back.From, back.To = back.To, back.From
		res, err := r.traffic().Flip(ctx, back)
		if err != nil || res.Phase == "" {
			return res, err
		}
		if rep := s.obj.Status.Report; rep != nil {
			rep.TrafficMovedTime, rep.ClientsFollowBy = nil, nil
		}
	}
	if err := r.endSwitchoverServing(ctx, s); err != nil {
		return switchover.Result{}, err
	}
	parked, err := r.Workloads.Park(ctx, s.peer, s.pair)
	if err != nil {
		return switchover.Result{}, err
	}
	restored, err := r.Workloads.UnparkAtOnce(ctx, r.Client, s.pair)
	if err != nil {
		return switchover.Result{}, err
	}
	if err := r.pausePairSync(ctx, s.pair, ""); err != nil {
		return switchover.Result{}, err
	}
	return switchover.Succeeded(fmt.Sprintf("%d workloads on %s restored, %d on %s back at 0, the sync resumed",
		restored.changed, r.ClusterName, parked, s.obj.Spec.TargetCluster)), nil
}

func (r *SwitchoverReconciler) plannedPreconditions(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	check := switchover.PlannedCheck{Pair: s.pair, Local: r.ClusterName, Target: s.obj.Spec.TargetCluster, PeerErr: s.peerErr, MaxLag: 30 * time.Second}
	if o := s.pair.Spec.Objectives; o != nil && o.RPO != nil {
		check.MaxLag = o.RPO.Duration
	}
	if s.peer != nil {
		var theirs tandemv1.HAPair
		err := readPair(ctx, s.peer, client.ObjectKeyFromObject(s.pair), &theirs)
		switch {
		case err == nil:
			check.PeerPair = &theirs
		case !apierrors.IsNotFound(err):
			check.PeerErr = err
		}
	}
	others, err := r.unfinished(ctx, s.obj)
	if err != nil {
		return switchover.Result{}, err
	}
	check.Others = others
	v := switchover.PlannedPreconditions(check)
	switch {
	case v.Fail:
		return switchover.Failed(v.Message), nil
	case !v.OK:
		return switchover.Waiting(v.Message, time.Second), nil
	}
	return switchover.Succeeded(v.Message), nil
}

// unfinished lists the pair's other Switchovers that have started and not
// ended. One created at the same moment and not started yet does not count:
// it will see this one when it checks its own preconditions.
func (r *SwitchoverReconciler) unfinished(ctx context.Context, obj *tandemv1.Switchover) ([]string, error) {
	running, err := r.Switchovers.Unfinished(ctx, obj.Namespace, obj.Spec.PairRef)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range running {
		if o.Name != obj.Name && o.Status.Phase != "" {
			out = append(out, o.Name)
		}
	}
	return out, nil
}

// finalSync waits until the standby holds, for every selected object, a
// copy whose hash is that of the object as it is now. The workloads here
// are stopped, so what is verified is the last state anything wrote.
func (r *SwitchoverReconciler) finalSync(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	if s.peerCfg == nil {
		return switchover.Waiting(fmt.Sprintf("cannot reach %s: %v", s.obj.Spec.TargetCluster, s.peerErr), time.Second), nil
	}
	policies, err := allPairPolicies(ctx, r.Client, s.pair)
	if err != nil {
		return switchover.Result{}, err
	}
	checked := 0
	var differ []string
	for _, policy := range policies {
		spec := replicate.Directed(policy.Spec, s.pair.Spec.Primary, s.obj.Spec.TargetCluster)
		opts := replicate.Options{Pair: s.pair.Name, PairNamespace: s.pair.Namespace, Policy: policy.Name, Mode: spec.StandbyMode, Transforms: spec.Transforms}
		v, err := replicate.Verify(ctx, r.LocalConfig, s.peerCfg, r.Syncs.Scope(), spec, opts, replicate.PairSecrets(s.pair))
		if err != nil {
			return switchover.Waiting(fmt.Sprintf("verifying SyncPolicy %s: %v", policy.Name, err), time.Second), nil
		}
		checked += v.Checked
		differ = append(differ, v.Differ...)
	}
	if len(differ) > 0 {
		return switchover.Waiting(fmt.Sprintf("%d of %d objects not yet identical on %s: %s", len(differ), checked, s.obj.Spec.TargetCluster, firstN(differ, 5)), 500*time.Millisecond), nil
	}
	return switchover.Succeeded(fmt.Sprintf("%d objects identical on %s (compared by content hash)", checked, s.obj.Spec.TargetCluster)), nil
}

// startOnPeer restores the replica counts of the standby's workloads and
// waits until they are Available.
func (r *SwitchoverReconciler) startOnPeer(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	if s.peer == nil {
		return switchover.Waiting(fmt.Sprintf("cannot reach %s: %v", s.obj.Spec.TargetCluster, s.peerErr), time.Second), nil
	}
	// The target's fence sidecars serve before the roles are swapped: a
	// planned switchover has quiesced this side, a drill runs beside it.
	if err := r.openSwitchoverServing(ctx, s); err != nil {
		return switchover.Result{}, err
	}
	run, err := r.Workloads.Unpark(ctx, s.peer, s.pair)
	if err != nil {
		return switchover.Result{}, err
	}
	if len(run.waiting) > 0 {
		return switchover.Waiting(fmt.Sprintf("waiting for %s on %s to be Available", firstN(run.waiting, 5), s.obj.Spec.TargetCluster), 250*time.Millisecond), nil
	}
	setRTO(s, r.now())
	return switchover.Succeeded(fmt.Sprintf("%d workloads Available on %s", run.total, s.obj.Spec.TargetCluster)), nil
}

// swapRoles takes the next epoch for the target: this side's record first
// (so this side never again claims Active at the old epoch), then the
// witness Lease, then the target's record. Each write repeats safely.
func (r *SwitchoverReconciler) swapRoles(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	target, epoch := s.obj.Spec.TargetCluster, s.obj.Status.Epoch
	want := fence.Record{Active: target, Epoch: epoch}
	if rec := recordOf(s.pair); rec != want {
		if !fence.Supersedes(want, rec) {
			return switchover.Failed(fmt.Sprintf("the pair's record moved on to %s", rec)), nil
		}
		if err := writePairRecord(ctx, r.Client, s.pair, want, target, r.ClusterName, tandemv1.RoleStandby); err != nil {
			return switchover.Result{}, err
		}
	}
	if err := closeServing(ctx, r.servingClient(), s.pair); err != nil {
		return switchover.Result{}, err
	}
	confirmed := r.now()
	if s.pair.Spec.Witness != nil {
		c, err := r.Peers.Witness(s.pair.Namespace, s.pair.Name)
		if err != nil {
			return switchover.Waiting("the witness does not answer: "+err.Error(), time.Second), nil
		}
		if err := r.Witness.Handover(ctx, c, leaseRef(s.pair), r.ClusterName, target, epoch); err != nil {
			return switchover.Waiting("handing the witness Lease over: "+err.Error(), time.Second), nil
		}
	}
	if s.peer == nil {
		return switchover.Waiting(fmt.Sprintf("cannot reach %s to write its role record: %v", target, s.peerErr), time.Second), nil
	}
	var theirs tandemv1.HAPair
	if err := readPair(ctx, s.peer, client.ObjectKeyFromObject(s.pair), &theirs); err != nil {
		return switchover.Waiting(fmt.Sprintf("reading the pair on %s: %v", target, err), time.Second), nil
	}
	if recordOf(&theirs) != want {
		if err := writePairRecord(ctx, s.peer, &theirs, want, r.ClusterName, target, tandemv1.RoleActive); err != nil {
			return switchover.Waiting(err.Error(), time.Second), nil
		}
	}
	// The handover (or this write, without a witness) confirms the
	// target's role; its operator renews the grant from its own rounds.
	if err := openPromotedServing(ctx, s.peer, &theirs, target, confirmed); err != nil {
		return switchover.Waiting(fmt.Sprintf("opening the serving Lease on %s: %v", target, err), time.Second), nil
	}
	if err := r.pausePairSync(ctx, s.pair, ""); err != nil {
		return switchover.Result{}, err
	}
	return switchover.Succeeded(fmt.Sprintf("%s is active at epoch %d, %s the standby", target, epoch, r.ClusterName)), nil
}

// reverseSync waits until the new active side reports its sync to this side
// in sync, after the roles were swapped.
func (r *SwitchoverReconciler) reverseSync(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	target := s.obj.Spec.TargetCluster
	if s.peer == nil {
		return switchover.Waiting(fmt.Sprintf("cannot reach %s: %v", target, s.peerErr), time.Second), nil
	}
	var theirs tandemv1.HAPair
	if err := readPair(ctx, s.peer, client.ObjectKeyFromObject(s.pair), &theirs); err != nil {
		return switchover.Waiting(fmt.Sprintf("reading the pair on %s: %v", target, err), time.Second), nil
	}
	var swapped *metav1.MicroTime
	for _, st := range s.obj.Status.Steps {
		if st.Name == switchover.StepSwapRoles {
			swapped = st.EndTime
		}
	}
	synced := apimeta.FindStatusCondition(theirs.Status.Conditions, tandemv1.SyncedCondition)
	if synced == nil || synced.Status != metav1.ConditionTrue || theirs.Status.Sync == nil || theirs.Status.Sync.LastFullSync == nil ||
		(swapped != nil && theirs.Status.Sync.LastFullSync.Time.Before(swapped.Time.Truncate(time.Second))) {
		msg := "no sync yet"
		if synced != nil {
			msg = synced.Message
		}
		return switchover.Waiting(fmt.Sprintf("waiting for %s to sync back to %s: %s", target, r.ClusterName, msg), 500*time.Millisecond), nil
	}
	return switchover.Succeeded(fmt.Sprintf("%s syncs to %s: %s", target, r.ClusterName, synced.Message)), nil
}

// pausePairSync sets (or, with an empty name, clears) the annotation on the
// pair that pauses its sync on this cluster.
func (r *SwitchoverReconciler) pausePairSync(ctx context.Context, pair *tandemv1.HAPair, by string) error {
	if pair.Annotations[SyncPausedAnnotation] == by {
		return nil
	}
	value := "null"
	if by != "" {
		value = fmt.Sprintf("%q", by)
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%s}}}`, SyncPausedAnnotation, value)
	if err := r.Patch(ctx, pair, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		return fmt.Errorf("pausing the sync of HAPair %s/%s: %w", pair.Namespace, pair.Name, err)
	}
	return nil
}
