package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/volume"
)

// reconcileVolumes protects the PVCs of the pair's policies with
// spec.volumes. On the active side it runs a protection round (snapshot,
// ship, prune, measure the RPO); on the standby it retires PVCs left from
// when this side was active, keeping their data in snapshots. Both list the
// snapshots this cluster keeps of retired PVCs. A fenced side touches
// nothing: it may serve again.
func (r *HAPairReconciler) reconcileVolumes(ctx context.Context, s *hapairScope) (ctrl.Result, error) {
	pair := s.pair
	policies, err := volumePolicies(ctx, r.Client, pair, s.peer.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	local := volume.Cluster{Name: r.ClusterName, Read: r.reader(), Write: r.Client}
	ref := pairRef(pair)
	if len(policies) == 0 {
		pair.Status.Volumes = nil
		removeCondition(pair, tandemv1.VolumesProtectedCondition)
		volume.Forget(ref)
		return ctrl.Result{}, nil
	}
	if pair.Status.Volumes == nil {
		pair.Status.Volumes = &tandemv1.VolumeSummary{}
	}
	if kept, err := volume.KeptOn(ctx, local, ref); err == nil {
		pair.Status.Volumes.Kept = kept
	}

	switch pair.Status.LocalRole {
	case tandemv1.RoleActive:
		return r.protectVolumes(ctx, s, policies, local)
	case tandemv1.RoleStandby:
		// The active side reports the protection; this side only what it
		// keeps.
		volume.Forget(ref)
		pair.Status.Volumes = &tandemv1.VolumeSummary{Kept: pair.Status.Volumes.Kept}
		msg, err := volume.Retire(ctx, local, ref, policies, pair.Status.Epoch)
		switch {
		case err != nil:
			setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionFalse, tandemv1.SnapshotFailedReason, err.Error())
			return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
		case msg != "":
			setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionUnknown, tandemv1.RetiringVolumesReason,
				"Retiring the PVCs left from when "+r.ClusterName+" was active: "+msg)
			s.wake = min(s.wake, time.Second)
		default:
			setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionUnknown, tandemv1.ProtectedByPeerReason,
				fmt.Sprintf("%s is the standby and holds no protected PVC; %s takes the snapshots and reports their RPO", r.ClusterName, pair.Status.ActiveCluster))
		}
	}
	return ctrl.Result{}, nil
}

// protectVolumes runs one protection round on the active side, unless a
// switchover of the pair is under way: a planned one takes its own final
// snapshots, and a failover's restore must not race the pruning.
func (r *HAPairReconciler) protectVolumes(ctx context.Context, s *hapairScope, policies []volume.Policy, local volume.Cluster) (ctrl.Result, error) {
	pair := s.pair
	busy, err := r.busyWith(ctx, pair)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(busy) > 0 {
		setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionUnknown, tandemv1.SyncPausedReason,
			fmt.Sprintf("Snapshots wait while Switchover %s runs", joinFirst(busy, 3, ", ")))
		return ctrl.Result{}, nil
	}
	sides := volume.Sides{Pair: pairRef(pair), Active: local, Objective: rpoObjective(pair)}
	if s.peerClient != nil {
		sides.Standby = &volume.Cluster{Name: s.peer.Name, Read: s.peerClient, Write: s.peerClient}
	}
	rctx, cancel := context.WithTimeout(ctx, 4*probeTimeout(pair))
	defer cancel()
	report, err := r.Volumes.Protect(rctx, sides, policies, r.now())
	var missing *volume.APIMissingError
	switch {
	case errors.As(err, &missing):
		setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionFalse, tandemv1.SnapshotAPIMissingReason, err.Error())
		return ctrl.Result{}, nil
	case err != nil:
		setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionFalse, tandemv1.SnapshotFailedReason, err.Error())
		s.wake = min(s.wake, 5*time.Second)
		return ctrl.Result{}, nil
	}
	setClaims(pair, report.Claims)
	setVolumesProtected(pair, report.Claims, s.peer.Name)
	s.wake = min(s.wake, max(report.Wake, 200*time.Millisecond))
	return ctrl.Result{}, nil
}

func (r *HAPairReconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

// setClaims writes each claim's protection and the pair's summary: the
// oldest among the newest replicas, and the worst RPO.
func setClaims(pair *tandemv1.HAPair, claims []volume.ClaimState) {
	v := pair.Status.Volumes
	v.ProtectedPVCs = int32(len(claims))
	v.Claims = make([]tandemv1.ClaimProtection, 0, len(claims))
	v.NewestReplicatedSnapshot, v.CurrentRPO = nil, nil
	var oldest time.Time
	var worst time.Duration
	missing := false
	for _, c := range claims {
		cp := tandemv1.ClaimProtection{
			Namespace: c.Key.Namespace, Name: c.Key.Name, Message: c.Problem,
			NewestSnapshot: metaTime(c.NewestSnapshot), NewestReplica: metaTime(c.NewestReplica),
		}
		if c.RPO >= 0 {
			cp.RPO = &metav1.Duration{Duration: c.RPO.Round(time.Second)}
			worst = max(worst, c.RPO)
			if oldest.IsZero() || c.NewestReplica.Before(oldest) {
				oldest = c.NewestReplica
			}
		} else {
			missing = true
		}
		v.Claims = append(v.Claims, cp)
	}
	if len(claims) > 0 && !missing {
		v.NewestReplicatedSnapshot = metaTime(oldest)
		v.CurrentRPO = &metav1.Duration{Duration: worst.Round(time.Second)}
	}
}

// setVolumesProtected sets the condition from the claims: every one has a
// usable replica within the RPO objective, or the first problem.
func setVolumesProtected(pair *tandemv1.HAPair, claims []volume.ClaimState, standby string) {
	if len(claims) == 0 {
		setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionTrue, tandemv1.NoVolumesReason,
			"The pair's SyncPolicies configure spec.volumes but select no PVC")
		return
	}
	objective := rpoObjective(pair)
	var breached, failed, pending []string
	var worst time.Duration
	for _, c := range claims {
		switch {
		case c.RPO < 0:
			pending = append(pending, c.Key.String()+": "+c.Problem)
		case objective > 0 && c.RPO > objective:
			breached = append(breached, fmt.Sprintf("%s (%s)", c.Key, c.RPO.Round(time.Second)))
		case c.Problem != "":
			failed = append(failed, c.Key.String()+": "+c.Problem)
		}
		worst = max(worst, c.RPO)
	}
	switch {
	case len(breached) > 0:
		setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionFalse, tandemv1.RPOBreachedReason,
			fmt.Sprintf("The newest snapshot usable on %s is older than spec.objectives.rpo (%s) for %d of %d PVCs: %s",
				standby, objective, len(breached), len(claims), joinFirst(breached, 3, ", ")))
	case len(failed) > 0:
		setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionFalse, tandemv1.SnapshotFailedReason,
			joinFirst(failed, 3, "; "))
	case len(pending) > 0:
		setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionFalse, tandemv1.ReplicaPendingReason,
			fmt.Sprintf("%d of %d PVCs have no snapshot usable on %s yet: %s", len(pending), len(claims), standby, joinFirst(pending, 3, "; ")))
	default:
		setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionTrue, tandemv1.VolumesProtectedReason,
			fmt.Sprintf("%d PVCs have a snapshot usable on %s; the oldest is %s old (objective %s)", len(claims), standby, worst.Round(time.Second), objective))
	}
}

func rpoObjective(pair *tandemv1.HAPair) time.Duration {
	if o := pair.Spec.Objectives; o != nil && o.RPO != nil {
		return o.RPO.Duration
	}
	return 0
}

func metaTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t)
	return &mt
}

// joinFirst joins the first n items and says how many more there are.
func joinFirst(items []string, n int, sep string) string {
	if len(items) <= n {
		return strings.Join(items, sep)
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], sep), len(items)-n)
}
