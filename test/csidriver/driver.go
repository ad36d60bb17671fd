// Command tandem-csi is the test bed's CSI driver: a storage system that
// keeps volumes as directories, takes snapshots as real copies, and
// replicates every snapshot to the other site. It exists so end-to-end tests
// can write bytes into a volume in one data center and find them in the
// other after a failover. It is never shipped in the operator image.
//
// Storage layout, under --root (this site) and --peer-root (the other):
//
//	volumes/<volume id>/          the volume's files
//	snapshots/<snapshot id>/      a copy of the volume at snapshot time
//	snapshots/<snapshot id>.json  source volume, creation time, size
//
// Replication: a snapshot with handle H taken at one site becomes usable at
// the other site under the handle --replica-prefix + H ("replica-H" by
// default), --replication-delay after it was taken. Until then the replica
// is listed as not ready to use, so a pre-provisioned VolumeSnapshotContent
// waits for it. Snapshots in flight when the driver stops are lost, as a
// real asynchronous replication would lose them. With an empty prefix the
// replica keeps the source's handle (storage that replicates under the same
// name).
//
// The controller service runs next to the CSI sidecars; with --node-id the
// same binary is the node service of a real node (node.go), which
// bind-mounts a volume's directory where the kubelet asks. Topology is off.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// version must not be empty: the sidecars exit on a driver without one.
const version = "v0.1.0"

type driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer

	name          string
	root          string
	peerRoot      string
	replicaPrefix string
	delay         time.Duration

	mu sync.Mutex // serialises changes to the storage tree
}

type snapshotMeta struct {
	SourceVolumeID string    `json:"sourceVolumeID"`
	CreationTime   time.Time `json:"creationTime"`
	SizeBytes      int64     `json:"sizeBytes"`
}

func (d *driver) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: d.name, VendorVersion: version}, nil
}

func (d *driver) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{Capabilities: []*csi.PluginCapability{{
		Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{
			Type: csi.PluginCapability_Service_CONTROLLER_SERVICE,
		}},
	}}}, nil
}

func (d *driver) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{}, nil
}

func (d *driver) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	var caps []*csi.ControllerServiceCapability
	for _, c := range []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
		csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
	} {
		caps = append(caps, &csi.ControllerServiceCapability{
			Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: c}},
		})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}

func (d *driver) ValidateVolumeCapabilities(_ context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	if _, err := os.Stat(d.volumeDir(req.GetVolumeId())); err != nil {
		return nil, status.Errorf(codes.NotFound, "volume %q not found", req.GetVolumeId())
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeCapabilities: req.GetVolumeCapabilities(),
	}}, nil
}

// CreateVolume is idempotent by name: the provisioner names volumes after
// the PVC's uid and retries with the same name.
func (d *driver) CreateVolume(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	id := req.GetName()
	if !validID(id) {
		return nil, status.Errorf(codes.InvalidArgument, "volume name %q is not a valid id", id)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	dir := d.volumeDir(id)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		tmp := dir + ".tmp"
		_ = os.RemoveAll(tmp)
		if src := req.GetVolumeContentSource().GetSnapshot(); src != nil {
			snapDir := d.snapshotDir(d.root, src.GetSnapshotId())
			if _, err := os.Stat(snapDir); err != nil {
				return nil, status.Errorf(codes.NotFound, "snapshot %q not found at this site", src.GetSnapshotId())
			}
			if err := copyTree(snapDir, tmp); err != nil {
				return nil, status.Errorf(codes.Internal, "restoring snapshot %q: %v", src.GetSnapshotId(), err)
			}
		} else if req.GetVolumeContentSource() != nil {
			return nil, status.Error(codes.InvalidArgument, "only snapshots can be a volume's content source")
		} else if err := os.MkdirAll(tmp, 0o755); err != nil {
			return nil, status.Errorf(codes.Internal, "creating volume: %v", err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			return nil, status.Errorf(codes.Internal, "creating volume: %v", err)
		}
	}
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{
		VolumeId:      id,
		CapacityBytes: req.GetCapacityRange().GetRequiredBytes(),
		ContentSource: req.GetVolumeContentSource(),
	}}, nil
}

func (d *driver) DeleteVolume(_ context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	if !validID(req.GetVolumeId()) {
		return nil, status.Errorf(codes.InvalidArgument, "volume id %q is not valid", req.GetVolumeId())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.RemoveAll(d.volumeDir(req.GetVolumeId())); err != nil {
		return nil, status.Errorf(codes.Internal, "deleting volume: %v", err)
	}
	return &csi.DeleteVolumeResponse{}, nil
}

// CreateSnapshot copies the volume now and starts its replication to the
// other site. It is idempotent by name.
func (d *driver) CreateSnapshot(_ context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	id, src := req.GetName(), req.GetSourceVolumeId()
	if !validID(id) || !validID(src) {
		return nil, status.Errorf(codes.InvalidArgument, "snapshot name %q or source volume %q is not a valid id", id, src)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	meta, err := readMeta(d.root, id)
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(d.volumeDir(src)); err != nil {
			return nil, status.Errorf(codes.NotFound, "volume %q not found", src)
		}
		meta, err = d.snapshot(src, id)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "taking snapshot: %v", err)
		}
		go d.replicate(id)
	} else if err != nil {
		return nil, status.Errorf(codes.Internal, "reading snapshot %q: %v", id, err)
	}
	if meta.SourceVolumeID != src {
		return nil, status.Errorf(codes.AlreadyExists, "snapshot %q exists for volume %q", id, meta.SourceVolumeID)
	}
	return &csi.CreateSnapshotResponse{Snapshot: toCSI(id, meta, true)}, nil
}

func (d *driver) snapshot(src, id string) (snapshotMeta, error) {
	tmp := d.snapshotDir(d.root, id) + ".tmp"
	_ = os.RemoveAll(tmp)
	// The copy is not atomic, as a storage system's snapshot is: it holds
	// every write made before it started, and only some of those made
	// while it ran. Its point in time (CSI's creation_time, which Tandem
	// counts a failover's data loss from) is therefore its start; stamping
	// its end claimed writes it may have missed.
	taken := time.Now().UTC()
	if err := copyTree(d.volumeDir(src), tmp); err != nil {
		return snapshotMeta{}, err
	}
	meta := snapshotMeta{SourceVolumeID: src, CreationTime: taken, SizeBytes: treeSize(tmp)}
	if err := os.Rename(tmp, d.snapshotDir(d.root, id)); err != nil {
		return snapshotMeta{}, err
	}
	return meta, writeMeta(d.root, id, meta)
}

// replicate copies a snapshot to the other site after the replication
// delay; the metadata is written last, so the replica is listed only when
// its data is complete.
func (d *driver) replicate(id string) {
	time.Sleep(d.delay)
	d.mu.Lock()
	defer d.mu.Unlock()
	meta, err := readMeta(d.root, id)
	if err != nil {
		log.Printf("replicating snapshot %s: %v", id, err)
		return
	}
	replica := d.replicaPrefix + id
	tmp := d.snapshotDir(d.peerRoot, replica) + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := copyTree(d.snapshotDir(d.root, id), tmp); err != nil {
		log.Printf("replicating snapshot %s: %v", id, err)
		return
	}
	if err := os.Rename(tmp, d.snapshotDir(d.peerRoot, replica)); err != nil {
		log.Printf("replicating snapshot %s: %v", id, err)
		return
	}
	if err := writeMeta(d.peerRoot, replica, meta); err != nil {
		log.Printf("replicating snapshot %s: %v", id, err)
		return
	}
	log.Printf("snapshot %s replicated to the other site as %s", id, replica)
}

func (d *driver) DeleteSnapshot(_ context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	id := req.GetSnapshotId()
	if !validID(id) {
		return nil, status.Errorf(codes.InvalidArgument, "snapshot id %q is not valid", id)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_ = os.Remove(filepath.Join(d.root, "snapshots", id+".json"))
	if err := os.RemoveAll(d.snapshotDir(d.root, id)); err != nil {
		return nil, status.Errorf(codes.Internal, "deleting snapshot: %v", err)
	}
	return &csi.DeleteSnapshotResponse{}, nil
}

// ListSnapshots answers the sidecar's status check of pre-provisioned
// snapshots: a replica still in flight is listed, not ready to use.
func (d *driver) ListSnapshots(_ context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if id := req.GetSnapshotId(); id != "" {
		if meta, err := readMeta(d.root, id); err == nil {
			return listed(toCSI(id, meta, true)), nil
		}
		if src, ok := strings.CutPrefix(id, d.replicaPrefix); ok {
			if meta, err := readMeta(d.peerRoot, src); err == nil {
				return listed(toCSI(id, meta, false)), nil
			}
		}
		return &csi.ListSnapshotsResponse{}, nil
	}
	entries, err := os.ReadDir(filepath.Join(d.root, "snapshots"))
	if err != nil {
		return nil, status.Errorf(codes.Internal, "listing snapshots: %v", err)
	}
	resp := &csi.ListSnapshotsResponse{}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		meta, err := readMeta(d.root, id)
		if err != nil || (req.GetSourceVolumeId() != "" && meta.SourceVolumeID != req.GetSourceVolumeId()) {
			continue
		}
		resp.Entries = append(resp.Entries, &csi.ListSnapshotsResponse_Entry{Snapshot: toCSI(id, meta, true)})
	}
	return resp, nil
}

func listed(s *csi.Snapshot) *csi.ListSnapshotsResponse {
	return &csi.ListSnapshotsResponse{Entries: []*csi.ListSnapshotsResponse_Entry{{Snapshot: s}}}
}

func toCSI(id string, m snapshotMeta, ready bool) *csi.Snapshot {
	return &csi.Snapshot{
		SnapshotId:     id,
		SourceVolumeId: m.SourceVolumeID,
		CreationTime:   timestamppb.New(m.CreationTime),
		SizeBytes:      m.SizeBytes,
		ReadyToUse:     ready,
	}
}

func (d *driver) volumeDir(id string) string { return filepath.Join(d.root, "volumes", id) }

func (d *driver) snapshotDir(root, id string) string { return filepath.Join(root, "snapshots", id) }

// validID keeps ids to one path element, so a request cannot reach outside
// the storage tree.
func validID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, `/\`) && !strings.HasSuffix(id, ".tmp")
}

func readMeta(root, id string) (snapshotMeta, error) {
	var m snapshotMeta
	data, err := os.ReadFile(filepath.Join(root, "snapshots", id+".json"))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(data, &m)
}

func writeMeta(root, id string, m snapshotMeta) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	path := filepath.Join(root, "snapshots", id+".json")
	if err := os.WriteFile(path+".tmp", data, 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// copyTree copies regular files and directories; volumes hold nothing else.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		switch {
		case e.IsDir():
			return os.MkdirAll(target, 0o755)
		case e.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		default:
			return fmt.Errorf("%s: only regular files can be snapshotted", path)
		}
	})
}

func treeSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
