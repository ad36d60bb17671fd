package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The data centers of the test bed.
const (
	East    = "dc-east"
	West    = "dc-west"
	Witness = "witness"
)

// kwokctlConfig keeps every component of a kwok cluster on 127.0.0.1;
// kwokctl binds 0.0.0.0 by default. The controller manager and scheduler
// talk to their API server at 200 QPS instead of their default 20 (as
// production clusters with many workloads are tuned): at 20 QPS, starting
// 50 Deployments takes the controller manager seconds of its own rate
// limit, which would be measured as Tandem's switchover time. kwok runs
// without node Leases: a restarted kwok cannot take over the Leases its
// previous run holds until they expire, and until then it deletes no pod
// (a stopped and started data center could not scale anything down).
// Without Leases kwok refreshes its nodes' status only every few minutes,
// and after a data center's restart the node lifecycle controller would
// mark the nodes unknown and their pods not Ready, which kwok never undoes
// (kubernetes-sigs/kwok#1464): the app of a data center that went dark and
// came back lost its availability 3.5 minutes later. Simulated nodes never
// fail on their own, so the grace period is a day.
//
// For a real node (node.go) next to the kwok ones: kwok manages only its
// own nodes (kwokctl starts it managing all, and it would take the real
// one over), and the API server reaches kubelets at their InternalIP (a
// real node's is its bridge address; the hostname does not resolve) with
// the cluster's admin certificate, for logs and exec.
//
// The API server of a cluster of a bed with real nodes is also reached by
// pods, at its HostIP:443 (see Node.ServiceRange and startAPIServerProxy):
// its certificate names that address too.
func kwokctlConfig(pki string, n *Node) string {
	bind, apiserver := "bindAddress: 127.0.0.1", ""
	if n != nil {
		bind += fmt.Sprintf("\n  kubeApiserverCertSANs: [%q]", n.HostIP())
		apiserver = fmt.Sprintf("\n  - {key: service-cluster-ip-range, value: %q}", n.ServiceRange())
	}
	return fmt.Sprintf(`apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  %[3]s
componentsPatches:
- name: kube-apiserver
  extraArgs:%[4]s
  - {key: kubelet-preferred-address-types, value: "InternalIP,Hostname"}
  - {key: kubelet-client-certificate, value: %[1]q}
  - {key: kubelet-client-key, value: %[2]q}
- name: kube-controller-manager
  extraArgs:
  - {key: node-monitor-grace-period, value: "24h"}
  - {key: kube-api-qps, value: "200"}
  - {key: kube-api-burst, value: "400"}
  - {key: concurrent-deployment-syncs, value: "20"}
  - {key: concurrent-replicaset-syncs, value: "20"}
- name: kube-scheduler
  extraArgs:
  - {key: kube-api-qps, value: "200"}
  - {key: kube-api-burst, value: "400"}
- name: kwok-controller
  extraArgs:
  - {key: node-lease-duration-seconds, value: "0"}
  - {key: manage-all-nodes, value: "false"}
  - {key: manage-nodes-with-annotation-selector, value: "kwok.x-k8s.io/node=fake"}
`, filepath.Join(pki, "admin.crt"), filepath.Join(pki, "admin.key"), bind, apiserver)
}

// Bed is a set of kwok clusters (binary runtime: real etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler processes, with kwok simulating
// nodes and kubelets) whose state lives under Dir. Nothing is written to the
// user's ~/.kube or ~/.kwok.
type Bed struct {
	Dir string
	Bin string
}

// Cluster is one data center of the bed.
type Cluster struct {
	Name       string
	Kubeconfig string
	Config     *rest.Config
	Client     client.Client
}

// NewBed returns a bed rooted at dir, creating the directory.
func NewBed(dir string) (*Bed, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(abs, "home"), 0o755); err != nil {
		return nil, err
	}
	return &Bed{Dir: abs, Bin: bin}, nil
}

// UpOptions say which clusters Up creates.
type UpOptions struct {
	// Witness adds a third cluster, the tie-breaker.
	Witness bool
	// Nodes per cluster; 2 when zero.
	Nodes int
	// Storage gives dc-east and dc-west CSI storage that replicates
	// snapshots between them (see StartStorage).
	Storage bool
	// ReplicationDelay of that storage; 1s when zero.
	ReplicationDelay time.Duration
	// RealNodes gives dc-east and dc-west one real node each (StartNode),
	// and every cluster an address on the pod network to listen on.
	RealNodes bool
}

// Up creates dc-east and dc-west (and the witness), each with simulated
// nodes, and waits until they are ready. Clusters are created one after
// another because kwokctl picks free ports at creation time and two
// concurrent creations can pick the same ones.
func (b *Bed) Up(ctx context.Context, opts UpOptions) ([]*Cluster, error) {
	names := []string{East, West}
	if opts.Witness {
		names = append(names, Witness)
	}
	nodes := opts.Nodes
	if nodes == 0 {
		nodes = 2
	}
	if opts.RealNodes {
		for _, n := range names {
			if _, err := b.AllocateNode(n); err != nil {
				return nil, fmt.Errorf("cluster %s: %w", n, err)
			}
		}
	}
	var clusters []*Cluster
	for _, n := range names {
		c, err := b.Create(ctx, n, nodes)
		if err != nil {
			return clusters, err
		}
		clusters = append(clusters, c)
	}
	if opts.RealNodes {
		for _, n := range []string{East, West} {
			if _, err := b.StartNode(ctx, n); err != nil {
				return clusters, fmt.Errorf("cluster %s: %w", n, err)
			}
		}
	}
	if opts.Storage {
		for _, pair := range [][2]string{{East, West}, {West, East}} {
			if err := b.StartStorage(ctx, pair[0], StorageOptions{Peer: pair[1], ReplicationDelay: opts.ReplicationDelay}); err != nil {
				return clusters, err
			}
		}
	}
	return clusters, nil
}

// Create creates one cluster with the given number of simulated nodes.
func (b *Bed) Create(ctx context.Context, name string, nodes int) (*Cluster, error) {
	kubeconfig := b.KubeconfigPath(name)
	// A cluster that was given its share of the pod network listens there.
	site, err := b.Node(name)
	if err != nil {
		return nil, err
	}
	config := filepath.Join(b.Dir, name+".kwokctl.yaml")
	if err := os.WriteFile(config, []byte(kwokctlConfig(filepath.Join(b.Dir, "kwok", "clusters", name, "pki"), site)), 0o644); err != nil {
		return nil, err
	}
	if _, err := b.kwokctl(ctx, "-c", config,
		"create", "cluster", "--name", name, "--runtime", "binary",
		"--kube-apiserver-binary", filepath.Join(b.Bin, "kube-apiserver"),
		"--kube-controller-manager-binary", filepath.Join(b.Bin, "kube-controller-manager"),
		"--kube-scheduler-binary", filepath.Join(b.Bin, "kube-scheduler"),
		"--kwok-controller-binary", filepath.Join(b.Bin, "kwok"),
		"--etcd-binary", filepath.Join(b.Bin, "etcd"),
		"--kubeconfig", kubeconfig, "--quiet-pull", "--wait", "2m"); err != nil {
		return nil, fmt.Errorf("creating cluster %s: %w", name, err)
	}
	if nodes > 0 {
		if _, err := b.kwokctl(ctx, "scale", "node", "--name", name, "--replicas", strconv.Itoa(nodes)); err != nil {
			return nil, fmt.Errorf("adding %d nodes to cluster %s: %w", nodes, name, err)
		}
	}
	c, err := b.Cluster(name)
	if err != nil || site == nil {
		return c, err
	}
	return c, b.startAPIServerProxy(site, c)
}

// Cluster returns a client for an existing cluster of the bed.
func (b *Bed) Cluster(name string) (*Cluster, error) {
	kubeconfig := b.KubeconfigPath(name)
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig of cluster %s: %w", name, err)
	}
	// Tests poll several objects every few milliseconds; client-go's
	// default of 5 QPS would throttle them into sampling every second.
	cfg.QPS, cfg.Burst = 200, 400
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return nil, fmt.Errorf("client for cluster %s: %w", name, err)
	}
	return &Cluster{Name: name, Kubeconfig: kubeconfig, Config: cfg, Client: c}, nil
}

// KubeconfigPath is where the kubeconfig of a cluster is written.
func (b *Bed) KubeconfigPath(name string) string {
	return filepath.Join(b.Dir, name+".kubeconfig")
}

// Stop stops every process of a cluster, keeping its state: the data center
// goes dark, its real node and that node's pods with it (kwokctl stops only
// the control plane).
func (b *Bed) Stop(ctx context.Context, name string) error {
	if err := b.DarkenNode(name); err != nil {
		return fmt.Errorf("darkening the real node of cluster %s: %w", name, err)
	}
	if _, err := b.kwokctl(ctx, "stop", "cluster", "--name", name); err != nil {
		return fmt.Errorf("stopping cluster %s: %w", name, err)
	}
	return b.stopStorage(name)
}

// Start restarts a stopped cluster with its state; its real node comes back
// with it, pods and all, as a data center's machines do when its power
// returns.
func (b *Bed) Start(ctx context.Context, name string) error {
	if err := b.LightNode(name); err != nil {
		return fmt.Errorf("bringing back the real node of cluster %s: %w", name, err)
	}
	if _, err := b.kwokctl(ctx, "start", "cluster", "--name", name); err != nil {
		return fmt.Errorf("starting cluster %s: %w", name, err)
	}
	return b.restartStorage(name)
}

// Names lists the clusters that exist under the bed's directory.
func (b *Bed) Names() []string {
	entries, _ := os.ReadDir(filepath.Join(b.Dir, "kwok", "clusters"))
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// PIDs returns the component processes of a cluster that are alive, by
// component name, from the pid files kwokctl writes.
func (b *Bed) PIDs(name string) map[string]int {
	dir := filepath.Join(b.Dir, "kwok", "clusters", name, "pids")
	entries, _ := os.ReadDir(dir)
	pids := map[string]int{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || !ProcessAlive(pid) {
			continue
		}
		pids[strings.TrimSuffix(e.Name(), ".pid")] = pid
	}
	return pids
}

// Delete removes a cluster and makes sure none of its processes survive:
// the PIDs are read before kwokctl deletes the pid files, and any process
// still alive afterwards is killed.
func (b *Bed) Delete(ctx context.Context, name string) error {
	nodeErr := b.DeleteNode(name)
	storageErr := errors.Join(nodeErr, b.stopStorage(name))
	pids := b.PIDs(name)
	_, delErr := b.kwokctl(ctx, "delete", "cluster", "--name", name)
	if err := killAll(pids); err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	if delErr != nil {
		return fmt.Errorf("deleting cluster %s: %w", name, delErr)
	}
	return storageErr
}

// Down deletes every cluster of the bed.
func (b *Bed) Down(ctx context.Context) error {
	var errs []error
	for _, n := range b.Names() {
		errs = append(errs, b.Delete(ctx, n))
	}
	errs = append(errs, b.StopDNS())
	// A node allocated for a cluster whose creation failed.
	for _, site := range b.nodeSites() {
		errs = append(errs, b.DeleteNode(site))
	}
	return errors.Join(errs...)
}

func (b *Bed) kwokctl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(b.Bin, "kwokctl"), args...)
	cmd.Env = append(os.Environ(),
		"KWOK_WORKDIR="+filepath.Join(b.Dir, "kwok"),
		"HOME="+filepath.Join(b.Dir, "home"),
		"KUBECACHEDIR="+filepath.Join(b.Dir, "home", ".kube", "cache"),
		"KUBECONFIG="+filepath.Join(b.Dir, "home", ".kube", "config"),
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kwokctl %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// ProcessAlive reports whether a process runs (a zombie does not count).
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	// A zombie answers signal 0 but is gone for every purpose that matters.
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// killAll sends SIGTERM to the processes that are still alive, then SIGKILL
// to those that do not exit within a few seconds.
func killAll(pids map[string]int) error {
	for _, pid := range pids {
		if ProcessAlive(pid) {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if len(survivors(pids)) == 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, pid := range survivors(pids) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	time.Sleep(200 * time.Millisecond)
	if s := survivors(pids); len(s) > 0 {
		return fmt.Errorf("processes %v survived SIGKILL", s)
	}
	return nil
}

func survivors(pids map[string]int) []int {
	var out []int
	for _, pid := range pids {
		if ProcessAlive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// FlatKubeconfig returns the cluster's kubeconfig with certificates
// embedded instead of referenced by path, as a kubeconfig Secret must be.
func (c *Cluster) FlatKubeconfig() ([]byte, error) { return c.FlatKubeconfigFor("") }

// FlatKubeconfigFor is FlatKubeconfig naming server instead of the
// kubeconfig's own address, when server is not empty.
func (c *Cluster) FlatKubeconfigFor(server string) ([]byte, error) {
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		return nil, err
	}
	if server != "" {
		for _, cl := range cfg.Clusters {
			cl.Server = server
		}
	}
	return clientcmd.Write(*cfg)
}
