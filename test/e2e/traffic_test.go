package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/traffic"
	"github.com/tandem-dev/tandem/test/testbed"
)

const (
	dnsZone   = "example.test"
	shopName  = "shop.example.test"
	drillName = "drill.shop.example.test"
	eastIP    = "10.0.1.10"
	westIP    = "10.0.2.10"
)

// shopRecord is the record the traffic tests move: A shop.example.test,
// 10.0.1.10 while dc-east is active, 10.0.2.10 while dc-west is.
func shopRecord() tandemv1.DNSRecord {
	return tandemv1.DNSRecord{Name: shopName, Type: "A", TTL: 5, DrillName: drillName, Targets: []tandemv1.ClusterTargets{
		{Cluster: testbed.East, Values: []string{eastIP}},
		{Cluster: testbed.West, Values: []string{westIP}},
	}}
}

// answer is what BIND answers for name, as a client of the zone would see
// it when asking the authoritative server.
func answer(t *testing.T, srv testbed.DNSServer, name string) string {
	t.Helper()
	got, err := traffic.Answer(context.Background(), srv.Addr, name, "A")
	if err != nil {
		t.Fatalf("asking BIND for %s: %v", name, err)
	}
	return strings.Join(got, ",")
}

// waitAnswer waits until BIND answers want for name ("" for no answer)
// and returns how long that took.
func waitAnswer(t *testing.T, srv testbed.DNSServer, name, want string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := testbed.Poll(context.Background(), timeout, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		got, err := traffic.Answer(ctx, srv.Addr, name, "A")
		return err == nil && strings.Join(got, ",") == want, fmt.Errorf("BIND answers [%s] for %s (%v), want [%s]", strings.Join(got, ","), name, err, want)
	}); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// watchAnswers records every distinct answer BIND gives for name until
// stopped.
type answerWatch struct {
	mu    sync.Mutex
	seen  map[string]int
	stop  chan struct{}
	done  chan struct{}
	total int
	// changes are the answers in the order they appeared, each time the
	// answer changed.
	changes []string
}

func watchAnswers(srv testbed.DNSServer, name string) *answerWatch {
	w := &answerWatch{seen: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			got, err := traffic.Answer(context.Background(), srv.Addr, name, "A")
			key := strings.Join(got, ",")
			if err != nil {
				key = "error: " + err.Error()
			}
			w.mu.Lock()
			w.seen[key]++
			w.total++
			if n := len(w.changes); n == 0 || w.changes[n-1] != key {
				w.changes = append(w.changes, key)
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *answerWatch) finish() (map[string]int, int) {
	close(w.stop)
	<-w.done
	return w.seen, w.total
}

// sequence is the answers in the order they appeared.
func (w *answerWatch) sequence() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string{}, w.changes...)
}

func trafficReady(ctx context.Context, c *testbed.Cluster, ns string) (*metav1.Condition, *tandemv1.HAPair, error) {
	p, err := getPair(ctx, c, ns)
	if err != nil {
		return nil, nil, err
	}
	return findCond(p.Status.Conditions, tandemv1.TrafficReadyCondition), p, nil
}

func waitTrafficReady(t *testing.T, c *testbed.Cluster, ns string, status metav1.ConditionStatus, reason, says string) *metav1.Condition {
	t.Helper()
	var cond *metav1.Condition
	if err := testbed.Poll(context.Background(), time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		var err error
		cond, _, err = trafficReady(ctx, c, ns)
		if err != nil {
			return false, err
		}
		return cond != nil && cond.Status == status && cond.Reason == reason && strings.Contains(cond.Message, says),
			fmt.Errorf("TrafficReady on %s = %+v", c.Name, cond)
	}); err != nil {
		t.Fatal(err)
	}
	return cond
}

// upDNSBed is upPairBed with the test bed's BIND serving dnsZone.
func upDNSBed(t *testing.T) (*testbed.Bed, map[string]*testbed.Cluster, testbed.DNSServer) {
	t.Helper()
	bed, clusters := upPairBed(t, false)
	srv, err := bed.StartDNS(dnsZone)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bed.StopDNS() })
	return bed, clusters, srv
}

// Through external-dns: each data center runs its own two instances
// (owner ids dc-east and dc-west) against BIND. The name follows an
// isolated drill (drill name only), a planned switchover and back, and a
// failover with dc-east dead; dc-east coming back, with its external-dns
// and its old DNSEndpoint, never changes the answer.
func TestTrafficFollowsTheActiveSideThroughExternalDNS(t *testing.T) {
	ctx := context.Background()
	bed, clusters, srv := upDNSBed(t)
	east, west := clusters[testbed.East], clusters[testbed.West]
	const interval = time.Second
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, dc := range []string{testbed.East, testbed.West} {
			for _, comp := range []string{"external-dns", "external-dns-flip"} {
				t.Logf("%s %s, log tail:\n%s", dc, comp, bed.ExternalDNSLog(dc, comp))
			}
		}
	})
	for _, side := range [][2]string{{testbed.East, testbed.West}, {testbed.West, testbed.East}} {
		if err := bed.StartExternalDNS(ctx, side[0], testbed.ExternalDNSOptions{DNS: srv, Interval: interval}); err != nil {
			t.Fatal(err)
		}
	}
	const ns = "shop"
	// The shop's Ingress, served by dc-east's ingress controller (class
	// nginx), is a route of the pair: enabled only on the active side.
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: networkingv1.IngressSpec{IngressClassName: ptrTo("nginx"), DefaultBackend: &networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}
	if err := east.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	if err := east.Client.Create(ctx, ing); err != nil {
		t.Fatal(err)
	}
	twoSidedPair(t, clusters, pairOptions{ns: ns, mode: tandemv1.FailoverAutomatic, witness: true, traffic: &tandemv1.TrafficSpec{
		Provider:    tandemv1.DNSProviderExternalDNS,
		ExternalDNS: &tandemv1.ExternalDNSSpec{VerifyServers: []string{srv.Addr}},
		DNS:         []tandemv1.DNSRecord{shopRecord()},
		Routes:      []tandemv1.RouteRef{{Kind: "Ingress", Namespace: ns, Name: "web"}},
	}})
	ops := startOperators(t, east, west)
	waitRole(t, east, ns, tandemv1.RoleActive, testbed.East, 1, time.Minute)
	waitIngressClasses(t, east, west, ns, "nginx", traffic.ParkedIngressClass)
	published := waitAnswer(t, srv, shopName, eastIP, time.Minute)
	waitTrafficReady(t, east, ns, metav1.ConditionTrue, tandemv1.PointsAtActiveReason, "dc-east's targets at every authoritative server")
	waitTrafficReady(t, west, ns, metav1.ConditionTrue, tandemv1.PointsAtActiveReason, "dc-east's targets at every authoritative server")
	t.Logf("dc-east's DNSEndpoint answered at BIND within %s of dc-east reporting Active", published.Round(10*time.Millisecond))
	waitSynced(t, east, ns)

	// An isolated drill publishes the drill name at dc-west's address and
	// removes it; the production name never moves.
	watch := watchAnswers(srv, shopName)
	drillWatch := watchAnswers(srv, drillName)
	drill := switchoverTo(t, east, ns, "rehearsal", tandemv1.SwitchoverDrill, testbed.West, &tandemv1.DrillOptions{Mode: tandemv1.DrillIsolated})
	waitAnswer(t, srv, drillName, westIP, time.Minute)
	drill = waitSwitchover(t, east, drill, tandemv1.PhaseSucceeded, 2*time.Minute)
	drillWatch.finish()
	if seq := drillWatch.sequence(); strings.Join(seq, " -> ") != " -> "+westIP+" -> " {
		t.Fatalf("the drill name answered, in order: %q; want nothing, dc-west's address once, nothing", seq)
	}
	if got := answer(t, srv, drillName); got != "" {
		t.Fatalf("after the drill BIND still answers [%s] for %s", got, drillName)
	}
	seen, total := watch.finish()
	if len(seen) != 1 || seen[eastIP] != total {
		t.Fatalf("the production name changed during the drill: answers %v", seen)
	}
	t.Logf("isolated drill: %s; %s (production name answered %s in all %d samples)",
		stepMessage(drill, "PublishDrillName"), stepMessage(drill, "WithdrawDrillName"), eastIP, total)

	// Planned switchover to dc-west and back.
	for i, to := range []struct {
		on     *testbed.Cluster
		target string
		ip     string
	}{{east, testbed.West, westIP}, {west, testbed.East, eastIP}} {
		flip := watchAnswers(srv, shopName)
		so := switchoverTo(t, to.on, ns, fmt.Sprintf("planned-%d", i), tandemv1.SwitchoverPlanned, to.target, nil)
		so = waitSwitchover(t, to.on, so, tandemv1.PhaseSucceeded, 2*time.Minute)
		flip.finish()
		if seq := flip.sequence(); len(seq) != 2 || seq[1] != to.ip {
			t.Fatalf("during the switchover to %s the name answered, in order: %q; want one change, to %s", to.target, seq, to.ip)
		}
		noFlipEndpoints(t, ns, east, west)
		checkOwnership(t, srv, shopName)
		if got := answer(t, srv, shopName); got != to.ip {
			t.Fatalf("after the planned switchover to %s BIND answers [%s], want %s", to.target, got, to.ip)
		}
		rep := so.Status.Report
		if rep == nil || rep.TrafficMovedTime == nil || rep.ClientsFollowBy == nil || rep.ClientsFollowBy.Sub(rep.TrafficMovedTime.Time) != 5*time.Second {
			t.Fatalf("report %+v: want the time traffic moved and that time plus the TTL of 5s", rep)
		}
		t.Logf("planned switchover to %s: RTO %s; FlipTraffic: %s", to.target, so.Status.RTO.Duration, stepMessage(so, "FlipTraffic"))
		waitSynced(t, clusters[to.target], ns)
		if to.target == testbed.West {
			waitIngressClasses(t, east, west, ns, traffic.ParkedIngressClass, "nginx")
		} else {
			waitIngressClasses(t, east, west, ns, "nginx", traffic.ParkedIngressClass)
		}
	}

	// dc-east, active again, dies with its operator and external-dns.
	ops[testbed.East].Kill()
	if err := bed.Stop(ctx, testbed.East); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	waitRole(t, west, ns, tandemv1.RoleActive, testbed.West, 4, 2*time.Minute)
	waitAnswer(t, srv, shopName, westIP, 2*time.Minute)
	moved := time.Since(lost)
	var so tandemv1.Switchover
	if err := west.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-failover-4"}, &so); err != nil {
		t.Fatal(err)
	}
	waitSwitchover(t, west, &so, tandemv1.PhaseSucceeded, time.Minute)
	t.Logf("failover: BIND answers dc-west %s after dc-east went dark (RTO %s); FlipTraffic: %s",
		moved.Round(10*time.Millisecond), so.Status.RTO.Duration, stepMessage(&so, "FlipTraffic"))

	// dc-east comes back: its external-dns starts with its old DNSEndpoint
	// still there, then its operator demotes it. The name stays with
	// dc-west throughout, over several of external-dns's intervals.
	watch = watchAnswers(srv, shopName)
	if err := bed.Start(ctx, testbed.East); err != nil {
		t.Fatal(err)
	}
	if err := ops[testbed.East].Restart(); err != nil {
		t.Fatal(err)
	}
	waitRole(t, east, ns, tandemv1.RoleStandby, testbed.West, 4, 2*time.Minute)
	time.Sleep(3 * interval)
	seen, total = watch.finish()
	if len(seen) != 1 || seen[westIP] != total {
		t.Fatalf("dc-east coming back changed the answer: %v", seen)
	}
	noFlipEndpoints(t, ns, east, west)
	checkOwnership(t, srv, shopName)
	waitTrafficReady(t, east, ns, metav1.ConditionTrue, tandemv1.PointsAtActiveReason, "dc-west's targets at every authoritative server")
	waitIngressClasses(t, east, west, ns, traffic.ParkedIngressClass, "nginx")
	t.Logf("dc-east back and demoted: BIND answered %s in all %d samples over %s", westIP, total, 3*interval)

	// The platform team narrows dc-west's grant to the production name: the
	// active side publishes nothing more, says which name is not granted,
	// and kstatus reads the pair as Failed until the grant is back. What
	// is published stays: withdrawing a grant stops pointing, not serving.
	if err := testbed.GrantDNSNames(ctx, west.Client, ns, shopName); err != nil {
		t.Fatal(err)
	}
	waitTrafficReady(t, west, ns, metav1.ConditionFalse, tandemv1.NotGrantedReason,
		"spec.traffic.dns["+shopName+"]: "+drillName+" is not granted to the pairs of namespace shop")
	narrowed, err := getPair(ctx, west, ns)
	if err != nil {
		t.Fatal(err)
	}
	if got := kstatusOf(t, narrowed); got.Status != kstatus.FailedStatus {
		t.Fatalf("with a name beyond the grant kstatus reads the pair %s (%s), want Failed", got.Status, got.Message)
	}
	if got := answer(t, srv, shopName); got != westIP {
		t.Fatalf("narrowing the grant changed the answer to [%s]", got)
	}
	if err := testbed.GrantDNSNames(ctx, west.Client, ns, shopName, drillName); err != nil {
		t.Fatal(err)
	}
	waitTrafficReady(t, west, ns, metav1.ConditionTrue, tandemv1.PointsAtActiveReason, "dc-west's targets at every authoritative server")
}

// Through RFC 2136, without external-dns: Tandem sends the updates. A
// wrong TSIG key leaves the record as it was and says why; a planned
// switchover and a failover move the name, and the old side coming back
// does not move it back.
func TestTrafficThroughRFC2136(t *testing.T) {
	ctx := context.Background()
	bed, clusters, srv := upDNSBed(t)
	east, west := clusters[testbed.East], clusters[testbed.West]
	const ns = "shop"
	twoSidedPair(t, clusters, pairOptions{ns: ns, mode: tandemv1.FailoverAutomatic, witness: true, tsigSecret: srv.Secret,
		traffic: &tandemv1.TrafficSpec{
			Provider: tandemv1.DNSProviderRFC2136,
			RFC2136: &tandemv1.RFC2136Spec{Servers: []string{srv.Addr}, Zone: dnsZone, TSIGKeyName: srv.KeyName,
				TSIGSecretRef: tandemv1.SecretKeyRef{Name: "tandem-tsig", Key: "secret"}},
			DNS: []tandemv1.DNSRecord{shopRecord()},
		}})
	ops := startOperators(t, east, west)
	waitRole(t, east, ns, tandemv1.RoleActive, testbed.East, 1, time.Minute)
	waitAnswer(t, srv, shopName, eastIP, time.Minute)
	waitTrafficReady(t, east, ns, metav1.ConditionTrue, tandemv1.PointsAtActiveReason, "dc-east's targets at every authoritative server")
	waitSynced(t, east, ns)

	// A wrong key on both sides: the planned switchover's flip is refused,
	// the switchover rolls back, and BIND still answers dc-east.
	wrong := "d3JvbmcgdHNpZyBrZXkgb2YgdGhpcnR5LXR3byBieXRlcyEhIQ=="
	setTSIG := func(secret string) {
		for _, c := range []*testbed.Cluster{east, west} {
			s := &corev1.Secret{}
			if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "tandem-tsig"}, s); err != nil {
				t.Fatal(err)
			}
			s.Data["secret"] = []byte(secret)
			if err := c.Client.Update(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	setTSIG(wrong)
	so := switchoverTo(t, east, ns, "planned-wrong-key", tandemv1.SwitchoverPlanned, testbed.West, nil)
	so = waitSwitchover(t, east, so, tandemv1.PhaseRolledBack, 3*time.Minute)
	flip := stepMessage(so, "FlipTraffic")
	if !strings.Contains(flip, "TSIG key") || strings.Contains(flip, wrong) || strings.Contains(flip, srv.Secret) {
		t.Fatalf("FlipTraffic says %q; want the refusal explained, without the key", flip)
	}
	if got := answer(t, srv, shopName); got != eastIP {
		t.Fatalf("after the refused flip BIND answers [%s], want dc-east's %s", got, eastIP)
	}
	waitRole(t, east, ns, tandemv1.RoleActive, testbed.East, 1, time.Minute)
	t.Logf("wrong TSIG key: Switchover %s; FlipTraffic: %s", so.Status.Phase, flip)

	// The record gone and the key still wrong: the active side cannot put
	// it back, and TrafficReady says why.
	if err := traffic.Delete(ctx, srv.Addr, dnsZone, traffic.Record{Name: shopName, Type: "A"}, traffic.TSIG{Name: srv.KeyName, Secret: srv.Secret}); err != nil {
		t.Fatal(err)
	}
	cond := waitTrafficReady(t, east, ns, metav1.ConditionFalse, tandemv1.DNSUpdateFailedReason, "TSIG key")
	if strings.Contains(cond.Message, wrong) {
		t.Fatalf("TrafficReady prints the key: %s", cond.Message)
	}
	if got := answer(t, srv, shopName); got != "" {
		t.Fatalf("BIND answers [%s] after an update with a wrong key", got)
	}
	t.Logf("wrong TSIG key, record missing: TrafficReady %s %s: %s", cond.Status, cond.Reason, cond.Message)
	setTSIG(srv.Secret)
	waitAnswer(t, srv, shopName, eastIP, time.Minute)
	waitSynced(t, east, ns)

	// Planned switchover to dc-west.
	so = switchoverTo(t, east, ns, "planned", tandemv1.SwitchoverPlanned, testbed.West, nil)
	so = waitSwitchover(t, east, so, tandemv1.PhaseSucceeded, 2*time.Minute)
	if got := answer(t, srv, shopName); got != westIP {
		t.Fatalf("after the planned switchover BIND answers [%s], want %s", got, westIP)
	}
	t.Logf("planned switchover to dc-west: FlipTraffic: %s", stepMessage(so, "FlipTraffic"))
	waitSynced(t, west, ns)

	// dc-west dies; dc-east takes over and points the name back at itself.
	ops[testbed.West].Kill()
	if err := bed.Stop(ctx, testbed.West); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	waitRole(t, east, ns, tandemv1.RoleActive, testbed.East, 3, 2*time.Minute)
	waitAnswer(t, srv, shopName, eastIP, 2*time.Minute)
	var fo tandemv1.Switchover
	if err := east.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-failover-3"}, &fo); err != nil {
		t.Fatal(err)
	}
	waitSwitchover(t, east, &fo, tandemv1.PhaseSucceeded, time.Minute)
	t.Logf("failover to dc-east: BIND answers dc-east %s after dc-west went dark; FlipTraffic: %s",
		time.Since(lost).Round(10*time.Millisecond), stepMessage(&fo, "FlipTraffic"))

	watch := watchAnswers(srv, shopName)
	if err := bed.Start(ctx, testbed.West); err != nil {
		t.Fatal(err)
	}
	if err := ops[testbed.West].Restart(); err != nil {
		t.Fatal(err)
	}
	waitRole(t, west, ns, tandemv1.RoleStandby, testbed.East, 3, 2*time.Minute)
	time.Sleep(3 * time.Second)
	seen, total := watch.finish()
	if len(seen) != 1 || seen[eastIP] != total {
		t.Fatalf("dc-west coming back changed the answer: %v", seen)
	}
	t.Logf("dc-west back and demoted: BIND answered %s in all %d samples", eastIP, total)
}

// waitIngressClasses waits until the Ingress web has class eastClass on
// dc-east and westClass on dc-west: the parked class on the side that does
// not serve.
func waitIngressClasses(t *testing.T, east, west *testbed.Cluster, ns, eastClass, westClass string) {
	t.Helper()
	if err := testbed.Poll(context.Background(), time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		var got []string
		for _, c := range []*testbed.Cluster{east, west} {
			var ing networkingv1.Ingress
			if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &ing); err != nil {
				return false, fmt.Errorf("Ingress on %s: %w", c.Name, err)
			}
			class := ""
			if ing.Spec.IngressClassName != nil {
				class = *ing.Spec.IngressClassName
			}
			got = append(got, class)
		}
		return got[0] == eastClass && got[1] == westClass, fmt.Errorf("Ingress class on dc-east %q, on dc-west %q", got[0], got[1])
	}); err != nil {
		t.Fatalf("want class %q on dc-east and %q on dc-west: %v", eastClass, westClass, err)
	}
}

// noFlipEndpoints fails unless neither cluster holds a flip endpoint: one
// left behind could move the name some day.
func noFlipEndpoints(t *testing.T, ns string, clusters ...*testbed.Cluster) {
	t.Helper()
	for _, c := range clusters {
		ep := &unstructured.Unstructured{}
		ep.SetGroupVersionKind(traffic.DNSEndpointGVK)
		err := c.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: traffic.EndpointName("shop", traffic.Flip)}, ep)
		if err == nil {
			t.Fatalf("%s still has the flip endpoint %s", c.Name, ep.GetName())
		}
	}
}

// checkOwnership fails unless the name's external-dns ownership record is
// a single TXT owned by the flip instances' shared owner id: no stale
// record naming a data center that a returning side could take for its own.
func checkOwnership(t *testing.T, srv testbed.DNSServer, name string) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn("a-"+name), dns.TypeTXT)
	m.RecursionDesired = false
	resp, err := dns.Exchange(m, srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	var txts []string
	for _, rr := range resp.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			txts = append(txts, strings.Join(txt.Txt, ""))
		}
	}
	if len(txts) != 1 || !strings.Contains(txts[0], "external-dns/owner="+testbed.FlipOwnerID+",") {
		t.Fatalf("ownership TXT records of %s: %q; want exactly one, owned by %q", name, txts, testbed.FlipOwnerID)
	}
}

func stepMessage(so *tandemv1.Switchover, step string) string {
	for _, s := range so.Status.Steps {
		if s.Name == step {
			return fmt.Sprintf("%s (%s)", s.Message, s.Phase)
		}
	}
	return "no step " + step
}
