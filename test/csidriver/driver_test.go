package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The driver's storage contract: a volume's files are copied by a
// snapshot, the snapshot becomes usable at the other site under the replica
// handle only after the replication delay, and a volume created from it
// there holds the same bytes.
func TestSnapshotReplicatesAndRestoresAtTheOtherSite(t *testing.T) {
	ctx := context.Background()
	east, west := t.TempDir(), t.TempDir()
	for _, root := range []string{east, west} {
		for _, sub := range []string{"volumes", "snapshots"} {
			if err := os.MkdirAll(filepath.Join(root, sub), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	delay := 300 * time.Millisecond
	de := &driver{name: "csi.tandem.test", root: east, peerRoot: west, replicaPrefix: "replica-", delay: delay}
	dw := &driver{name: "csi.tandem.test", root: west, peerRoot: east, replicaPrefix: "replica-", delay: delay}

	if _, err := de.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-1"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(east, "volumes", "pvc-1", "orders.txt"), []byte("order 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, err := de.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-1", SourceVolumeId: "pvc-1"})
	if err != nil || !snap.Snapshot.ReadyToUse {
		t.Fatalf("CreateSnapshot: %+v, %v", snap, err)
	}
	// Written after the snapshot: must not travel.
	if err := os.WriteFile(filepath.Join(east, "volumes", "pvc-1", "orders.txt"), []byte("order 1\norder 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := de.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-1", SourceVolumeId: "pvc-1"})
	if err != nil || !again.Snapshot.CreationTime.AsTime().Equal(snap.Snapshot.CreationTime.AsTime()) {
		t.Fatalf("a repeated CreateSnapshot must return the same snapshot: %+v, %v", again, err)
	}

	list, err := dw.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SnapshotId: "replica-snap-1"})
	if err != nil || len(list.Entries) != 1 || list.Entries[0].Snapshot.ReadyToUse {
		t.Fatalf("before the replication delay the replica must be listed, not ready: %+v, %v", list, err)
	}
	if _, err := dw.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-2", VolumeContentSource: &csi.VolumeContentSource{
		Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: "replica-snap-1"}}}}); status.Code(err) != codes.NotFound {
		t.Fatalf("restoring a replica still in flight: %v, want NotFound", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		list, err = dw.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SnapshotId: "replica-snap-1"})
		if err == nil && len(list.Entries) == 1 && list.Entries[0].Snapshot.ReadyToUse {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica never became ready: %+v, %v", list, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := dw.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-2", VolumeContentSource: &csi.VolumeContentSource{
		Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: "replica-snap-1"}}}}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(west, "volumes", "pvc-2", "orders.txt"))
	if err != nil || string(got) != "order 1\n" {
		t.Fatalf("the restored volume at the other site holds %q (%v), want the snapshot's bytes", got, err)
	}
	if _, err := de.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "../escape"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a volume name with a path in it: %v, want InvalidArgument", err)
	}
}
