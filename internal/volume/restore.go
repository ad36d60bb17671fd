package volume

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tandem-dev/tandem/internal/replicate"
)

// RestoreOptions say which snapshots a restore uses and how it marks the
// PVCs it creates.
type RestoreOptions struct {
	// Final names the planned Switchover whose final snapshots to use; the
	// newest usable snapshots when empty.
	Final string
	// Epoch is the pair's epoch, recorded on the PVCs.
	Epoch int64
	// Drill marks the PVCs as a drill's (replicate.DrillLabel): never
	// copied, never retired, deleted by DeleteDrillClaims.
	Drill bool
}

// RestoreResult is where a restore stands. Every call looks at the cluster
// afresh, so a restore interrupted by a crash simply goes on.
type RestoreResult struct {
	// Done: every claim is restored (bound, or created where its storage
	// class binds on first use).
	Done bool
	// Restored counts the claims restored, Skipped those with no usable
	// snapshot (named in Message).
	Restored, Skipped int
	// Oldest is when the data of the oldest snapshot restored was taken:
	// in a failover, writes after it are lost.
	Oldest  time.Time
	Message string
}

// Restore creates, on the cluster becoming active, each claim's PVC from
// its newest snapshot usable there (see restorable), before any workload
// starts. With final set (a planned switchover), it uses the final
// snapshots of that Switchover instead, so nothing written before the
// quiesce is lost. A PVC
// already there and not restored from the chosen snapshot is replaced, its
// data kept in a snapshot first.
func Restore(ctx context.Context, target Cluster, pair PairRef, opts RestoreOptions) (RestoreResult, error) {
	final := opts.Final
	snaps, err := listSnaps(ctx, target, pair)
	if err != nil {
		return RestoreResult{}, err
	}
	chosen := map[ClaimKey]*snapv1.VolumeSnapshot{}
	var unusable []string
	keys := map[ClaimKey]bool{}
	for i := range snaps {
		vs := &snaps[i]
		s := ToSnap(vs, nil)
		if s.Claim == "" || !restorable(s, vs, final) {
			continue
		}
		k := s.Key()
		keys[k] = true
		if !s.Ready {
			continue
		}
		if cur, ok := chosen[k]; !ok || ToSnap(cur, nil).Taken.Before(s.Taken) {
			chosen[k] = vs
		}
	}
	var res RestoreResult
	var waiting []string
	for _, k := range sortedClaimKeys(keys) {
		vs := chosen[k]
		if vs == nil {
			if final != "" {
				waiting = append(waiting, fmt.Sprintf("the final snapshot of %s is not usable on %s yet", k, target.Name))
			} else {
				unusable = append(unusable, k.String())
				res.Skipped++
			}
			continue
		}
		done, msg, err := restoreClaim(ctx, target, pair, k, vs, opts)
		if err != nil {
			snapshotFailures.WithLabelValues(pair.Namespace, pair.Name, "restore").Inc()
			return res, err
		}
		if !done {
			waiting = append(waiting, msg)
			continue
		}
		res.Restored++
		if t := ToSnap(vs, nil).Taken; res.Oldest.IsZero() || t.Before(res.Oldest) {
			res.Oldest = t
		}
	}
	res.Done = len(waiting) == 0
	var parts []string
	switch {
	case !res.Done:
		parts = append(parts, fmt.Sprintf("%d of %d PVCs restored; %s", res.Restored, len(keys), strings.Join(firstN(waiting, 3), "; ")))
	default:
		parts = append(parts, fmt.Sprintf("%d PVCs restored on %s", res.Restored, target.Name))
	}
	if len(unusable) > 0 {
		parts = append(parts, fmt.Sprintf("no snapshot usable on %s for %s: those PVCs start empty when their workloads create them", target.Name, strings.Join(firstN(unusable, 5), ", ")))
	}
	res.Message = strings.Join(parts, "; ")
	return res, nil
}

// restorable says whether a restore may use the snapshot. A planned
// switchover's restore uses its final snapshots, shipped here. Any other
// takes the newest of the copies shipped here and of this side's own
// snapshots from when it was last active: the active side shipped each
// snapshot the peer restored, so whichever was taken last holds the newest
// data both sides had. When this side went through a planned switchover
// away and the peer never took a snapshot of its own before it was lost,
// the newest is this side's final snapshot (taken after the quiesce, and
// the very one the peer restored); the copies here predate it, and
// restoring them lost every write of this side's last term. Kept
// snapshots (a retired PVC's data) are never used: they may hold writes
// the peer never had, and their time says when they were kept, not when
// the data stopped.
func restorable(s Snap, vs *snapv1.VolumeSnapshot, final string) bool {
	switch {
	case final != "":
		return s.Role == RoleReplica && s.Final == final
	case s.Role == RoleReplica:
		return true
	default:
		return s.Role == RoleSource && vs.Annotations[ClaimSpecAnnotation] != ""
	}
}

// restoreClaim makes one claim's PVC exist from vs; it returns false with
// what it waits for until the PVC is usable.
func restoreClaim(ctx context.Context, target Cluster, pair PairRef, k ClaimKey, vs *snapv1.VolumeSnapshot, opts RestoreOptions) (bool, string, error) {
	var pvc corev1.PersistentVolumeClaim
	err := target.Read.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: k.Name}, &pvc)
	switch {
	case apierrors.IsNotFound(err):
		want, err := restoredClaim(vs, pair, opts)
		if err != nil {
			return false, "", err
		}
		if err := target.Write.Create(ctx, want); err != nil && !apierrors.IsAlreadyExists(err) {
			return false, "", fmt.Errorf("creating PVC %s on %s from VolumeSnapshot %s: %w", k, target.Name, vs.Name, err)
		}
		return false, fmt.Sprintf("PVC %s created from %s, waiting for it to bind", k, vs.Name), nil
	case err != nil:
		return false, "", fmt.Errorf("reading PVC %s on %s: %w", k, target.Name, err)
	case pvc.DeletionTimestamp != nil:
		// Still going (an earlier drill's copy, whose pod a real kubelet
		// is still stopping): bound or not, it is not the restore, and it
		// must be gone before the restore can take its name. A drill's is
		// released from PVC protection once no pod uses it.
		if pvc.Labels[replicate.DrillLabel] != "" {
			if err := deleteDrillClaim(ctx, target, &pvc); err != nil {
				return false, "", err
			}
		}
		if held, err := releaseSourceSnapshots(ctx, target, pair, &pvc); err != nil || held != "" {
			return false, held, err
		}
		return false, fmt.Sprintf("waiting for the PVC %s being deleted to go (finalizers %v)", k, pvc.Finalizers), nil
	case pvc.Labels[replicate.DrillLabel] != "" && !opts.Drill:
		// A drill's copy, disposable: it goes without a snapshot.
		if err := deleteDrillClaim(ctx, target, &pvc); err != nil {
			return false, "", err
		}
		return false, fmt.Sprintf("waiting for the drill's PVC %s to be deleted (finalizers %v)", k, pvc.Finalizers), nil
	case pvc.Annotations[RestoredFromAnnotation] != vs.Name:
		// Data this side wrote before it lost the active role, or a
		// leftover: keep it, then make room for the restore.
		done, msg, err := retireClaim(ctx, target, pair, &pvc, vs.Spec.VolumeSnapshotClassName,
			"replaced by the restore of "+vs.Name)
		if err != nil || !done {
			return false, msg, err
		}
		return false, fmt.Sprintf("PVC %s retired, restoring it from %s", k, vs.Name), nil
	case pvc.Status.Phase == corev1.ClaimBound:
		return true, "", nil
	}
	if late, err := bindsOnFirstUse(ctx, target.Read, pvc.Spec.StorageClassName); err != nil {
		return false, "", err
	} else if late {
		return true, "", nil
	}
	return false, fmt.Sprintf("PVC %s is %s", k, pvc.Status.Phase), nil
}

// restoredClaim is the PVC carried by a replica, sourced from it.
func restoredClaim(vs *snapv1.VolumeSnapshot, pair PairRef, opts RestoreOptions) (*corev1.PersistentVolumeClaim, error) {
	spec := vs.Annotations[ClaimSpecAnnotation]
	if spec == "" {
		return nil, fmt.Errorf("VolumeSnapshot %s/%s carries no %s annotation to restore from", vs.Namespace, vs.Name, ClaimSpecAnnotation)
	}
	var pvc corev1.PersistentVolumeClaim
	if err := json.Unmarshal([]byte(spec), &pvc); err != nil {
		return nil, fmt.Errorf("VolumeSnapshot %s/%s: annotation %s: %w", vs.Namespace, vs.Name, ClaimSpecAnnotation, err)
	}
	pvc.Namespace = vs.Namespace
	// Replicas shipped before copies dropped their finalizers may carry the
	// source cluster's (the snapshot controller's pvc-as-source-protection):
	// nobody here would ever remove them.
	pvc.Finalizers = nil
	pvc.OwnerReferences = nil
	if pvc.Labels == nil {
		pvc.Labels = map[string]string{}
	}
	for k, v := range pairLabels(pair) {
		pvc.Labels[k] = v
	}
	if pvc.Annotations == nil {
		pvc.Annotations = map[string]string{}
	}
	pvc.Annotations[RestoredFromAnnotation] = vs.Name
	pvc.Annotations[RestoredEpochAnnotation] = strconv.FormatInt(opts.Epoch, 10)
	if opts.Drill {
		pvc.Labels[replicate.DrillLabel] = "true"
	}
	pvc.Spec.DataSource = &corev1.TypedLocalObjectReference{
		APIGroup: ptr.To(snapv1.GroupName), Kind: "VolumeSnapshot", Name: vs.Name,
	}
	pvc.Spec.DataSourceRef = nil
	pvc.Spec.VolumeName = ""
	return &pvc, nil
}

func bindsOnFirstUse(ctx context.Context, c client.Reader, class *string) (bool, error) {
	if class == nil || *class == "" {
		return false, nil
	}
	var sc storagev1.StorageClass
	if err := c.Get(ctx, client.ObjectKey{Name: *class}, &sc); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return sc.VolumeBindingMode != nil && *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer, nil
}

// retireClaim keeps a PVC's data in a snapshot (role kept, never deleted
// by Tandem) and then deletes the PVC. It returns true once the PVC is
// gone. class is the VolumeSnapshotClass to use.
func retireClaim(ctx context.Context, c Cluster, pair PairRef, pvc *corev1.PersistentVolumeClaim, class *string, reason string) (bool, string, error) {
	k := ClaimKey{Namespace: pvc.Namespace, Name: pvc.Name}
	if pvc.DeletionTimestamp != nil {
		if held, err := releaseSourceSnapshots(ctx, c, pair, pvc); err != nil || held != "" {
			return false, held, err
		}
		return false, fmt.Sprintf("waiting for PVC %s to be deleted", k), nil
	}
	if pvc.Status.Phase == corev1.ClaimBound {
		// The name follows the PVC's uid: one kept snapshot per volume,
		// however often this is repeated.
		name := truncate(pvc.Name, 253-len("-kept-")-12) + "-kept-" + shortHash(string(pvc.UID), 12)
		var kept snapv1.VolumeSnapshot
		err := c.Read.Get(ctx, client.ObjectKey{Namespace: pvc.Namespace, Name: name}, &kept)
		if apierrors.IsNotFound(err) {
			labels := pairLabels(pair)
			labels[ClaimLabel] = claimLabelValue(pvc.Name)
			labels[RoleLabel] = string(RoleKept)
			kept = snapv1.VolumeSnapshot{
				ObjectMeta: metav1.ObjectMeta{
					Namespace: pvc.Namespace, Name: name, Labels: labels,
					Annotations: map[string]string{ClaimAnnotation: pvc.Name, KeptReasonAnnotation: reason},
				},
				Spec: snapv1.VolumeSnapshotSpec{
					Source:                  snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr.To(pvc.Name)},
					VolumeSnapshotClassName: class,
				},
			}
			if err := c.Write.Create(ctx, &kept); err != nil && !apierrors.IsAlreadyExists(err) {
				return false, "", fmt.Errorf("keeping the data of PVC %s on %s in VolumeSnapshot %s: %w", k, c.Name, name, err)
			}
			return false, fmt.Sprintf("keeping the data of PVC %s in VolumeSnapshot %s", k, name), nil
		} else if err != nil {
			return false, "", fmt.Errorf("reading VolumeSnapshot %s/%s on %s: %w", pvc.Namespace, name, c.Name, err)
		}
		s := ToSnap(&kept, nil)
		if s.Err != "" {
			snapshotFailures.WithLabelValues(pair.Namespace, pair.Name, "retire").Inc()
			return false, "", fmt.Errorf("VolumeSnapshot %s/%s keeping the data of PVC %s on %s failed (the PVC stays): %s", pvc.Namespace, name, k, c.Name, s.Err)
		}
		if !s.Ready {
			return false, fmt.Sprintf("waiting for VolumeSnapshot %s of PVC %s to be ready", name, k), nil
		}
	}
	if err := c.Write.Delete(ctx, pvc, client.Preconditions{UID: &pvc.UID}); err != nil && !apierrors.IsNotFound(err) {
		return false, "", fmt.Errorf("deleting PVC %s on %s: %w", k, c.Name, err)
	}
	return false, fmt.Sprintf("waiting for PVC %s to be deleted", k), nil
}

// sourceProtectionFinalizer is the snapshot controller's: it keeps a PVC
// while any VolumeSnapshot of it is not ready.
const sourceProtectionFinalizer = "snapshot.storage.kubernetes.io/pvc-as-source-protection"

// releaseSourceSnapshots lets a PVC that is being retired go. The snapshot
// controller keeps it while any snapshot of it is not ready, also one that
// failed or that no one will finish, such as a protection round's snapshot
// cut short when this side stopped being active
// (kubernetes-csi/external-snapshotter#1305): the restore then waited for
// ever. This pair's own snapshots of the PVC that are not ready are
// deleted: they cannot be used, the PVC's data is in its kept snapshot
// (ready before the PVC was deleted), and left behind they would take the
// next PVC of that name as their source. It says what else still holds
// the PVC (another's snapshot), or "" when nothing does.
func releaseSourceSnapshots(ctx context.Context, c Cluster, pair PairRef, pvc *corev1.PersistentVolumeClaim) (string, error) {
	if !slices.Contains(pvc.Finalizers, sourceProtectionFinalizer) {
		return "", nil
	}
	var list snapv1.VolumeSnapshotList
	if err := c.Read.List(ctx, &list, client.InNamespace(pvc.Namespace)); err != nil {
		return "", fmt.Errorf("listing the VolumeSnapshots of PVC %s/%s on %s: %w", pvc.Namespace, pvc.Name, c.Name, err)
	}
	var released, others []string
	for i := range list.Items {
		vs := &list.Items[i]
		if src := vs.Spec.Source.PersistentVolumeClaimName; src == nil || *src != pvc.Name {
			continue
		}
		s := ToSnap(vs, nil)
		if s.Ready || vs.DeletionTimestamp != nil {
			continue
		}
		ours := vs.Labels[PairLabel] == pair.Name && vs.Labels[PairNamespaceLabel] == pair.Namespace && s.Role == RoleSource
		if !ours {
			others = append(others, vs.Name)
			continue
		}
		if err := c.Write.Delete(ctx, vs, client.Preconditions{UID: &vs.UID}); err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("deleting VolumeSnapshot %s/%s on %s, not ready, of the PVC being retired: %w", vs.Namespace, vs.Name, c.Name, err)
		}
		released = append(released, vs.Name)
	}
	switch {
	case len(others) > 0:
		return fmt.Sprintf("PVC %s/%s is kept by the snapshot controller while VolumeSnapshots %s of it are not ready (not Tandem's: delete them or let them finish)",
			pvc.Namespace, pvc.Name, strings.Join(firstN(others, 5), ", ")), nil
	case len(released) > 0:
		return fmt.Sprintf("deleted VolumeSnapshots %s of PVC %s/%s, which never became ready and kept it from being deleted",
			strings.Join(firstN(released, 5), ", "), pvc.Namespace, pvc.Name), nil
	}
	return "", nil
}

func sortedClaimKeys(m map[ClaimKey]bool) []ClaimKey {
	keys := make([]ClaimKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	return keys
}

func firstN(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
}

// DeleteDrillClaims deletes the PVCs a drill restored on a cluster and
// describes those still there (being deleted, with their finalizers).
func DeleteDrillClaims(ctx context.Context, c Cluster, pair PairRef) ([]string, error) {
	labels := pairLabels(pair)
	labels[replicate.DrillLabel] = "true"
	var list corev1.PersistentVolumeClaimList
	if err := c.Read.List(ctx, &list, client.MatchingLabels(labels)); err != nil {
		return nil, fmt.Errorf("listing the drill's PVCs on %s: %w", c.Name, err)
	}
	var left []string
	for i := range list.Items {
		pvc := &list.Items[i]
		if err := deleteDrillClaim(ctx, c, pvc); err != nil {
			return nil, err
		}
		left = append(left, fmt.Sprintf("%s/%s (finalizers %v)", pvc.Namespace, pvc.Name, pvc.Finalizers))
	}
	return left, nil
}

// pvcProtectionFinalizer is the finalizer the controller manager keeps on a
// PVC while a pod uses it.
const pvcProtectionFinalizer = "kubernetes.io/pvc-protection"

// deleteDrillClaim deletes a drill's PVC. One already being deleted that
// no pod uses any more is released from the PVC protection finalizer: the
// controller manager checks the same thing, but its retries back off for
// minutes under load, and the next restore needs the name.
func deleteDrillClaim(ctx context.Context, c Cluster, pvc *corev1.PersistentVolumeClaim) error {
	if pvc.DeletionTimestamp == nil {
		if err := c.Write.Delete(ctx, pvc); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting the drill's PVC %s/%s on %s: %w", pvc.Namespace, pvc.Name, c.Name, err)
		}
		return nil
	}
	if len(pvc.Finalizers) != 1 || pvc.Finalizers[0] != pvcProtectionFinalizer {
		return nil
	}
	var pods corev1.PodList
	if err := c.Read.List(ctx, &pods, client.InNamespace(pvc.Namespace)); err != nil {
		return fmt.Errorf("listing pods in %s on %s: %w", pvc.Namespace, c.Name, err)
	}
	for _, p := range pods.Items {
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == pvc.Name {
				return nil // still in use: the finalizer stays
			}
		}
	}
	patch := client.MergeFromWithOptions(pvc.DeepCopy(), client.MergeFromWithOptimisticLock{})
	pvc.Finalizers = nil
	if err := c.Write.Patch(ctx, pvc, patch); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("releasing the drill's PVC %s/%s on %s: %w", pvc.Namespace, pvc.Name, c.Name, err)
	}
	return nil
}
