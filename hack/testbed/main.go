// Command testbed brings the local two-data-center test bed up and down.
//
//	go run ./hack/testbed [-dir DIR] up [-witness] [-storage] [-real-nodes] [-nodes N]
//	go run ./hack/testbed [-dir DIR] status
//	go run ./hack/testbed [-dir DIR] stop|start CLUSTER   (a data center goes dark, or comes back)
//	go run ./hack/testbed [-dir DIR] down
//	go run ./hack/testbed freeport      (prints a free port on 127.0.0.1)
//	go run ./hack/testbed [-dir DIR] address CLUSTER          (the cluster's address on the pod network)
//	go run ./hack/testbed [-dir DIR] pod-kubeconfig CLUSTER   (a kubeconfig naming that address, for pods)
//	go run ./hack/testbed [-dir DIR] import CLUSTER TARBALL   (an image into the cluster's real node)
//	go run ./hack/testbed [-dir DIR] app NAME|IP get KEY | put KEY VALUE | status
//	    (a client of the test bed's app: a name is resolved through the bed's BIND first)
//
// Each data center is a kwok cluster running real control-plane binaries on
// 127.0.0.1; kubeconfigs are written to DIR/<cluster>.kubeconfig.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
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
		fmt.Fprintf(os.Stderr, "usage: testbed [-dir DIR] up [-witness] [-storage] [-real-nodes] [-dns ZONE] [-nodes N] | status | stop CLUSTER | start CLUSTER | dns [NAME] | address CLUSTER | pod-kubeconfig CLUSTER | import CLUSTER TARBALL | app NAME|IP get|put|status | down | freeport\n")
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
		// dns prints the DNS server's address (the one pods reach, when it
		// has one); dns NAME what it answers.
		srv, err := bed.DNS()
		if err != nil {
			return err
		}
		if len(args) == 0 {
			if srv.PodAddr != "" {
				fmt.Println(srv.PodAddr)
			} else {
				fmt.Println(srv.Addr)
			}
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
			if node, _ := bed.Node(n); node != nil && node.Kubelet {
				fmt.Printf("         real node %s at %s, pods on %s\n", node.Name, node.HostIP(), node.Subnet())
			}
		}
		return nil
	case "address", "pod-kubeconfig", "import":
		want, what := 1, ""
		if cmd == "import" {
			want, what = 2, " and an image tarball"
		}
		if len(args) != want {
			return fmt.Errorf("%s needs the name of a cluster (one of %s)%s", cmd, strings.Join(bed.Names(), ", "), what)
		}
		n, err := bed.Node(args[0])
		if err != nil {
			return err
		}
		if n == nil {
			return fmt.Errorf("cluster %s has no address on the pod network: bring the bed up with -real-nodes", args[0])
		}
		switch cmd {
		case "address":
			fmt.Println(n.HostIP())
		case "pod-kubeconfig":
			kc, err := bed.PodKubeconfig(args[0])
			if err != nil {
				return err
			}
			os.Stdout.Write(kc)
		case "import":
			if !n.Kubelet {
				return fmt.Errorf("cluster %s has no real node", args[0])
			}
			return bed.ImportTarball(ctx, n, args[1])
		}
		return nil
	case "app":
		return appClient(ctx, bed, args)
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

// appClient is a user of the test bed's app (test/app): given a DNS name it
// asks the bed's BIND for the address first, as a client would, and says
// which node answered.
func appClient(ctx context.Context, bed *testbed.Bed, args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("app needs a name or address and get KEY, put KEY VALUE or status")
	}
	target, addr := args[0], args[0]
	if net.ParseIP(target) == nil {
		srv, err := bed.DNS()
		if err != nil {
			return err
		}
		got, err := traffic.Answer(ctx, srv.Addr, target, "A")
		if err != nil {
			return err
		}
		if len(got) == 0 {
			return fmt.Errorf("%s: no address (BIND has no record)", target)
		}
		addr = got[0]
		target += " (" + addr + ")"
	}
	app := testbed.NewAppClient(addr)
	switch {
	case args[1] == "get" && len(args) == 3:
		value, node, err := app.Get(ctx, args[2])
		if err != nil {
			return err
		}
		fmt.Printf("%s: %s = %q, served by %s\n", target, args[2], value, node)
	case args[1] == "put" && len(args) == 4:
		if err := app.Put(ctx, args[2], args[3]); err != nil {
			return err
		}
		st, _ := app.Status(ctx)
		fmt.Printf("%s: stored %s = %q on %s\n", target, args[2], args[3], st.Node)
	case args[1] == "status" && len(args) == 2:
		st, err := app.Status(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("%s: served by %s (pod %s), %d records, data created on %s\n", target, st.Node, st.Pod, st.Records, st.DataCreatedOn)
	default:
		return fmt.Errorf("app %s: want get KEY, put KEY VALUE or status", target)
	}
	return nil
}
