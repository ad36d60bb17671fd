// Command sync measures the sync engine on the kwok test bed and prints the
// figures recorded in docs/benchmarks.md:
//
//   - initial sync of N objects (ConfigMaps, Secrets, Deployments, Services
//     across namespaces) by the operator, against the same objects copied by
//     a plain parallel client (the API server's ceiling) and by
//     `kubectl get -o yaml | kubectl apply -f -`, each into a fresh cluster;
//
//   - change-propagation lag p50/p99 at a steady rate of changes;
//
//   - the operator's peak RSS.
//
//     go run ./test/bench/sync [-objects 10000] [-namespaces 20] [-rate 50] [-duration 20s]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/tenancy"
	"github.com/tandem-dev/tandem/test/testbed"
)

var (
	nsGVR     = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	cmGVR     = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	secretGVR = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	svcGVR    = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	depGVR    = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	kinds     = []schema.GroupVersionResource{cmGVR, secretGVR, svcGVR, depGVR}
)

const benchLabel = "tandem.dev/bench"

var (
	syncWorkers int
	pprofAddr   string
	skipKubectl bool
)

func main() {
	objects := flag.Int("objects", 10000, "Objects to sync (a quarter each of ConfigMaps, Secrets, Services, Deployments).")
	namespaces := flag.Int("namespaces", 20, "Namespaces the objects are spread over.")
	rate := flag.Int("rate", 50, "Changes per second in the lag measurement.")
	duration := flag.Duration("duration", 20*time.Second, "Length of the lag measurement.")
	workers := flag.Int("workers", 32, "Parallel requests of the direct-create baseline.")
	dir := flag.String("dir", "", "Work directory (a temp dir when empty).")
	flag.IntVar(&syncWorkers, "sync-workers", 0, "The operator's --sync-workers (its default when 0).")
	flag.StringVar(&pprofAddr, "pprof", "", "The operator's --pprof-bind-address (127.0.0.1:PORT), to profile it while the bench runs.")
	flag.BoolVar(&skipKubectl, "skip-kubectl", false, "Skip the kubectl baseline (slow), when tuning.")
	flag.Parse()
	if err := run(*objects, *namespaces, *rate, *duration, *workers, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func fast(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = 5000, 10000
	return c
}

func run(objects, namespaces, rate int, duration time.Duration, workers int, dir string) error {
	ctx := context.Background()
	if dir == "" {
		d, err := os.MkdirTemp("", "tandem-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	bed, err := testbed.NewBed(dir)
	if err != nil {
		return err
	}
	defer func() { _ = bed.Down(context.Background()) }()
	fmt.Printf("Bringing up dc-east, dc-west and two baseline clusters in %s\n", dir)
	clusters := map[string]*testbed.Cluster{}
	for _, n := range []string{testbed.East, testbed.West, "ceiling", "ceiling-apply", "kubectl"} {
		c, err := bed.Create(ctx, n, 1)
		if err != nil {
			return err
		}
		clusters[n] = c
	}
	east := clusters[testbed.East]
	eastDyn := dynamic.NewForConfigOrDie(fast(east.Config))

	fmt.Printf("Creating %d objects in %d namespaces on dc-east\n", objects, namespaces)
	src := generate(objects, namespaces)
	start := time.Now()
	if err := createAll(ctx, eastDyn, src, workers); err != nil {
		return err
	}
	fmt.Printf("  created in %s\n", time.Since(start).Round(time.Millisecond))
	total := len(src) // includes the namespaces

	// Baseline 1: the API server's ceiling, a plain parallel client.
	start = time.Now()
	if err := createAll(ctx, dynamic.NewForConfigOrDie(fast(clusters["ceiling"].Config)), src, workers); err != nil {
		return err
	}
	ceiling := time.Since(start)
	// Each baseline cluster goes once measured, so every measurement runs
	// beside the same two busy data centers.
	if err := bed.Delete(ctx, "ceiling"); err != nil {
		return err
	}
	fmt.Printf("Direct parallel create (%d workers): %s, %.0f objects/s\n", workers, ceiling.Round(time.Millisecond), float64(total)/ceiling.Seconds())

	// Baseline 1b: the same with server-side apply, which the sync uses
	// (it keeps field ownership, so drift and removed fields can be
	// repaired) and which costs the API server more than a create.
	start = time.Now()
	if err := applyAll(ctx, dynamic.NewForConfigOrDie(fast(clusters["ceiling-apply"].Config)), src, workers); err != nil {
		return err
	}
	ceilingApply := time.Since(start)
	fmt.Printf("Direct parallel server-side apply (%d workers): %s, %.0f objects/s\n", workers, ceilingApply.Round(time.Millisecond), float64(total)/ceilingApply.Seconds())

	// Baseline 1c, the ceiling of the lag: the same changes at the same
	// rate, relayed by a plain watch and 16 appliers (the sync's default
	// workers) from dc-east to the cluster the apply baseline filled. It
	// runs before Tandem starts, so the two never share the machine.
	relayDyn := dynamic.NewForConfigOrDie(fast(clusters["ceiling-apply"].Config))
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayErr := make(chan error, 1)
	go func() { relayErr <- relay(relayCtx, eastDyn, relayDyn, 16) }()
	rp50, rp99, rmax, rseen, rsent, err := measureLag(ctx, eastDyn, relayDyn, src, rate, duration)
	stopRelay()
	if rerr := <-relayErr; rerr != nil && relayCtx.Err() == nil {
		return fmt.Errorf("relay: %w", rerr)
	}
	if err != nil {
		return fmt.Errorf("relay lag: %w", err)
	}
	fmt.Printf("Relay ceiling at %d changes/s for %s: %d sent, %d seen; lag p50 %s, p99 %s, max %s\n",
		rate, duration, rsent, rseen, rp50.Round(time.Millisecond), rp99.Round(time.Millisecond), rmax.Round(time.Millisecond))
	if err := bed.Delete(ctx, "ceiling-apply"); err != nil {
		return err
	}

	// Baseline 2: kubectl get -o yaml | kubectl apply -f -.
	kubectlTime := time.Duration(0)
	if !skipKubectl {
		if kubectlTime, err = kubectlCopy(ctx, east, clusters["kubectl"], dir); err != nil {
			return err
		}
	}
	if err := bed.Delete(ctx, "kubectl"); err != nil {
		return err
	}
	fmt.Printf("kubectl get -o yaml | kubectl apply -f -: %s, %.0f objects/s\n", kubectlTime.Round(time.Millisecond), float64(total)/kubectlTime.Seconds())

	// Tandem.
	west := clusters[testbed.West]
	op, err := startOperator(ctx, east, west, dir)
	if err != nil {
		return err
	}
	defer op.Stop()
	start = time.Now()
	if err := east.Client.Create(ctx, &tandemv1.HAPair{
		ObjectMeta: metav1.ObjectMeta{Namespace: "bench-pair", Name: "bench"},
		Spec: tandemv1.HAPairSpec{
			Clusters: []tandemv1.ClusterSpec{{Name: testbed.East}, {Name: testbed.West, KubeconfigSecretRef: &tandemv1.SecretKeyRef{Name: "dc-west-kubeconfig"}}},
			Primary:  testbed.East, SyncPolicyRefs: []tandemv1.LocalObjectReference{{Name: "bench"}},
		},
	}); err != nil {
		return err
	}
	var policy tandemv1.SyncPolicy
	if err := testbed.Poll(ctx, 15*time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		if err := east.Client.Get(ctx, client.ObjectKey{Namespace: "bench-pair", Name: "bench"}, &policy); err != nil {
			return false, err
		}
		return int(policy.Status.InSync) >= total, fmt.Errorf("in sync %d of %d (failed %d)", policy.Status.InSync, total, policy.Status.Failed)
	}); err != nil {
		return fmt.Errorf("initial sync: %w\n%s", err, op.Logs())
	}
	initial := time.Since(start)
	cpu := testbed.CPUSeconds(op.PID())
	onWest, err := count(ctx, dynamic.NewForConfigOrDie(fast(west.Config)))
	if err != nil {
		return err
	}
	if onWest != total {
		return fmt.Errorf("dc-west has %d bench objects, want %d", onWest, total)
	}
	fmt.Printf("Tandem initial sync: %s, %.0f objects/s (%d objects verified on dc-west, %d waves); operator CPU %.1f s\n",
		initial.Round(time.Millisecond), float64(total)/initial.Seconds(), onWest, policy.Status.Waves, cpu)

	lagCPU := testbed.CPUSeconds(op.PID())
	busy0, total0 := machineBusy()
	p50, p99, maxLag, seen, sent, err := measureLag(ctx, eastDyn, dynamic.NewForConfigOrDie(west.Config), src, rate, duration)
	if err != nil {
		return err
	}
	lagCPU = testbed.CPUSeconds(op.PID()) - lagCPU
	busy1, total1 := machineBusy()
	fmt.Printf("Change propagation at %d changes/s for %s: %d sent, %d seen on dc-west; lag p50 %s, p99 %s, max %s\n",
		rate, duration, sent, seen, p50.Round(time.Millisecond), p99.Round(time.Millisecond), maxLag.Round(time.Millisecond))
	fmt.Printf("  during it: operator CPU %.1f s (%.0f%% of a core), the machine's CPUs %.0f%% busy\n",
		lagCPU, 100*lagCPU/duration.Seconds(), 100*(busy1-busy0)/(total1-total0))

	hwm, rss := testbed.ProcessMemory(op.PID())
	fmt.Printf("Operator memory: peak RSS %s, RSS now %s\n", hwm, rss)

	fmt.Printf("\n| measure | value |\n|---|---|\n")
	fmt.Printf("| objects (incl. %d namespaces) | %d |\n", namespaces, total)
	fmt.Printf("| direct parallel create (ceiling) | %.1f s, %.0f obj/s |\n", ceiling.Seconds(), float64(total)/ceiling.Seconds())
	fmt.Printf("| direct parallel server-side apply | %.1f s, %.0f obj/s |\n", ceilingApply.Seconds(), float64(total)/ceilingApply.Seconds())
	fmt.Printf("| kubectl get -o yaml \\| kubectl apply -f - | %.1f s, %.0f obj/s |\n", kubectlTime.Seconds(), float64(total)/kubectlTime.Seconds())
	fmt.Printf("| Tandem initial sync | %.1f s, %.0f obj/s (%.2fx the create ceiling's time, %.2fx the apply ceiling's, %.1fx faster than kubectl); operator CPU %.1f s |\n",
		initial.Seconds(), float64(total)/initial.Seconds(), initial.Seconds()/ceiling.Seconds(), initial.Seconds()/ceilingApply.Seconds(), kubectlTime.Seconds()/initial.Seconds(), cpu)
	fmt.Printf("| lag at %d changes/s, relay ceiling (plain watch + 16 appliers) | p50 %s, p99 %s, max %s (%d of %d changes seen) |\n", rate, rp50.Round(time.Millisecond), rp99.Round(time.Millisecond), rmax.Round(time.Millisecond), rseen, rsent)
	fmt.Printf("| lag at %d changes/s, Tandem | p50 %s, p99 %s, max %s (%d of %d changes seen); machine %.0f%% busy, operator %.0f%% of a core |\n", rate, p50.Round(time.Millisecond), p99.Round(time.Millisecond), maxLag.Round(time.Millisecond), seen, sent,
		100*(busy1-busy0)/(total1-total0), 100*lagCPU/duration.Seconds())
	fmt.Printf("| operator peak RSS | %s |\n", hwm)
	return nil
}

// generate makes the source objects: namespaces first, then a quarter each
// of ConfigMaps, Secrets, Services and Deployments (each Deployment reads
// the ConfigMap and Secret of its index, so the plan has three waves).
func generate(objects, namespaces int) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for n := range namespaces {
		out = append(out, obj("v1", "Namespace", "", fmt.Sprintf("bench-%02d", n), nil))
	}
	per := objects / 4
	payload := strings.Repeat("x", 512)
	for i := range per {
		ns := fmt.Sprintf("bench-%02d", i%namespaces)
		name := fmt.Sprintf("app-%05d", i)
		out = append(out,
			obj("v1", "ConfigMap", ns, name, map[string]any{"data": map[string]any{"payload": payload, "ts": ""}}),
			obj("v1", "Secret", ns, name, map[string]any{"stringData": map[string]any{"token": name}}),
			obj("v1", "Service", ns, name, map[string]any{"spec": map[string]any{
				// Headless: the test bed's service IP range holds only a
				// few hundred addresses.
				"clusterIP": "None",
				"selector":  map[string]any{"app": name},
				"ports":     []any{map[string]any{"port": int64(80)}},
			}}),
			obj("apps/v1", "Deployment", ns, name, map[string]any{"spec": map[string]any{
				// No replicas on the source: the measure is the copy, not
				// kwok scheduling thousands of pods on 2 cores.
				"replicas": int64(0),
				"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
				"template": map[string]any{
					"metadata": map[string]any{"labels": map[string]any{"app": name}},
					"spec": map[string]any{"containers": []any{map[string]any{
						"name": "app", "image": "registry.example/app:1",
						"envFrom": []any{
							map[string]any{"configMapRef": map[string]any{"name": name}},
							map[string]any{"secretRef": map[string]any{"name": name}},
						},
					}}},
				},
			}}),
		)
	}
	return out
}

func obj(apiVersion, kind, ns, name string, fields map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind}}
	for k, v := range fields {
		u.Object[k] = v
	}
	u.SetName(name)
	u.SetNamespace(ns)
	u.SetLabels(map[string]string{benchLabel: "sync"})
	return u
}

func gvrOf(u *unstructured.Unstructured) schema.GroupVersionResource {
	switch u.GetKind() {
	case "Namespace":
		return nsGVR
	case "ConfigMap":
		return cmGVR
	case "Secret":
		return secretGVR
	case "Service":
		return svcGVR
	default:
		return depGVR
	}
}

// createAll creates the namespaces, then everything else with parallel
// workers.
func createAll(ctx context.Context, dyn dynamic.Interface, objs []*unstructured.Unstructured, workers int) error {
	return forAll(objs, workers, func(ri dynamic.ResourceInterface, o *unstructured.Unstructured) error {
		_, err := ri.Create(ctx, o, metav1.CreateOptions{})
		return err
	}, dyn)
}

// forAll calls do for the namespaces, then for everything else, with
// parallel workers.
func forAll(objs []*unstructured.Unstructured, workers int, do func(dynamic.ResourceInterface, *unstructured.Unstructured) error, dyn dynamic.Interface) error {
	var nss, rest []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			nss = append(nss, o)
		} else {
			rest = append(rest, o)
		}
	}
	for _, batch := range [][]*unstructured.Unstructured{nss, rest} {
		work := make(chan *unstructured.Unstructured)
		var firstErr atomic.Value
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for o := range work {
					var ri dynamic.ResourceInterface = dyn.Resource(gvrOf(o))
					if o.GetNamespace() != "" {
						ri = dyn.Resource(gvrOf(o)).Namespace(o.GetNamespace())
					}
					if err := do(ri, o); err != nil {
						firstErr.CompareAndSwap(nil, fmt.Errorf("%s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err))
					}
				}
			}()
		}
		for _, o := range batch {
			work <- o
		}
		close(work)
		wg.Wait()
		if err, _ := firstErr.Load().(error); err != nil {
			return err
		}
	}
	return nil
}

// applyAll is createAll with server-side apply.
func applyAll(ctx context.Context, dyn dynamic.Interface, objs []*unstructured.Unstructured, workers int) error {
	return forAll(objs, workers, func(ri dynamic.ResourceInterface, o *unstructured.Unstructured) error {
		_, err := ri.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "bench", Force: true})
		return err
	}, dyn)
}

// kubectlCopy copies the objects the way people do by hand. kubectl get
// prints the server's fields (uid, resourceVersion, clusterIP...), which a
// create on another cluster refuses, so they are stripped in between; that
// step is timed too but is a small part.
func kubectlCopy(ctx context.Context, from, to *testbed.Cluster, dir string) (time.Duration, error) {
	start := time.Now()
	get := exec.CommandContext(ctx, "kubectl", "--kubeconfig", from.Kubeconfig, "get", "namespaces,configmaps,secrets,services,deployments",
		"-A", "-l", benchLabel+"=sync", "-o", "yaml")
	var out, errOut bytes.Buffer
	get.Stdout, get.Stderr = &out, &errOut
	if err := get.Run(); err != nil {
		return 0, fmt.Errorf("kubectl get: %w\n%s", err, errOut.String())
	}
	list := &unstructured.UnstructuredList{}
	j, err := yaml.YAMLToJSON(out.Bytes())
	if err != nil {
		return 0, err
	}
	if err := list.UnmarshalJSON(j); err != nil {
		return 0, err
	}
	for i := range list.Items {
		o := &list.Items[i]
		for _, f := range []string{"uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"} {
			unstructured.RemoveNestedField(o.Object, "metadata", f)
		}
		unstructured.RemoveNestedField(o.Object, "status")
		if ip, _, _ := unstructured.NestedString(o.Object, "spec", "clusterIP"); ip != "None" {
			unstructured.RemoveNestedField(o.Object, "spec", "clusterIP")
			unstructured.RemoveNestedField(o.Object, "spec", "clusterIPs")
		}
	}
	data, err := list.MarshalJSON()
	if err != nil {
		return 0, err
	}
	file := filepath.Join(dir, "kubectl-copy.json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return 0, err
	}
	apply := exec.CommandContext(ctx, "kubectl", "--kubeconfig", to.Kubeconfig, "apply", "-f", file)
	errOut.Reset()
	apply.Stdout, apply.Stderr = nil, &errOut
	if err := apply.Run(); err != nil {
		return 0, fmt.Errorf("kubectl apply: %w\n%s", err, errOut.String())
	}
	return time.Since(start), nil
}

func startOperator(ctx context.Context, east, west *testbed.Cluster, dir string) (*testbed.Operator, error) {
	if err := testbed.ApplyDir(ctx, east.Client, filepath.Join(testbed.RepoRoot(), "config", "crd", "bases")); err != nil {
		return nil, err
	}
	kc, err := west.FlatKubeconfig()
	if err != nil {
		return nil, err
	}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tandem-system"}},
		// The policy selects the bench namespaces by label: the platform
		// team grants its namespace every namespace (docs/security.md).
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench-pair", Annotations: map[string]string{tenancy.NamespacesAnnotation: "*"}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "bench-pair", Name: "dc-west-kubeconfig"}, Data: map[string][]byte{"kubeconfig": kc}},
	} {
		if err := east.Client.Create(ctx, o); err != nil {
			return nil, err
		}
	}
	// CRDs are served a moment after they are created.
	if err := testbed.Poll(ctx, 30*time.Second, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		err := east.Client.Create(ctx, &tandemv1.SyncPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: "bench-pair", Name: "bench"},
			Spec: tandemv1.SyncPolicySpec{
				Namespaces: tandemv1.NamespaceSelection{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{benchLabel: "sync"}}},
				Resources: tandemv1.ResourceFilter{Include: []tandemv1.KindSelection{
					{GroupKind: tandemv1.GroupKind{Kind: "ConfigMap"}}, {GroupKind: tandemv1.GroupKind{Kind: "Secret"}},
					{GroupKind: tandemv1.GroupKind{Kind: "Service"}}, {GroupKind: tandemv1.GroupKind{Group: "apps", Kind: "Deployment"}},
				}},
			},
		})
		return err == nil, err
	}); err != nil {
		return nil, err
	}
	var args []string
	if syncWorkers > 0 {
		args = append(args, fmt.Sprintf("--sync-workers=%d", syncWorkers))
	}
	if pprofAddr != "" {
		args = append(args, "--pprof-bind-address="+pprofAddr)
	}
	op, err := testbed.LaunchOperator(east, testbed.East, filepath.Join(dir, "operator-dc-east.log"), args...)
	if err != nil {
		return nil, err
	}
	return op, op.WaitHealthy(ctx, time.Minute)
}

func count(ctx context.Context, dyn dynamic.Interface) (int, error) {
	n := 0
	for _, gvr := range append([]schema.GroupVersionResource{nsGVR}, kinds...) {
		list, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{LabelSelector: benchLabel + "=sync"})
		if err != nil {
			return 0, err
		}
		n += len(list.Items)
	}
	return n, nil
}

// measureLag changes ConfigMaps on dc-east at a steady rate, stamping each
// change with the time it was made, and watches dc-west for the copies:
// lag is the time from the change to the watch event on the standby.
// watchFromNow watches the bench's ConfigMaps from the current resource
// version: a watch without one starts with an ADDED event per existing
// object, 25,000 of them at 100,000 objects, which outlasted a short lag
// measurement.
func watchFromNow(ctx context.Context, dyn dynamic.Interface) (watch.Interface, error) {
	opts := metav1.ListOptions{LabelSelector: benchLabel + "=sync", Limit: 1}
	list, err := dyn.Resource(cmGVR).Namespace("").List(ctx, opts)
	if err != nil {
		return nil, err
	}
	opts.Limit, opts.ResourceVersion = 0, list.GetResourceVersion()
	return dyn.Resource(cmGVR).Namespace("").Watch(ctx, opts)
}

// relay copies every change of the bench's ConfigMaps on from to to, as a
// minimal sync would: a watch, a queue and workers applying the new data
// with server-side apply. It returns when ctx ends or the watch fails.
func relay(ctx context.Context, from, to dynamic.Interface, workers int) error {
	w, err := watchFromNow(ctx, from)
	if err != nil {
		return err
	}
	defer w.Stop()
	work := make(chan *unstructured.Unstructured, 100000)
	defer close(work)
	for range workers {
		go func() {
			for u := range work {
				cp := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "data": u.Object["data"]}}
				cp.SetNamespace(u.GetNamespace())
				cp.SetName(u.GetName())
				cp.SetLabels(u.GetLabels())
				_, _ = to.Resource(cmGVR).Namespace(u.GetNamespace()).Apply(ctx, u.GetName(), cp, metav1.ApplyOptions{FieldManager: "bench", Force: true})
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return fmt.Errorf("the watch of dc-east ended")
			}
			if u, isObj := ev.Object.(*unstructured.Unstructured); isObj && ev.Type == watch.Modified {
				work <- u
			}
		}
	}
}

// machineBusy is the machine's busy and total CPU time so far, in clock
// ticks (/proc/stat's first line): the lag measurement says how loaded the
// machine was, since every process of the bench shares its cores.
func machineBusy() (busy, total float64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 1
	}
	line, _, _ := strings.Cut(string(data), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseFloat(f, 64)
		total += v
		if i != 3 && i != 4 { // idle and iowait
			busy += v
		}
	}
	return busy, total
}

func measureLag(ctx context.Context, east, west dynamic.Interface, src []*unstructured.Unstructured, rate int, duration time.Duration) (p50, p99, maxLag time.Duration, seen, sent int, err error) {
	var cms []*unstructured.Unstructured
	for _, o := range src {
		if o.GetKind() == "ConfigMap" {
			cms = append(cms, o)
		}
	}
	w, err := watchFromNow(ctx, west)
	if err != nil {
		return
	}
	defer w.Stop()
	var mu sync.Mutex
	var lags []time.Duration
	go func() {
		for ev := range w.ResultChan() {
			if ev.Type != watch.Modified {
				continue
			}
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			ts, _, _ := unstructured.NestedString(u.Object, "data", "ts")
			ns, perr := strconv.ParseInt(ts, 10, 64)
			if perr != nil {
				continue
			}
			mu.Lock()
			lags = append(lags, time.Since(time.Unix(0, ns)))
			mu.Unlock()
		}
	}()
	ticker := time.NewTicker(time.Second / time.Duration(rate))
	defer ticker.Stop()
	end := time.Now().Add(duration)
	for i := 0; time.Now().Before(end); i++ {
		<-ticker.C
		cm := cms[(i*7919)%len(cms)]
		patch := fmt.Appendf(nil, `{"data":{"ts":"%d"}}`, time.Now().UnixNano())
		if _, err = east.Resource(cmGVR).Namespace(cm.GetNamespace()).Patch(ctx, cm.GetName(), "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
			return
		}
		sent++
	}
	time.Sleep(3 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	seen = len(lags)
	if seen == 0 {
		err = fmt.Errorf("no change reached dc-west")
		return
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	return lags[seen*50/100], lags[min(seen-1, seen*99/100)], lags[seen-1], seen, sent, nil
}
