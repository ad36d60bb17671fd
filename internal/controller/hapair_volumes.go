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
			setVolumesFailed(pair, tandemv1.SnapshotFailedReason, err)
			return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
		case msg != "":
			setVolumesRetiring(pair, r.ClusterName, msg)
			return ctrl.Result{RequeueAfter: time.Second}, nil
		default:
			setVolumesProtectedByActive(pair, r.ClusterName)
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
		setVolumesWaitForSwitchover(pair, busy)
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
		setVolumesFailed(pair, tandemv1.SnapshotAPIMissingReason, err)
		return ctrl.Result{}, nil
	case err != nil:
		setVolumesFailed(pair, tandemv1.SnapshotFailedReason, err)
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	setClaims(pair, report.Claims)
	setVolumesProtected(pair, report.Claims, s.peer.Name)
	// Snapshots in flight or a round due.
	return ctrl.Result{RequeueAfter: max(report.Wake, 200*time.Millisecond)}, nil
}

func (r *HAPairReconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
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
