package main

import (
	"context"
	"fmt"
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

// A snapshot holds every write made before its creation time, even while
// an app keeps writing during the copy: the creation time is what Tandem
// counts a failover's data loss from, so a write before it that is missing
// would be lost outside the window Tandem reports.
func TestSnapshotHoldsEveryWriteBeforeItsCreationTime(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	for _, sub := range []string{"volumes", "snapshots"} {
		if err := os.MkdirAll(filepath.Join(root, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// No replication while the test runs (its directories go with it).
	d := &driver{name: "csi.tandem.test", root: root, peerRoot: t.TempDir(), replicaPrefix: "replica-", delay: time.Hour}
	if _, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-1"}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "volumes", "pvc-1")
	// Enough records that a copy takes a while.
	for i := range 2000 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("old-%04d", i)), make([]byte, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	type write struct {
		name string
		done time.Time
	}
	var writes []write
	stop, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("new-%06d", i)
			if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
				t.Error(err)
				return
			}
			writes = append(writes, write{name, time.Now()})
		}
	}()
	time.Sleep(10 * time.Millisecond)
	snap, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-1", SourceVolumeId: "pvc-1"})
	close(stop)
	<-finished
	if err != nil {
		t.Fatal(err)
	}
	taken := snap.Snapshot.CreationTime.AsTime()
	before := 0
	for _, w := range writes {
		if !w.done.Before(taken) {
			continue
		}
		before++
		if _, err := os.Stat(filepath.Join(d.snapshotDir(root, "snap-1"), w.name)); err != nil {
			t.Fatalf("%s, written %s before the snapshot's creation time, is not in it", w.name, taken.Sub(w.done))
		}
	}
	t.Logf("%d writes before the creation time, all in the snapshot; %d in all", before, len(writes))
}
