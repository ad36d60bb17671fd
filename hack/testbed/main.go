// Command testbed brings the local two-data-center test bed up and down.
//
//	go run ./hack/testbed [-dir DIR] up [-witness] [-storage] [-real-nodes] [-nodes N]
//	go run ./hack/testbed [-dir DIR] status
//	go run ./hack/testbed [-dir DIR] stop|start CLUSTER   (a data center goes dark, or comes back)
//	go run ./hack/testbed [-dir DIR] down
//	go run ./hack/testbed freeport      (prints a free port on 127.0.0.1)
//
// Each data center is a kwok cluster running real control-plane binaries on
// 127.0.0.1; kubeconfigs are written to DIR/<cluster>.kubeconfig.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/tandem-dev/tandem/internal/traffic"
	"github.com/tandem-dev/tandem/test/testbed"
)

func main() {
	dir := flag.String("dir", ".work/testbed", "Directory holding the clusters' state, logs and kubeconfigs.")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: testbed [-dir DIR] up [-witness] [-storage] [-real-nodes] [-dns ZONE] [-nodes N] | status | stop CLUSTER | start CLUSTER | dns [NAME] | down | freeport\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir, flag.Arg(0), flag.Args()[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "testbed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir, cmd string, args []string) error {
	bed, err := testbed.NewBed(dir)
	if err != nil {
		return err
	}
	switch cmd {
	case "up":
		fs := flag.NewFlagSet("up", flag.ExitOnError)
		witness := fs.Bool("witness", false, "Also create the witness cluster.")
		nodes := fs.Int("nodes", 2, "Simulated nodes per cluster.")
		storage := fs.Bool("storage", false, "Give dc-east and dc-west CSI storage that replicates snapshots between them.")
		delay := fs.Duration("replication-delay", time.Second, "Time from a snapshot to its replica being usable at the other site.")
		realNodes := fs.Bool("real-nodes", false, "Give dc-east and dc-west one real node each (kubelet, containerd, runc), tainted "+testbed.RealNodeTaint+"; needs root.")
		zone := fs.String("dns", "", "Run BIND for this zone, and external-dns (ordinary and flip instance) in dc-east and dc-west against it.")
		_ = fs.Parse(args)
		start := time.Now()
		clusters, err := bed.Up(ctx, testbed.UpOptions{Witness: *witness, Nodes: *nodes, Storage: *storage, ReplicationDelay: *delay, RealNodes: *realNodes})
		if err != nil {
			_ = bed.Down(context.Background())
			return err
		}
		fmt.Printf("Test bed up in %.1fs:\n", time.Since(start).Seconds())
		for _, c := range clusters {
			fmt.Printf("  %-8s %s  (kubectl --kubeconfig %s get nodes)\n", c.Name, c.Config.Host, c.Kubeconfig)
		}
		if *storage {
			fmt.Printf("  storage: StorageClass %q (and fast-east, fast-west), VolumeSnapshotClass %q, volumes under %s/<cluster>/volumes\n",
				testbed.StorageClass, testbed.SnapshotClass, filepath.Dir(bed.StorageDir(testbed.East)))
		}
		for _, c := range clusters {
			n, _ := bed.Node(c.Name)
			switch {
			case n != nil && n.Kubelet:
				fmt.Printf("  %-8s real node %s at %s, pods on %s (containerd %s); API server for pods at %s\n", c.Name, n.Name, n.HostIP(), n.Subnet(), n.Socket(), n.APIServer())
			case n != nil:
				fmt.Printf("  %-8s API server for pods at %s\n", c.Name, n.APIServer())
			}
		}
		if *zone != "" {
			srv, err := upDNS(ctx, bed, *zone)
			if err != nil {
				_ = bed.Down(context.Background())
				return err
			}
			fmt.Printf("  dns: BIND serving %s on %s (TSIG key %s); external-dns (ordinary and flip instance) in dc-east and dc-west\n", srv.Zone, srv.Addr, srv.KeyName)
		}
		return nil
	case "dns":
		// dns prints the DNS server's address; dns NAME what it answers.
		srv, err := bed.DNS()
		if err != nil {
			return err
		}
		if len(args) == 0 {
			fmt.Println(srv.Addr)
			return nil
		}
		got, err := traffic.Answer(ctx, srv.Addr, args[0], "A")
		if err != nil {
			return err
		}
		if len(got) == 0 {
			fmt.Println("(no answer)")
			return nil
		}
		fmt.Println(strings.Join(got, " "))
		return nil
	case "status":
		names := bed.Names()
		if len(names) == 0 {
			fmt.Println("No test bed clusters in", bed.Dir)
			return nil
		}
		for _, n := range names {
			pids := bed.PIDs(n)
			state := "stopped"
			if len(pids) > 0 {
				state = "running"
			}
			var parts []string
			for comp, pid := range pids {
				parts = append(parts, fmt.Sprintf("%s=%d", comp, pid))
			}
			sort.Strings(parts)
			fmt.Printf("%-8s %-8s %s  %s\n", n, state, bed.KubeconfigPath(n), strings.Join(parts, " "))
		}
		return nil
	case "freeport":
		port, err := testbed.FreePort()
		if err != nil {
			return err
		}
		fmt.Println(port)
		return nil
	case "stop", "start":
		if len(args) != 1 {
			return fmt.Errorf("%s needs the name of a cluster (one of %s)", cmd, strings.Join(bed.Names(), ", "))
		}
		start := time.Now()
		do, done := bed.Stop, "stopped: its processes are gone, its state kept"
		if cmd == "start" {
			do, done = bed.Start, "started again with its state"
		}
		if err := do(ctx, args[0]); err != nil {
			return err
		}
		fmt.Printf("%s %s in %.1fs\n", args[0], done, time.Since(start).Seconds())
		return nil
	case "down":
		names := bed.Names()
		if err := bed.Down(ctx); err != nil {
			return err
		}
		fmt.Printf("Deleted %d test bed clusters; no process left behind.\n", len(names))
		return nil
	default:
		return fmt.Errorf("unknown command %q (want up, status, stop, start, down, dns or freeport)", cmd)
	}
}

// upDNS starts BIND for zone and each data center's two external-dns
// instances against it.
func upDNS(ctx context.Context, bed *testbed.Bed, zone string) (testbed.DNSServer, error) {
	srv, err := bed.StartDNS(zone)
	if err != nil {
		return srv, err
	}
	for _, side := range [][2]string{{testbed.East, testbed.West}, {testbed.West, testbed.East}} {
		if err := bed.StartExternalDNS(ctx, side[0], testbed.ExternalDNSOptions{DNS: srv}); err != nil {
			return srv, err
		}
	}
	return srv, nil
}
