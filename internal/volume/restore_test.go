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
