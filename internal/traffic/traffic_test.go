package traffic_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/traffic"
	"github.com/tandem-dev/tandem/test/testbed"
)

func record() tandemv1.DNSRecord {
	return tandemv1.DNSRecord{Name: "shop.tandem.test", Type: "A", TTL: 7, DrillName: "drill.shop.tandem.test",
		Targets: []tandemv1.ClusterTargets{{Cluster: "dc-east", Values: []string{"10.0.1.10"}}, {Cluster: "dc-west", Values: []string{"10.0.2.10"}}}}
}

func rfcPair(secretName string) *tandemv1.HAPair {
	return &tandemv1.HAPair{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"},
		Spec: tandemv1.HAPairSpec{Traffic: &tandemv1.TrafficSpec{
			Provider: tandemv1.DNSProviderRFC2136,
			RFC2136: &tandemv1.RFC2136Spec{Servers: []string{"127.0.0.1:1"}, Zone: "tandem.test", TSIGKeyName: "k",
				TSIGSecretRef: tandemv1.SecretKeyRef{Name: secretName, Key: "secret"}},
			DNS: []tandemv1.DNSRecord{record()},
		}},
	}
}

// Load names the field and the Secret when the key cannot be read, never
// the key itself, and refuses a record outside the zone.
func TestLoadNamesTheSecretAndTheField(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "tsig"}, Data: map[string][]byte{"secret": []byte("c2VjcmV0LXZhbHVl")}}
	empty := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "empty"}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(secret, empty).Build()
	ctx := context.Background()

	cfg, err := traffic.Load(ctx, c, rfcPair("tsig"))
	if err != nil || cfg.Key.Secret != "c2VjcmV0LXZhbHVl" || !cfg.RFC2136() || cfg.Zone != "tandem.test" {
		t.Fatalf("Load = %+v, %v", cfg, err)
	}
	for name, want := range map[string]string{
		"missing": "spec.traffic.rfc2136.tsigSecretRef: Secret shop/missing does not exist",
		"empty":   `spec.traffic.rfc2136.tsigSecretRef: Secret shop/empty has no key "secret"`,
	} {
		if _, err := traffic.Load(ctx, c, rfcPair(name)); err == nil || err.Error() != want {
			t.Errorf("Load with Secret %s: %v, want %q", name, err, want)
		}
	}
	outside := rfcPair("tsig")
	outside.Spec.Traffic.DNS[0].Name = "shop.example.com"
	if _, err := traffic.Load(ctx, c, outside); err == nil || !strings.Contains(err.Error(), "spec.traffic.dns[shop.example.com]: the name is not in zone tandem.test") {
		t.Errorf("a record outside the zone: %v", err)
	}
}

// Desired picks the active cluster's values; a cluster without targets is
// named, and so is the record.
func TestDesiredRecords(t *testing.T) {
	cfg := traffic.Config{Records: []tandemv1.DNSRecord{record()}}
	recs, err := traffic.AllDesired(cfg, "dc-west")
	if err != nil || len(recs) != 1 || recs[0].Targets[0] != "10.0.2.10" || recs[0].TTL != 7 {
		t.Fatalf("AllDesired = %+v, %v", recs, err)
	}
	drills, err := traffic.DrillRecords(cfg, "dc-west")
	if err != nil || len(drills) != 1 || drills[0].Name != "drill.shop.tandem.test" || drills[0].Targets[0] != "10.0.2.10" {
		t.Fatalf("DrillRecords = %+v, %v", drills, err)
	}
	if _, err := traffic.AllDesired(cfg, "dc-north"); err == nil || err.Error() != "spec.traffic.dns[shop.tandem.test] has no targets for cluster dc-north" {
		t.Fatalf("AllDesired for an unknown cluster: %v", err)
	}
	if traffic.MaxTTL(cfg) != 7*time.Second {
		t.Fatalf("MaxTTL = %s", traffic.MaxTTL(cfg))
	}
}

// Parking detaches a route and unparking restores exactly what it had.
func TestParkAndUnparkRoutes(t *testing.T) {
	ing := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": map[string]any{"name": "shop", "namespace": "shop"},
		"spec": map[string]any{"ingressClassName": "nginx"},
	}}
	route := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": map[string]any{"name": "shop", "namespace": "shop"},
		"spec": map[string]any{"parentRefs": []any{map[string]any{"name": "public", "sectionName": "https"}}},
	}}
	bare := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": map[string]any{"name": "bare", "namespace": "shop"},
		"spec": map[string]any{},
	}}
	for _, obj := range []*unstructured.Unstructured{ing, route, bare} {
		before := obj.DeepCopy()
		if !traffic.Park(obj) {
			t.Fatalf("%s %s: not parked", obj.GetKind(), obj.GetName())
		}
		if traffic.Park(obj) {
			t.Fatalf("%s %s: parked twice (the second park would lose what it keeps)", obj.GetKind(), obj.GetName())
		}
		switch obj.GetKind() {
		case "Ingress":
			if c, _, _ := unstructured.NestedString(obj.Object, "spec", "ingressClassName"); c != traffic.ParkedIngressClass {
				t.Fatalf("parked Ingress has class %q", c)
			}
		case "HTTPRoute":
			if refs, _, _ := unstructured.NestedSlice(obj.Object, "spec", "parentRefs"); len(refs) != 0 {
				t.Fatalf("parked HTTPRoute keeps parentRefs %v", refs)
			}
		}
		if changed, err := traffic.Unpark(obj); err != nil || !changed {
			t.Fatalf("Unpark: %v %v", changed, err)
		}
		obj.SetAnnotations(before.GetAnnotations())
		if got, want := obj.Object["spec"], before.Object["spec"]; !equalJSON(got, want) {
			t.Fatalf("%s %s after park and unpark: spec %v, want %v", obj.GetKind(), obj.GetName(), got, want)
		}
	}
}

func equalJSON(a, b any) bool {
	return strings.TrimSpace(toJSON(a)) == strings.TrimSpace(toJSON(b))
}

func toJSON(v any) string {
	u := unstructured.Unstructured{Object: map[string]any{"v": v}}
	data, _ := u.MarshalJSON()
	return string(data)
}

// Observe tells which cluster a record points at, at a real BIND, and
// says so when it points at none.
func TestObserveAtBIND(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bind, err := testbed.StartBIND(t.TempDir(), "tandem.test", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bind.Stop)
	cfg := traffic.Config{Records: []tandemv1.DNSRecord{record()}, Servers: []string{bind.Addr}, Zone: "tandem.test",
		Key: traffic.TSIG{Name: bind.KeyName, Secret: bind.Secret}, Provider: tandemv1.DNSProviderRFC2136}
	if seen := traffic.Observe(ctx, cfg); seen[0].Cluster != "" || !seen[0].Absent || !strings.Contains(seen[0].Message, "answer no A record") {
		t.Fatalf("before any update: %+v", seen[0])
	}
	// A server that does not answer: the name is not known to be absent,
	// so the active side must not publish it.
	down := cfg
	down.Servers = append([]string{"127.0.0.1:1"}, cfg.Servers...)
	qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
	if seen := traffic.Observe(qctx, down); seen[0].Absent || len(seen[0].Unreachable) != 1 {
		t.Fatalf("with a server down: %+v", seen[0])
	}
	qcancel()
	west, _ := traffic.AllDesired(cfg, "dc-west")
	if err := traffic.Point(ctx, cfg, west); err != nil {
		t.Fatal(err)
	}
	if seen := traffic.Observe(ctx, cfg); seen[0].Cluster != "dc-west" || seen[0].Absent || seen[0].Answer[0] != "10.0.2.10" {
		t.Fatalf("after pointing at dc-west: %+v", seen[0])
	}
	if pending := traffic.Pending(ctx, cfg, west); len(pending) != 0 {
		t.Fatalf("Pending = %v", pending)
	}
	other := traffic.Record{Name: "shop.tandem.test", Type: "A", Targets: []string{"10.9.9.9"}, TTL: 5}
	if err := traffic.Update(ctx, bind.Addr, "tandem.test", other, cfg.Key); err != nil {
		t.Fatal(err)
	}
	if seen := traffic.Observe(ctx, cfg); seen[0].Cluster != "" || !strings.Contains(seen[0].Message, "[10.9.9.9], which are no cluster's targets") {
		t.Fatalf("pointing at neither: %+v", seen[0])
	}
	if err := traffic.Remove(ctx, cfg, west); err != nil {
		t.Fatal(err)
	}
	if left := traffic.Gone(ctx, cfg, west); len(left) != 0 {
		t.Fatalf("after Remove: %v", left)
	}
}
