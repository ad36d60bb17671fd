package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tandem-dev/tandem/test/testbed"
)

// requireRealNode skips a test on a machine that cannot run a real node,
// saying why; CI machines can.
func requireRealNode(t *testing.T) {
	t.Helper()
	if err := testbed.RealNodeSupport(); err != nil {
		t.Skipf("no real node on this machine: %v", err)
	}
}

// deployApp creates the test bed's app in ns on cluster c and returns the
// first of its pods once it runs (not Ready: its volume holds no data yet).
func deployApp(t *testing.T, c *testbed.Cluster, ns, name string, o testbed.AppOptions) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	if err := c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); client.IgnoreAlreadyExists(err) != nil {
		t.Fatal(err)
	}
	objs, err := testbed.Decode(testbed.AppObjects(ns, name, 1, o))
	if err != nil {
		t.Fatal(err)
	}
	if err := testbed.ApplyObjects(ctx, c.Client, objs); err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	err = testbed.Poll(ctx, 60*time.Second, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := c.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": name}); err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
				pod = p
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("app %s/%s on %s never ran: %v", ns, name, c.Name, err)
	}
	return &pod
}

// The app runs as a real container on dc-east's real node, keeps its
// records on a real CSI volume mounted by the kubelet, is not Ready until
// the volume holds its data, and goes dark and comes back with its data
// center.
func TestRealNodeServesTheAppFromItsVolume(t *testing.T) {
	requireRealNode(t)
	ctx := context.Background()
	bed, clusters := upBed(t, testbed.UpOptions{Nodes: 1, Storage: true, RealNodes: true})
	east := clusters[testbed.East]
	start := time.Now()
	pod := deployApp(t, east, "shop", "orders", testbed.AppOptions{})
	t.Logf("app pod %s running on %s at %s, %.1fs after it was created", pod.Name, pod.Spec.NodeName, pod.Status.PodIP, time.Since(start).Seconds())
	if pod.Spec.NodeName != testbed.East+"-real" {
		t.Fatalf("app pod on node %s, want the real node", pod.Spec.NodeName)
	}
	app := testbed.NewAppClient(pod.Status.PodIP)

	// An empty volume: the app answers, but will not call itself Ready.
	if _, err := testbed.AppPodIP(ctx, east.Client, "shop", "orders"); err == nil {
		t.Fatal("the app is Ready on a volume without its data")
	}
	if err := app.Put(ctx, "order-1", "2 coffees"); err != nil {
		t.Fatal(err)
	}
	if err := testbed.Poll(ctx, 20*time.Second, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		_, err := testbed.AppPodIP(ctx, east.Client, "shop", "orders")
		return err == nil, nil
	}); err != nil {
		t.Fatalf("the app did not become Ready once its data was written: %v", err)
	}
	got, node, err := app.Get(ctx, "order-1")
	if err != nil || got != "2 coffees" || node != testbed.East+"-real" {
		t.Fatalf("GET order-1 = %q from %q (%v), want \"2 coffees\" from the real node", got, node, err)
	}

	// The bytes are on the CSI volume, where snapshots copy them from.
	var pvc corev1.PersistentVolumeClaim
	if err := east.Client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "orders-data"}, &pvc); err != nil {
		t.Fatal(err)
	}
	var pv corev1.PersistentVolume
	if err := east.Client.Get(ctx, client.ObjectKey{Name: pvc.Spec.VolumeName}, &pv); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(filepath.Join(bed.VolumeDir(testbed.East, pv.Spec.CSI.VolumeHandle), "records", "order-1"))
	if err != nil || string(onDisk) != "2 coffees" {
		t.Fatalf("record on the CSI volume = %q (%v)", onDisk, err)
	}

	// The data center goes dark: its app stops answering (a client holding
	// a connection times out, a new connection finds no route), and comes
	// back with it.
	if err := bed.Stop(ctx, testbed.East); err != nil {
		t.Fatal(err)
	}
	if _, _, err := app.Get(ctx, "order-1"); err == nil {
		t.Fatal("the app of a dark data center answered")
	}
	if _, _, err := testbed.NewAppClient(pod.Status.PodIP).Get(ctx, "order-1"); err == nil {
		t.Fatal("the app of a dark data center answered a new connection")
	}
	if err := bed.Start(ctx, testbed.East); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	if err := testbed.Poll(ctx, 30*time.Second, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		got, _, err := app.Get(ctx, "order-1")
		return err == nil && got == "2 coffees", nil
	}); err != nil {
		t.Fatalf("the app did not serve again after its data center came back: %v", err)
	}
	t.Logf("the app served again %.1fs after its data center came back", time.Since(back).Seconds())
}

// No packet for a pod address is routed off the machine: not while the
// node's bridge is up, not while it is down, not while the node is dark,
// and not for a pod address no node has. Pods themselves have no route
// beyond their subnet.
func TestPodTrafficNeverLeavesTheMachine(t *testing.T) {
	requireRealNode(t)
	ctx := context.Background()
	bed, clusters := upBed(t, testbed.UpOptions{Nodes: 1, Storage: true, RealNodes: true})
	east := clusters[testbed.East]
	node, err := bed.Node(testbed.East)
	if err != nil || node == nil {
		t.Fatalf("no real node in dc-east: %v", err)
	}
	pod := deployApp(t, east, "net", "probe", testbed.AppOptions{})
	gateway := defaultGateway(t)

	// routeOf says how the kernel would send a packet to addr, failing the
	// test if that is through the default gateway.
	routeOf := func(when, addr string) string {
		t.Helper()
		out, _ := exec.Command("ip", "route", "get", addr).CombinedOutput()
		route := strings.TrimSpace(string(out))
		if (gateway != "" && strings.Contains(route, "via "+gateway)) || strings.Contains(route, "dev "+defaultDevice(t)) {
			t.Errorf("%s: a packet to %s would leave the machine: %s", when, addr, route)
		}
		t.Logf("%s: ip route get %s: %s", when, addr, route)
		return route
	}
	// The check sees a route through the gateway where there is one.
	if out, _ := exec.Command("ip", "route", "get", "1.1.1.1").CombinedOutput(); gateway != "" && !strings.Contains(string(out), "via "+gateway) {
		t.Fatalf("the check cannot recognise the default route: ip route get 1.1.1.1: %s", out)
	}
	if r := routeOf("bridge up", pod.Status.PodIP); !strings.Contains(r, "dev "+node.Bridge()) {
		t.Errorf("a packet to the pod goes %q, want through its bridge %s", r, node.Bridge())
	}
	routeOf("an address no node has", "10.244.254.7")

	if out, err := exec.Command("ip", "link", "set", node.Bridge(), "down").CombinedOutput(); err != nil {
		t.Fatalf("taking the bridge down: %v: %s", err, out)
	}
	if r := routeOf("bridge down", pod.Status.PodIP); strings.Contains(r, "dev ") {
		t.Errorf("with its bridge down, a packet to the pod is still routed: %s", r)
	}
	if out, err := exec.Command("ip", "link", "set", node.Bridge(), "up").CombinedOutput(); err != nil {
		t.Fatalf("bringing the bridge up: %v: %s", err, out)
	}
	if err := bed.Stop(ctx, testbed.East); err != nil {
		t.Fatal(err)
	}
	if r := routeOf("node dark", pod.Status.PodIP); strings.Contains(r, "dev ") {
		t.Errorf("with its node dark, a packet to the pod is still routed: %s", r)
	}
	if err := bed.Start(ctx, testbed.East); err != nil {
		t.Fatal(err)
	}
	if r := routeOf("node back", pod.Status.PodIP); !strings.Contains(r, "dev "+node.Bridge()) {
		t.Errorf("after the node came back, a packet to the pod goes %q, want through %s", r, node.Bridge())
	}

	// Inside the pod: no route off the pod range; the range itself goes to
	// the node's host address, where the blackhole above takes whatever no
	// bridge claims.
	pid, err := node.PodPID(string(pod.UID))
	if err != nil {
		t.Fatal(err)
	}
	inPod := func(addr string) (string, error) {
		out, err := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-n", "ip", "route", "get", addr).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	for _, addr := range []string{node.HostIP().String(), "10.244.254.7"} {
		if r, err := inPod(addr); err != nil || !strings.Contains(r, node.HostIP().String()) {
			t.Errorf("in the pod, %s is routed %q (%v), want to its node %s", addr, r, err, node.HostIP())
		}
	}
	for _, addr := range []string{gatewayOr(gateway, "192.0.2.1"), "1.1.1.1"} {
		if r, err := inPod(addr); err == nil {
			t.Errorf("the pod has a route to %s: %s", addr, r)
		}
	}
}

// defaultGateway is the host's default gateway, "" when it has none.
func defaultGateway(t *testing.T) string { return defaultRouteField(t, "via", "") }

// defaultDevice is the interface of the host's default route.
func defaultDevice(t *testing.T) string { return defaultRouteField(t, "dev", "(none)") }

// defaultRouteField is the word after key in the host's default route, or
// def.
func defaultRouteField(t *testing.T, key, def string) string {
	t.Helper()
	out, err := exec.Command("ip", "route", "show", "default").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == key {
			return f[i+1]
		}
	}
	return def
}

func gatewayOr(gw, def string) string {
	if gw != "" {
		return gw
	}
	return def
}
