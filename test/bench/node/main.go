// Command node measures the test bed's real nodes and the RTOs of a real
// application on them, and prints the figures recorded in
// docs/benchmarks.md:
//
//   - what a real node costs: the time from starting it to the Node Ready,
//     the memory of its own processes (kubelet, containerd, the CSI node
//     service, the shims) and of each pod, and its idle CPU, read from the
//     node's cgroup;
//
//   - the floor, in the same run: the test bed's app (a real container on a
//     real CSI volume) scaled from 0 to 1 on the real node, to Ready;
//
//   - Tandem's RTOs with the operators running as pods from the locally
//     built image (helm-installed): planned switchovers back and forth and
//     failovers (the active data center darkened, node and all), as the
//     Switchover reports them and as a client sees them: the gap between
//     the last answer of the old side and the first of the new one, for a
//     client that resolves the name through the test bed's BIND every
//     100 ms.
//
//     go run ./test/bench/node [-rounds 3]
//
// It needs root (see testbed.RealNodeSupport) and bin/helm (make helm).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/traffic"
	"github.com/tandem-dev/tandem/test/testbed"
)

const (
	ns   = "bench"
	app  = "orders"
	name = "orders.bench.test"
)

func main() {
	rounds := flag.Int("rounds", 3, "Planned switchovers (there and back count as two) and failovers to measure.")
	dir := flag.String("dir", "", "Working directory (a temporary one when empty).")
	flag.Parse()
	// The harness prints its own figures; the clients' logs are noise.
	ctrllog.SetLogger(logr.Discard())
	if err := testbed.RealNodeSupport(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "tandem-bench-node-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		*dir = d
	}
	if err := run(*rounds, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type site struct {
	c    *testbed.Cluster
	node *testbed.Node
}

func run(rounds int, dir string) error {
	ctx := context.Background()
	bed, err := testbed.NewBed(filepath.Join(dir, "bed"))
	if err != nil {
		return err
	}
	defer func() { _ = bed.Down(context.Background()) }()

	// The bed, as Up builds it, with the real nodes' start timed.
	names := []string{testbed.East, testbed.West, testbed.Witness}
	for _, n := range names {
		if _, err := bed.AllocateNode(n); err != nil {
			return err
		}
	}
	clusters := map[string]*testbed.Cluster{}
	for _, n := range names {
		if clusters[n], err = bed.Create(ctx, n, 1); err != nil {
			return err
		}
	}
	sites := map[string]site{}
	fmt.Println("A real node per data center:")
	for _, n := range []string{testbed.East, testbed.West} {
		start := time.Now()
		node, err := bed.StartNode(ctx, n)
		if err != nil {
			return err
		}
		fmt.Printf("  %s: started and Ready in %s (cgroup, mount namespace, containerd, CSI node service, kubelet, two images imported)\n",
			node.Name, time.Since(start).Round(10*time.Millisecond))
		sites[n] = site{clusters[n], node}
	}
	for _, pair := range [][2]string{{testbed.East, testbed.West}, {testbed.West, testbed.East}} {
		if err := bed.StartStorage(ctx, pair[0], testbed.StorageOptions{Peer: pair[1], ReplicationDelay: 200 * time.Millisecond}); err != nil {
			return err
		}
	}
	east, west := sites[testbed.East], sites[testbed.West]
	time.Sleep(10 * time.Second)
	fmt.Printf("  idle node, its own processes: %s\n", cgroupCost(east.node, "system", 20*time.Second))

	// The floor: the app from 0 to 1 on the real node, without Tandem.
	floor, err := appFloor(ctx, east)
	if err != nil {
		return err
	}
	fmt.Printf("\nFloor: the app (a container on a CSI volume) scaled 0 -> 1 on the real node, to Ready: %s (median of %d)\n",
		median(floor), len(floor))
	fmt.Printf("  a running app pod: %s\n", cgroupCost(east.node, "kubepods", 10*time.Second))

	// Tandem on it: operators as pods, the pair, a client through DNS.
	srv, err := bed.StartDNS("bench.test")
	if err != nil {
		return err
	}
	if err := clusters[testbed.Witness].Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tandem-system"}}); err != nil {
		return err
	}
	for _, s := range []site{east, west} {
		if err := bed.ImportImage(ctx, s.node, testbed.OperatorImage); err != nil {
			return err
		}
		start := time.Now()
		if err := helmInstall(s.c, dir); err != nil {
			return err
		}
		fmt.Printf("helm install into %s: 2 operator pods Ready in %s\n", s.c.Name, time.Since(start).Round(10*time.Millisecond))
		if err := bed.StartExternalDNS(ctx, s.c.Name, testbed.ExternalDNSOptions{DNS: srv}); err != nil {
			return err
		}
	}
	if err := pair(ctx, bed, east, west, srv); err != nil {
		return err
	}
	user := &client100ms{srv: srv}
	go user.run()
	defer user.stop()

	var planned, plannedGap, failover, failoverGap []time.Duration
	from, to := east, west
	for i := range rounds {
		so, err := switchover(ctx, from.c, tandemv1.SwitchoverPlanned, to.c.Name, fmt.Sprintf("planned-%d", i))
		if err != nil {
			return err
		}
		gap, err := user.waitMoved(to.node.Name)
		if err != nil {
			return err
		}
		planned, plannedGap = append(planned, so.Status.RTO.Duration), append(plannedGap, gap)
		fmt.Printf("planned %s -> %s: RTO %s, the client's gap %s\n", from.c.Name, to.c.Name, so.Status.RTO.Duration, gap.Round(10*time.Millisecond))
		if err := waitSynced(ctx, to.c); err != nil {
			return err
		}
		from, to = to, from
	}
	for range rounds {
		// The active side goes dark; the other takes over.
		epoch, err := epochOf(ctx, from.c)
		if err != nil {
			return err
		}
		if err := bed.Stop(ctx, from.c.Name); err != nil {
			return err
		}
		so := &tandemv1.Switchover{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("shop-failover-%d", epoch+1)}}
		if err := waitPhase(ctx, to.c, so, tandemv1.PhaseSucceeded, 3*time.Minute); err != nil {
			return err
		}
		gap, err := user.waitMoved(to.node.Name)
		if err != nil {
			return err
		}
		failover, failoverGap = append(failover, so.Status.RTO.Duration), append(failoverGap, gap)
		fmt.Printf("failover to %s: RTO %s, the client's gap %s, data-loss window %s\n", to.c.Name, so.Status.RTO.Duration,
			gap.Round(10*time.Millisecond), so.Status.DataLossWindow.Duration)
		if err := bed.Start(ctx, from.c.Name); err != nil {
			return err
		}
		if err := waitRole(ctx, from.c, tandemv1.RoleStandby, 3*time.Minute); err != nil {
			return err
		}
		if err := waitSynced(ctx, to.c); err != nil {
			return err
		}
		from, to = to, from
	}
	fmt.Printf("\nPlanned switchover: RTO median %s (of %d), the client's gap median %s\n", median(planned), len(planned), median(plannedGap))
	fmt.Printf("Failover: RTO median %s (of %d), the client's gap median %s (detection: 3 probes of 1s, witness lease 4s)\n",
		median(failover), len(failover), median(failoverGap))
	fmt.Printf("Floor (the app 0 -> 1 on the real node, same run): %s\n", median(floor))
	return nil
}

// cgroupCost reads the memory of a part of the node's cgroup tree (the
// resident set of its processes as ps counts it, and the anonymous memory
// the cgroup charges) and its CPU over window.
func cgroupCost(n *testbed.Node, part string, window time.Duration) string {
	mem := filepath.Join("/sys/fs/cgroup/memory", n.CgroupName(), part)
	cpu := filepath.Join("/sys/fs/cgroup/cpuacct", n.CgroupName(), part, "cpuacct.usage")
	before, start := readInt(cpu), time.Now()
	time.Sleep(window)
	used := float64(readInt(cpu)-before) / float64(time.Since(start).Nanoseconds())
	var rss int64
	procs := 0
	_ = filepath.WalkDir(mem, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "cgroup.procs" {
			return nil
		}
		data, _ := os.ReadFile(path)
		for _, pid := range strings.Fields(string(data)) {
			procs++
			rss += vmRSS(pid)
		}
		return nil
	})
	return fmt.Sprintf("%d processes, %d MiB resident (%d MiB anonymous), %.1f%% of a core (over %s)",
		procs, rss>>20, memStat(mem, "total_rss")>>20, used*100, window)
}

// vmRSS is a process's resident set in bytes.
func vmRSS(pid string) int64 {
	data, _ := os.ReadFile(filepath.Join("/proc", pid, "status"))
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func readInt(path string) int64 {
	data, _ := os.ReadFile(path)
	v, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return v
}

func memStat(dir, key string) int64 {
	data, _ := os.ReadFile(filepath.Join(dir, "memory.stat"))
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == key {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

// appFloor deploys the app on dc-east and scales it 0 -> 1 a few times,
// timing each to Ready (its data initialised first, so it can be).
func appFloor(ctx context.Context, s site) ([]time.Duration, error) {
	c := s.c.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return nil, err
	}
	objs, err := testbed.Decode(testbed.AppObjects(ns, app, 1, testbed.AppOptions{FrontDoor: true}))
	if err != nil {
		return nil, err
	}
	if err := testbed.ApplyObjects(ctx, c, objs); err != nil {
		return nil, err
	}
	front := testbed.NewAppClient(s.node.HostIP().String())
	if err := testbed.Poll(ctx, time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		return front.Put(ctx, "order-0", "the first") == nil, nil
	}); err != nil {
		return nil, fmt.Errorf("the app never answered: %w", err)
	}
	var out []time.Duration
	for range 5 {
		if err := scale(ctx, c, 0); err != nil {
			return nil, err
		}
		if err := testbed.Poll(ctx, time.Minute, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
			var pods corev1.PodList
			err := c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": app})
			return err == nil && len(pods.Items) == 0, err
		}); err != nil {
			return nil, err
		}
		start := time.Now()
		if err := scale(ctx, c, 1); err != nil {
			return nil, err
		}
		if err := testbed.Poll(ctx, time.Minute, 20*time.Millisecond, func(ctx context.Context) (bool, error) {
			_, err := testbed.AppPodIP(ctx, c, ns, app)
			return err == nil, nil
		}); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

func scale(ctx context.Context, c client.Client, n int32) error {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app}}
	return c.Patch(ctx, d, client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n)))
}

const values = `image: {repository: tandem.local/tandem-operator, tag: dev, pullPolicy: Never}
nodeSelector: {"tandem.dev/real-node": "true"}
tolerations: [{key: tandem.dev/real-node, operator: Exists, effect: NoSchedule}]
leaderElectionTimings: {leaseDuration: 3s, renewDeadline: 2s, retryPeriod: 500ms}
`

func helmInstall(c *testbed.Cluster, dir string) error {
	helm := os.Getenv("HELM")
	if helm == "" {
		helm = filepath.Join(testbed.RepoRoot(), "bin", "helm")
	}
	file := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(file, []byte(values), 0o644); err != nil {
		return err
	}
	home := filepath.Join(dir, "helm")
	cmd := exec.Command(helm, "install", "tandem", filepath.Join(testbed.RepoRoot(), "charts", "tandem"),
		"--kubeconfig", c.Kubeconfig, "--namespace", "tandem-system", "--create-namespace", "--wait", "--timeout", "2m",
		"--values", file, "--set", "clusterName="+c.Name)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("helm install into %s (make helm builds bin/helm): %w\n%s", c.Name, err, out)
	}
	return nil
}

// pair applies the kubeconfig Secrets (naming the API servers where pods
// reach them), the SyncPolicy with volume protection and the HAPair with a
// witness and the DNS record on dc-east.
func pair(ctx context.Context, bed *testbed.Bed, east, west site, srv testbed.DNSServer) error {
	for _, side := range [][2]site{{east, west}, {west, east}} {
		peer, err := bed.PodKubeconfig(side[1].c.Name)
		if err != nil {
			return err
		}
		witness, err := bed.PodKubeconfig(testbed.Witness)
		if err != nil {
			return err
		}
		// The namespace, granted the name the pair points.
		if err := testbed.GrantDNSNames(ctx, side[0].c.Client, ns, name); err != nil {
			return err
		}
		for secret, kc := range map[string][]byte{side[1].c.Name + "-kubeconfig": peer, "witness-kubeconfig": witness} {
			if err := side[0].c.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secret},
				Data: map[string][]byte{"kubeconfig": kc}}); err != nil {
				return err
			}
		}
	}
	objs, err := testbed.Decode(fmt.Sprintf(`apiVersion: tandem.dev/v1alpha1
kind: SyncPolicy
metadata: {namespace: %[1]s, name: app}
spec:
  namespaces: {names: [%[1]s]}
  volumes:
    snapshotClassName: %[2]s
    interval: 2s
    retention: 3
    handleMapping: {mode: Template, template: "%[3]s{{.Handle}}"}
---
apiVersion: tandem.dev/v1alpha1
kind: HAPair
metadata: {namespace: %[1]s, name: shop}
spec:
  clusters:
  - {name: dc-east, kubeconfigSecretRef: {name: dc-east-kubeconfig}}
  - {name: dc-west, kubeconfigSecretRef: {name: dc-west-kubeconfig}}
  primary: dc-east
  syncPolicyRefs: [{name: app}]
  witness: {kubeconfigSecretRef: {name: witness-kubeconfig}, leaseDuration: 4s, renewInterval: 1s}
  failover: {mode: Automatic, probePeriod: 1s, probeTimeout: 500ms, failureThreshold: 3}
  traffic:
    provider: ExternalDNS
    externalDNS: {verifyServers: [%[4]q]}
    dns:
    - name: %[5]s
      type: A
      ttl: 5
      targets:
      - {cluster: dc-east, values: [%[6]q]}
      - {cluster: dc-west, values: [%[7]q]}
`, ns, testbed.SnapshotClass, testbed.CSIReplicaPrefix, srv.PodAddr, name, east.node.HostIP(), west.node.HostIP()))
	if err != nil {
		return err
	}
	if err := testbed.ApplyObjects(ctx, east.c.Client, objs); err != nil {
		return err
	}
	if err := waitRole(ctx, east.c, tandemv1.RoleActive, 2*time.Minute); err != nil {
		return err
	}
	return waitSynced(ctx, east.c)
}

func getPair(ctx context.Context, c *testbed.Cluster) (*tandemv1.HAPair, error) {
	var p tandemv1.HAPair
	return &p, c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, &p)
}

func epochOf(ctx context.Context, c *testbed.Cluster) (int64, error) {
	p, err := getPair(ctx, c)
	if err != nil {
		return 0, err
	}
	return p.Status.Epoch, nil
}

func waitRole(ctx context.Context, c *testbed.Cluster, role tandemv1.Role, timeout time.Duration) error {
	return testbed.Poll(ctx, timeout, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		p, err := getPair(ctx, c)
		return err == nil && p.Status.LocalRole == role, nil
	})
}

func waitSynced(ctx context.Context, c *testbed.Cluster) error {
	return testbed.Poll(ctx, 2*time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		p, err := getPair(ctx, c)
		if err != nil {
			return false, nil
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == tandemv1.SyncedCondition {
				return cond.Status == metav1.ConditionTrue, fmt.Errorf("%s: Synced=%s: %s", c.Name, cond.Status, cond.Message)
			}
		}
		return false, nil
	})
}

func switchover(ctx context.Context, c *testbed.Cluster, typ tandemv1.SwitchoverType, target, soName string) (*tandemv1.Switchover, error) {
	so := &tandemv1.Switchover{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: soName},
		Spec: tandemv1.SwitchoverSpec{PairRef: "shop", Type: typ, TargetCluster: target}}
	if err := c.Client.Create(ctx, so); err != nil {
		return nil, err
	}
	return so, waitPhase(ctx, c, so, tandemv1.PhaseSucceeded, 3*time.Minute)
}

func waitPhase(ctx context.Context, c *testbed.Cluster, so *tandemv1.Switchover, phase tandemv1.SwitchoverPhase, timeout time.Duration) error {
	return testbed.Poll(ctx, timeout, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(so), so); err != nil {
			return false, nil
		}
		if so.Status.Phase == tandemv1.PhaseFailed || so.Status.Phase == tandemv1.PhaseRolledBack {
			return false, errors.New("switchover " + so.Name + " ended " + string(so.Status.Phase))
		}
		return so.Status.Phase == phase && so.Status.RTO != nil, fmt.Errorf("switchover %s: %s", so.Name, so.Status.Phase)
	})
}

// client100ms reads a record through the name every 100 ms and remembers
// which node answered when.
type client100ms struct {
	srv     testbed.DNSServer
	mu      sync.Mutex
	lastBy  string
	lastOK  time.Time
	movedAt map[string]time.Time // node -> first answer after an answer from another node
	gapTo   map[string]time.Duration
	done    chan struct{}
}

func (u *client100ms) run() {
	u.done = make(chan struct{})
	u.movedAt, u.gapTo = map[string]time.Time{}, map[string]time.Duration{}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-u.done:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		got, err := traffic.Answer(ctx, u.srv.Addr, name, "A")
		by := ""
		if err == nil && len(got) == 1 {
			a := testbed.NewAppClient(got[0])
			a.HTTP.Timeout = 500 * time.Millisecond
			if _, node, err := a.Get(ctx, "order-0"); err == nil {
				by = node
			}
		}
		cancel()
		if by == "" {
			continue
		}
		u.mu.Lock()
		if by != u.lastBy && u.lastBy != "" {
			u.gapTo[by] = time.Since(u.lastOK)
			u.movedAt[by] = time.Now()
		}
		u.lastBy, u.lastOK = by, time.Now()
		u.mu.Unlock()
	}
}

func (u *client100ms) stop() { close(u.done) }

// waitMoved waits until the client is answered by node and returns the gap
// it saw: from the old side's last answer to the new side's first.
func (u *client100ms) waitMoved(node string) (time.Duration, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		u.mu.Lock()
		gap, ok := u.gapTo[node]
		if ok && u.lastBy == node {
			delete(u.gapTo, node)
			u.mu.Unlock()
			return gap, nil
		}
		u.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("the client was never answered by %s", node)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(10 * time.Millisecond)
}
