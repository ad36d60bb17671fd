package main

import (
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
)

func main() {
	d := &driver{}
	endpoint := flag.String("endpoint", "", "unix socket to serve CSI on, as unix:///path or a path")
	flag.StringVar(&d.name, "driver-name", "csi.tandem.test", "CSI driver name")
	flag.StringVar(&d.root, "root", "", "this site's storage directory")
	flag.StringVar(&d.peerRoot, "peer-root", "", "the other site's storage directory, where snapshots replicate to")
	flag.StringVar(&d.replicaPrefix, "replica-prefix", "replica-", "prefix of a replicated snapshot's handle at the other site")
	flag.DurationVar(&d.delay, "replication-delay", time.Second, "time from a snapshot to its replica being usable at the other site")
	nodeID := flag.String("node-id", "", "serve the node service for this node instead of the controller service")
	registrationDir := flag.String("registration-dir", "", "with --node-id: the kubelet's plugins_registry directory")
	flag.Parse()
	if *endpoint == "" || d.root == "" || (d.peerRoot == "" && *nodeID == "") {
		log.Fatal("--endpoint, --root and --peer-root (or --node-id) are required")
	}
	if *nodeID != "" && *registrationDir == "" {
		log.Fatal("--node-id needs --registration-dir")
	}
	roots := []string{d.root}
	if d.peerRoot != "" {
		roots = append(roots, d.peerRoot)
	}
	for _, root := range roots {
		for _, sub := range []string{"volumes", "snapshots"} {
			if err := os.MkdirAll(filepath.Join(root, sub), 0o755); err != nil {
				log.Fatal(err)
			}
		}
	}
	sock := strings.TrimPrefix(*endpoint, "unix://")
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer()
	csi.RegisterIdentityServer(srv, d)
	stops := []*grpc.Server{srv}
	if *nodeID != "" {
		csi.RegisterNodeServer(srv, &nodeServer{d: d, nodeID: *nodeID})
		reg, err := serveRegistration(*registrationDir, d.name, sock)
		if err != nil {
			log.Fatal(err)
		}
		stops = append(stops, reg)
		log.Printf("%s %s node service for %s on %s, storage %s", d.name, version, *nodeID, sock, d.root)
	} else {
		csi.RegisterControllerServer(srv, d)
		log.Printf("%s %s serving on %s, storage %s, replicas to %s after %s", d.name, version, sock, d.root, d.peerRoot, d.delay)
	}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		for _, s := range stops {
			s.GracefulStop()
		}
	}()
	if err := srv.Serve(l); err != nil {
		log.Fatal(err)
	}
}
