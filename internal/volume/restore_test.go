package volume

import (
	"context"
	"strings"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/tandem-dev/tandem/internal/replicate"
)

// A drill's PVC from an earlier drill that is still being deleted (a real
// kubelet still stopping its pod) is not the restore, even when it came
// from the same snapshot and is Bound: the restore waits for it to go.
// Taking it for restored left the next drill's pod without a claim.
func TestRestoreWaitsForAClaimBeingDeleted(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = snapv1.AddToScheme(scheme)
	vs := &snapv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "orders-snap-1"}}
	now := metav1.NewTime(time.Now())
	old := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "orders", DeletionTimestamp: &now,
			Finalizers:  []string{pvcProtectionFinalizer},
			Labels:      map[string]string{replicate.DrillLabel: "true"},
			Annotations: map[string]string{RestoredFromAnnotation: vs.Name}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound},
	}
	// The pod of the earlier drill still uses it.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "orders-1"},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "orders"}}}}}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(old, pod).Build()
	target := Cluster{Name: "dc-west", Read: c, Write: c}
	done, msg, err := restoreClaim(context.Background(), target, PairRef{Namespace: "shop", Name: "shop"},
		ClaimKey{Namespace: "shop", Name: "orders"}, vs, RestoreOptions{Drill: true})
	if err != nil || done || !strings.Contains(msg, "being deleted") {
		t.Fatalf("restoreClaim = %v, %q, %v; want it to wait for the PVC being deleted", done, msg, err)
	}
}

// A PVC being retired that the snapshot controller keeps because a
// snapshot of it is not ready (kubernetes-csi/external-snapshotter#1305:
// one that failed, or a protection round cut short when this side stopped
// being active) is let go: this pair's own snapshots of it that are not
// ready are deleted, its ready ones and everyone else's stay, and a
// snapshot that is not Tandem's is named as what holds the PVC.
func TestARetiredClaimIsNotHeldByItsUnreadySnapshots(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = snapv1.AddToScheme(scheme)
	pair := PairRef{Namespace: "shop", Name: "shop"}
	now := metav1.NewTime(time.Now())
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "orders", DeletionTimestamp: &now,
			Finalizers: []string{sourceProtectionFinalizer, pvcProtectionFinalizer}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound},
	}
	snap := func(name string, labels map[string]string, ready bool) *snapv1.VolumeSnapshot {
		vs := &snapv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: labels},
			Spec: snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr.To("orders")}}}
		if ready {
			vs.Status = &snapv1.VolumeSnapshotStatus{ReadyToUse: ptr.To(true)}
		}
		return vs
	}
	ours := func(role Role) map[string]string {
		l := pairLabels(pair)
		l[ClaimLabel], l[RoleLabel] = "orders", string(role)
		return l
	}
	objs := []*snapv1.VolumeSnapshot{
		snap("orders-snap-stuck", ours(RoleSource), false),
		snap("orders-snap-ready", ours(RoleSource), true),
		snap("orders-kept-1", ours(RoleKept), true),
	}
	build := func(extra ...*snapv1.VolumeSnapshot) Cluster {
		b := fake.NewClientBuilder().WithScheme(scheme).WithObjects(pvc)
		for _, vs := range append(objs, extra...) {
			b = b.WithObjects(vs.DeepCopy())
		}
		c := b.Build()
		return Cluster{Name: "dc-west", Read: c, Write: c}
	}
	exists := func(c Cluster, name string) bool {
		return c.Read.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: name}, &snapv1.VolumeSnapshot{}) == nil
	}

	c := build()
	held, err := releaseSourceSnapshots(context.Background(), c, pair, pvc)
	if err != nil || !strings.Contains(held, "deleted VolumeSnapshots orders-snap-stuck of PVC shop/orders") {
		t.Fatalf("releaseSourceSnapshots = %q, %v", held, err)
	}
	if exists(c, "orders-snap-stuck") || !exists(c, "orders-snap-ready") || !exists(c, "orders-kept-1") {
		t.Fatal("want only the snapshot that is not ready deleted")
	}
	if held, err := releaseSourceSnapshots(context.Background(), c, pair, pvc); err != nil || held != "" {
		t.Fatalf("once released: %q, %v; want nothing holding it", held, err)
	}

	// Someone else's snapshot is named, not deleted.
	c = build(snap("orders-backup", map[string]string{"velero.io/backup-name": "nightly"}, false))
	held, err = releaseSourceSnapshots(context.Background(), c, pair, pvc)
	if err != nil || !strings.Contains(held, "VolumeSnapshots orders-backup of it are not ready (not Tandem's") || !exists(c, "orders-backup") {
		t.Fatalf("with another's snapshot: %q, %v", held, err)
	}
	// Without the snapshot controller's finalizer there is nothing to do.
	free := pvc.DeepCopy()
	free.Finalizers = []string{pvcProtectionFinalizer}
	if held, err := releaseSourceSnapshots(context.Background(), build(), pair, free); err != nil || held != "" {
		t.Fatalf("a PVC the snapshot controller does not hold: %q, %v", held, err)
	}
}

// A failover restores the newest data both sides had. Seed 2 of the fault
// suite: dc-west was active, moved the service to dc-east in a planned
// switchover (its final snapshot taken after the quiesce, restored on
// dc-east), and dc-east was lost a second later, before it took a snapshot
// of its own. The failover back to dc-west restored the newest copy dc-east
// had shipped, from dc-east's term before, and every write of dc-west's
// term (56 acknowledged) was lost, outside the reported window. Its own
// final snapshot is the newest; a copy taken later wins over it; a kept
// snapshot (a retired PVC's data) and a snapshot without the PVC to
// restore are never used.
func TestAFailoverRestoresTheNewestSnapshotOfEitherSide(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = snapv1.AddToScheme(scheme)
	pair := PairRef{Namespace: "shop", Name: "shop"}
	base := time.Date(2026, 12, 3, 10, 13, 0, 0, time.UTC)
	claimSpec := `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"orders"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}`
	snap := func(name string, role Role, taken time.Duration, withSpec bool) *snapv1.VolumeSnapshot {
		l := pairLabels(pair)
		l[ClaimLabel], l[RoleLabel] = "orders", string(role)
		ann := map[string]string{ClaimAnnotation: "orders"}
		if withSpec {
			ann[ClaimSpecAnnotation] = claimSpec
		}
		vs := &snapv1.VolumeSnapshot{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: l, Annotations: ann},
			Status:     &snapv1.VolumeSnapshotStatus{ReadyToUse: ptr.To(true)},
		}
		if role == RoleReplica {
			ann[TakenAnnotation] = base.Add(taken).Format(time.RFC3339Nano)
		} else {
			vs.Status.CreationTime = ptr.To(metav1.NewTime(base.Add(taken)))
		}
		return vs
	}
	cases := []struct {
		name  string
		snaps []*snapv1.VolumeSnapshot
		want  string
	}{
		{"own final snapshot newer than every copy", []*snapv1.VolumeSnapshot{
			snap("orders-snap-east", RoleReplica, 18*time.Second, true),
			snap("orders-final-west", RoleSource, 46*time.Second, true),
		}, "orders-final-west"},
		{"a copy taken after it", []*snapv1.VolumeSnapshot{
			snap("orders-final-west", RoleSource, 46*time.Second, true),
			snap("orders-snap-east", RoleReplica, 70*time.Second, true),
		}, "orders-snap-east"},
		{"kept and specless snapshots are not restored", []*snapv1.VolumeSnapshot{
			snap("orders-snap-east", RoleReplica, 18*time.Second, true),
			snap("orders-kept-west", RoleKept, 58*time.Second, true),
			snap("orders-snap-west-old", RoleSource, 50*time.Second, false),
		}, "orders-snap-east"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := fake.NewClientBuilder().WithScheme(scheme)
			for _, vs := range tc.snaps {
				b = b.WithObjects(vs)
			}
			c := b.Build()
			res, err := Restore(context.Background(), Cluster{Name: "dc-west", Read: c, Write: c}, pair, RestoreOptions{Epoch: 4})
			if err != nil {
				t.Fatal(err)
			}
			var pvc corev1.PersistentVolumeClaim
			if err := c.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "orders"}, &pvc); err != nil {
				t.Fatalf("no PVC restored (%s): %v", res.Message, err)
			}
			if ds := pvc.Spec.DataSource; ds == nil || ds.Name != tc.want {
				t.Fatalf("PVC restored from %+v, want %s", ds, tc.want)
			}
		})
	}
}
