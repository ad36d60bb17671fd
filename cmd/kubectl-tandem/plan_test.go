package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/replicate"
	"github.com/tandem-dev/tandem/test/testbed"
)

var (
	server     *testbed.APIServer
	kubeconfig string
)

func TestMain(m *testing.M) {
	s, err := testbed.StartAPIServer(context.Background(), "plugin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server = s
	dir, _ := os.MkdirTemp("", "kubectl-tandem-")
	kc, err := s.Kubeconfig()
	if err == nil {
		kubeconfig = filepath.Join(dir, "kubeconfig")
		err = os.WriteFile(kubeconfig, kc, 0o600)
	}
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	_ = s.Stop()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

const shop = `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Secret
metadata: {name: dc-west-kubeconfig, namespace: shop}
stringData: {kubeconfig: "not copied"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config, namespace: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {zone: east}
      containers: [{name: web, image: registry.east.example.com/web:1, envFrom: [{configMapRef: {name: config}}, {secretRef: {name: absent}}]}]
---
apiVersion: tandem.dev/v1alpha1
kind: HAPair
metadata: {name: shop, namespace: shop}
spec:
  clusters:
  - {name: dc-east}
  - {name: dc-west, kubeconfigSecretRef: {name: dc-west-kubeconfig}}
  primary: dc-east
  syncPolicyRefs: [{name: app}]
---
apiVersion: tandem.dev/v1alpha1
kind: SyncPolicy
metadata: {name: app, namespace: shop}
spec:
  namespaces: {names: [shop]}
  transforms:
    imageRegistries: [{from: registry.east.example.com, to: registry.west.example.com}]
    removeFields: [{target: {group: apps, kind: Deployment}, paths: [spec.template.spec.nodeSelector]}]
`

func setup(t *testing.T) {
	t.Helper()
	for _, u := range testbed.MustDecode(t, shop) {
		if err := server.Client.Create(context.Background(), u); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
	}
}

func runPlugin(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runPluginErr(args...)
	if err != nil {
		t.Fatalf("kubectl tandem %v: %v", args, err)
	}
	return out
}

// runPluginErr runs the plugin against the test's API server: what it
// printed, and its error with what it wrote to stderr.
func runPluginErr(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	cmd := newRootCommand(genericiooptions.IOStreams{Out: &out, ErrOut: &errOut})
	cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig}, args...))
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		return out.String(), fmt.Errorf("%w\n%s", err, errOut.String())
	}
	return out.String(), nil
}

func TestPlanTable(t *testing.T) {
	setup(t)
	got := runPlugin(t, "plan", "app", "-n", "shop")
	want := `SyncPolicy shop/app for HAPair shop: 3 objects in 3 waves, standby mode Warm

WAVE  OBJECT                    CHANGES
1     Namespace shop            
2     ConfigMap shop/config     
3     Deployment.apps shop/web  replicas 3 -> 0 (warm standby; restored on promotion); image registry.east.example.com/web:1 -> registry.west.example.com/web:1; removed spec.template.spec.nodeSelector

Dependencies not selected (assumed present on the standby):
  Deployment.apps shop/web needs Secret shop/absent (pod template: secret)
`
	if got != want {
		t.Fatalf("kubectl tandem plan printed:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlanJSON(t *testing.T) {
	setup(t)
	var p replicate.Preview
	if err := json.Unmarshal([]byte(runPlugin(t, "plan", "app", "-n", "shop", "-o", "json")), &p); err != nil {
		t.Fatal(err)
	}
	if p.Waves != 3 || len(p.Items) != 3 || p.Items[2].Ref.Kind != "Deployment" || len(p.Missing) != 1 {
		t.Fatalf("preview = %+v", p)
	}
}

func TestPlanUnknownPolicy(t *testing.T) {
	_, err := runPluginErr("plan", "nope", "-n", "shop")
	if err == nil || !strings.Contains(err.Error(), "reading SyncPolicy shop/nope") {
		t.Fatalf("want an error naming the SyncPolicy, got %v", err)
	}
}

// setPairStatus writes the status of HAPair shop/name, as its operator
// would.
func setPairStatus(t *testing.T, name string, st tandemv1.HAPairStatus) {
	t.Helper()
	ctx := context.Background()
	var pair tandemv1.HAPair
	if err := server.Client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: name}, &pair); err != nil {
		t.Fatal(err)
	}
	pair.Status = st
	if err := server.Client.Status().Update(ctx, &pair); err != nil {
		t.Fatal(err)
	}
}

// status prints a pair's state in a fixed layout; times are absolute.
func TestStatusTable(t *testing.T) {
	setup(t)
	at := metav1.NewTime(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	setPairStatus(t, "shop", tandemv1.HAPairStatus{
		ActiveCluster: "dc-east", StandbyCluster: "dc-west", Epoch: 3, LocalRole: tandemv1.RoleActive,
		Peer: &tandemv1.PeerStatus{Cluster: "dc-west", Reachable: true, LastProbeTime: &at, LastSuccessTime: &at},
		Sync: &tandemv1.SyncSummary{Selected: 3, InSync: 3, LastFullSync: &at, Lag: &metav1.Duration{Duration: 12 * time.Millisecond}},
		Volumes: &tandemv1.VolumeSummary{ProtectedPVCs: 2, CurrentRPO: &metav1.Duration{Duration: 8 * time.Second},
			Claims: []tandemv1.ClaimProtection{{Namespace: "shop", Name: "orders", RPO: &metav1.Duration{Duration: 8 * time.Second}}},
			Kept:   []tandemv1.KeptSnapshot{{Namespace: "shop", Name: "orders-kept-1a2b", Claim: "orders", CreationTime: at, ReadyToUse: true}}},
		Traffic: &tandemv1.TrafficStatus{Records: []tandemv1.DNSRecordStatus{
			{Name: "shop.example.com", Cluster: "dc-east", Answer: []string{"192.0.2.10"}, ObservedTime: &at}}},
		LastSwitchover: &tandemv1.SwitchoverSummary{Name: "to-east", Type: tandemv1.SwitchoverPlanned, Phase: tandemv1.PhaseSucceeded,
			CompletionTime: &at, RTO: &metav1.Duration{Duration: 843 * time.Millisecond}},
		Conditions: []metav1.Condition{
			{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Succeeded", Message: "3 objects in sync on dc-west", LastTransitionTime: at},
			{Type: "PeerReachable", Status: metav1.ConditionTrue, Reason: "PeerConnected", Message: "dc-west answers its probes", LastTransitionTime: at},
		},
	})
	got := runPlugin(t, "status", "shop", "-n", "shop")
	want := `HAPair           shop/shop
Roles            dc-east active, dc-west standby, epoch 3; this cluster is Active
Peer             dc-west reachable, last answered 2026-11-21T12:00:00Z
Sync             3 selected, 3 in sync, 0 out of sync, 0 failed; lag 12ms; last full sync 2026-11-21T12:00:00Z
RPO              8s, the worst of 2 protected PVCs
Kept snapshots   1 of retired PVCs on this cluster, newest shop/orders-kept-1a2b (of PVC orders)
DNS              shop.example.com: answers dc-east's targets [192.0.2.10], seen 2026-11-21T12:00:00Z
Last switchover  to-east (Planned) Succeeded, RTO 843ms, 2026-11-21T12:00:00Z
Last drill       -
Next drill       -

CONDITION      STATUS  REASON         MESSAGE
Ready          True    Succeeded      3 objects in sync on dc-west
PeerReachable  True    PeerConnected  dc-west answers its probes
`
	if got != want {
		t.Fatalf("kubectl tandem status printed:\n%s\nwant:\n%s", got, want)
	}
	var fromJSON tandemv1.HAPair
	if err := json.Unmarshal([]byte(runPlugin(t, "status", "shop", "-n", "shop", "-o", "json")), &fromJSON); err != nil || fromJSON.Status.Epoch != 3 {
		t.Fatalf("status -o json: epoch %d, %v", fromJSON.Status.Epoch, err)
	}
}

// report prints a finished Switchover's steps and measurements.
func TestReportTable(t *testing.T) {
	setup(t)
	ctx := context.Background()
	so := &tandemv1.Switchover{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "to-west"},
		Spec:       tandemv1.SwitchoverSpec{PairRef: "shop", Type: tandemv1.SwitchoverPlanned, TargetCluster: "dc-west"},
	}
	if err := server.Client.Create(ctx, so); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	mt := func(d time.Duration) *metav1.MicroTime { v := metav1.NewMicroTime(t0.Add(d)); return &v }
	so.Status = tandemv1.SwitchoverStatus{
		Phase: tandemv1.PhaseSucceeded, FromCluster: "dc-east", Epoch: 2, StartTime: mt(0), CompletionTime: mt(4500 * time.Millisecond),
		RTO: &metav1.Duration{Duration: 843 * time.Millisecond},
		Steps: []tandemv1.StepStatus{
			{Name: "Quiesce", Phase: tandemv1.StepSucceeded, StartTime: mt(0), EndTime: mt(125 * time.Millisecond), Message: "1 workloads on dc-east scaled to 0"},
			{Name: "FlipTraffic", Phase: tandemv1.StepSucceeded, StartTime: mt(800 * time.Millisecond), EndTime: mt(1100 * time.Millisecond), Message: "the authoritative server ns1:53 answers dc-west's targets 300ms after the step started"},
		},
		Report: &tandemv1.SwitchoverReport{Passed: true,
			TrafficMovedTime: &metav1.Time{Time: t0.Add(2 * time.Second)}, ClientsFollowBy: &metav1.Time{Time: t0.Add(32 * time.Second)}},
	}
	if err := server.Client.Status().Update(ctx, so); err != nil {
		t.Fatal(err)
	}
	got := runPlugin(t, "report", "to-west", "-n", "shop")
	want := `Switchover  shop/to-west (Planned of HAPair shop to dc-west)
Phase       Succeeded
Move        dc-east -> dc-west at epoch 2
Started     2026-11-21T12:00:00Z, ended 2026-11-21T12:00:04Z (4.5s)
RTO         843ms
Traffic     moved at every authoritative server 2026-11-21T12:00:02Z (2s after the start); clients follow by 2026-11-21T12:00:32Z (TTL 30s)

STEP         PHASE      DURATION  MESSAGE
Quiesce      Succeeded  125ms     1 workloads on dc-east scaled to 0
FlipTraffic  Succeeded  300ms     the authoritative server ns1:53 answers dc-west's targets 300ms after the step started
`
	if got != want {
		t.Fatalf("kubectl tandem report printed:\n%s\nwant:\n%s", got, want)
	}
}
