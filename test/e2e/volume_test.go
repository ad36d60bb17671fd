package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/volume"
	"github.com/tandem-dev/tandem/test/testbed"
)

// volumePath returns where the test bed's CSI driver keeps the files of a
// PVC's volume, as a pod mounting it would see them.
func volumePath(ctx context.Context, bed *testbed.Bed, c *testbed.Cluster, ns, pvcName string) (string, error) {
	var pvc corev1.PersistentVolumeClaim
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: pvcName}, &pvc); err != nil {
		return "", err
	}
	if pvc.Status.Phase != corev1.ClaimBound {
		return "", fmt.Errorf("PVC %s/%s on %s is %s", ns, pvcName, c.Name, pvc.Status.Phase)
	}
	var pv corev1.PersistentVolume
	if err := c.Client.Get(ctx, client.ObjectKey{Name: pvc.Spec.VolumeName}, &pv); err != nil {
		return "", err
	}
	return bed.VolumeDir(c.Name, pv.Spec.CSI.VolumeHandle), nil
}

func writeVolume(t *testing.T, bed *testbed.Bed, c *testbed.Cluster, ns, pvc, file, content string) time.Time {
	t.Helper()
	dir, err := volumePath(context.Background(), bed, c, ns, pvc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return time.Now()
}

// readVolume waits for the PVC to be bound on c and returns a file of it.
func readVolume(t *testing.T, bed *testbed.Bed, c *testbed.Cluster, ns, pvc, file string) string {
	t.Helper()
	var data []byte
	if err := testbed.Poll(context.Background(), time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		dir, err := volumePath(ctx, bed, c, ns, pvc)
		if err != nil {
			return false, err
		}
		data, err = os.ReadFile(filepath.Join(dir, file))
		return err == nil, err
	}); err != nil {
		t.Fatalf("reading %s of PVC %s/%s on %s: %v", file, ns, pvc, c.Name, err)
	}
	return string(data)
}

// volumeApp is a PVC and a Deployment mounting it.
func volumeApp(ns string) []client.Object {
	labels := map[string]string{"app": "db"}
	return []client.Object{
		&corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data"},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				StorageClassName: ptr.To(testbed.StorageClass),
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		},
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(int32(1)),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						Containers: []corev1.Container{{Name: "db", Image: "registry.example.com/db:1"}},
						Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
							PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}},
					},
				},
			},
		},
	}
}

func ptrTo[T any](v T) *T { return &v }

// waitReplicaAfter waits until the active side reports, for PVC ns/pvc, a
// snapshot usable on the standby that was taken after t.
func waitReplicaAfter(t *testing.T, c *testbed.Cluster, ns, pvc string, after time.Time) *tandemv1.HAPair {
	t.Helper()
	var pair *tandemv1.HAPair
	if err := testbed.Poll(context.Background(), time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		var err error
		if pair, err = getPair(ctx, c, ns); err != nil {
			return false, err
		}
		if v := pair.Status.Volumes; v != nil {
			for _, cl := range v.Claims {
				if cl.Name == pvc && cl.NewestReplica != nil && cl.NewestReplica.After(after) {
					return true, nil
				}
			}
			return false, fmt.Errorf("volumes %+v, condition %+v", *v, findCond(pair.Status.Conditions, tandemv1.VolumesProtectedCondition))
		}
		return false, fmt.Errorf("no volume status")
	}); err != nil {
		t.Fatalf("waiting on %s for a replica of %s/%s newer than %s: %v", c.Name, ns, pvc, after.Format(time.RFC3339Nano), err)
	}
	return pair
}

// A PVC protected by snapshots on dc-east: its bytes are found on dc-west
// after dc-east dies; dc-east, back, keeps its own data in a snapshot
// listed in status; a write made just before a planned switchover back is
// on dc-east afterwards (RPO 0).
func TestVolumesFollowFailoverAndPlannedSwitchover(t *testing.T) {
	ctx := context.Background()
	bed, clusters := upPairBed(t, true)
	east, west := clusters[testbed.East], clusters[testbed.West]
	const ns = "shop"
	twoSidedPair(t, clusters, pairOptions{ns: ns, mode: tandemv1.FailoverAutomatic, witness: true, rpo: 30 * time.Second,
		volumes: &tandemv1.VolumeProtection{
			SnapshotClassName: testbed.SnapshotClass,
			Interval:          &metav1.Duration{Duration: 2 * time.Second},
			Retention:         3,
			HandleMapping:     tandemv1.HandleMapping{Mode: "Template", Template: testbed.CSIReplicaPrefix + "{{.Handle}}"},
		}})
	for _, obj := range volumeApp(ns) {
		if err := east.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	ops := startOperators(t, east, west)
	waitRole(t, east, ns, tandemv1.RoleActive, testbed.East, 1, time.Minute)
	if err := waitAvailable(ctx, east.Client, ns, "db", 1); err != nil {
		t.Fatal(err)
	}

	// Protection: a write, then a snapshot taken after it usable on dc-west.
	written := writeVolume(t, bed, east, ns, "data", "orders.txt", "order 1 written on dc-east\n")
	pair := waitReplicaAfter(t, east, ns, "data", written)
	protected := time.Since(written)
	cond := findCond(pair.Status.Conditions, tandemv1.VolumesProtectedCondition)
	if cond == nil || cond.Status != metav1.ConditionTrue {
		t.Fatalf("VolumesProtected = %+v, want True", cond)
	}
	t.Logf("a write on dc-east was in a snapshot usable on dc-west %s later; %s", protected.Round(10*time.Millisecond), cond.Message)
	// The standby holds no PVC of its own until promotion.
	var pvcs corev1.PersistentVolumeClaimList
	if err := west.Client.List(ctx, &pvcs, client.InNamespace(ns)); err != nil || len(pvcs.Items) != 0 {
		t.Fatalf("PVCs on the standby dc-west: %d (%v), want none", len(pvcs.Items), err)
	}

	// dc-east dies; dc-west takes over with the data.
	eastDir, err := volumePath(ctx, bed, east, ns, "data")
	if err != nil {
		t.Fatal(err)
	}
	ops[testbed.East].Kill()
	if err := bed.Stop(ctx, testbed.East); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	waitRole(t, west, ns, tandemv1.RoleActive, testbed.West, 2, 2*time.Minute)
	so := &tandemv1.Switchover{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-failover-2"}}
	so = waitSwitchover(t, west, so, tandemv1.PhaseSucceeded, 2*time.Minute)
	if got := readVolume(t, bed, west, ns, "data", "orders.txt"); got != "order 1 written on dc-east\n" {
		t.Fatalf("orders.txt on dc-west after the failover = %q", got)
	}
	if err := waitAvailable(ctx, west.Client, ns, "db", 1); err != nil {
		t.Fatal(err)
	}
	if so.Status.DataLossWindow == nil {
		t.Fatalf("the failover reported no data-loss window: %+v", so.Status)
	}
	t.Logf("failover: db Available on dc-west with the restored volume %s after dc-east stopped; RTO %v, data-loss window %s",
		time.Since(lost).Round(10*time.Millisecond), so.Status.RTO, so.Status.DataLossWindow.Duration)
	logSteps(t, so)

	// A write dc-east made after its last shipped snapshot, as it died: the
	// failover could not carry it, and dc-east must not lose it.
	if err := os.WriteFile(filepath.Join(eastDir, "late.txt"), []byte("order 1b, after the last snapshot\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := bed.Start(ctx, testbed.East); err != nil {
		t.Fatal(err)
	}
	if err := ops[testbed.East].Restart(); err != nil {
		t.Fatal(err)
	}
	waitRole(t, east, ns, tandemv1.RoleStandby, testbed.West, 2, 2*time.Minute)
	var kept tandemv1.KeptSnapshot
	if err := testbed.Poll(ctx, time.Minute, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		p, err := getPair(ctx, east, ns)
		if err != nil {
			return false, err
		}
		var pvc corev1.PersistentVolumeClaim
		gone := east.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "data"}, &pvc) != nil
		if v := p.Status.Volumes; v != nil && len(v.Kept) == 1 && v.Kept[0].ReadyToUse && gone {
			kept = v.Kept[0]
			return true, nil
		}
		var pods corev1.PodList
		_ = east.Client.List(ctx, &pods, client.InNamespace(ns))
		var podStates []string
		for _, p := range pods.Items {
			podStates = append(podStates, fmt.Sprintf("%s %s deleting=%v", p.Name, p.Status.Phase, p.DeletionTimestamp != nil))
		}
		return false, fmt.Errorf("volumes %+v, PVC gone %v (finalizers %v, deleting %v), pods %v, condition %+v", p.Status.Volumes, gone,
			pvc.Finalizers, pvc.DeletionTimestamp, podStates, findCond(p.Status.Conditions, tandemv1.VolumesProtectedCondition))
	}); err != nil {
		t.Fatalf("the demoted dc-east did not keep its data in a listed snapshot: %v", err)
	}
	var keptSnap snapv1.VolumeSnapshot
	if err := east.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: kept.Name}, &keptSnap); err != nil ||
		keptSnap.Labels[volume.RoleLabel] != string(volume.RoleKept) {
		t.Fatalf("kept VolumeSnapshot %s: %v, labels %v", kept.Name, err, keptSnap.Labels)
	}
	var content snapv1.VolumeSnapshotContent
	if keptSnap.Status == nil || keptSnap.Status.BoundVolumeSnapshotContentName == nil {
		t.Fatalf("kept VolumeSnapshot %s has no content: %+v", kept.Name, keptSnap.Status)
	}
	if err := east.Client.Get(ctx, client.ObjectKey{Name: *keptSnap.Status.BoundVolumeSnapshotContentName}, &content); err != nil {
		t.Fatal(err)
	}
	late, err := os.ReadFile(filepath.Join(bed.StorageDir(testbed.East), "snapshots", *content.Status.SnapshotHandle, "late.txt"))
	if err != nil || string(late) != "order 1b, after the last snapshot\n" {
		t.Fatalf("the kept snapshot does not hold dc-east's last write: %q, %v", late, err)
	}
	t.Logf("dc-east back and demoted: its PVC retired, its data kept in VolumeSnapshot %s (%s)", kept.Name, kept.Reason)

	// Planned switchover back to dc-east, with a write just before it.
	waitReplicaAfter(t, west, ns, "data", time.Now())
	writeVolume(t, bed, west, ns, "data", "orders.txt", "order 1 written on dc-east\norder 2 written on dc-west just before the switchover\n")
	back := switchoverTo(t, west, ns, "back-to-east", tandemv1.SwitchoverPlanned, testbed.East, nil)
	back = waitSwitchover(t, west, back, tandemv1.PhaseSucceeded, 2*time.Minute)
	logSteps(t, back)
	if got := readVolume(t, bed, east, ns, "data", "orders.txt"); got != "order 1 written on dc-east\norder 2 written on dc-west just before the switchover\n" {
		t.Fatalf("orders.txt on dc-east after the planned switchover = %q: the last write was lost", got)
	}
	var restored corev1.PersistentVolumeClaim
	if err := east.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "data"}, &restored); err != nil {
		t.Fatal(err)
	}
	if from := restored.Annotations[volume.RestoredFromAnnotation]; from == "" || restored.Spec.DataSource == nil || restored.Spec.DataSource.Name != from {
		t.Fatalf("the PVC on dc-east was not restored from a snapshot: annotations %v, dataSource %+v", restored.Annotations, restored.Spec.DataSource)
	}
	// dc-west, now the standby, gives up its PVC without a kept snapshot:
	// its data is the final snapshot's.
	if err := testbed.Poll(ctx, time.Minute, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		var pvc corev1.PersistentVolumeClaim
		err := west.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "data"}, &pvc)
		return client.IgnoreNotFound(err) == nil && err != nil, fmt.Errorf("PVC on dc-west still there (%v)", err)
	}); err != nil {
		t.Fatal(err)
	}
	if p, err := getPair(ctx, west, ns); err != nil || (p.Status.Volumes != nil && len(p.Status.Volumes.Kept) != 0) {
		t.Fatalf("dc-west kept snapshots %+v (%v), want none after a planned switchover", p.Status.Volumes, err)
	}
}
