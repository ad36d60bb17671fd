package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/fence"
	"github.com/tandem-dev/tandem/internal/switchover"
)

// failoverRunner promotes the cluster it runs on after the active side was
// lost: confirm the loss (and take the witness Lease), take the next epoch,
// restore the workloads, record the data-loss window. Nothing can be rolled
// back once the epoch is taken: the old side will demote itself when it
// returns.
type failoverRunner struct{ r *SwitchoverReconciler }

func (f *failoverRunner) steps(*switchoverScope) []step {
	r := f.r
	return []step{
		// A run that took the witness Lease and then lost its status
		// write has confirmed the loss: the old side is demoting itself,
		// so the failover goes on, timed out or not.
		{name: switchover.StepConfirmLoss, run: r.confirmLoss, doneEarlier: r.leaseTakenEarlier},
		// Once the Lease is taken the old side demotes itself: from here
		// on, the failover must finish.
		{name: switchover.StepBumpEpoch, run: r.promote, mustFinish: true},
		{name: switchover.StepRestoreVolumes, run: r.whilePromoted(r.restoreVolumes), mustFinish: true},
		{name: switchover.StepScaleUp, run: r.whilePromoted(r.scaleUp), mustFinish: true},
		{name: switchover.StepFlipTraffic, run: r.whilePromoted(r.flipTrafficAfter(switchover.StepScaleUp)), mustFinish: true},
		{name: switchover.StepRecordDataLoss, run: r.recordDataLoss, mustFinish: true},
	}
}

// whilePromoted runs a step that starts workloads or moves traffic only
// while this side still holds the epoch the failover took. Such a step
// goes on past its timeout (giving up would leave the service half moved),
// so it must stop when another switchover has moved the pair on since:
// this side is then demoted, and its HAPair controller parks what the step
// would start.
func (r *SwitchoverReconciler) whilePromoted(run func(context.Context, *switchoverScope) (switchover.Result, error)) func(context.Context, *switchoverScope) (switchover.Result, error) {
	return func(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
		rec, want := recordOf(s.pair), fence.Record{Active: r.ClusterName, Epoch: s.obj.Status.Epoch}
		switch {
		case rec == want:
			return run(ctx, s)
		case fence.Supersedes(rec, want):
			return switchover.Failed(fmt.Sprintf("the pair's record moved on to %s after this failover took epoch %d", rec, want.Epoch)), nil
		}
		// The cache has not caught up with the promotion yet.
		return switchover.Waiting(fmt.Sprintf("waiting to read the promotion: %s", want), 100*time.Millisecond), nil
	}
}

func (f *failoverRunner) rollBack(context.Context, *switchoverScope) (switchover.Result, error) {
	return switchover.Failed("a Failover has nothing to roll back"), nil
}

func (f *failoverRunner) runsHere(s *switchoverScope) (bool, string) {
	if s.obj.Spec.TargetCluster != f.r.ClusterName {
		return false, fmt.Sprintf("A Failover runs on the cluster it promotes: apply it on %s, not %s", s.obj.Spec.TargetCluster, f.r.ClusterName)
	}
	return true, ""
}

// scaleUp restores the replica counts of this side's workloads and waits
// until they are Available.
func (r *SwitchoverReconciler) scaleUp(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	run, err := r.Workloads.Unpark(ctx, r.Client, s.pair)
	if err != nil {
		return switchover.Result{}, err
	}
	if len(run.waiting) > 0 {
		return switchover.Waiting(fmt.Sprintf("waiting for %s to be Available", firstN(run.waiting, 5)), time.Second), nil
	}
	setRTO(s, r.now())
	return switchover.Succeeded(fmt.Sprintf("%d workloads Available", run.total)), nil
}

func (r *SwitchoverReconciler) restoreVolumes(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	return r.volumes().Restore(ctx, r.move(s))
}

// setRTO records the time from the start of the switchover (or, for a
// failover, the first failed probe) to the workloads Available on the new
// side.
func setRTO(s *switchoverScope, now time.Time) {
	start := s.obj.Status.StartTime.Time
	if s.obj.Spec.Type == tandemv1.SwitchoverFailover && !s.health.FirstFailure.IsZero() && s.health.FirstFailure.Before(start) {
		start = s.health.FirstFailure
	}
	s.obj.Status.RTO = &metav1.Duration{Duration: now.Sub(start).Round(time.Millisecond)}
}

// confirmLoss runs the precondition chain, then takes the witness Lease at
// the Switchover's epoch when the pair has a witness. The Lease is what
// proves the old active side has stopped: it fences itself when it can
// renew neither the Lease nor reach this side.
func (r *SwitchoverReconciler) confirmLoss(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	age, fresh, err := r.Heartbeats.Fresh(ctx, r.Client, s.pair, r.now())
	if err != nil {
		return switchover.Result{}, err
	}
	v := switchover.ConfirmLoss(switchover.LossCheck{Pair: s.pair, Target: r.ClusterName, Health: s.health, Probed: s.probed,
		PeerFenced: r.peerFenced(ctx, s) || r.peerLapsed(ctx, s), Heartbeat: age, HeartbeatFresh: fresh})
	period := probePeriod(s.pair)
	switch {
	case v.Fail:
		return switchover.Failed(v.Message), nil
	case !v.OK:
		return switchover.Waiting(v.Message, period), nil
	case s.pair.Spec.Witness == nil:
		return switchover.Succeeded(v.Message + "; no witness configured"), nil
	}
	c, err := r.Peers.Witness(s.pair.Namespace, s.pair.Name)
	if err != nil {
		return switchover.Waiting(v.Message+"; the witness does not answer: "+err.Error(), period), nil
	}
	err = r.Witness.Acquire(ctx, c, leaseRef(s.pair), r.ClusterName, s.obj.Status.Epoch)
	switch {
	case fence.IsSuperseded(err):
		return switchover.Failed(err.Error()), nil
	case err != nil:
		return switchover.Waiting(v.Message+"; "+err.Error(), period), nil
	}
	return switchover.Succeeded(fmt.Sprintf("%s; took the witness Lease at epoch %d", v.Message, s.obj.Status.Epoch)), nil
}

// leaseTakenEarlier finishes the step when an earlier run of it already
// took the witness Lease at this Switchover's epoch, and then crashed or
// lost its status write to a conflict. The Lease is taken only once the
// loss is confirmed, and the old side demotes itself when it sees it: to
// check again now (the old side may answer by then) and fail would leave
// neither side active. The Lease is renewed, as a first take would have.
func (r *SwitchoverReconciler) leaseTakenEarlier(ctx context.Context, s *switchoverScope) (switchover.Result, bool) {
	if s.pair.Spec.Witness == nil {
		return switchover.Result{}, false
	}
	c, err := r.Peers.Witness(s.pair.Namespace, s.pair.Name)
	if err != nil {
		return switchover.Result{}, false
	}
	ref, epoch := leaseRef(s.pair), s.obj.Status.Epoch
	v, err := r.Witness.Read(ctx, c, ref)
	if err != nil || v.Holder != r.ClusterName || v.Epoch != epoch {
		return switchover.Result{}, false
	}
	if err := r.Witness.Acquire(ctx, c, ref, r.ClusterName, epoch); err != nil {
		return switchover.Waiting(fmt.Sprintf("renewing the witness Lease this failover took at epoch %d: %v", epoch, err), probePeriod(s.pair)), true
	}
	return switchover.Succeeded(fmt.Sprintf("an earlier run of this step confirmed the loss and took the witness Lease at epoch %d; renewed it", epoch)), true
}

// peerFenced reads the pair on the active side, when it answers: a side
// whose own record says Fenced at this side's epoch serves nothing.
func (r *SwitchoverReconciler) peerFenced(ctx context.Context, s *switchoverScope) bool {
	if !s.health.Reachable() || s.peer == nil {
		return false
	}
	var theirs tandemv1.HAPair
	if err := readPair(ctx, s.peer, client.ObjectKeyFromObject(s.pair), &theirs); err != nil {
		return false
	}
	return fencedPeer(&theirs, s.pair, s.pair.Status.ActiveCluster)
}

// promote writes this cluster's role record: active at the Switchover's
// epoch. It repeats safely: a record already there is success, a higher
// epoch naming another cluster is a failure.
func (r *SwitchoverReconciler) promote(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	pair, epoch := s.pair, s.obj.Status.Epoch
	rec := recordOf(pair)
	want := fence.Record{Active: r.ClusterName, Epoch: epoch}
	switch {
	case rec == want:
		return switchover.Succeeded(fmt.Sprintf("%s is active at epoch %d", r.ClusterName, epoch)), nil
	case !fence.Supersedes(want, rec):
		return switchover.Failed(fmt.Sprintf("the pair's record moved on to %s", rec)), nil
	}
	if err := writePairRecord(ctx, r.Client, pair, want, s.obj.Status.FromCluster, r.ClusterName, tandemv1.RoleActive); err != nil {
		return switchover.Result{}, err
	}
	// The Lease this failover took confirms the role, for as long as it
	// lasts from its acquisition; the pair's next round renews it.
	confirmed := r.now()
	if pair.Spec.Witness != nil {
		confirmed = r.Witness.LastRenew(leaseRef(pair))
	}
	if err := openPromotedServing(ctx, r.servingClient(), pair, r.ClusterName, confirmed); err != nil {
		return switchover.Result{}, err
	}
	pairEvent(r.Events, pair, corev1.EventTypeNormal, tandemv1.PromotedReason, actionPromote, "%s became active at epoch %d through Switchover %s", r.ClusterName, epoch, s.obj.Name)
	log.FromContext(ctx).Info("Promoted", "pair", pair.Name, "epoch", epoch)
	return switchover.Succeeded(fmt.Sprintf("%s is active at epoch %d (was %s)", r.ClusterName, epoch, rec)), nil
}

// writePairRecord writes a role record into the pair's status on the
// cluster c reaches, with the resourceVersion as a precondition.
func writePairRecord(ctx context.Context, c client.Client, pair *tandemv1.HAPair, rec fence.Record, peer, local string, role tandemv1.Role) error {
	before := pair.DeepCopy()
	setRecord(pair, rec, peer, local)
	pair.Status.LocalRole = role
	if err := c.Status().Patch(ctx, pair, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("writing the role record of HAPair %s/%s (%s): %w", pair.Namespace, pair.Name, rec, err)
	}
	return nil
}

// recordDataLoss measures the failover. What it can lose is every change
// the old active side made after the sync watermark its heartbeat last left
// here (every change before it is on this side), until it stopped serving:
// at the latest when this side took the witness Lease, since the old side
// fences itself before the Lease can expire; without a witness, when this
// side took the epoch. The volumes restored may reach further back, to the
// oldest snapshot. Without a watermark nothing bounds the loss, and the
// status says so rather than report a window: a probe time is no bound, the
// probes pass while the sync is broken.
func (r *SwitchoverReconciler) recordDataLoss(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	st := &s.obj.Status
	msg := "RTO not measured"
	if st.RTO != nil {
		msg = fmt.Sprintf("RTO %s from the first failed probe to the workloads Available", st.RTO.Duration)
		if st.Report != nil && st.Report.TrafficMovedTime != nil {
			msg += " and the records answering them at the authoritative servers"
		}
	}
	hb, found, err := readHeartbeat(ctx, r.Client, s.pair)
	if err != nil {
		return switchover.Result{}, err
	}
	if !found || hb.Holder != st.FromCluster || hb.Watermark.IsZero() {
		st.DataLossWindow, st.DataLossSince = nil, nil
		st.DataLossUnknown = fmt.Sprintf("%s left no sync watermark on %s: changes it made may be lost, and no time bounds which", st.FromCluster, r.ClusterName)
		return switchover.Succeeded(msg + "; data-loss window unknown: " + st.DataLossUnknown), nil
	}
	since := hb.Watermark
	if st.DataLossSince != nil && st.DataLossSince.Time.Before(since) {
		since = st.DataLossSince.Time
	}
	end := r.now()
	if step := findStep(s.obj, switchover.StepConfirmLoss); step != nil && step.EndTime != nil {
		end = step.EndTime.Time
	}
	st.DataLossUnknown = ""
	st.DataLossSince = &metav1.MicroTime{Time: since}
	st.DataLossWindow = &metav1.Duration{Duration: max(0, end.Sub(since)).Round(time.Millisecond)}
	what := fmt.Sprintf("changes made on %s after %s (its last sync watermark here", st.FromCluster, since.UTC().Format(time.RFC3339Nano))
	if since.Before(hb.Watermark) {
		what += ", or the oldest volume snapshot restored"
	}
	return switchover.Succeeded(fmt.Sprintf("%s; data-loss window at most %s: %s) may be lost", msg, st.DataLossWindow.Duration, what)), nil
}

// peerLapsed is true when the active side answers but its serving Lease has
// lapsed (PeerGrants): its operator is dead and its pods serve nothing. Only
// with a witness, whose Lease this side must still wait out.
func (r *SwitchoverReconciler) peerLapsed(ctx context.Context, s *switchoverScope) bool {
	if !sidecarFenced(s.pair) || !s.health.Reachable() || s.peer == nil {
		return false
	}
	lapsed, _, err := r.Grants.Lapsed(ctx, s.peer, s.pair, r.now())
	return err == nil && lapsed
}
