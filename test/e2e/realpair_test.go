package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/fence"
	"github.com/tandem-dev/tandem/internal/traffic"
	"github.com/tandem-dev/tandem/test/testbed"
)

// realNodeValues installs the chart as a platform team would on this test
// bed: the locally built image (no registry), on the real node, with the
// leader election timings of the e2e tests (a takeover budget of 3.5s,
// inside the pairs' 4s witness lease).
const realNodeValues = `image: {repository: tandem.local/tandem-operator, tag: dev, pullPolicy: Never}
nodeSelector: {"tandem.dev/real-node": "true"}
tolerations: [{key: tandem.dev/real-node, operator: Exists, effect: NoSchedule}]
leaderElectionTimings: {leaseDuration: 3s, renewDeadline: 2s, retryPeriod: 500ms}
`

// installOperatorPods imports the operator image into each data center's
// real node and helm-installs the chart there, waiting for the pods to be
// Ready (their readiness probe).
func installOperatorPods(t *testing.T, bed *testbed.Bed, clusters ...*testbed.Cluster) {
	t.Helper()
	ctx := context.Background()
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte(realNodeValues), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range clusters {
		node, err := bed.Node(c.Name)
		if err != nil || node == nil {
			t.Fatalf("no real node in %s: %v", c.Name, err)
		}
		if err := bed.ImportImage(ctx, node, testbed.OperatorImage); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		helmInstall(t, c, "--values", values, "--set", "clusterName="+c.Name)
		t.Logf("helm install into %s: the operator's 2 pods Ready on %s after %s", c.Name, node.Name, time.Since(start).Round(10*time.Millisecond))
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("operator pods on %s:\n%s", c.Name, operatorPodLogs(c))
			}
		})
	}
}

// operatorPodLogs is the tail of every operator pod's log, through the API
// server and the kubelet, as `kubectl logs` reads it.
func operatorPodLogs(c *testbed.Cluster) string {
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err.Error()
	}
	pods, err := cs.CoreV1().Pods("tandem-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=tandem,app.kubernetes.io/component=operator"})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		data, err := cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: ptr.To[int64](60)}).DoRaw(ctx)
		fmt.Fprintf(&b, "--- %s (%s, err %v)\n%s\n", p.Name, p.Status.Phase, err, data)
	}
	return b.String()
}

// resolvingClient is a user's client of the app: it asks the zone's
// authoritative server for the name (no cache beyond one request) and
// calls the address it gets.
type resolvingClient struct {
	srv  testbed.DNSServer
	name string
}

func (r resolvingClient) app(ctx context.Context) (*testbed.AppClient, string, error) {
	got, err := traffic.Answer(ctx, r.srv.Addr, r.name, "A")
	if err != nil || len(got) != 1 {
		return nil, "", fmt.Errorf("resolving %s: %v %v", r.name, got, err)
	}
	return testbed.NewAppClient(got[0]), got[0], nil
}

// get reads a record through the name, saying which node served it.
func (r resolvingClient) get(ctx context.Context, key string) (value, node string, err error) {
	a, _, err := r.app(ctx)
	if err != nil {
		return "", "", err
	}
	return a.Get(ctx, key)
}

// waitServedBy waits until the name leads to the app on node with record
// key, and returns how long that took.
func (r resolvingClient) waitServedBy(t *testing.T, node, key, want string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	if err := testbed.Poll(context.Background(), timeout, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		got, by, err := r.get(ctx, key)
		last = fmt.Sprintf("%q from %q (%v)", got, by, err)
		return err == nil && by == node && got == want, nil
	}); err != nil {
		t.Fatalf("%s never led to %s with record %s=%q: last %s", r.name, node, key, want, last)
	}
	return time.Since(start)
}

// The mission on real nodes: the operators run as pods from the locally
// built image, installed with helm; the app is a real container on a real
// volume; a client that resolves the name through BIND reaches the active
// side's app, with the data written before a planned switchover and before
// a failover.
func TestOperatorPodsMoveTheRealAppWithItsDataAndTraffic(t *testing.T) {
	requireRealNode(t)
	ctx := context.Background()
	bed, clusters, srv := upChartBed(t, testbed.UpOptions{Witness: true, Nodes: 1, Storage: true, ReplicationDelay: 200 * time.Millisecond, RealNodes: true})
	east, west := clusters[testbed.East], clusters[testbed.West]
	installOperatorPods(t, bed, east, west)
	for _, c := range []*testbed.Cluster{east, west} {
		if err := bed.StartExternalDNS(ctx, c.Name, testbed.ExternalDNSOptions{DNS: srv}); err != nil {
			t.Fatal(err)
		}
	}
	checkAuthenticatedMetrics(t, east)

	eastNode, _ := bed.Node(testbed.East)
	westNode, _ := bed.Node(testbed.West)
	podKubeconfig := func(c *testbed.Cluster) []byte {
		kc, err := bed.PodKubeconfig(c.Name)
		if err != nil {
			t.Fatal(err)
		}
		return kc
	}
	const ns = "shop"
	twoSidedPair(t, clusters, pairOptions{ns: ns, mode: tandemv1.FailoverAutomatic, witness: true, rpo: 30 * time.Second, fence: true,
		peerKubeconfig:    func(_, to *testbed.Cluster) []byte { return podKubeconfig(to) },
		witnessKubeconfig: func(*testbed.Cluster) []byte { return podKubeconfig(clusters[testbed.Witness]) },
		app: func(east *testbed.Cluster) {
			deployApp(t, east, ns, "orders", testbed.AppOptions{FrontDoor: true, Fence: "shop"})
		},
		volumes: &tandemv1.VolumeProtection{
			SnapshotClassName: testbed.SnapshotClass,
			Interval:          &metav1.Duration{Duration: 2 * time.Second},
			Retention:         3,
			HandleMapping:     tandemv1.HandleMapping{Mode: "Template", Template: testbed.CSIReplicaPrefix + "{{.Handle}}"},
		},
		traffic: &tandemv1.TrafficSpec{
			Provider:    tandemv1.DNSProviderExternalDNS,
			ExternalDNS: &tandemv1.ExternalDNSSpec{VerifyServers: []string{srv.PodAddr}},
			DNS: []tandemv1.DNSRecord{{Name: shopName, Type: "A", TTL: 5, Targets: []tandemv1.ClusterTargets{
				{Cluster: testbed.East, Values: []string{eastNode.HostIP().String()}},
				{Cluster: testbed.West, Values: []string{westNode.HostIP().String()}},
			}}},
		}})
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, c := range []*testbed.Cluster{east, west} {
			if p, err := getPair(ctx, c, ns); err == nil {
				for _, cond := range p.Status.Conditions {
					t.Logf("%s: %s=%s %s: %s", c.Name, cond.Type, cond.Status, cond.Reason, cond.Message)
				}
			}
		}
		t.Logf("external-dns on dc-east:\n%s", bed.ExternalDNSLog(testbed.East, "external-dns"))
		for _, c := range []*testbed.Cluster{east, west} {
			t.Logf("the fence on %s:\n%s", c.Name, fenceState(c, ns, "shop", "orders"))
		}
	})
	waitRole(t, east, ns, tandemv1.RoleActive, testbed.East, 1, time.Minute)
	// The app's first order initialises its data; until then it is not
	// Ready, and the name is not published.
	if err := putThroughFence(ctx, testbed.NewAppClient(eastNode.HostIP().String()), "order-1", "2 coffees"); err != nil {
		t.Fatal(err)
	}
	waitAnswer(t, srv, shopName, eastNode.HostIP().String(), time.Minute)
	user := resolvingClient{srv: srv, name: shopName}
	user.waitServedBy(t, eastNode.Name, "order-1", "2 coffees", 30*time.Second)
	if err := waitAvailable(ctx, east.Client, ns, "orders", 1); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, east, ns)

	// Isolated drills on dc-west: its copy of the app, restored from the
	// newest shipped snapshot, answers the drill's check with an order
	// written on dc-east; a check for an order dc-west lacks fails the drill
	// with the app's own answer.
	waitReplicaAfter(t, east, ns, "orders-data", time.Now())
	westOrders := fmt.Sprintf("http://%s:%d/records/", westNode.HostIP(), testbed.AppPort)
	drill := func(name, record string) *tandemv1.Switchover {
		return switchoverTo(t, east, ns, name, tandemv1.SwitchoverDrill, testbed.West, &tandemv1.DrillOptions{
			Mode:   tandemv1.DrillIsolated,
			Checks: []tandemv1.DrillCheck{{Name: "orders", HTTP: &tandemv1.HTTPCheck{URL: westOrders + record}}},
		})
	}
	passed := waitSwitchover(t, east, drill("drill", "order-1"), tandemv1.PhaseSucceeded, 2*time.Minute)
	if rep := passed.Status.Report; rep == nil || !rep.Passed || len(rep.Checks) != 1 || !rep.Checks[0].Passed {
		t.Fatalf("drill report = %+v", rep)
	}
	t.Logf("isolated drill: %s", passed.Status.Report.Summary)
	failed := waitSwitchover(t, east, drill("drill-missing", "order-never-written"), tandemv1.PhaseFailed, 3*time.Minute)
	logSteps(t, failed)
	if rep := failed.Status.Report; rep == nil || rep.Passed || len(rep.Checks) != 1 || rep.Checks[0].Passed ||
		!strings.Contains(rep.Checks[0].Message, "answered 404: record \"order-never-written\" not found on dc-west-real") {
		t.Fatalf("the drill whose check reads a missing order: report %+v", rep)
	}
	t.Logf("drill with a missing order: Failed, check says %q", failed.Status.Report.Checks[0].Message)
	waitRole(t, east, ns, tandemv1.RoleActive, testbed.East, 1, 10*time.Second)
	waitSynced(t, east, ns)

	// Planned switchover: no order lost, the name leads to dc-west.
	app, _, err := user.app(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Put(ctx, "order-2", "a croissant"); err != nil {
		t.Fatal(err)
	}
	so := switchoverTo(t, east, ns, "to-west", tandemv1.SwitchoverPlanned, testbed.West, nil)
	so = waitSwitchover(t, east, so, tandemv1.PhaseSucceeded, 3*time.Minute)
	logSteps(t, so)
	took := user.waitServedBy(t, westNode.Name, "order-2", "a croissant", 30*time.Second)
	if got, by, err := user.get(ctx, "order-1"); err != nil || got != "2 coffees" {
		t.Fatalf("after the planned switchover order-1 = %q from %s (%v)", got, by, err)
	}
	t.Logf("planned switchover: RTO %s; the name led to dc-west's app, with every order, %s after it succeeded (TTL 5s)",
		so.Status.RTO.Duration, took.Round(10*time.Millisecond))

	// A write on dc-west, shipped in a snapshot; then dc-west goes dark,
	// operators, app and all, and dc-east takes over with the order.
	app, _, err = user.app(ctx)
	if err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	if err := app.Put(ctx, "order-3", "tea for two"); err != nil {
		t.Fatal(err)
	}
	waitReplicaAfter(t, west, ns, "orders-data", written)
	if err := bed.Stop(ctx, testbed.West); err != nil {
		t.Fatal(err)
	}
	dark := time.Now()
	// From now on dc-west's app must never answer: not while it is dark,
	// and not when it thaws with its pod still running, before any of its
	// operators has run a round.
	westApp := testbed.NewAppClient(westNode.HostIP().String())
	westApp.HTTP.Timeout = 300 * time.Millisecond
	probeCtx, stopProbe := context.WithCancel(ctx)
	answered := make(chan string, 1)
	refusals := make(chan int, 1)
	go func() {
		defer close(answered)
		n := 0
		defer func() { refusals <- n }()
		for probeCtx.Err() == nil {
			if v, by, err := westApp.Get(probeCtx, "order-1"); err == nil {
				answered <- fmt.Sprintf("%q from %s at +%s", v, by, time.Since(dark).Round(10*time.Millisecond))
				return
			} else if strings.Contains(err.Error(), "tandem fence") {
				n++
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	waitRole(t, east, ns, tandemv1.RoleActive, testbed.East, 3, 2*time.Minute)
	fo := &tandemv1.Switchover{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-failover-3"}}
	fo = waitSwitchover(t, east, fo, tandemv1.PhaseSucceeded, 2*time.Minute)
	logSteps(t, fo)
	user.waitServedBy(t, eastNode.Name, "order-3", "tea for two", time.Minute)
	if fo.Status.RTO == nil || fo.Status.DataLossWindow == nil {
		t.Fatalf("the failover reported no RTO or data-loss window: %+v", fo.Status)
	}
	t.Logf("failover: dc-east's app served the order written on dc-west %s after dc-west went dark; RTO %s, data-loss window %s",
		time.Since(dark).Round(10*time.Millisecond), fo.Status.RTO.Duration, fo.Status.DataLossWindow.Duration)
	for _, key := range []string{"order-1", "order-2"} {
		if _, by, err := user.get(ctx, key); err != nil {
			t.Fatalf("after the failover %s from %s: %v", key, by, err)
		}
	}

	// dc-west comes back with its app's pod running and its record still
	// saying Active; its fence refuses every request from the first one,
	// and its operators demote it.
	if err := bed.Start(ctx, testbed.West); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	waitRole(t, west, ns, tandemv1.RoleStandby, testbed.East, 3, 2*time.Minute)
	demoted := time.Since(back)
	// Until its pod is gone (parked) the fence is what keeps it quiet.
	if err := testbed.Poll(ctx, time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		n, _, err := replicasOf(ctx, west, ns, "orders")
		return err == nil && n == 0, fmt.Errorf("orders on dc-west: %d replicas, %v", n, err)
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	stopProbe()
	if a, ok := <-answered; ok {
		t.Fatalf("dc-west's app answered after dc-west went dark and came back: %s", a)
	}
	n := <-refusals
	if n == 0 {
		t.Fatal("dc-west's fence never answered after dc-west came back: the probe proves nothing")
	}
	t.Logf("dc-west back: its app refused %d requests with the fence's 503 and answered none; demoted %s after it came back",
		n, demoted.Round(10*time.Millisecond))
}

// checkAuthenticatedMetrics scrapes an operator pod's metrics endpoint as
// Prometheus would: refused without a token, served to a ServiceAccount
// bound to the chart's tandem-metrics-reader role.
func checkAuthenticatedMetrics(t *testing.T, c *testbed.Cluster) {
	t.Helper()
	ctx := context.Background()
	var pods corev1.PodList
	if err := c.Client.List(ctx, &pods, client.InNamespace("tandem-system"), client.MatchingLabels{"app.kubernetes.io/name": "tandem", "app.kubernetes.io/component": "operator"}); err != nil || len(pods.Items) == 0 {
		t.Fatalf("operator pods on %s: %d (%v)", c.Name, len(pods.Items), err)
	}
	url := fmt.Sprintf("https://%s:8443/metrics", pods.Items[0].Status.PodIP)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "tandem-system", Name: "scraper"}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "scraper-tandem-metrics"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "tandem-metrics-reader"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "tandem-system", Name: "scraper"}}}
	for _, obj := range []client.Object{sa, binding} {
		if err := c.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cs.CoreV1().ServiceAccounts("tandem-system").CreateToken(ctx, "scraper",
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The operator serves its metrics with a self-signed certificate.
	httpc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	scrape := func(token string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := httpc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := scrape(""); code != http.StatusUnauthorized {
		t.Errorf("metrics of %s without a token: HTTP %d, want 401", url, code)
	}
	var code int
	var body string
	if err := testbed.Poll(ctx, 30*time.Second, 200*time.Millisecond, func(context.Context) (bool, error) {
		code, body = scrape(tok.Status.Token)
		return code == http.StatusOK, nil
	}); err != nil || !strings.Contains(body, "rest_client_requests_total") {
		t.Fatalf("metrics of %s with the scraper's token: HTTP %d: %.300s", url, code, body)
	}
	t.Logf("metrics of operator pod %s: 401 without a token, 200 for a ServiceAccount bound to tandem-metrics-reader", pods.Items[0].Name)
}

// fenceState is the pair's serving Lease on c and the tail of the fence
// sidecars' logs, for a failed test's report.
func fenceState(c *testbed.Cluster, ns, pair, app string) string {
	ctx := context.Background()
	var b strings.Builder
	var l coordinationv1.Lease
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: fence.ServingLeaseName(pair)}, &l); err != nil {
		fmt.Fprintf(&b, "serving Lease: %v\n", err)
	} else {
		fmt.Fprintf(&b, "serving Lease: %+v (annotations %v)\n", l.Spec, l.Annotations)
	}
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return b.String() + err.Error()
	}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return b.String() + err.Error()
	}
	for _, p := range pods.Items {
		data, err := cs.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: "tandem-fence", TailLines: ptr.To[int64](20)}).DoRaw(ctx)
		fmt.Fprintf(&b, "--- %s (%s, err %v)\n%s\n", p.Name, p.Status.Phase, err, data)
	}
	return b.String()
}

// putThroughFence stores a record once the side's fence has opened: the
// sidecar opens when it sees the serving Lease the active side writes after
// its first round.
func putThroughFence(ctx context.Context, app *testbed.AppClient, key, value string) error {
	return testbed.Poll(ctx, 30*time.Second, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		err := app.Put(ctx, key, value)
		return err == nil, err
	})
}
