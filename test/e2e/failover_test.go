package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/controller"
	"github.com/tandem-dev/tandem/internal/fence"
	"github.com/tandem-dev/tandem/internal/replicate"
	"github.com/tandem-dev/tandem/test/testbed"
)

// pairOptions shape the pair the failover tests run.
type pairOptions struct {
	ns      string
	mode    tandemv1.FailoverMode
	witness bool
	// peerKubeconfig returns the kubeconfig one side uses for the other;
	// direct by default, or through a Link the test can cut.
	peerKubeconfig    func(from, to *testbed.Cluster) []byte
	witnessKubeconfig func(from *testbed.Cluster) []byte
	// sample runs the sample app (hack/demo-app.yaml) under the sample
	// SyncPolicy (config/samples) instead of the test's own; ns must be
	// "shop".
	sample bool
	// app deploys the pair's app on dc-east instead of the simulated "web"
	// Deployment.
	app func(east *testbed.Cluster)
	// volumes turns on the policy's volume protection.
	volumes *tandemv1.VolumeProtection
	rpo     time.Duration
	// traffic is the pair's spec.traffic; tsigSecret, when set, is put
	// into Secret tandem-tsig (key "secret") on both sides.
	traffic    *tandemv1.TrafficSpec
	tsigSecret string
	// fence: the app runs behind the fence sidecar
	// (spec.failover.dataPlaneFence: Sidecar).
	fence bool
}

const (
	leaseDuration = 4 * time.Second
	probePeriod   = time.Second
	probeTimeout  = 500 * time.Millisecond
)

// externalDNSNames are the names (and drill names) spec points through
// external-dns: the ones a platform team grants the pair's namespace.
func externalDNSNames(spec *tandemv1.TrafficSpec) []string {
	if spec == nil || spec.Provider == tandemv1.DNSProviderRFC2136 {
		return nil
	}
	var names []string
	for _, r := range spec.DNS {
		names = append(names, r.Name)
		if r.DrillName != "" {
			names = append(names, r.DrillName)
		}
	}
	return names
}

// twoSidedPair prepares namespace ns on both data centers as a platform
// team would (each side's kubeconfig Secrets for the other side and the
// witness, and the grant of the pair's external-dns names), runs the app
// on dc-east, and applies the HAPair and its SyncPolicy on dc-east only:
// mirroring brings them to dc-west.
func twoSidedPair(t *testing.T, clusters map[string]*testbed.Cluster, o pairOptions) {
	t.Helper()
	ctx := context.Background()
	east, west := clusters[testbed.East], clusters[testbed.West]
	flat := func(c *testbed.Cluster) []byte {
		kc, err := c.FlatKubeconfig()
		if err != nil {
			t.Fatal(err)
		}
		return kc
	}
	if o.peerKubeconfig == nil {
		o.peerKubeconfig = func(_, to *testbed.Cluster) []byte { return flat(to) }
	}
	if o.witnessKubeconfig == nil {
		o.witnessKubeconfig = func(*testbed.Cluster) []byte { return flat(clusters[testbed.Witness]) }
	}
	for _, side := range []struct{ self, other *testbed.Cluster }{{east, west}, {west, east}} {
		objs := []client.Object{
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.ns}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: o.ns, Name: side.other.Name + "-kubeconfig"},
				Data: map[string][]byte{"kubeconfig": o.peerKubeconfig(side.self, side.other)}},
		}
		if o.tsigSecret != "" {
			objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: o.ns, Name: "tandem-tsig"},
				Data: map[string][]byte{"secret": []byte(o.tsigSecret)}})
		}
		if o.witness {
			objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: o.ns, Name: "witness-kubeconfig"},
				Data: map[string][]byte{"kubeconfig": o.witnessKubeconfig(side.self)}})
		}
		for _, obj := range objs {
			if err := side.self.Client.Create(ctx, obj); client.IgnoreAlreadyExists(err) != nil {
				t.Fatalf("creating %T %s on %s: %v", obj, obj.GetName(), side.self.Name, err)
			}
		}
		if names := externalDNSNames(o.traffic); len(names) > 0 {
			if err := testbed.GrantDNSNames(ctx, side.self.Client, o.ns, names...); err != nil {
				t.Fatal(err)
			}
		}
	}
	policyName := "app"
	if o.sample {
		policyName = "shop"
		var nodes corev1.NodeList
		if err := east.Client.List(ctx, &nodes); err != nil {
			t.Fatal(err)
		}
		for i := range nodes.Items {
			nodes.Items[i].Labels["topology.kubernetes.io/zone"] = "east-1"
			if err := east.Client.Update(ctx, &nodes.Items[i]); err != nil {
				t.Fatal(err)
			}
		}
		root := testbed.RepoRoot()
		for _, f := range []string{"hack/demo-app.yaml", "config/samples/tandem_v1alpha1_syncpolicy.yaml"} {
			objs, err := testbed.ReadManifests(filepath.Join(root, f))
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range objs {
				if err := testbed.Apply(ctx, east.Client, u); err != nil {
					t.Fatalf("applying %s %s from %s: %v", u.GetKind(), u.GetName(), f, err)
				}
			}
		}
	} else if o.app != nil {
		o.app(east)
	} else if err := createDeployment(ctx, east.Client, o.ns, "web", 2); err != nil {
		t.Fatal(err)
	}
	pair := &tandemv1.HAPair{
		ObjectMeta: metav1.ObjectMeta{Namespace: o.ns, Name: "shop"},
		Spec: tandemv1.HAPairSpec{
			Clusters: []tandemv1.ClusterSpec{
				{Name: testbed.East, KubeconfigSecretRef: &tandemv1.SecretKeyRef{Name: "dc-east-kubeconfig"}},
				{Name: testbed.West, KubeconfigSecretRef: &tandemv1.SecretKeyRef{Name: "dc-west-kubeconfig"}},
			},
			Primary:        testbed.East,
			SyncPolicyRefs: []tandemv1.LocalObjectReference{{Name: policyName}},
			Failover: tandemv1.FailoverSpec{
				Mode:             o.mode,
				ProbePeriod:      &metav1.Duration{Duration: probePeriod},
				ProbeTimeout:     &metav1.Duration{Duration: probeTimeout},
				FailureThreshold: 3,
			},
		},
	}
	if o.fence {
		pair.Spec.Failover.DataPlaneFence = tandemv1.DataPlaneFenceSidecar
	}
	if o.witness {
		pair.Spec.Witness = &tandemv1.WitnessSpec{
			KubeconfigSecretRef: tandemv1.SecretKeyRef{Name: "witness-kubeconfig"},
			LeaseDuration:       &metav1.Duration{Duration: leaseDuration},
			RenewInterval:       &metav1.Duration{Duration: time.Second},
		}
	}
	policy := &tandemv1.SyncPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: o.ns, Name: "app"},
		Spec:       tandemv1.SyncPolicySpec{Namespaces: tandemv1.NamespaceSelection{Names: []string{o.ns}}, Volumes: o.volumes},
	}
	pair.Spec.Traffic = o.traffic
	if o.rpo > 0 {
		pair.Spec.Objectives = &tandemv1.Objectives{RPO: &metav1.Duration{Duration: o.rpo}}
	}
	objs := []client.Object{policy, pair}
	if o.sample {
		objs = []client.Object{pair}
	}
	for _, obj := range objs {
		if err := east.Client.Create(ctx, obj); err != nil {
			t.Fatalf("creating %T on dc-east: %v", obj, err)
		}
	}
}

// upPairBed brings up dc-east, dc-west and the witness with Tandem's CRDs
// installed on both data centers and the Lease namespace on the witness,
// with CSI storage when asked.
func upPairBed(t *testing.T, storage bool) (*testbed.Bed, map[string]*testbed.Cluster) {
	t.Helper()
	bed, clusters := upBed(t, testbed.UpOptions{Witness: true, Nodes: 1, Storage: storage, ReplicationDelay: 200 * time.Millisecond})
	installTandem(t, clusters[testbed.East])
	installTandem(t, clusters[testbed.West])
	if err := clusters[testbed.Witness].Client.Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tandem-system"}}); err != nil {
		t.Fatal(err)
	}
	return bed, clusters
}

func getPair(ctx context.Context, c *testbed.Cluster, ns string) (*tandemv1.HAPair, error) {
	var pair tandemv1.HAPair
	err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, &pair)
	return &pair, err
}

// waitRole waits until the pair on cluster c reports the local role, the
// active cluster and the epoch, and returns how long that took.
func waitRole(t *testing.T, c *testbed.Cluster, ns string, role tandemv1.Role, active string, epoch int64, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := testbed.Poll(context.Background(), timeout, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		p, err := getPair(ctx, c, ns)
		if err != nil {
			return false, err
		}
		st := p.Status
		return st.LocalRole == role && st.ActiveCluster == active && st.Epoch == epoch,
			fmt.Errorf("%s reports %s, active %s, epoch %d; conditions %+v", c.Name, st.LocalRole, st.ActiveCluster, st.Epoch, st.Conditions)
	}); err != nil {
		t.Fatalf("waiting for %s to be %s with %s active at epoch %d: %v", c.Name, role, active, epoch, err)
	}
	return time.Since(start)
}

// linkedPair is a running pair in Automatic mode with a witness, the app on
// dc-east, whose one side reaches the other through a link the test can
// cut.
type linkedPair struct {
	bed            *testbed.Bed
	east, west     *testbed.Cluster
	link           *testbed.Link
	eastOp, westOp *testbed.Operator
}

// runLinkedPair brings the pair up with dc-east active; from is the side
// whose requests to the other go through the link.
func runLinkedPair(t *testing.T, ns, from string) linkedPair {
	t.Helper()
	ctx := context.Background()
	bed, clusters := upPairBed(t, false)
	p := linkedPair{bed: bed, east: clusters[testbed.East], west: clusters[testbed.West]}
	to := p.east
	if from == testbed.East {
		to = p.west
	}
	link, err := testbed.LinkTo(from+"-to-"+to.Name, to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(link.Close)
	p.link = link
	peerKubeconfig := func(f, to *testbed.Cluster) []byte {
		kc, err := to.FlatKubeconfig()
		if f.Name == from {
			kc, err = to.KubeconfigVia(link)
		}
		if err != nil {
			t.Fatal(err)
		}
		return kc
	}
	twoSidedPair(t, clusters, pairOptions{ns: ns, mode: tandemv1.FailoverAutomatic, witness: true, peerKubeconfig: peerKubeconfig})
	p.eastOp = testbed.StartOperator(t, p.east, testbed.East)
	p.westOp = testbed.StartOperator(t, p.west, testbed.West)
	for _, op := range []*testbed.Operator{p.eastOp, p.westOp} {
		if err := op.WaitHealthy(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	waitRole(t, p.east, ns, tandemv1.RoleActive, testbed.East, 1, time.Minute)
	waitRole(t, p.west, ns, tandemv1.RoleStandby, testbed.East, 1, time.Minute)
	return p
}

// leaderOf is the holder of the leader-election Lease of the operator of
// data center dc on cluster c.
func leaderOf(ctx context.Context, c *testbed.Cluster, dc string) (string, error) {
	var lease coordinationv1.Lease
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: "tandem-system", Name: "tandem-operator." + dc + ".tandem.dev"}, &lease); err != nil {
		return "", err
	}
	if lease.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *lease.Spec.HolderIdentity, nil
}

func replicasOf(ctx context.Context, c *testbed.Cluster, ns, name string) (int32, map[string]string, error) {
	var d appsv1.Deployment
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
		return 0, nil, err
	}
	return *d.Spec.Replicas, d.Annotations, nil
}

// dc-east, the active side, goes dark entirely. dc-west sees it, takes the
// witness Lease once it has expired and becomes Active at epoch 2 with the
// app running. dc-east comes back, sees epoch 2, demotes itself with its app
// at 0 replicas, and both sides agree that dc-west is active.
func TestFailoverWhenTheActiveSideDiesAndDemotionOnRejoin(t *testing.T) {
	ctx := context.Background()
	const ns = "shop"
	// dc-west reaches dc-east through a link the test cuts while dc-east
	// returns, so that only dc-east itself can stop its workloads then.
	p := runLinkedPair(t, ns, testbed.West)
	bed, east, west, westToEast, eastOp := p.bed, p.east, p.west, p.link, p.eastOp
	if err := testbed.Poll(ctx, time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		n, ann, err := replicasOf(ctx, west, ns, "web")
		return err == nil && n == 0 && ann[replicate.ReplicasAnnotation] == "2", fmt.Errorf("web on dc-west: %d replicas, %v", n, err)
	}); err != nil {
		t.Fatalf("the warm copy on dc-west: %v", err)
	}

	// dc-east dies with its operator, as a data center would.
	eastOp.Kill()
	if err := bed.Stop(ctx, testbed.East); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	promoted := waitRole(t, west, ns, tandemv1.RoleActive, testbed.West, 2, 2*time.Minute)
	if err := waitAvailable(ctx, west.Client, ns, "web", 2); err != nil {
		t.Fatalf("web on dc-west after the failover: %v", err)
	}
	available := time.Since(lost)
	var so tandemv1.Switchover
	if err := west.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-failover-2"}, &so); err != nil {
		t.Fatalf("the Failover Switchover the operator created: %v", err)
	}
	if err := testbed.Poll(ctx, 30*time.Second, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		err := west.Client.Get(ctx, client.ObjectKeyFromObject(&so), &so)
		return err == nil && so.Status.Phase == tandemv1.PhaseSucceeded, fmt.Errorf("phase %s, steps %+v", so.Status.Phase, so.Status.Steps)
	}); err != nil {
		t.Fatal(err)
	}
	if so.Status.RTO == nil || so.Status.FromCluster != testbed.East || so.Status.Epoch != 2 {
		t.Fatalf("Switchover status = %+v", so.Status)
	}
	t.Logf("dc-east stopped: dc-west Active at epoch 2 after %s, web Available after %s; Switchover RTO %s, data-loss window %v",
		promoted.Round(10*time.Millisecond), available.Round(10*time.Millisecond), so.Status.RTO.Duration, so.Status.DataLossWindow)
	for _, st := range so.Status.Steps {
		t.Logf("  step %-15s %-9s %s", st.Name, st.Phase, st.Message)
	}

	// dc-east comes back with its operator and finds it was replaced. Its
	// Deployment still has its replicas, and dc-west cannot reach it to
	// park its stale copy: dc-east must stop serving by itself, before the
	// restarted operator has waited out the killed one's leader Lease.
	if err := westToEast.Cut(); err != nil {
		t.Fatal(err)
	}
	if err := bed.Start(ctx, testbed.East); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	killed, err := leaderOf(ctx, east, testbed.East)
	if err != nil {
		t.Fatal(err)
	}
	if err := eastOp.Restart(); err != nil {
		t.Fatal(err)
	}
	var leader string
	if err := testbed.Poll(ctx, time.Minute, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		n, _, err := replicasOf(ctx, east, ns, "web")
		if err != nil || n != 0 {
			return false, fmt.Errorf("web on dc-east: %d replicas, %v", n, err)
		}
		leader, err = leaderOf(ctx, east, testbed.East)
		return err == nil, err
	}); err != nil {
		t.Fatal(err)
	}
	parked := time.Since(back)
	if leader != killed {
		t.Fatalf("web on the returning dc-east was parked only after the restarted operator (%s) became the leader; the killed one was %s", leader, killed)
	}
	t.Logf("dc-east back: web parked %s after its API server started, while the killed operator's leader Lease still stood and dc-west could not reach it", parked.Round(10*time.Millisecond))
	if err := westToEast.Heal(); err != nil {
		t.Fatal(err)
	}
	demoted := waitRole(t, east, ns, tandemv1.RoleStandby, testbed.West, 2, 2*time.Minute)
	n, ann, err := replicasOf(ctx, east, ns, "web")
	if err != nil || n != 0 || ann[replicate.ReplicasAnnotation] != "2" {
		t.Fatalf("web on the demoted dc-east: %d replicas, annotations %v, %v", n, ann, err)
	}
	waitRole(t, west, ns, tandemv1.RoleActive, testbed.West, 2, 10*time.Second)
	t.Logf("dc-east back: demoted %s after its API server started (operator start and leader election included)", time.Since(back).Round(10*time.Millisecond))
	_ = demoted
}

// sampler reads both sides' role records every few milliseconds and
// remembers any instant both said Active.
type sampler struct {
	mu       sync.Mutex
	samples  int
	bothSeen []string
	stop     chan struct{}
	done     chan struct{}
}

func sampleRoles(clusters map[string]*testbed.Cluster, ns string) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			e, errE := getPair(ctx, clusters[testbed.East], ns)
			w, errW := getPair(ctx, clusters[testbed.West], ns)
			cancel()
			if errE != nil || errW != nil {
				continue
			}
			s.mu.Lock()
			s.samples++
			if e.Status.LocalRole == tandemv1.RoleActive && w.Status.LocalRole == tandemv1.RoleActive {
				s.bothSeen = append(s.bothSeen, fmt.Sprintf("%s: dc-east epoch %d, dc-west epoch %d",
					time.Now().Format("15:04:05.000"), e.Status.Epoch, w.Status.Epoch))
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *sampler) finish(t *testing.T) {
	t.Helper()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bothSeen) > 0 {
		t.Fatalf("both sides reported Active in %d of %d samples: %v", len(s.bothSeen), s.samples, s.bothSeen)
	}
	t.Logf("never both Active in %d samples of both role records", s.samples)
}

// The network between the data centers is cut while both stay up.
//   - With a witness both sides reach, dc-east keeps renewing the Lease, so
//     dc-west sees dc-east lost but may not promote: exactly one Active.
//   - Without a witness (Manual mode; Automatic needs one or an opt-in),
//     dc-west only reports the loss: nothing promotes.
//   - When dc-east also loses the witness, it fences itself within the
//     lease duration and only then can dc-west take the Lease: again exactly
//     one side is Active at every instant, and it ends with dc-west.
func TestPartitionNeverMakesTwoActiveSides(t *testing.T) {
	ctx := context.Background()
	_, clusters := upPairBed(t, false)
	east, west, witness := clusters[testbed.East], clusters[testbed.West], clusters[testbed.Witness]

	links := map[string]*testbed.Link{}
	for _, l := range []struct {
		name string
		to   *testbed.Cluster
	}{
		{"dc-east-to-dc-west", west}, {"dc-west-to-dc-east", east}, {"dc-east-to-witness", witness},
	} {
		link, err := testbed.LinkTo(l.name, l.to)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(link.Close)
		links[l.name] = link
	}
	via := func(from, to *testbed.Cluster) []byte {
		kc, err := to.KubeconfigVia(links[from.Name+"-to-"+to.Name])
		if err != nil {
			t.Fatal(err)
		}
		return kc
	}
	witnessVia := func(from *testbed.Cluster) []byte {
		if from.Name == testbed.East {
			kc, err := witness.KubeconfigVia(links["dc-east-to-witness"])
			if err != nil {
				t.Fatal(err)
			}
			return kc
		}
		kc, err := witness.FlatKubeconfig()
		if err != nil {
			t.Fatal(err)
		}
		return kc
	}
	twoSidedPair(t, clusters, pairOptions{ns: "shop", mode: tandemv1.FailoverAutomatic, witness: true, peerKubeconfig: via, witnessKubeconfig: witnessVia})
	twoSidedPair(t, clusters, pairOptions{ns: "manual", mode: tandemv1.FailoverManual, peerKubeconfig: via})
	for _, c := range []*testbed.Cluster{east, west} {
		if err := testbed.StartOperator(t, c, c.Name).WaitHealthy(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{"shop", "manual"} {
		waitRole(t, east, ns, tandemv1.RoleActive, testbed.East, 1, time.Minute)
		waitRole(t, west, ns, tandemv1.RoleStandby, testbed.East, 1, time.Minute)
	}
	// The test's 4s witness Lease is shorter than what the operators'
	// default leader election needs to take over, and the pair says so.
	if p, err := getPair(ctx, east, "shop"); err != nil {
		t.Fatal(err)
	} else if c := findCond(p.Status.Conditions, tandemv1.FailoverSafeCondition); c == nil || c.Status != metav1.ConditionFalse ||
		!strings.Contains(c.Message, "spec.witness.leaseDuration 4s is not longer than the operator's takeover budget 12s") {
		t.Fatalf("FailoverSafe on dc-east: %+v", c)
	}
	withWitness := sampleRoles(clusters, "shop")
	withoutWitness := sampleRoles(clusters, "manual")

	// 1. Cut dc-east <-> dc-west; both still reach the witness.
	cut := time.Now()
	for _, name := range []string{"dc-east-to-dc-west", "dc-west-to-dc-east"} {
		if err := links[name].Cut(); err != nil {
			t.Fatal(err)
		}
	}
	waitDegraded := func(ns string, reason string) time.Duration {
		t.Helper()
		if err := testbed.Poll(ctx, time.Minute, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
			p, err := getPair(ctx, west, ns)
			if err != nil {
				return false, err
			}
			c := findCond(p.Status.Conditions, tandemv1.DegradedCondition)
			return c != nil && c.Status == metav1.ConditionTrue && c.Reason == reason, fmt.Errorf("Degraded %+v", c)
		}); err != nil {
			t.Fatalf("%s on dc-west: %v", ns, err)
		}
		return time.Since(cut)
	}
	seenHeld := waitDegraded("shop", tandemv1.LeaseHeldReason)
	seenManual := waitDegraded("manual", tandemv1.ActiveLostReason)
	t.Logf("partition: dc-west declared dc-east lost after %s (witness pair: Lease held, no promotion) and %s (manual pair)",
		seenHeld.Round(10*time.Millisecond), seenManual.Round(10*time.Millisecond))
	// Hold the partition for three lease durations: dc-east renews, so the
	// Lease never expires and nothing may change.
	hold := time.Now().Add(3 * leaseDuration)
	for time.Now().Before(hold) {
		for _, ns := range []string{"shop", "manual"} {
			e, err1 := getPair(ctx, east, ns)
			w, err2 := getPair(ctx, west, ns)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if e.Status.LocalRole != tandemv1.RoleActive || w.Status.LocalRole != tandemv1.RoleStandby || w.Status.Epoch != 1 {
				t.Fatalf("%s changed roles during the partition: dc-east %s, dc-west %s epoch %d", ns, e.Status.LocalRole, w.Status.LocalRole, w.Status.Epoch)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	var switchovers tandemv1.SwitchoverList
	if err := west.Client.List(ctx, &switchovers, client.InNamespace("manual")); err != nil || len(switchovers.Items) != 0 {
		t.Fatalf("Manual mode created Switchovers: %d, %v", len(switchovers.Items), err)
	}
	withoutWitness.finish(t)

	// 2. dc-east loses the witness too: it must fence itself, then dc-west
	// takes over.
	isolated := time.Now()
	if err := links["dc-east-to-witness"].Cut(); err != nil {
		t.Fatal(err)
	}
	fenced := waitRole(t, east, "shop", tandemv1.RoleFenced, testbed.East, 1, time.Minute)
	promoted := waitRole(t, west, "shop", tandemv1.RoleActive, testbed.West, 2, 2*time.Minute)
	t.Logf("dc-east isolated: fenced after %s, dc-west Active at epoch 2 after %s",
		fenced.Round(10*time.Millisecond), time.Since(isolated).Round(10*time.Millisecond))
	_ = promoted
	if n, _, err := replicasOf(ctx, east, "shop", "web"); err != nil || n != 0 {
		t.Fatalf("web on the fenced dc-east: %d replicas, %v", n, err)
	}

	// 3. The network heals: dc-east sees epoch 2 and becomes the standby.
	for _, l := range links {
		if err := l.Heal(); err != nil {
			t.Fatal(err)
		}
	}
	waitRole(t, east, "shop", tandemv1.RoleStandby, testbed.West, 2, time.Minute)
	withWitness.finish(t)
}

func findCond(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// The sync from dc-east to dc-west breaks (dc-east's requests to dc-west are
// dropped) while dc-west's probes of dc-east still pass; a client goes on
// writing on dc-east, then dc-east goes dark. The failover cannot carry the
// writes made after the break, and the data-loss window it reports must
// cover every one of them: it is measured from the sync watermark dc-east
// last left on dc-west, not from dc-west's last successful probe, which
// came seconds before the failover.
func TestFailoverWindowCoversChangesTheSyncCouldNotCarry(t *testing.T) {
	ctx := context.Background()
	const ns = "shop"
	p := runLinkedPair(t, ns, testbed.East)
	bed, east, west, eastToWest, eastOp := p.bed, p.east, p.west, p.link, p.eastOp
	write := func(name string) time.Time {
		t.Helper()
		if err := east.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}
	write("before-the-break")
	if err := testbed.Poll(ctx, time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		err := west.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "before-the-break"}, &corev1.ConfigMap{})
		return err == nil, err
	}); err != nil {
		t.Fatalf("the sync before the break: %v", err)
	}

	// dc-east's heartbeat on dc-west carries the sync watermark once its
	// first full pass is done.
	if err := testbed.Poll(ctx, time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		var hb coordinationv1.Lease
		err := west.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop.heartbeat.tandem.dev"}, &hb)
		return err == nil && hb.Annotations[controller.WatermarkAnnotation] != "", fmt.Errorf("heartbeat %v: %v", hb.Annotations, err)
	}); err != nil {
		t.Fatalf("dc-east's heartbeat on dc-west: %v", err)
	}
	if err := eastToWest.Cut(); err != nil {
		t.Fatal(err)
	}
	broke := time.Now()
	var lastWrite time.Time
	var names []string
	for i := 0; time.Since(broke) < 8*time.Second; i++ {
		name := fmt.Sprintf("after-the-break-%02d", i)
		lastWrite = write(name)
		names = append(names, name)
		time.Sleep(250 * time.Millisecond)
	}
	eastOp.Kill()
	if err := bed.Stop(ctx, testbed.East); err != nil {
		t.Fatal(err)
	}
	waitRole(t, west, ns, tandemv1.RoleActive, testbed.West, 2, 2*time.Minute)
	var so tandemv1.Switchover
	if err := testbed.Poll(ctx, time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		err := west.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-failover-2"}, &so)
		return err == nil && so.Status.Phase == tandemv1.PhaseSucceeded, fmt.Errorf("phase %s, %v", so.Status.Phase, err)
	}); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, name := range names {
		if err := west.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.ConfigMap{}); err == nil {
			continue
		}
		lost++
	}
	st := so.Status
	if st.DataLossWindow == nil || st.DataLossSince == nil {
		t.Fatalf("the failover lost %d writes and reported no window: %+v", lost, st)
	}
	from, to := st.DataLossSince.Time, st.DataLossSince.Add(st.DataLossWindow.Duration)
	if lost == 0 || from.After(broke) || to.Before(lastWrite) {
		t.Fatalf("%d of %d writes made between %s and %s are lost; the failover reports changes after %s for %s (until %s) as what may be lost",
			lost, len(names), broke.Format(time.StampMilli), lastWrite.Format(time.StampMilli),
			from.Format(time.StampMilli), st.DataLossWindow.Duration, to.Format(time.StampMilli))
	}
	t.Logf("the sync broke %s before dc-east went dark: %d writes lost, all inside the reported window of %s from %s (%s before the break)",
		lastWrite.Sub(broke).Round(100*time.Millisecond), lost, st.DataLossWindow.Duration, from.Format(time.StampMilli), broke.Sub(from).Round(time.Millisecond))
}

// Links cut one way, each a case the probes alone get wrong.
//
//  1. dc-west cannot reach dc-east, and dc-east has lost the witness, but
//     dc-east still reaches dc-west: dc-east serves (it reaches its peer),
//     and dc-west must not promote, because dc-east's heartbeat on dc-west
//     is fresh. Without the heartbeat dc-west would take the expired Lease
//     and both would serve until dc-east saw the new epoch.
//  2. dc-east reaches neither dc-west nor the witness and fences itself;
//     dc-west still reaches dc-east. A fenced side is not a live active
//     side: dc-west takes the Lease and promotes.
func TestOneWayCutsNeitherSplitNorStall(t *testing.T) {
	ctx := context.Background()
	_, clusters := upPairBed(t, false)
	east, west, witness := clusters[testbed.East], clusters[testbed.West], clusters[testbed.Witness]
	links := map[string]*testbed.Link{}
	for _, l := range []struct {
		name string
		to   *testbed.Cluster
	}{{"dc-east-to-dc-west", west}, {"dc-west-to-dc-east", east}, {"dc-east-to-witness", witness}} {
		link, err := testbed.LinkTo(l.name, l.to)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(link.Close)
		links[l.name] = link
	}
	via := func(from, to *testbed.Cluster) []byte {
		kc, err := to.KubeconfigVia(links[from.Name+"-to-"+to.Name])
		if err != nil {
			t.Fatal(err)
		}
		return kc
	}
	witnessVia := func(from *testbed.Cluster) []byte {
		kc, err := witness.FlatKubeconfig()
		if from == east {
			kc, err = witness.KubeconfigVia(links["dc-east-to-witness"])
		}
		if err != nil {
			t.Fatal(err)
		}
		return kc
	}
	const ns = "shop"
	twoSidedPair(t, clusters, pairOptions{ns: ns, mode: tandemv1.FailoverAutomatic, witness: true, peerKubeconfig: via, witnessKubeconfig: witnessVia})
	for _, c := range []*testbed.Cluster{east, west} {
		if err := testbed.StartOperator(t, c, c.Name).WaitHealthy(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	waitRole(t, east, ns, tandemv1.RoleActive, testbed.East, 1, time.Minute)
	waitRole(t, west, ns, tandemv1.RoleStandby, testbed.East, 1, time.Minute)
	roles := sampleRoles(clusters, ns)
	cut := func(names ...string) {
		t.Helper()
		for _, n := range names {
			if err := links[n].Cut(); err != nil {
				t.Fatal(err)
			}
		}
	}

	// 1. dc-west's probes of dc-east fail; dc-east's heartbeat still lands.
	cut("dc-west-to-dc-east", "dc-east-to-witness")
	start := time.Now()
	if err := testbed.Poll(ctx, time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		p, err := getPair(ctx, west, ns)
		if err != nil {
			return false, err
		}
		c := findCond(p.Status.Conditions, tandemv1.DegradedCondition)
		return c != nil && c.Reason == tandemv1.ActiveHeartbeatFreshReason, fmt.Errorf("Degraded %+v", c)
	}); err != nil {
		t.Fatalf("dc-west with dc-east's heartbeat fresh: %v", err)
	}
	t.Logf("dc-west cannot probe dc-east: it holds back on the fresh heartbeat after %s", time.Since(start).Round(10*time.Millisecond))
	hold := time.Now().Add(3 * leaseDuration)
	for time.Now().Before(hold) {
		e, err1 := getPair(ctx, east, ns)
		w, err2 := getPair(ctx, west, ns)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if e.Status.LocalRole != tandemv1.RoleActive || w.Status.LocalRole != tandemv1.RoleStandby || w.Status.Epoch != 1 {
			t.Fatalf("roles changed while dc-east was alive and reached dc-west: dc-east %s, dc-west %s at epoch %d", e.Status.LocalRole, w.Status.LocalRole, w.Status.Epoch)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n, _, err := replicasOf(ctx, east, ns, "web"); err != nil || n != 2 {
		t.Fatalf("web on dc-east, which reaches its peer: %d replicas, %v", n, err)
	}
	if err := links["dc-west-to-dc-east"].Heal(); err != nil {
		t.Fatal(err)
	}

	// 2. dc-east reaches nothing and fences itself; dc-west still reaches it.
	cut("dc-east-to-dc-west")
	isolated := time.Now()
	fenced := waitRole(t, east, ns, tandemv1.RoleFenced, testbed.East, 1, time.Minute)
	promoted := waitRole(t, west, ns, tandemv1.RoleActive, testbed.West, 2, 2*time.Minute)
	t.Logf("dc-east isolated but answering: fenced after %s, dc-west Active at epoch 2 after %s", fenced.Round(10*time.Millisecond), time.Since(isolated).Round(10*time.Millisecond))
	_ = promoted
	if err := waitAvailable(ctx, west.Client, ns, "web", 2); err != nil {
		t.Fatalf("web on dc-west: %v", err)
	}
	for _, l := range links {
		if err := l.Heal(); err != nil {
			t.Fatal(err)
		}
	}
	waitRole(t, east, ns, tandemv1.RoleStandby, testbed.West, 2, time.Minute)
	roles.finish(t)
}

// A failover past its point of no return does not give up when a step
// runs longer than its timeout: dc-west has taken the epoch, and a Failed
// Switchover there would leave the active side with its workloads at 0 for
// good. The step goes on, the Switchover says it is overdue and on what
// (kstatus Failed, so pipelines stop waiting), and once the user fixes the
// cause the service moves and the Switchover succeeds.
func TestAFailoverPastItsStepTimeoutFinishesMovingTheService(t *testing.T) {
	ctx := context.Background()
	const ns = "shop"
	bed, clusters := upPairBed(t, false)
	east, west := clusters[testbed.East], clusters[testbed.West]
	twoSidedPair(t, clusters, pairOptions{ns: ns, mode: tandemv1.FailoverManual})
	eastOp := testbed.StartOperator(t, east, testbed.East)
	for _, op := range []*testbed.Operator{eastOp, testbed.StartOperator(t, west, testbed.West)} {
		if err := op.WaitHealthy(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	waitRole(t, west, ns, tandemv1.RoleStandby, testbed.East, 1, time.Minute)

	// web's pods can be scheduled on no node of either side: on dc-west it
	// cannot become Available after the failover until the user fixes it.
	nowhere := map[string]string{"tandem.dev/e2e": "no-such-node"}
	var web appsv1.Deployment
	if err := east.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &web); err != nil {
		t.Fatal(err)
	}
	web.Spec.Template.Spec.NodeSelector = nowhere
	if err := east.Client.Update(ctx, &web); err != nil {
		t.Fatal(err)
	}
	if err := testbed.Poll(ctx, time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		var copy appsv1.Deployment
		err := west.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &copy)
		return err == nil && copy.Spec.Template.Spec.NodeSelector["tandem.dev/e2e"] != "", fmt.Errorf("web on dc-west: %v", err)
	}); err != nil {
		t.Fatalf("the node selector never reached dc-west: %v", err)
	}

	eastOp.Kill()
	if err := bed.Stop(ctx, testbed.East); err != nil {
		t.Fatal(err)
	}
	if err := testbed.Poll(ctx, time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		p, err := getPair(ctx, west, ns)
		if err != nil {
			return false, err
		}
		c := findCond(p.Status.Conditions, tandemv1.DegradedCondition)
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == tandemv1.ActiveLostReason, fmt.Errorf("Degraded %+v", c)
	}); err != nil {
		t.Fatalf("dc-west never declared dc-east lost: %v", err)
	}
	const timeout = 3 * time.Second
	so := &tandemv1.Switchover{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "to-west"},
		Spec: tandemv1.SwitchoverSpec{PairRef: "shop", Type: tandemv1.SwitchoverFailover, TargetCluster: testbed.West,
			StepTimeout: &metav1.Duration{Duration: timeout}},
	}
	if err := west.Client.Create(ctx, so); err != nil {
		t.Fatal(err)
	}
	if err := testbed.Poll(ctx, time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		if err := west.Client.Get(ctx, client.ObjectKeyFromObject(so), so); err != nil {
			return false, err
		}
		c := findCond(so.Status.Conditions, tandemv1.ReadyCondition)
		return so.Status.Phase == tandemv1.PhaseRunning && c != nil && c.Reason == tandemv1.StepTimedOutReason,
			fmt.Errorf("phase %q, steps %s, Ready %+v", so.Status.Phase, stepsLine(so), c)
	}); err != nil {
		t.Fatalf("the failover never said its step was overdue: %v", err)
	}
	ready := findCond(so.Status.Conditions, tandemv1.ReadyCondition)
	if ready.Status != metav1.ConditionFalse || !strings.Contains(ready.Message, "Step ScaleUp has run longer than its 3s timeout") ||
		!strings.Contains(ready.Message, "waiting for [shop/web] to be Available") {
		t.Fatalf("Ready of the overdue failover: %+v", ready)
	}
	if got := kstatusOf(t, so); got.Status != kstatus.FailedStatus {
		t.Fatalf("kstatus of the overdue failover: %s (%s), want Failed", got.Status, got.Message)
	}
	waitRole(t, west, ns, tandemv1.RoleActive, testbed.West, 2, 10*time.Second)
	t.Logf("overdue: %s", ready.Message)

	// Past the timeout the step still runs: fixing the cause moves the
	// service.
	fixed := time.Now()
	if err := west.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &web); err != nil {
		t.Fatal(err)
	}
	web.Spec.Template.Spec.NodeSelector = nil
	if err := west.Client.Update(ctx, &web); err != nil {
		t.Fatal(err)
	}
	so = waitSwitchover(t, west, so, tandemv1.PhaseSucceeded, time.Minute)
	if err := waitAvailable(ctx, west.Client, ns, "web", 2); err != nil {
		t.Fatalf("web on dc-west after the failover succeeded: %v", err)
	}
	if got := kstatusOf(t, so); got.Status != kstatus.CurrentStatus {
		t.Fatalf("kstatus of the failover that succeeded: %s (%s), want Current", got.Status, got.Message)
	}
	t.Logf("the failover succeeded %s after the node selector was removed; steps %s", time.Since(fixed).Round(10*time.Millisecond), stepsLine(so))
}

// kstatusOf is what Flux, Argo CD and kubectl-wait pipelines read of obj.
func kstatusOf(t *testing.T, obj client.Object) *kstatus.Result {
	t.Helper()
	res, _, err := testbed.Kstatus(obj)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// A failover's ConfirmLoss took the witness Lease at its epoch, and the
// operator died before it recorded the step (or lost the status write to
// a conflict). dc-east sees the Lease at the higher epoch and demotes
// itself, and answers its probes again. The restarted step must not check
// the loss again and fail ("dc-east answers its probes"): neither side
// would be active. It finds the Lease its own and the failover finishes.
func TestAFailoverThatTookTheWitnessLeaseFinishesAfterACrash(t *testing.T) {
	ctx := context.Background()
	const ns = "shop"
	_, clusters := upPairBed(t, false)
	east, west, witness := clusters[testbed.East], clusters[testbed.West], clusters[testbed.Witness]
	twoSidedPair(t, clusters, pairOptions{ns: ns, mode: tandemv1.FailoverManual, witness: true})
	westOp := testbed.StartOperator(t, west, testbed.West)
	for _, op := range []*testbed.Operator{testbed.StartOperator(t, east, testbed.East), westOp} {
		if err := op.WaitHealthy(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	waitRole(t, east, ns, tandemv1.RoleActive, testbed.East, 1, time.Minute)
	waitRole(t, west, ns, tandemv1.RoleStandby, testbed.East, 1, time.Minute)
	if err := testbed.Poll(ctx, time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		n, ann, err := replicasOf(ctx, west, ns, "web")
		return err == nil && n == 0 && ann[replicate.ReplicasAnnotation] == "2", fmt.Errorf("web on dc-west: %d replicas, %v", n, err)
	}); err != nil {
		t.Fatalf("the warm copy on dc-west: %v", err)
	}

	// What dc-west's operator had done when it died: the Failover started
	// at epoch 2 with ConfirmLoss running, and the Lease taken.
	westOp.Kill()
	so := &tandemv1.Switchover{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "to-west"},
		Spec:       tandemv1.SwitchoverSpec{PairRef: "shop", Type: tandemv1.SwitchoverFailover, TargetCluster: testbed.West},
	}
	if err := west.Client.Create(ctx, so); err != nil {
		t.Fatal(err)
	}
	now := metav1.NewMicroTime(time.Now())
	so.Status = tandemv1.SwitchoverStatus{Phase: tandemv1.PhaseRunning, Epoch: 2, FromCluster: testbed.East, StartTime: &now}
	for i, name := range []string{"ConfirmLoss", "BumpEpoch", "RestoreVolumes", "ScaleUp", "FlipTraffic", "RecordDataLoss"} {
		st := tandemv1.StepStatus{Name: name, Phase: tandemv1.StepPending}
		if i == 0 {
			st.Phase, st.StartTime = tandemv1.StepRunning, &now
		}
		so.Status.Steps = append(so.Status.Steps, st)
	}
	if err := west.Client.Status().Update(ctx, so); err != nil {
		t.Fatal(err)
	}
	var lease coordinationv1.Lease
	if err := witness.Client.Get(ctx, client.ObjectKey{Namespace: "tandem-system", Name: fence.LeaseName(ns, "shop")}, &lease); err != nil {
		t.Fatal(err)
	}
	holder, renewed := testbed.West, metav1.NewMicroTime(time.Now())
	lease.Spec.HolderIdentity, lease.Spec.RenewTime, lease.Annotations[fence.EpochAnnotation] = &holder, &renewed, "2"
	if err := witness.Client.Update(ctx, &lease); err != nil {
		t.Fatal(err)
	}
	// dc-east stops serving on the Lease it lost, and still answers.
	if err := testbed.Poll(ctx, time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		n, _, err := replicasOf(ctx, east, ns, "web")
		return err == nil && n == 0, fmt.Errorf("web on dc-east: %d replicas, %v", n, err)
	}); err != nil {
		t.Fatalf("dc-east kept serving after it lost the witness Lease: %v", err)
	}

	if err := westOp.Restart(); err != nil {
		t.Fatal(err)
	}
	so = waitSwitchover(t, west, so, tandemv1.PhaseSucceeded, 2*time.Minute)
	if st := so.Status.Steps[0]; !strings.Contains(st.Message, "an earlier run of this step confirmed the loss and took the witness Lease at epoch 2") {
		t.Fatalf("ConfirmLoss: %s", st.Message)
	}
	waitRole(t, west, ns, tandemv1.RoleActive, testbed.West, 2, 30*time.Second)
	waitRole(t, east, ns, tandemv1.RoleStandby, testbed.West, 2, time.Minute)
	if err := waitAvailable(ctx, west.Client, ns, "web", 2); err != nil {
		t.Fatalf("web on dc-west after the failover: %v", err)
	}
	t.Logf("the restarted failover finished: %s", stepsLine(so))
}
