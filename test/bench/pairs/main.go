// Command pairs measures what one operator costs per HAPair: N pairs on the
// kwok test bed, each in its own namespace with its own SyncPolicy (one
// ConfigMap) and peer probes every -probe-period, all run by one operator
// on dc-east (dc-west runs none, so every request dc-west's API server
// counts beyond its own idle rate comes from that operator). It prints the
// figures recorded in docs/benchmarks.md:
//
//   - steady state over -observe: the operator's CPU per probe period and
//     per pair, its status writes per second (HAPair status PATCHes and
//     UPDATEs counted by dc-east's API server), and the requests per second
//     dc-west's API server served beyond its idle rate, measured before
//     the operator starts;
//
//   - a dark peer: from dc-west's control plane stopping to every pair
//     reporting PeerReachable=False, against the configured window
//     (threshold x period, plus one period) that is its ceiling.
//
//     go run ./test/bench/pairs [-pairs 50] [-probe-period 1s] [-threshold 3] [-observe 1m]
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/test/testbed"
)

var cfg struct {
	pairs           int
	period, observe time.Duration
	threshold       int
	idle            time.Duration
	dir             string
	pprof           string
}

func main() {
	flag.IntVar(&cfg.pairs, "pairs", 50, "HAPairs run by the one operator.")
	flag.DurationVar(&cfg.period, "probe-period", time.Second, "spec.failover.probePeriod of every pair.")
	flag.IntVar(&cfg.threshold, "threshold", 3, "spec.failover.failureThreshold of every pair.")
	flag.DurationVar(&cfg.observe, "observe", time.Minute, "How long to measure the steady state.")
	flag.DurationVar(&cfg.idle, "idle", 30*time.Second, "How long to measure dc-west's idle request rate before the operator starts.")
	flag.StringVar(&cfg.dir, "dir", "", "Working directory (a temporary one when empty).")
	flag.StringVar(&cfg.pprof, "pprof", "", "The operator's --pprof-bind-address (127.0.0.1:PORT), to profile it while the bench runs.")
	flag.Parse()
	if cfg.dir == "" {
		d, err := os.MkdirTemp("", "tandem-bench-pairs-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cfg.dir = d
	}
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func namespace(i int) string { return fmt.Sprintf("pair-%03d", i) }

func run(ctx context.Context) error {
	bed, err := testbed.NewBed(filepath.Join(cfg.dir, "bed"))
	if err != nil {
		return err
	}
	defer func() { _ = bed.Down(context.Background()) }()
	clusters, err := bed.Up(ctx, testbed.UpOptions{Nodes: 1})
	if err != nil {
		return err
	}
	by := map[string]*testbed.Cluster{}
	for _, c := range clusters {
		by[c.Name] = c
	}
	east, west := by[testbed.East], by[testbed.West]
	if err := prepare(ctx, east, west); err != nil {
		return err
	}

	// dc-west's own rate (kwok, its controllers), before any operator.
	westIdle, err := requestRate(ctx, west, cfg.idle, func(metric) bool { return true })
	if err != nil {
		return err
	}

	var extra []string
	if cfg.pprof != "" {
		extra = append(extra, "--pprof-bind-address="+cfg.pprof)
	}
	op, err := testbed.LaunchOperator(east, east.Name, filepath.Join(cfg.dir, "operator-"+east.Name+".log"), extra...)
	if err != nil {
		return err
	}
	defer op.Stop()
	if err := op.WaitHealthy(ctx, time.Minute); err != nil {
		return err
	}
	start := time.Now()
	if err := waitFor(ctx, 5*time.Minute, fmt.Sprintf("%d pairs active, synced and reaching their peer", cfg.pairs), func(ctx context.Context) (bool, error) {
		ready, err := count(ctx, east, func(p *tandemv1.HAPair) bool {
			return p.Status.LocalRole == tandemv1.RoleActive &&
				meta.IsStatusConditionTrue(p.Status.Conditions, tandemv1.SyncedCondition) &&
				meta.IsStatusConditionTrue(p.Status.Conditions, tandemv1.PeerReachableCondition)
		})
		return ready == cfg.pairs, err
	}); err != nil {
		return fmt.Errorf("%w; %s", err, unready(ctx, east))
	}
	fmt.Printf("%d pairs active, synced and reaching dc-west %s after the operator started\n", cfg.pairs, time.Since(start).Round(time.Millisecond))

	// Steady state.
	statusWrite := func(m metric) bool {
		return m.labels["resource"] == "hapairs" && m.labels["subresource"] == "status" &&
			(m.labels["verb"] == "PATCH" || m.labels["verb"] == "UPDATE" || m.labels["verb"] == "APPLY")
	}
	eastBefore, err := scrape(ctx, east)
	if err != nil {
		return err
	}
	westBefore, err := scrape(ctx, west)
	if err != nil {
		return err
	}
	cpuBefore, t0 := testbed.CPUSeconds(op.PID()), time.Now()
	time.Sleep(cfg.observe)
	cpuAfter, elapsed := testbed.CPUSeconds(op.PID()), time.Since(t0)
	eastAfter, err := scrape(ctx, east)
	if err != nil {
		return err
	}
	westAfter, err := scrape(ctx, west)
	if err != nil {
		return err
	}
	periods := elapsed.Seconds() / cfg.period.Seconds()
	cpu := cpuAfter - cpuBefore
	writes := (sum(eastAfter, statusWrite) - sum(eastBefore, statusWrite)) / elapsed.Seconds()
	toPeer := (sum(westAfter, all) - sum(westBefore, all)) / elapsed.Seconds()
	hwm, rss := testbed.ProcessMemory(op.PID())
	fmt.Printf("\nSteady state of %d pairs, probes every %s, over %s:\n", cfg.pairs, cfg.period, elapsed.Round(time.Second))
	fmt.Printf("  operator CPU:            %.1f ms per probe period (%.2f ms per pair), %.1f%% of one core\n",
		1000*cpu/periods, 1000*cpu/periods/float64(cfg.pairs), 100*cpu/elapsed.Seconds())
	fmt.Printf("  status writes:           %.1f/s (%.2f per pair per probe period)\n", writes, writes*cfg.period.Seconds()/float64(cfg.pairs))
	fmt.Printf("  requests to the peer:    %.1f/s beyond dc-west's idle %.1f/s (%.2f per pair per probe period)\n",
		toPeer-westIdle, westIdle, (toPeer-westIdle)*cfg.period.Seconds()/float64(cfg.pairs))
	fmt.Printf("  operator memory:         peak RSS %s, RSS now %s\n", hwm, rss)

	// A dark peer.
	if err := bed.Stop(ctx, testbed.West); err != nil {
		return err
	}
	dark := time.Now()
	reported := map[string]time.Duration{}
	window := time.Duration(cfg.threshold)*cfg.period + cfg.period
	if err := waitFor(ctx, 2*time.Minute, "every pair to report dc-west unreachable", func(ctx context.Context) (bool, error) {
		var list tandemv1.HAPairList
		if err := east.Client.List(ctx, &list); err != nil {
			return false, nil
		}
		for _, p := range list.Items {
			if _, seen := reported[p.Namespace]; !seen && meta.IsStatusConditionFalse(p.Status.Conditions, tandemv1.PeerReachableCondition) {
				reported[p.Namespace] = time.Since(dark)
			}
		}
		return len(reported) == cfg.pairs, nil
	}); err != nil {
		return fmt.Errorf("%w (%d of %d reported)", err, len(reported), cfg.pairs)
	}
	var ds []time.Duration
	for _, d := range reported {
		ds = append(ds, d)
	}
	slices.Sort(ds)
	fmt.Printf("\ndc-west's control plane stopped: PeerReachable=False on every pair\n")
	fmt.Printf("  first %s, median %s, last %s; ceiling (threshold %d x %s + one period): %s\n",
		ds[0].Round(time.Millisecond), ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond),
		cfg.threshold, cfg.period, window)
	if late := ds[len(ds)-1]; late > window {
		fmt.Printf("  LATE: the last pair reported %s after the ceiling\n", (late - window).Round(time.Millisecond))
	}
	return nil
}

// prepare installs the CRDs on dc-east and, per pair, its namespace on both
// sides, dc-west's kubeconfig, a ConfigMap, the policy and the pair.
func prepare(ctx context.Context, east, west *testbed.Cluster) error {
	if err := testbed.ApplyDir(ctx, east.Client, filepath.Join(testbed.RepoRoot(), "config", "crd", "bases")); err != nil {
		return err
	}
	if err := waitFor(ctx, 30*time.Second, "Tandem's CRDs served", func(ctx context.Context) (bool, error) {
		return east.Client.List(ctx, &tandemv1.HAPairList{}) == nil, nil
	}); err != nil {
		return err
	}
	westKC, err := west.FlatKubeconfig()
	if err != nil {
		return err
	}
	if err := east.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tandem-system"}}); err != nil {
		return err
	}
	for i := range cfg.pairs {
		ns := namespace(i)
		if err := west.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
		for _, o := range []client.Object{
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dc-west-kubeconfig"}, Data: map[string][]byte{"kubeconfig": westKC}},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "config"}, Data: map[string]string{"PAIR": ns}},
			&tandemv1.SyncPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
				Spec: tandemv1.SyncPolicySpec{Namespaces: tandemv1.NamespaceSelection{Names: []string{ns}},
					Resources: tandemv1.ResourceFilter{Include: []tandemv1.KindSelection{{GroupKind: tandemv1.GroupKind{Kind: "ConfigMap"}}}}}},
			&tandemv1.HAPair{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
				Spec: tandemv1.HAPairSpec{
					Clusters: []tandemv1.ClusterSpec{
						{Name: testbed.East},
						{Name: testbed.West, KubeconfigSecretRef: &tandemv1.SecretKeyRef{Name: "dc-west-kubeconfig"}},
					},
					Primary:        testbed.East,
					SyncPolicyRefs: []tandemv1.LocalObjectReference{{Name: "app"}},
					Failover: tandemv1.FailoverSpec{Mode: tandemv1.FailoverManual, ProbePeriod: &metav1.Duration{Duration: cfg.period},
						ProbeTimeout: &metav1.Duration{Duration: cfg.period / 2}, FailureThreshold: int32(cfg.threshold)},
				}},
		} {
			if err := east.Client.Create(ctx, o); err != nil {
				return fmt.Errorf("creating %T %s/%s on dc-east: %w", o, o.GetNamespace(), o.GetName(), err)
			}
		}
	}
	return nil
}

func count(ctx context.Context, c *testbed.Cluster, ok func(*tandemv1.HAPair) bool) (int, error) {
	var list tandemv1.HAPairList
	if err := c.Client.List(ctx, &list); err != nil {
		return 0, nil
	}
	n := 0
	for i := range list.Items {
		if ok(&list.Items[i]) {
			n++
		}
	}
	return n, nil
}

// unready describes the first pair that is not yet active, synced and
// reaching its peer.
func unready(ctx context.Context, c *testbed.Cluster) string {
	var list tandemv1.HAPairList
	if err := c.Client.List(ctx, &list); err != nil {
		return err.Error()
	}
	for _, p := range list.Items {
		if p.Status.LocalRole == tandemv1.RoleActive && meta.IsStatusConditionTrue(p.Status.Conditions, tandemv1.SyncedCondition) &&
			meta.IsStatusConditionTrue(p.Status.Conditions, tandemv1.PeerReachableCondition) {
			continue
		}
		var conds []string
		for _, cond := range p.Status.Conditions {
			conds = append(conds, fmt.Sprintf("%s=%s %s: %s", cond.Type, cond.Status, cond.Reason, cond.Message))
		}
		return fmt.Sprintf("%s/%s role %q: %s", p.Namespace, p.Name, p.Status.LocalRole, strings.Join(conds, "; "))
	}
	return "every pair ready"
}

// metric is one sample of apiserver_request_total.
type metric struct {
	labels map[string]string
	value  float64
}

func all(metric) bool { return true }

// scrape reads apiserver_request_total from the API server's /metrics.
func scrape(ctx context.Context, c *testbed.Cluster) ([]metric, error) {
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading %s's API server metrics: %w", c.Name, err)
	}
	var out []metric
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "apiserver_request_total{")
		if !ok {
			continue
		}
		body, val, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		m := metric{labels: map[string]string{}}
		for _, kv := range strings.Split(body, ",") {
			k, v, _ := strings.Cut(kv, "=")
			m.labels[k] = strings.Trim(v, `"`)
		}
		m.value, _ = strconv.ParseFloat(val, 64)
		out = append(out, m)
	}
	return out, sc.Err()
}

func sum(ms []metric, keep func(metric) bool) float64 {
	var s float64
	for _, m := range ms {
		if keep(m) {
			s += m.value
		}
	}
	return s
}

// requestRate is the requests per second c's API server serves over d
// (the scrapes themselves included, two per window).
func requestRate(ctx context.Context, c *testbed.Cluster, d time.Duration, keep func(metric) bool) (float64, error) {
	before, err := scrape(ctx, c)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	time.Sleep(d)
	after, err := scrape(ctx, c)
	if err != nil {
		return 0, err
	}
	return (sum(after, keep) - sum(before, keep)) / time.Since(t0).Seconds(), nil
}

func waitFor(ctx context.Context, timeout time.Duration, what string, cond func(context.Context) (bool, error)) error {
	if err := testbed.Poll(ctx, timeout, 50*time.Millisecond, cond); err != nil {
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
	return nil
}
