package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/test/testbed"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// volatile are the fields the API server sets differently on every run.
var volatile = regexp.MustCompile(`(?m)^(\s*"?(uid|resourceVersion|creationTimestamp)"?: ).*$`)

// golden compares got, its volatile fields masked, with testdata/name.
func golden(t *testing.T, name, got string) {
	t.Helper()
	got = volatile.ReplaceAllString(got, "${1}MASKED")
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./cmd/kubectl-tandem -update writes it)", err)
	}
	if got != string(want) {
		t.Fatalf("output differs from %s:\n%s\nwant:\n%s", path, got, want)
	}
}

// goldenPair is a second pair in namespace shop, so status without a name
// prints a list.
const goldenPair = `
apiVersion: tandem.dev/v1alpha1
kind: HAPair
metadata: {name: orders, namespace: shop}
spec:
  clusters:
  - {name: dc-east}
  - {name: dc-west, kubeconfigSecretRef: {name: dc-west-kubeconfig}}
  primary: dc-west
`

// -o prints what kubectl get would: objects with apiVersion and kind,
// several as a List, names as kind.group/name, and jsonpath and
// go-template through cli-runtime's printers.
func TestOutputFormatsAreKubectls(t *testing.T) {
	setup(t)
	ctx := context.Background()
	for _, u := range testbed.MustDecode(t, goldenPair) {
		if err := server.Client.Create(ctx, u); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
	}
	at := metav1.NewTime(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	setPairStatus(t, "orders", tandemv1.HAPairStatus{ActiveCluster: "dc-west", StandbyCluster: "dc-east", Epoch: 7, LocalRole: tandemv1.RoleStandby,
		Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Standby", Message: "dc-west is active", LastTransitionTime: at}}})

	golden(t, "status-orders.yaml", runPlugin(t, "status", "orders", "-n", "shop", "-o", "yaml"))
	golden(t, "status-orders.json", runPlugin(t, "status", "orders", "-n", "shop", "-o", "json"))
	if got := runPlugin(t, "status", "orders", "-n", "shop", "-o", "jsonpath={.status.activeCluster}@{.status.epoch}"); got != "dc-west@7" {
		t.Errorf("-o jsonpath printed %q", got)
	}
	if got := runPlugin(t, "status", "orders", "-n", "shop", "-o", "go-template={{.kind}} {{.metadata.name}}"); got != "HAPair orders" {
		t.Errorf("-o go-template printed %q", got)
	}
	if got := runPlugin(t, "status", "-n", "shop", "-o", "name"); got != "hapair.tandem.dev/orders\nhapair.tandem.dev/shop\n" {
		t.Errorf("-o name printed %q", got)
	}
	var list struct {
		APIVersion, Kind string
		Items            []struct{ APIVersion, Kind string }
	}
	if err := json.Unmarshal([]byte(runPlugin(t, "status", "-n", "shop", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if list.APIVersion != "v1" || list.Kind != "List" || len(list.Items) != 2 ||
		list.Items[0].APIVersion != "tandem.dev/v1alpha1" || list.Items[0].Kind != "HAPair" {
		t.Errorf("status -o json of the namespace: %+v, want a v1 List of HAPairs", list)
	}

	so := &tandemv1.Switchover{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "orders-to-east"},
		Spec: tandemv1.SwitchoverSpec{PairRef: "orders", Type: tandemv1.SwitchoverPlanned, TargetCluster: "dc-east"}}
	if err := server.Client.Create(ctx, so); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	if got := runPlugin(t, "report", "orders-to-east", "-n", "shop", "-o", "name"); got != "switchover.tandem.dev/orders-to-east\n" {
		t.Errorf("report -o name printed %q", got)
	}

	// An unknown format is refused before anything is read, with the
	// formats there are.
	if _, err := runPluginErr("status", "-n", "shop", "-o", "wide"); err == nil || !strings.Contains(err.Error(), "jsonpath") {
		t.Errorf("-o wide: %v, want an error listing the formats", err)
	}
}

// The shell completes pair, policy and Switchover names from the cluster,
// and --to with the pair's clusters other than the active one.
func TestCompletionReadsTheCluster(t *testing.T) {
	setup(t)
	setPairStatus(t, "shop", tandemv1.HAPairStatus{ActiveCluster: "dc-east", Epoch: 3})
	complete := func(args ...string) []string {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(runPlugin(t, append([]string{"__complete"}, args...)...)), "\n")
		// The last line is cobra's directive.
		return lines[:len(lines)-1]
	}
	has := func(got []string, want string) bool {
		for _, g := range got {
			if g == want {
				return true
			}
		}
		return false
	}
	if got := complete("status", "-n", "shop", ""); !has(got, "shop") {
		t.Errorf("status completes %v, want the pair shop", got)
	}
	if got := complete("plan", "-n", "shop", ""); !has(got, "app") {
		t.Errorf("plan completes %v, want the SyncPolicy app", got)
	}
	if got := complete("switchover", "shop", "-n", "shop", "--to", ""); len(got) != 1 || got[0] != "dc-west" {
		t.Errorf("switchover shop --to completes %v, want only dc-west (dc-east is active)", got)
	}
}

// syncBuffer is an output the test reads while follow writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Following a Switchover prints every change of its steps, also those
// that come faster than any poll would see, and returns with the report
// when it ends.
func TestFollowPrintsEveryStepChange(t *testing.T) {
	setup(t)
	ctx := context.Background()
	so := &tandemv1.Switchover{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "followed"},
		Spec: tandemv1.SwitchoverSpec{PairRef: "shop", Type: tandemv1.SwitchoverPlanned, TargetCluster: "dc-west"}}
	if err := server.Client.Create(ctx, so); err != nil {
		t.Fatal(err)
	}
	t0 := metav1.NewMicroTime(time.Now())
	setStep := func(phase tandemv1.SwitchoverPhase, step tandemv1.StepPhase, msg string) {
		t.Helper()
		so.Status.Phase = phase
		so.Status.Steps = []tandemv1.StepStatus{{Name: "FinalSync", Phase: step, StartTime: &t0, Message: msg}}
		if step == tandemv1.StepSucceeded {
			so.Status.Steps[0].EndTime = &t0
		}
		if err := server.Client.Status().Update(ctx, so); err != nil {
			t.Fatal(err)
		}
	}
	setStep(tandemv1.PhaseRunning, tandemv1.StepRunning, "waiting for 5 copies")

	c, err := client.NewWithWatch(server.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- follow(ctx, c, so.DeepCopy(), out, time.Minute) }()
	if err := testbed.Poll(ctx, 10*time.Second, 10*time.Millisecond, func(context.Context) (bool, error) {
		return strings.Contains(out.String(), "waiting for 5 copies"), nil
	}); err != nil {
		t.Fatalf("follow never printed the running step: %q", out.String())
	}
	for n := 4; n >= 1; n-- {
		setStep(tandemv1.PhaseRunning, tandemv1.StepRunning, "waiting for "+string(rune('0'+n))+" copies")
		time.Sleep(20 * time.Millisecond)
	}
	setStep(tandemv1.PhaseSucceeded, tandemv1.StepSucceeded, "5 copies identical")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("follow did not return after the Switchover succeeded: %q", out.String())
	}
	got := out.String()
	for _, want := range []string{"waiting for 4 copies", "waiting for 3 copies", "waiting for 2 copies", "waiting for 1 copies", "5 copies identical", "Phase       Succeeded"} {
		if !strings.Contains(got, want) {
			t.Errorf("follow missed %q:\n%s", want, got)
		}
	}
}
