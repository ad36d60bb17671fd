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
	flag.Parse()
	if *endpoint == "" || d.root == "" || d.peerRoot == "" {
		log.Fatal("--endpoint, --root and --peer-root are required")
	}
	for _, root := range []string{d.root, d.peerRoot} {
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
	csi.RegisterControllerServer(srv, d)
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		srv.GracefulStop()
	}()
	log.Printf("%s %s serving on %s, storage %s, replicas to %s after %s", d.name, version, sock, d.root, d.peerRoot, d.delay)
	if err := srv.Serve(l); err != nil {
		log.Fatal(err)
	}
}
