// Command switchover measures how long the service is away in a planned
// switchover and in a failover, for an application of N Deployments on the
// kwok test bed (dc-east, dc-west and a witness, an operator per data
// center), and prints the figures recorded in docs/benchmarks.md:
//
//   - planned RTO: from the Switchover's start to every Deployment
//     Available on the target (as the Switchover reports it, and as this
//     harness sees it);
//
//   - failover RTO: from the moment the active data center dies (its
//     control plane and operator stopped) to every Deployment Available on
//     the other side, against the detection window (probe period x
//     threshold, then the witness lease and its grace).
//
//   - with -pvcs N: N PVCs (each mounted by one of the Deployments) under
//     volume protection on the test bed's CSI storage; the RPO of every PVC
//     sampled every second for -observe against the snapshot -interval,
//     and the time the promotions spend on volumes (FinalVolumeSnapshot,
//     RestoreVolumes).
//
//     go run ./test/bench/switchover [-deployments 50] [-replicas 2] [-pvcs 20 -interval 10s -observe 1m]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/test/testbed"
)

// dnsBench configures the traffic part of the benchmark.
var dnsBench struct {
	records  int
	provider string
	server   testbed.DNSServer
}

// vol configures the volume part of the benchmark.
var vol struct {
	pvcs                     int
	interval, observe, delay time.Duration
}

const (
	ns            = "bench"
	probePeriod   = time.Second
	probeTimeout  = 500 * time.Millisecond
	threshold     = 3
	leaseDuration = 4 * time.Second
)

func main() {
	deployments := flag.Int("deployments", 50, "Deployments in the application.")
	replicas := flag.Int("replicas", 2, "Replicas of each Deployment.")
	dir := flag.String("dir", "", "Working directory (a temporary one when empty).")
	flag.IntVar(&vol.pvcs, "pvcs", 0, "PVCs under volume protection (0: none, no storage).")
	flag.DurationVar(&vol.interval, "interval", 10*time.Second, "Snapshot interval of the volume protection.")
	flag.DurationVar(&vol.observe, "observe", time.Minute, "How long to sample the RPO before switching over.")
	flag.DurationVar(&vol.delay, "replication-delay", time.Second, "The test bed storage's replication delay.")
	flag.IntVar(&dnsBench.records, "dns-records", 0, "DNS records in spec.traffic, flipped and verified at the test bed's BIND (0: no traffic).")
	flag.StringVar(&dnsBench.provider, "dns-provider", "ExternalDNS", "ExternalDNS (two external-dns per data center) or RFC2136.")
	flag.Parse()
	if *dir == "" {
		d, err := os.MkdirTemp("", "tandem-bench-switchover-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		*dir = d
	}
	if err := run(*deployments, int32(*replicas), *dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(deployments int, replicas int32, dir string) error {
	ctx := context.Background()
	bed, err := testbed.NewBed(filepath.Join(dir, "bed"))
	if err != nil {
		return err
	}
	defer func() { _ = bed.Down(context.Background()) }()
	clusters, err := bed.Up(ctx, testbed.UpOptions{Witness: true, Nodes: 4, Storage: vol.pvcs > 0, ReplicationDelay: vol.delay})
	if err != nil {
		return err
	}
	by := map[string]*testbed.Cluster{}
	for _, c := range clusters {
		by[c.Name] = c
	}
	east, west, witness := by[testbed.East], by[testbed.West], by[testbed.Witness]
	if err := witness.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tandem-system"}}); err != nil {
		return err
	}
	for _, side := range [][2]*testbed.Cluster{{east, west}, {west, east}} {
		if err := prepare(ctx, side[0], side[1], witness); err != nil {
			return err
		}
	}
	if dnsBench.records > 0 {
		if err := startDNS(ctx, bed, east, west); err != nil {
			return err
		}
		defer func() { _ = bed.StopDNS() }()
	}
	fmt.Printf("Creating %d Deployments of %d replicas on dc-east\n", deployments, replicas)
	for i := range vol.pvcs {
		if err := east.Client.Create(ctx, claim(fmt.Sprintf("data-%03d", i))); err != nil {
			return err
		}
	}
	for i := range deployments {
		d := deployment(fmt.Sprintf("app-%03d", i), replicas)
		if i < vol.pvcs {
			d.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: fmt.Sprintf("data-%03d", i)}}}}
		}
		if err := east.Client.Create(ctx, d); err != nil {
			return err
		}
	}
	if err := applyPair(ctx, east); err != nil {
		return err
	}
	ops := map[string]*testbed.Operator{}
	for _, c := range []*testbed.Cluster{east, west} {
		op, err := testbed.LaunchOperator(c, c.Name, filepath.Join(dir, "operator-"+c.Name+".log"))
		if err != nil {
			return err
		}
		defer op.Stop()
		if err := op.WaitHealthy(ctx, time.Minute); err != nil {
			return err
		}
		ops[c.Name] = op
	}
	if err := waitFor(ctx, 3*time.Minute, "dc-east active and synced", func(ctx context.Context) (bool, error) {
		p, err := pair(ctx, east)
		if err != nil {
			return false, err
		}
		synced := false
		for _, c := range p.Status.Conditions {
			synced = synced || (c.Type == tandemv1.SyncedCondition && c.Status == metav1.ConditionTrue)
		}
		return p.Status.LocalRole == tandemv1.RoleActive && synced && p.Status.Sync != nil && int(p.Status.Sync.Selected) >= deployments, nil
	}); err != nil {
		return err
	}

	if vol.pvcs > 0 {
		if err := observeRPO(ctx, east); err != nil {
			return err
		}
	}

	// Planned switchover to dc-west.
	so := &tandemv1.Switchover{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "to-west"},
		Spec:       tandemv1.SwitchoverSpec{PairRef: "shop", Type: tandemv1.SwitchoverPlanned, TargetCluster: testbed.West},
	}
	start := time.Now()
	if err := east.Client.Create(ctx, so); err != nil {
		return err
	}
	if err := waitAvailable(ctx, west, deployments, replicas); err != nil {
		return err
	}
	seen := time.Since(start)
	if err := waitFor(ctx, 2*time.Minute, "the planned switchover to finish", func(ctx context.Context) (bool, error) {
		err := east.Client.Get(ctx, client.ObjectKeyFromObject(so), so)
		return err == nil && so.Status.Phase == tandemv1.PhaseSucceeded, err
	}); err != nil {
		return fmt.Errorf("%w (phase %s)", err, so.Status.Phase)
	}
	fmt.Printf("\nPlanned switchover of %d Deployments to dc-west\n", deployments)
	fmt.Printf("  RTO reported by the Switchover:            %s\n", so.Status.RTO.Duration)
	fmt.Printf("  Available on dc-west, seen by the harness: %s after the Switchover was created\n", seen.Round(time.Millisecond))
	fmt.Printf("  whole switchover incl. the reverse sync:   %s\n", so.Status.CompletionTime.Sub(so.Status.StartTime.Time).Round(time.Millisecond))
	printSteps(so)

	// Failover: dc-west, now active, dies.
	if err := waitFor(ctx, 2*time.Minute, "dc-east to report itself standby", func(ctx context.Context) (bool, error) {
		p, err := pair(ctx, east)
		return err == nil && p.Status.LocalRole == tandemv1.RoleStandby && p.Status.Epoch == 2, err
	}); err != nil {
		return err
	}
	ops[testbed.West].Kill()
	if err := bed.Stop(ctx, testbed.West); err != nil {
		return err
	}
	killed := time.Now()
	if err := waitAvailable(ctx, east, deployments, replicas); err != nil {
		return err
	}
	failoverSeen := time.Since(killed)
	var fo tandemv1.Switchover
	if err := waitFor(ctx, 2*time.Minute, "the failover to finish", func(ctx context.Context) (bool, error) {
		err := east.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-failover-3"}, &fo)
		return err == nil && fo.Status.Phase == tandemv1.PhaseSucceeded, client.IgnoreNotFound(err)
	}); err != nil {
		return err
	}
	window := time.Duration(threshold)*probePeriod + leaseDuration + probePeriod + 3*probeTimeout
	fmt.Printf("\nFailover of %d Deployments after dc-west (active) stopped\n", deployments)
	fmt.Printf("  kill to Available on dc-east (harness):    %s\n", failoverSeen.Round(time.Millisecond))
	fmt.Printf("  RTO reported by the Failover:              %s (from the first failed probe)\n", fo.Status.RTO.Duration)
	fmt.Printf("  detection window (3 x 1s probes, then the 4s lease + 2.5s grace): %s; target: under %s\n", window, window+5*time.Second)
	printSteps(&fo)
	return nil
}

func prepare(ctx context.Context, self, other, witness *testbed.Cluster) error {
	if err := testbed.ApplyDir(ctx, self.Client, filepath.Join(testbed.RepoRoot(), "config", "crd", "bases")); err != nil {
		return err
	}
	peerKC, err := other.FlatKubeconfig()
	if err != nil {
		return err
	}
	witnessKC, err := witness.FlatKubeconfig()
	if err != nil {
		return err
	}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tandem-system"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: other.Name + "-kubeconfig"}, Data: map[string][]byte{"kubeconfig": peerKC}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "witness-kubeconfig"}, Data: map[string][]byte{"kubeconfig": witnessKC}},
	} {
		if err := self.Client.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %s on %s: %w", o.GetName(), self.Name, err)
		}
	}
	return waitFor(ctx, 30*time.Second, "Tandem's CRDs served", func(ctx context.Context) (bool, error) {
		return self.Client.List(ctx, &tandemv1.HAPairList{}) == nil, nil
	})
}

func applyPair(ctx context.Context, east *testbed.Cluster) error {
	policy := &tandemv1.SyncPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec:       tandemv1.SyncPolicySpec{Namespaces: tandemv1.NamespaceSelection{Names: []string{ns}}},
	}
	if vol.pvcs > 0 {
		policy.Spec.Volumes = &tandemv1.VolumeProtection{
			SnapshotClassName: testbed.SnapshotClass, Interval: &metav1.Duration{Duration: vol.interval}, Retention: 3,
			HandleMapping: tandemv1.HandleMapping{Mode: "Template", Template: testbed.CSIReplicaPrefix + "{{.Handle}}"},
		}
	}
	p := &tandemv1.HAPair{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
		Spec: tandemv1.HAPairSpec{
			Clusters: []tandemv1.ClusterSpec{
				{Name: testbed.East, KubeconfigSecretRef: &tandemv1.SecretKeyRef{Name: "dc-east-kubeconfig"}},
				{Name: testbed.West, KubeconfigSecretRef: &tandemv1.SecretKeyRef{Name: "dc-west-kubeconfig"}},
			},
			Primary:        testbed.East,
			SyncPolicyRefs: []tandemv1.LocalObjectReference{{Name: "app"}},
			Witness: &tandemv1.WitnessSpec{KubeconfigSecretRef: tandemv1.SecretKeyRef{Name: "witness-kubeconfig"},
				LeaseDuration: &metav1.Duration{Duration: leaseDuration}, RenewInterval: &metav1.Duration{Duration: time.Second}},
			Failover: tandemv1.FailoverSpec{Mode: tandemv1.FailoverAutomatic, ProbePeriod: &metav1.Duration{Duration: probePeriod},
				ProbeTimeout: &metav1.Duration{Duration: probeTimeout}, FailureThreshold: threshold},
		},
	}
	if dnsBench.records > 0 {
		p.Spec.Traffic = trafficSpec()
	}
	for _, o := range []client.Object{policy, p} {
		if err := east.Client.Create(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// startDNS runs BIND and, for ExternalDNS, each data center's two
// external-dns instances, granting the bench's names to its namespace; for
// RFC2136 it gives both sides the TSIG Secret.
func startDNS(ctx context.Context, bed *testbed.Bed, east, west *testbed.Cluster) error {
	srv, err := bed.StartDNS("bench.test")
	if err != nil {
		return err
	}
	dnsBench.server = srv
	for _, side := range [][2]*testbed.Cluster{{east, west}, {west, east}} {
		if dnsBench.provider == string(tandemv1.DNSProviderRFC2136) {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tsig"}, Data: map[string][]byte{"secret": []byte(srv.Secret)}}
			if err := side[0].Client.Create(ctx, s); err != nil {
				return err
			}
			continue
		}
		if err := bed.StartExternalDNS(ctx, side[0].Name, testbed.ExternalDNSOptions{DNS: srv}); err != nil {
			return err
		}
		// The platform team grants the bench's names to its namespace.
		if err := testbed.GrantDNSNames(ctx, side[0].Client, ns, "*.bench.test"); err != nil {
			return err
		}
	}
	return nil
}

// trafficSpec is dnsBench.records A records, app-NNN.bench.test, TTL 30s.
func trafficSpec() *tandemv1.TrafficSpec {
	t := &tandemv1.TrafficSpec{Provider: tandemv1.DNSProvider(dnsBench.provider)}
	if t.Provider == tandemv1.DNSProviderRFC2136 {
		t.RFC2136 = &tandemv1.RFC2136Spec{Servers: []string{dnsBench.server.Addr}, Zone: "bench.test", TSIGKeyName: dnsBench.server.KeyName,
			TSIGSecretRef: tandemv1.SecretKeyRef{Name: "tsig", Key: "secret"}}
	} else {
		t.ExternalDNS = &tandemv1.ExternalDNSSpec{VerifyServers: []string{dnsBench.server.Addr}}
	}
	for i := range dnsBench.records {
		t.DNS = append(t.DNS, tandemv1.DNSRecord{Name: fmt.Sprintf("app-%03d.bench.test", i), Type: "A", TTL: 30, Targets: []tandemv1.ClusterTargets{
			{Cluster: testbed.East, Values: []string{fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)}},
			{Cluster: testbed.West, Values: []string{fmt.Sprintf("10.2.%d.%d", i/250, i%250+1)}},
		}})
	}
	return t
}

func deployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
			},
		},
	}
}

func pair(ctx context.Context, c *testbed.Cluster) (*tandemv1.HAPair, error) {
	var p tandemv1.HAPair
	err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, &p)
	return &p, err
}

// waitAvailable waits until every Deployment of the namespace runs its
// replicas on c.
func waitAvailable(ctx context.Context, c *testbed.Cluster, n int, replicas int32) error {
	return waitFor(ctx, 3*time.Minute, fmt.Sprintf("%d Deployments Available on %s", n, c.Name), func(ctx context.Context) (bool, error) {
		var list appsv1.DeploymentList
		if err := c.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, nil
		}
		ready := 0
		for _, d := range list.Items {
			if *d.Spec.Replicas == replicas && d.Status.AvailableReplicas == replicas && d.Status.ObservedGeneration >= d.Generation {
				ready++
			}
		}
		return ready == n, nil
	})
}

func waitFor(ctx context.Context, timeout time.Duration, what string, cond func(context.Context) (bool, error)) error {
	if err := testbed.Poll(ctx, timeout, 20*time.Millisecond, cond); err != nil {
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
	return nil
}

func printSteps(so *tandemv1.Switchover) {
	for _, s := range so.Status.Steps {
		d := "-"
		if s.StartTime != nil && s.EndTime != nil {
			d = s.EndTime.Sub(s.StartTime.Time).Round(time.Millisecond).String()
		}
		fmt.Printf("    %-15s %-9s %8s  %s\n", s.Name, s.Phase, d, s.Message)
	}
	if r := so.Status.Report; r != nil && r.TrafficMovedTime != nil && r.ClientsFollowBy != nil {
		fmt.Printf("  RTO to the workloads Available and the records answering at the authoritative server: %s; clients follow within %s (TTL) after that\n",
			so.Status.RTO.Duration, r.ClientsFollowBy.Sub(r.TrafficMovedTime.Time))
	}
}

func claim(name string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To(testbed.StorageClass),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

// observeRPO waits until every PVC has a snapshot usable on dc-west, then
// samples each PVC's RPO (as dc-east's status reports it) every second.
func observeRPO(ctx context.Context, east *testbed.Cluster) error {
	start := time.Now()
	if err := waitFor(ctx, 3*time.Minute, "every PVC protected", func(ctx context.Context) (bool, error) {
		p, err := pair(ctx, east)
		return err == nil && p.Status.Volumes != nil && int(p.Status.Volumes.ProtectedPVCs) == vol.pvcs && p.Status.Volumes.CurrentRPO != nil, nil
	}); err != nil {
		return err
	}
	fmt.Printf("\n%d PVCs protected (a snapshot of each usable on dc-west) %s after the first sync finished\n", vol.pvcs, time.Since(start).Round(time.Millisecond))
	var rpos []time.Duration
	var worst []time.Duration
	for end := time.Now().Add(vol.observe); time.Now().Before(end); time.Sleep(time.Second) {
		p, err := pair(ctx, east)
		if err != nil || p.Status.Volumes == nil {
			continue
		}
		w := time.Duration(0)
		for _, c := range p.Status.Volumes.Claims {
			if c.NewestReplica != nil {
				// Computed here rather than read from status, which is
				// written only when something changed.
				rpo := time.Since(c.NewestReplica.Time)
				rpos = append(rpos, rpo)
				w = max(w, rpo)
			}
		}
		worst = append(worst, w)
	}
	slices.Sort(rpos)
	slices.Sort(worst)
	q := func(d []time.Duration, f float64) time.Duration {
		return d[int(f*float64(len(d)-1))].Round(100 * time.Millisecond)
	}
	fmt.Printf("RPO of %d PVCs sampled every second for %s (interval %s, replication delay %s):\n", vol.pvcs, vol.observe, vol.interval, vol.delay)
	fmt.Printf("  per PVC:   min %s  median %s  p95 %s  max %s  (%d samples)\n", q(rpos, 0), q(rpos, 0.5), q(rpos, 0.95), q(rpos, 1), len(rpos))
	fmt.Printf("  worst PVC: median %s  max %s\n", q(worst, 0.5), q(worst, 1))
	return nil
}
