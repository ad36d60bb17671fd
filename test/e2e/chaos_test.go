package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/fence"
	"github.com/tandem-dev/tandem/test/chaos"
	"github.com/tandem-dev/tandem/test/testbed"
)

// The fault suite's settings come from the environment, so that `make
// chaos SEED=N DURATION=D` runs a long schedule and `make test` a short one.
const (
	chaosSeedEnv     = "TANDEM_CHAOS_SEED"
	chaosDurationEnv = "TANDEM_CHAOS_DURATION"
	// chaosLogsEnv names a directory that keeps the operators' logs and
	// the report after the run.
	chaosLogsEnv = "TANDEM_CHAOS_LOGS"
	// chaosSettleBound is how long after the last repair the pair must be
	// settled: the longest path is a dark data center's return (2.6 s),
	// its operator's leader election (15 s lease), a failover or
	// demotion, and a full sync pass.
	chaosSettleBound = 2 * time.Minute
	chaosWriteLabel  = "chaos.tandem.dev/write"
	// chaosRealNodesEnv runs the app as a real container on each data
	// center's real node (make chaos REAL=1): a side serves when its app
	// answers at the data center's address, which a dark data center's
	// frozen node cannot and a returning one's thawed node does.
	chaosRealNodesEnv = "TANDEM_CHAOS_REAL_NODES"
)

func chaosOptions(t *testing.T) chaos.Options {
	t.Helper()
	o := chaos.Options{Seed: 1, Duration: 90 * time.Second}
	if v := os.Getenv(chaosSeedEnv); v != "" {
		seed, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", chaosSeedEnv, v, err)
		}
		o.Seed = seed
	}
	if v := os.Getenv(chaosDurationEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 30*time.Second {
			t.Fatalf("%s=%q: want a duration of at least 30s (%v)", chaosDurationEnv, v, err)
		}
		o.Duration = d
	}
	if o.Duration < 5*time.Minute {
		// A short schedule still meets several faults.
		o.MinGap, o.MaxGap, o.MaxFaultAge = 8*time.Second, 20*time.Second, 40*time.Second
	}
	return o
}

// TestFaultSchedule is the project's fault suite on the test bed: a pair in
// Automatic mode with a witness (the e2e settings: probes 1s x 3, a 4s
// lease), a 2-replica app under a Warm SyncPolicy, every operator path to
// the peer and the witness through a link that can be cut, and a seeded
// schedule of data centers going dark and coming back, operators killed
// and crash-looping, links cut one way and both ways, and planned
// switchovers between them. Both sides are sampled every 100ms while a
// client writes a ConfigMap every 250ms to whichever side says it is
// Active; the report checks the mission's promises on what was sampled.
//
// `make test` runs a short schedule (seed 1, 90s) on real nodes: there a
// side serves only when its app answers, and the fence sidecar keeps a side
// whose operator is dead from serving. `make chaos` runs a long one, on
// simulated nodes unless REAL=1, where the promises that need the fence
// sidecar do not hold (docs/failure-model.md).
func TestFaultSchedule(t *testing.T) {
	opts := chaosOptions(t)
	ctx := context.Background()
	real := os.Getenv(chaosRealNodesEnv) != "" || os.Getenv(chaosDurationEnv) == ""
	var bed *testbed.Bed
	var clusters map[string]*testbed.Cluster
	if real {
		requireRealNode(t)
		bed, clusters = upBed(t, testbed.UpOptions{Witness: true, Nodes: 1, Storage: true, ReplicationDelay: 200 * time.Millisecond, RealNodes: true})
		installTandem(t, clusters[testbed.East])
		installTandem(t, clusters[testbed.West])
		if err := clusters[testbed.Witness].Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tandem-system"}}); err != nil {
			t.Fatal(err)
		}
	} else {
		bed, clusters = upPairBed(t, false)
	}
	const ns = "shop"
	topo := chaos.Topology{DCs: [2]string{testbed.East, testbed.West}, Witness: testbed.Witness}
	links := map[string]*testbed.Link{}
	for _, name := range topo.Links() {
		to := name[strings.Index(name, "->")+2:]
		link, err := testbed.LinkTo(name, clusters[to])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(link.Close)
		links[name] = link
	}
	via := func(from, to *testbed.Cluster) []byte {
		kc, err := to.KubeconfigVia(links[chaos.Link(from.Name, to.Name)])
		if err != nil {
			t.Fatal(err)
		}
		return kc
	}
	witnessVia := func(from *testbed.Cluster) []byte { return via(from, clusters[testbed.Witness]) }
	pairOpts := pairOptions{ns: ns, mode: tandemv1.FailoverAutomatic, witness: true, peerKubeconfig: via, witnessKubeconfig: witnessVia}
	appReplicas := int32(2)
	if real {
		// The test bed's app as "web", on its volume, protected by
		// snapshots so that a promoted side has its data.
		appReplicas = 1
		pairOpts.fence = true
		pairOpts.app = func(east *testbed.Cluster) {
			deployApp(t, east, ns, "web", testbed.AppOptions{FrontDoor: true, Fence: "shop"})
		}
		pairOpts.volumes = &tandemv1.VolumeProtection{
			SnapshotClassName: testbed.SnapshotClass,
			Interval:          &metav1.Duration{Duration: 2 * time.Second},
			Retention:         3,
			HandleMapping:     tandemv1.HandleMapping{Mode: "Template", Template: testbed.CSIReplicaPrefix + "{{.Handle}}"},
		}
	}
	twoSidedPair(t, clusters, pairOpts)

	logs := os.Getenv(chaosLogsEnv)
	if logs == "" {
		logs = t.TempDir()
	} else if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &chaosDriver{t: t, bed: bed, clusters: clusters, topo: topo, links: links, ns: ns, appReplicas: appReplicas,
		ops: map[string]*testbed.Operator{}, dark: map[string]bool{}, killed: map[string]bool{}, frontDoors: map[string]string{}}
	if real {
		for _, dc := range topo.DCs {
			n, err := bed.Node(dc)
			if err != nil || n == nil {
				t.Fatalf("no real node in %s: %v", dc, err)
			}
			d.frontDoors[dc] = n.HostIP().String()
		}
	}
	for _, dc := range topo.DCs {
		// A leader-election takeover (3s lease + 0.5s retry) that fits in
		// the pair's 4s witness Lease (FailoverSafe).
		op, err := testbed.LaunchOperator(clusters[dc], dc, filepath.Join(logs, "operator-"+dc+".log"),
			"--leader-elect-lease-duration=3s", "--leader-elect-renew-deadline=2s", "--leader-elect-retry-period=500ms")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(op.Stop)
		if err := op.WaitHealthy(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
		d.ops[dc] = op
	}
	waitRole(t, clusters[testbed.East], ns, tandemv1.RoleActive, testbed.East, 1, time.Minute)
	waitRole(t, clusters[testbed.West], ns, tandemv1.RoleStandby, testbed.East, 1, time.Minute)
	if real {
		// The app's first record initialises its data; then it is Ready.
		if err := putThroughFence(ctx, testbed.NewAppClient(d.frontDoors[testbed.East]), "first", "the app's data"); err != nil {
			t.Fatal(err)
		}
		if err := waitAvailable(ctx, clusters[testbed.East].Client, ns, "web", 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := testbed.Poll(ctx, time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		n, _, err := replicasOf(ctx, clusters[testbed.West], ns, "web")
		return err == nil && n == 0, fmt.Errorf("web on dc-west: %d replicas, %v", n, err)
	}); err != nil {
		t.Fatalf("the warm copy on dc-west: %v", err)
	}

	if err := testbed.Poll(ctx, 30*time.Second, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		p, err := getPair(ctx, clusters[testbed.East], ns)
		if err != nil {
			return false, err
		}
		c := findCond(p.Status.Conditions, tandemv1.FailoverSafeCondition)
		return c != nil && c.Status == metav1.ConditionTrue, fmt.Errorf("FailoverSafe %+v", c)
	}); err != nil {
		t.Fatalf("the pair's witness Lease against the operators' takeover: %v", err)
	}

	schedule := chaos.NewSchedule(topo, opts)
	t.Logf("fault schedule, seed %d, %s: %d events", opts.Seed, opts.Duration, len(schedule))
	run := d.run(schedule)
	run.Seed, run.Duration = opts.Seed, opts.Duration
	report := chaos.Analyze(run)
	var out strings.Builder
	report.Print(&out)
	t.Log("\n" + out.String())
	if dir := os.Getenv(chaosLogsEnv); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("report-seed-%d.txt", opts.Seed)), []byte(out.String()), 0o644)
		var timeline strings.Builder
		report.Timeline(&timeline)
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("timeline-seed-%d.txt", opts.Seed)), []byte(timeline.String()), 0o644)
		for _, dc := range topo.DCs {
			_ = os.WriteFile(filepath.Join(dir, "state-"+dc+".txt"), []byte(d.state(clusters[dc])), 0o644)
		}
	}
	for _, v := range report.Violations() {
		t.Error(v)
	}
}

// state is what a data center holds of the app's namespace once the run
// is over, for reading a broken promise: its events in time order (why a
// pod did not start, a volume did not attach), pods, PVCs, and each
// Switchover's steps.
func (d *chaosDriver) state(c *testbed.Cluster) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b strings.Builder
	var events corev1.EventList
	if err := c.Client.List(ctx, &events, client.InNamespace(d.ns)); err != nil {
		fmt.Fprintf(&b, "events: %v\n", err)
	}
	sort.Slice(events.Items, func(i, j int) bool { return eventTime(events.Items[i]).Before(eventTime(events.Items[j])) })
	fmt.Fprintf(&b, "events (%d):\n", len(events.Items))
	for _, e := range events.Items {
		fmt.Fprintf(&b, "  %s %-7s %s %s/%s x%d: %s\n", eventTime(e).UTC().Format("15:04:05.000"), e.Type, e.Reason,
			e.InvolvedObject.Kind, e.InvolvedObject.Name, max(e.Count, 1), oneLineOf(e.Message))
	}
	var pods corev1.PodList
	_ = c.Client.List(ctx, &pods, client.InNamespace(d.ns))
	fmt.Fprintf(&b, "pods (%d):\n", len(pods.Items))
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "  %s on %s: %s, deleting %v\n", p.Name, p.Spec.NodeName, p.Status.Phase, p.DeletionTimestamp != nil)
		for _, cs := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, "    %s ready %v restarts %d %+v\n", cs.Name, cs.Ready, cs.RestartCount, cs.State)
		}
	}
	var pvcs corev1.PersistentVolumeClaimList
	_ = c.Client.List(ctx, &pvcs, client.InNamespace(d.ns))
	for _, p := range pvcs.Items {
		fmt.Fprintf(&b, "pvc %s: %s, volume %s, deleting %v, annotations %v\n", p.Name, p.Status.Phase, p.Spec.VolumeName, p.DeletionTimestamp != nil, p.Annotations)
	}
	var sos tandemv1.SwitchoverList
	_ = c.Client.List(ctx, &sos, client.InNamespace(d.ns))
	for _, so := range sos.Items {
		fmt.Fprintf(&b, "switchover %s (%s to %s): %s\n", so.Name, so.Spec.Type, so.Spec.TargetCluster, so.Status.Phase)
		for _, st := range so.Status.Steps {
			fmt.Fprintf(&b, "  %-18s %-9s %s %s\n", st.Name, st.Phase, stepTimes(st), oneLineOf(st.Message))
		}
	}
	return b.String()
}

// stepTimes is when a step started and how long it ran (or has run so
// far), to tell which step a slow switchover waited on.
func stepTimes(st tandemv1.StepStatus) string {
	if st.StartTime == nil {
		return "-"
	}
	start := st.StartTime.Format("15:04:05.000")
	if st.EndTime == nil {
		return fmt.Sprintf("%s+running", start)
	}
	return fmt.Sprintf("%s+%s", start, st.EndTime.Sub(st.StartTime.Time).Round(time.Millisecond))
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

func oneLineOf(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// chaosDriver applies a schedule to the bed and records what both sides
// showed meanwhile.
type chaosDriver struct {
	t        *testing.T
	bed      *testbed.Bed
	clusters map[string]*testbed.Cluster
	topo     chaos.Topology
	links    map[string]*testbed.Link
	ns       string
	// appReplicas the app runs with on the active side.
	appReplicas int32
	// frontDoors are the data centers' addresses of a real app, which the
	// sampler asks directly; empty on simulated nodes.
	frontDoors map[string]string

	// mu serialises what changes the processes: the schedule and the
	// supervisor that restarts an operator which exited by itself, as a
	// kubelet would.
	mu     sync.Mutex
	ops    map[string]*testbed.Operator
	dark   map[string]bool
	killed map[string]bool

	rec     sync.Mutex
	samples []chaos.Sample
	writes  []chaos.Write
	events  []chaos.Applied
	planned []chaos.Planned
}

func (d *chaosDriver) run(schedule []chaos.Event) chaos.Run {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, loop := range []func(<-chan struct{}){d.sample, d.write, d.supervise} {
		wg.Add(1)
		go func() { defer wg.Done(); loop(stop) }()
	}
	start := time.Now()
	for _, e := range schedule {
		time.Sleep(time.Until(start.Add(e.At)))
		applied := chaos.Applied{Event: e, At: time.Now()}
		err := d.apply(e)
		if err != nil {
			applied.Err = err.Error()
			d.t.Logf("%s: %v", e, err)
		} else {
			d.t.Logf("%s", e)
		}
		d.rec.Lock()
		d.events = append(d.events, applied)
		d.rec.Unlock()
	}
	healed := time.Now()
	active, settleErr := d.settle(chaosSettleBound)
	run := chaos.Run{Topology: d.topo, SettleBound: chaosSettleBound}
	if settleErr != nil {
		run.SettleError = settleErr.Error()
	} else {
		run.Settled = time.Since(healed)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	d.rec.Lock()
	run.Samples, run.Writes, run.Events = d.samples, d.writes, d.events
	d.rec.Unlock()
	run.Present = d.present(active)
	run.Failovers, run.Planned = d.switchovers()
	return run
}

func (d *chaosDriver) apply(e chaos.Event) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx := context.Background()
	switch e.Kind {
	case chaos.StopDC:
		// A data center goes dark with everything in it, its operator too.
		d.ops[e.Target].Kill()
		d.dark[e.Target] = true
		return d.bed.Stop(ctx, e.Target)
	case chaos.StartDC:
		if err := d.bed.Start(ctx, e.Target); err != nil {
			return err
		}
		delete(d.dark, e.Target)
		if !d.killed[e.Target] {
			return d.ops[e.Target].Restart()
		}
	case chaos.KillOperator:
		d.killed[e.Target] = true
		d.ops[e.Target].Kill()
	case chaos.RestartOperator:
		delete(d.killed, e.Target)
		if !d.dark[e.Target] {
			return d.ops[e.Target].Restart()
		}
	case chaos.CrashLoop:
		for range 3 {
			d.ops[e.Target].Kill()
			time.Sleep(2 * time.Second)
			if err := d.ops[e.Target].Restart(); err != nil {
				return err
			}
			time.Sleep(3 * time.Second)
		}
	case chaos.CutLink:
		return d.links[e.Target].Cut()
	case chaos.Partition:
		a, b := d.topo.DCs[0], d.topo.DCs[1]
		if err := d.links[chaos.Link(a, b)].Cut(); err != nil {
			return err
		}
		return d.links[chaos.Link(b, a)].Cut()
	case chaos.HealLink:
		return d.links[e.Target].Heal()
	case chaos.PlannedSwitchover:
		return d.planSwitchover(ctx)
	case chaos.HealAll:
		for _, l := range d.links {
			if err := l.Heal(); err != nil {
				return err
			}
		}
		for _, dc := range d.topo.DCs {
			if d.dark[dc] {
				if err := d.bed.Start(ctx, dc); err != nil {
					return err
				}
				delete(d.dark, dc)
			}
			delete(d.killed, dc)
			if d.ops[dc].Exited() {
				if err := d.ops[dc].Restart(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// planSwitchover asks the side that says it is Active to hand over, as an
// operator would.
func (d *chaosDriver) planSwitchover(ctx context.Context) error {
	from, ok := d.soleActive()
	if !ok {
		return fmt.Errorf("no single side says it is Active")
	}
	to := d.topo.Peer(from)
	d.rec.Lock()
	name := fmt.Sprintf("planned-%d", len(d.planned)+1)
	d.planned = append(d.planned, chaos.Planned{Name: name, From: from, To: to})
	d.rec.Unlock()
	return d.clusters[from].Client.Create(ctx, &tandemv1.Switchover{
		ObjectMeta: metav1.ObjectMeta{Namespace: d.ns, Name: name},
		Spec:       tandemv1.SwitchoverSpec{PairRef: "shop", Type: tandemv1.SwitchoverPlanned, TargetCluster: to, Reason: "fault suite"},
	})
}

func (d *chaosDriver) soleActive() (string, bool) {
	d.rec.Lock()
	defer d.rec.Unlock()
	if len(d.samples) == 0 {
		return "", false
	}
	last := d.samples[len(d.samples)-1]
	switch a, b := last.Sides[0].ClaimsActive(), last.Sides[1].ClaimsActive(); {
	case a && !b:
		return d.topo.DCs[0], true
	case b && !a:
		return d.topo.DCs[1], true
	}
	return "", false
}

// sample reads both sides every 100ms: the pair's status and the app's
// Deployment.
func (d *chaosDriver) sample(stop <-chan struct{}) {
	every(stop, 100*time.Millisecond, func() {
		s := chaos.Sample{At: time.Now()}
		var wg sync.WaitGroup
		for i, dc := range d.topo.DCs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.Sides[i] = d.readSide(d.clusters[dc])
			}()
		}
		wg.Wait()
		d.rec.Lock()
		d.samples = append(d.samples, s)
		d.rec.Unlock()
	})
}

// every runs fn every period until stop is closed.
func every(stop <-chan struct{}, period time.Duration, fn func()) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		fn()
	}
}

func (d *chaosDriver) readSide(c *testbed.Cluster) chaos.Side {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var side chaos.Side
	if addr, ok := d.frontDoors[c.Name]; ok {
		// A client of the app: does this side's app answer?
		app := testbed.NewAppClient(addr)
		app.HTTP.Timeout = 300 * time.Millisecond
		_, err := app.Status(ctx)
		side.Probed, side.Answers = true, err == nil
	}
	pair, err := getPair(ctx, c, d.ns)
	if err != nil {
		return side
	}
	var dep appsv1.Deployment
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: d.ns, Name: "web"}, &dep); err != nil {
		return side
	}
	side.Reachable, side.Role, side.Active = true, string(pair.Status.LocalRole), pair.Status.ActiveCluster
	side.Epoch, side.Available = pair.Status.Epoch, dep.Status.AvailableReplicas
	if dep.Spec.Replicas != nil {
		side.Replicas = *dep.Spec.Replicas
	}
	if pair.Spec.Failover.DataPlaneFence == tandemv1.DataPlaneFenceSidecar {
		var l coordinationv1.Lease
		err := c.Client.Get(ctx, client.ObjectKey{Namespace: d.ns, Name: fence.ServingLeaseName(pair.Name)}, &l)
		if err != nil && !apierrors.IsNotFound(err) {
			// Whether the fence is open is not known: the side was not
			// read, as when its pair cannot be. Counting it unfenced
			// made a slow read of a returning side "both Active".
			return chaos.Side{Probed: side.Probed, Answers: side.Answers}
		}
		side.Lapsed = !fence.GrantOf(&l).HoldsAt(time.Now())
	}
	return side
}

// write is the clients of the service, every 250ms. On simulated nodes it
// creates a ConfigMap on each side the last sample saw say Active: the
// clients follow what the pair says. With a real app it stores a record in
// the app of each side whose app answered in the last sample: the clients
// follow whoever serves, as a client behind DNS or a load balancer does.
func (d *chaosDriver) write(stop <-chan struct{}) {
	seq := 0
	every(stop, 250*time.Millisecond, func() {
		d.rec.Lock()
		var last chaos.Sample
		if len(d.samples) > 0 {
			last = d.samples[len(d.samples)-1]
		}
		d.rec.Unlock()
		for i, dc := range d.topo.DCs {
			addr, real := d.frontDoors[dc]
			if (real && !last.Sides[i].Serving()) || (!real && !last.Sides[i].ClaimsActive()) {
				continue
			}
			seq++
			sent := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			var err error
			if real {
				err = testbed.NewAppClient(addr).Put(ctx, fmt.Sprintf("w-%06d", seq), sent.Format(time.RFC3339Nano))
			} else {
				err = d.clusters[dc].Client.Create(ctx, &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Namespace: d.ns, Name: fmt.Sprintf("w-%06d", seq), Labels: map[string]string{chaosWriteLabel: "true"}},
					Data:       map[string]string{"side": dc, "sent": sent.Format(time.RFC3339Nano)},
				})
			}
			cancel()
			if err != nil {
				continue
			}
			d.rec.Lock()
			d.writes = append(d.writes, chaos.Write{Seq: seq, Side: dc, Sent: sent, Acked: time.Now()})
			d.rec.Unlock()
		}
	})
}

// supervise restarts an operator that exited by itself in a data center
// that runs, as the kubelet restarts a crashed container.
func (d *chaosDriver) supervise(stop <-chan struct{}) {
	every(stop, time.Second, func() {
		d.mu.Lock()
		for dc, op := range d.ops {
			if !d.dark[dc] && !d.killed[dc] && op.Exited() {
				if err := op.Restart(); err != nil {
					d.t.Logf("restarting the operator of %s: %v", dc, err)
				}
			}
		}
		d.mu.Unlock()
	})
}

// settle waits until the pair is settled: one side Active and the other
// Standby, agreeing on the active cluster and the epoch, the active side
// Synced with its app Available and the standby's parked, and no
// Switchover pending or running on either side. It returns the active
// side.
func (d *chaosDriver) settle(bound time.Duration) (string, error) {
	var active string
	err := testbed.Poll(context.Background(), bound, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		pairs := map[string]*tandemv1.HAPair{}
		for _, dc := range d.topo.DCs {
			p, err := getPair(ctx, d.clusters[dc], d.ns)
			if err != nil {
				return false, fmt.Errorf("%s: %w", dc, err)
			}
			pairs[dc] = p
			var sos tandemv1.SwitchoverList
			if err := d.clusters[dc].Client.List(ctx, &sos, client.InNamespace(d.ns)); err != nil {
				return false, err
			}
			for _, so := range sos.Items {
				if so.Status.Phase == "" || so.Status.Phase == tandemv1.PhasePending || so.Status.Phase == tandemv1.PhaseRunning {
					return false, fmt.Errorf("Switchover %s on %s is %q", so.Name, dc, so.Status.Phase)
				}
			}
		}
		a, b := pairs[d.topo.DCs[0]].Status, pairs[d.topo.DCs[1]].Status
		if a.ActiveCluster != b.ActiveCluster || a.Epoch != b.Epoch {
			return false, fmt.Errorf("the sides disagree: %s says %s at epoch %d (%s), %s says %s at epoch %d (%s)",
				d.topo.DCs[0], a.ActiveCluster, a.Epoch, a.LocalRole, d.topo.DCs[1], b.ActiveCluster, b.Epoch, b.LocalRole)
		}
		active = a.ActiveCluster
		standby := d.topo.Peer(active)
		if pairs[active].Status.LocalRole != tandemv1.RoleActive || pairs[standby].Status.LocalRole != tandemv1.RoleStandby {
			return false, fmt.Errorf("%s says %s and %s says %s", active, pairs[active].Status.LocalRole, standby, pairs[standby].Status.LocalRole)
		}
		if c := findCond(pairs[active].Status.Conditions, tandemv1.SyncedCondition); c == nil || c.Status != metav1.ConditionTrue {
			return false, fmt.Errorf("%s (active) says Synced %+v", active, c)
		}
		n, _, err := replicasOf(ctx, d.clusters[standby], d.ns, "web")
		if err != nil || n != 0 {
			return false, fmt.Errorf("web on the standby %s: %d replicas, %v", standby, n, err)
		}
		if err := available(ctx, d.clusters[active].Client, d.ns, "web", d.appReplicas); err != nil {
			return false, fmt.Errorf("web on the active %s: %w", active, err)
		}
		if door, ok := d.frontDoors[active]; ok {
			// On real nodes a settled pair serves: the active side's app
			// answers through its fence (the status above may be a
			// restarted operator's last word).
			if _, err := testbed.NewAppClient(door).Status(ctx); err != nil {
				return false, fmt.Errorf("the app on the active %s: %w", active, err)
			}
		}
		return true, nil
	})
	return active, err
}

func available(ctx context.Context, c client.Client, ns, name string, replicas int32) error {
	var dep appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &dep); err != nil {
		return err
	}
	if dep.Status.AvailableReplicas < replicas {
		return fmt.Errorf("%d of %d replicas available", dep.Status.AvailableReplicas, replicas)
	}
	return nil
}

// present lists the writes found on the active side at the end; when the
// pair did not settle, on every side that says it is Active.
func (d *chaosDriver) present(active string) map[int]bool {
	sides := []string{active}
	if active == "" {
		sides = d.topo.DCs[:]
	}
	found := map[int]bool{}
	if len(d.frontDoors) > 0 {
		d.rec.Lock()
		writes := append([]chaos.Write(nil), d.writes...)
		d.rec.Unlock()
		for _, dc := range sides {
			app := testbed.NewAppClient(d.frontDoors[dc])
		reads:
			for _, w := range writes {
				// Only the app's own "no such record" is a lost write; a
				// read that fails otherwise is retried, then reported, and
				// the side is not read further.
				key := fmt.Sprintf("w-%06d", w.Seq)
				var last error
				err := testbed.Poll(context.Background(), 30*time.Second, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
					_, _, last = app.Get(ctx, key)
					return last == nil || errors.Is(last, testbed.ErrNoRecord), last
				})
				switch {
				case err != nil:
					d.t.Errorf("reading write %d on %s: %v", w.Seq, dc, last)
					break reads
				case last == nil:
					found[w.Seq] = true
				}
			}
		}
		return found
	}
	for _, dc := range sides {
		var cms corev1.ConfigMapList
		if err := d.clusters[dc].Client.List(context.Background(), &cms, client.InNamespace(d.ns), client.HasLabels{chaosWriteLabel}); err != nil {
			d.t.Errorf("listing the writes on %s: %v", dc, err)
			continue
		}
		for _, cm := range cms.Items {
			if seq, err := strconv.Atoi(strings.TrimPrefix(cm.Name, "w-")); err == nil {
				found[seq] = true
			}
		}
	}
	return found
}

// switchoverWhy is the steps of a Switchover that did not succeed, and its
// Ready condition: what a report needs to explain it.
func switchoverWhy(so tandemv1.Switchover) string {
	var parts []string
	for _, st := range so.Status.Steps {
		if st.Phase != tandemv1.StepSucceeded && st.Phase != tandemv1.StepSkipped {
			parts = append(parts, fmt.Sprintf("%s %s: %s", st.Name, st.Phase, st.Message))
		}
	}
	for _, c := range so.Status.Conditions {
		if c.Type == tandemv1.ReadyCondition {
			parts = append(parts, fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message))
		}
	}
	return strings.Join(parts, "; ")
}

// switchovers reads the Failovers the operators created and the Planned
// Switchovers the schedule asked for, as their status ended.
func (d *chaosDriver) switchovers() ([]chaos.Failover, []chaos.Planned) {
	byName := map[string]tandemv1.Switchover{}
	for _, dc := range d.topo.DCs {
		var sos tandemv1.SwitchoverList
		if err := d.clusters[dc].Client.List(context.Background(), &sos, client.InNamespace(d.ns)); err != nil {
			d.t.Errorf("listing Switchovers on %s: %v", dc, err)
			continue
		}
		for _, so := range sos.Items {
			if prev, ok := byName[so.Name]; !ok || prev.Status.Phase != tandemv1.PhaseSucceeded {
				byName[so.Name] = so
			}
		}
	}
	var failovers []chaos.Failover
	for _, so := range byName {
		if so.Spec.Type != tandemv1.SwitchoverFailover {
			continue
		}
		f := chaos.Failover{Name: so.Name, From: so.Status.FromCluster, To: so.Spec.TargetCluster, Phase: string(so.Status.Phase)}
		if so.Status.StartTime != nil {
			f.Start = so.Status.StartTime.Time
		}
		if so.Status.DataLossWindow != nil {
			f.Window, f.HasWindow = so.Status.DataLossWindow.Duration, true
		}
		if so.Status.DataLossSince != nil {
			f.Since = so.Status.DataLossSince.Time
		}
		f.Unknown = so.Status.DataLossUnknown
		if so.Status.Phase != tandemv1.PhaseSucceeded {
			f.Why = switchoverWhy(so)
		}
		failovers = append(failovers, f)
	}
	sort.Slice(failovers, func(i, j int) bool { return failovers[i].Start.Before(failovers[j].Start) })
	d.rec.Lock()
	planned := append([]chaos.Planned(nil), d.planned...)
	d.rec.Unlock()
	for i, p := range planned {
		so, ok := byName[p.Name]
		if !ok {
			planned[i].Phase = "not found"
			continue
		}
		planned[i].Phase = string(so.Status.Phase)
		if so.Status.StartTime != nil {
			planned[i].Start = so.Status.StartTime.Time
		}
		if so.Status.CompletionTime != nil {
			planned[i].End = so.Status.CompletionTime.Time
		}
	}
	return failovers, planned
}
