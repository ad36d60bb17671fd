package volume

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// Retire runs on a side that is the standby: it holds no protected PVC
// (they come from snapshots on promotion), so PVCs left from when it was
// active are retired. Their data is kept in a snapshot first, unless the
// side's newest snapshot of the PVC is a planned switchover's final one,
// taken after the quiesce and already restored on the other side. It
// returns what it still waits for; an error names the PVC it could not
// retire (that PVC stays).
func Retire(ctx context.Context, local Cluster, pair PairRef, policies []Policy, epoch int64) (string, error) {
	claims, _, err := protectedClaims(ctx, local.Read, policies)
	if err != nil {
		return "", err
	}
	if len(claims) == 0 {
		return "", nil
	}
	snaps, err := listSnaps(ctx, local, pair)
	if err != nil {
		return "", err
	}
	newest := map[ClaimKey]Snap{}
	for i := range snaps {
		s := ToSnap(&snaps[i], nil)
		if s.Role != RoleSource {
			continue
		}
		if cur, ok := newest[s.Key()]; !ok || cur.Taken.Before(s.Taken) {
			newest[s.Key()] = s
		}
	}
	var waiting []string
	for _, k := range sortedKeysOf(claims) {
		c := claims[k]
		pvc := c.pvc
		if pvc.DeletionTimestamp != nil {
			waiting = append(waiting, fmt.Sprintf("waiting for PVC %s to be deleted (finalizers %v)", k, pvc.Finalizers))
			continue
		}
		if restoredAt, err := strconv.ParseInt(pvc.Annotations[RestoredEpochAnnotation], 10, 64); err == nil && restoredAt >= epoch {
			continue // restored for a switchover to this side still under way
		}
		if n, ok := newest[k]; ok && n.Final != "" && n.Ready {
			// Nothing ran here since the final snapshot: its data is on
			// the other side already.
			if err := local.Write.Delete(ctx, pvc, client.Preconditions{UID: &pvc.UID}); err != nil && !apierrors.IsNotFound(err) {
				return "", fmt.Errorf("deleting PVC %s on %s: %w", k, local.Name, err)
			}
			waiting = append(waiting, fmt.Sprintf("waiting for PVC %s to be deleted", k))
			continue
		}
		_, msg, err := retireClaim(ctx, local, pair, pvc, ptr.To(c.policy.Spec.Volumes.SnapshotClassName),
			"the PVC's side became the standby; data written there after the other side's newest snapshot")
		if err != nil {
			snapshotFailures.WithLabelValues(pair.Namespace, pair.Name, "retire").Inc()
			return "", err
		}
		waiting = append(waiting, msg)
	}
	return strings.Join(firstN(waiting, 3), "; "), nil
}

func sortedKeysOf(m map[ClaimKey]claim) []ClaimKey {
	keys := map[ClaimKey]bool{}
	for k := range m {
		keys[k] = true
	}
	return sortedClaimKeys(keys)
}

// FinalSnapshot takes, on the quiesced active side, one last snapshot of
// every protected PVC and ships it, labelled with the planned Switchover,
// so the restore on the other side uses data taken after the last write.
// It returns done once every final snapshot is usable on the standby. Its
// snapshot names follow the Switchover's uid, so repeating it after a
// crash finds the snapshots it already took.
func FinalSnapshot(ctx context.Context, sides Sides, policies []Policy, switchover string, uid string) (bool, string, error) {
	if sides.Standby == nil {
		return false, "", fmt.Errorf("the target does not answer")
	}
	claims, unbound, err := protectedClaims(ctx, sides.Active.Read, policies)
	if err != nil {
		return false, "", err
	}
	var waiting []string
	ready := 0
	for _, k := range sortedKeysOf(claims) {
		if unbound[k] {
			continue // no volume, no data to carry
		}
		c := claims[k]
		name := truncate(c.pvc.Name, 253-len("-final-")-10) + "-final-" + shortHash(uid, 10)
		var src snapv1.VolumeSnapshot
		err := sides.Active.Read.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: name}, &src)
		if apierrors.IsNotFound(err) {
			s := newSourceSnapshot(sides.Pair, c, name)
			s.Labels[FinalLabel] = switchover
			if err := sides.Active.Write.Create(ctx, s); err != nil && !apierrors.IsAlreadyExists(err) {
				return false, "", fmt.Errorf("creating the final VolumeSnapshot of %s on %s: %w", k, sides.Active.Name, err)
			}
			waiting = append(waiting, fmt.Sprintf("final snapshot of %s taken", k))
			continue
		} else if err != nil {
			return false, "", err
		}
		s := ToSnap(&src, nil)
		if s.Err != "" {
			return false, "", fmt.Errorf("the final VolumeSnapshot %s/%s failed: %s", k.Namespace, name, s.Err)
		}
		if !s.Ready {
			waiting = append(waiting, fmt.Sprintf("final snapshot of %s not ready yet", k))
			continue
		}
		var rep snapv1.VolumeSnapshot
		err = sides.Standby.Read.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: name}, &rep)
		if apierrors.IsNotFound(err) {
			if err := ship(ctx, sides, c, &src, switchover); err != nil {
				return false, "", err
			}
			waiting = append(waiting, fmt.Sprintf("final snapshot of %s shipped to %s", k, sides.Standby.Name))
			continue
		} else if err != nil {
			return false, "", err
		}
		r := ToSnap(&rep, nil)
		if !r.Ready {
			msg := fmt.Sprintf("final snapshot of %s not usable on %s yet", k, sides.Standby.Name)
			if r.Err != "" {
				msg += ": " + r.Err
			}
			waiting = append(waiting, msg)
			continue
		}
		ready++
	}
	if len(waiting) > 0 {
		return false, fmt.Sprintf("%d of %d final snapshots usable on %s; %s", ready, ready+len(waiting), sides.Standby.Name, strings.Join(firstN(waiting, 3), "; ")), nil
	}
	return true, fmt.Sprintf("%d PVCs snapshotted after the quiesce, usable on %s", ready, sides.Standby.Name), nil
}

// KeptOn lists the kept snapshots of the pair on a cluster, newest first,
// as status shows them.
func KeptOn(ctx context.Context, c Cluster, pair PairRef) ([]tandemv1.KeptSnapshot, error) {
	var list snapv1.VolumeSnapshotList
	labels := pairLabels(pair)
	labels[RoleLabel] = string(RoleKept)
	if err := c.Read.List(ctx, &list, client.MatchingLabels(labels)); err != nil {
		return nil, err
	}
	sort.Slice(list.Items, func(i, j int) bool {
		return list.Items[i].CreationTimestamp.After(list.Items[j].CreationTimestamp.Time)
	})
	out := make([]tandemv1.KeptSnapshot, 0, len(list.Items))
	for i := range list.Items {
		s := &list.Items[i]
		out = append(out, tandemv1.KeptSnapshot{
			Namespace: s.Namespace, Name: s.Name, Claim: s.Annotations[ClaimAnnotation],
			Reason: s.Annotations[KeptReasonAnnotation], CreationTime: s.CreationTimestamp, ReadyToUse: ToSnap(s, nil).Ready,
		})
	}
	return out, nil
}
