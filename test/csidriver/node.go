package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	registration "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// nodeServer is the driver's node service on a real node: a volume is a
// directory of the site's storage, so publishing it bind-mounts that
// directory at the kubelet's target path. It runs in the node's mount
// namespace, where the kubelet and the containers see its mounts.
type nodeServer struct {
	csi.UnimplementedNodeServer
	d      *driver
	nodeID string
}

func (n *nodeServer) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: n.nodeID}, nil
}

// NodeGetCapabilities: no staging, so the kubelet calls publish directly.
func (n *nodeServer) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{}, nil
}

func (n *nodeServer) NodePublishVolume(_ context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	id, target := req.GetVolumeId(), req.GetTargetPath()
	if !validID(id) || target == "" {
		return nil, status.Error(codes.InvalidArgument, "volume id and target path are required")
	}
	if req.GetVolumeCapability().GetBlock() != nil {
		return nil, status.Error(codes.InvalidArgument, "block volumes are not supported")
	}
	src := n.d.volumeDir(id)
	if _, err := os.Stat(src); err != nil {
		return nil, status.Errorf(codes.NotFound, "volume %s: %v", id, err)
	}
	// Publishing is idempotent: a target already mounted is done.
	if mounted, err := isMountPoint(target); err == nil && mounted {
		return &csi.NodePublishVolumeResponse{}, nil
	}
	if err := os.MkdirAll(target, 0o750); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	flags := uintptr(syscall.MS_BIND)
	if err := syscall.Mount(src, target, "", flags, ""); err != nil {
		return nil, status.Errorf(codes.Internal, "bind-mounting volume %s at %s: %v", id, target, err)
	}
	if req.GetReadonly() {
		if err := syscall.Mount("", target, "", flags|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			_ = syscall.Unmount(target, 0)
			return nil, status.Errorf(codes.Internal, "remounting volume %s read-only: %v", id, err)
		}
	}
	log.Printf("published volume %s at %s", id, target)
	return &csi.NodePublishVolumeResponse{}, nil
}

func (n *nodeServer) NodeUnpublishVolume(_ context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	target := req.GetTargetPath()
	if target == "" {
		return nil, status.Error(codes.InvalidArgument, "target path is required")
	}
	if mounted, err := isMountPoint(target); err == nil && mounted {
		if err := syscall.Unmount(target, 0); err != nil {
			return nil, status.Errorf(codes.Internal, "unmounting %s: %v", target, err)
		}
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Error(codes.Internal, err.Error())
	}
	log.Printf("unpublished volume %s from %s", req.GetVolumeId(), target)
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// isMountPoint reads the mount table, which (unlike comparing device
// numbers) also sees a bind mount from the same filesystem.
func isMountPoint(path string) (bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	clean := filepath.Clean(path)
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == clean {
			return true, nil
		}
	}
	return false, nil
}

// registrar answers the kubelet's plugin watcher, which finds its socket in
// the kubelet's plugins_registry directory (node-driver-registrar's job;
// that sidecar is not served by the module proxy, the API is).
type registrar struct {
	registration.UnimplementedRegistrationServer
	name, endpoint string
}

func (r *registrar) GetInfo(context.Context, *registration.InfoRequest) (*registration.PluginInfo, error) {
	return &registration.PluginInfo{Type: registration.CSIPlugin, Name: r.name, Endpoint: r.endpoint,
		SupportedVersions: []string{"1.0.0"}}, nil
}

func (r *registrar) NotifyRegistrationStatus(_ context.Context, s *registration.RegistrationStatus) (*registration.RegistrationStatusResponse, error) {
	if !s.PluginRegistered {
		log.Printf("the kubelet refused the registration: %s", s.Error)
	} else {
		log.Printf("registered with the kubelet")
	}
	return &registration.RegistrationStatusResponse{}, nil
}

// serveRegistration serves the registration socket in dir; it returns the
// server so the caller stops it with the CSI one.
func serveRegistration(dir, name, endpoint string) (*grpc.Server, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, name+"-reg.sock")
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("registration socket: %w", err)
	}
	srv := grpc.NewServer()
	registration.RegisterRegistrationServer(srv, &registrar{name: name, endpoint: endpoint})
	go func() { _ = srv.Serve(l) }()
	return srv, nil
}
