package v1alpha1_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/test/testbed"
)

// These tests install the generated CRDs and admission policies into a real
// kube-apiserver and check that bad objects are refused at admission with a
// message naming the field, the way a user running `kubectl apply` sees it.

var (
	apiServer *testbed.APIServer
	k8s       client.Client
	seq       atomic.Int64
)

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		// Fuzzing (FuzzDecode) needs no API server, and each fuzz worker
		// would start one.
		os.Exit(m.Run())
	}
	ctx := context.Background()
	s, err := testbed.StartAPIServer(ctx, "validation")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	apiServer, k8s = s, s.Client
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// sample loads config/samples/<file> into a fresh namespace of its own, so
// tests never see each other's objects.
func sample(t *testing.T, file string) *unstructured.Unstructured {
	t.Helper()
	objs, err := testbed.ReadManifests(filepath.Join(testbed.RepoRoot(), "config", "samples", file))
	if err != nil || len(objs) != 1 {
		t.Fatalf("reading sample %s: %v (%d objects)", file, err, len(objs))
	}
	obj := objs[0]
	obj.SetNamespace(namespace(t))
	return obj
}

// namespace makes a namespace for one case. The fixtures refer to
// namespace shop from elsewhere: the cases are about the CRDs' own rules,
// so the namespace is granted every other (the tenant boundary has its
// own cases, TestTenancyRules).
func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("t%d", seq.Add(1)),
		Annotations: map[string]string{"tandem.dev/sync-namespaces": "*"}}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

func set(path string, value any) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		if err := unstructured.SetNestedField(u.Object, value, strings.Split(path, ".")...); err != nil {
			panic(err)
		}
	}
}

func remove(path string) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		unstructured.RemoveNestedField(u.Object, strings.Split(path, ".")...)
	}
}

func setListField(path string, i int, field string, value any) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		keys := strings.Split(path, ".")
		list, _, _ := unstructured.NestedSlice(u.Object, keys...)
		list[i].(map[string]any)[field] = value
		if err := unstructured.SetNestedSlice(u.Object, list, keys...); err != nil {
			panic(err)
		}
	}
}

func wantRefused(t *testing.T, err error, field, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the API server accepted the object; want it refused with %q", msg)
	}
	if !apierrors.IsInvalid(err) {
		t.Fatalf("want an Invalid error, got %v", err)
	}
	if !strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), msg) {
		t.Fatalf("want the error to name %s and say %q, got:\n%v", field, msg, err)
	}
}

func TestSamplesAreAccepted(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	// The HAPair first: the Switchover's admission policy checks its target
	// against it.
	for _, f := range []string{"tandem_v1alpha1_hapair.yaml", "tandem_v1alpha1_syncpolicy.yaml", "tandem_v1alpha1_switchover.yaml"} {
		obj := sample(t, f)
		obj.SetNamespace(ns)
		if err := k8s.Create(ctx, obj); err != nil {
			t.Fatalf("sample %s refused: %v", f, err)
		}
	}
	// Defaults land where the spec leaves fields out.
	hap := &unstructured.Unstructured{}
	hap.SetAPIVersion("tandem.dev/v1alpha1")
	hap.SetKind("HAPair")
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, hap); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := unstructured.NestedString(hap.Object, "spec", "witness", "namespace"); got != "tandem-system" {
		t.Errorf("spec.witness.namespace defaulted to %q, want tandem-system", got)
	}
}

func TestHAPairRules(t *testing.T) {
	type edit = func(*unstructured.Unstructured)
	cases := []struct {
		name  string
		edits []edit
		field string
		msg   string
	}{
		{"duplicate cluster names", []edit{setListField("spec.clusters", 1, "name", "dc-east")},
			"spec.clusters", "spec.clusters must list exactly two clusters with distinct names"},
		{"three clusters", []edit{func(u *unstructured.Unstructured) {
			list, _, _ := unstructured.NestedSlice(u.Object, "spec", "clusters")
			list = append(list, map[string]any{"name": "dc-north"})
			_ = unstructured.SetNestedSlice(u.Object, list, "spec", "clusters")
		}}, "spec.clusters", "must have at most 2 items"},
		{"one cluster", []edit{func(u *unstructured.Unstructured) {
			list, _, _ := unstructured.NestedSlice(u.Object, "spec", "clusters")
			_ = unstructured.SetNestedSlice(u.Object, list[:1], "spec", "clusters")
		}}, "spec.clusters", "should have at least 2 items"},
		{"primary not in clusters", []edit{set("spec.primary", "dc-north")},
			"spec.primary", "spec.primary must name one of spec.clusters"},
		{"probe endpoint for an unknown cluster", []edit{setListField("spec.failover.endpoints", 0, "cluster", "dc-north")},
			"spec.failover.endpoints", "spec.failover.endpoints[].cluster must name one of spec.clusters"},
		{"probe endpoint not http", []edit{setListField("spec.failover.endpoints", 0, "url", "ftp://shop.example.com/")},
			"spec.failover.endpoints[0].url", "must be an http or https URL"},
		{"automatic failover without witness or opt-in", []edit{remove("spec.witness")},
			"spec.failover.mode", "spec.failover.mode Automatic needs spec.witness"},
		{"DNS target for an unknown cluster", []edit{func(u *unstructured.Unstructured) {
			dns, _, _ := unstructured.NestedSlice(u.Object, "spec", "traffic", "dns")
			targets := dns[0].(map[string]any)["targets"].([]any)
			targets[1].(map[string]any)["cluster"] = "dc-north"
			_ = unstructured.SetNestedSlice(u.Object, dns, "spec", "traffic", "dns")
		}}, "spec.traffic.dns", "spec.traffic.dns[].targets[].cluster must name one of spec.clusters"},
		{"RFC2136 provider without servers", []edit{remove("spec.traffic.rfc2136")},
			"spec.traffic.rfc2136", "spec.traffic.rfc2136 is required when spec.traffic.provider is RFC2136"},
		{"ExternalDNS provider without servers to verify", []edit{set("spec.traffic.provider", "ExternalDNS")},
			"spec.traffic.externalDNS", "spec.traffic.externalDNS.verifyServers is required for DNS records with the ExternalDNS provider"},
		{"verify timeout zero", []edit{set("spec.traffic.verifyTimeout", "0s")},
			"spec.traffic.verifyTimeout", "spec.traffic.verifyTimeout must be between 1s and 1h"},
		{"verify timeout in words", []edit{set("spec.traffic.verifyTimeout", "soon")},
			"spec.traffic.verifyTimeout", "should match"},
		// Before it had a range, this one was stored and then broke the
		// decoding of every HAPair list on the cluster.
		{"verify timeout beyond int64", []edit{set("spec.traffic.verifyTimeout", "99999999999999999999h")},
			"spec.traffic.verifyTimeout", "spec.traffic.verifyTimeout"},
		{"probe period too short", []edit{set("spec.failover.probePeriod", "0s")},
			"spec.failover.probePeriod", "spec.failover.probePeriod must be between 1s and 5m"},
		{"probe period too long", []edit{set("spec.failover.probePeriod", "1h")},
			"spec.failover.probePeriod", "spec.failover.probePeriod must be between 1s and 5m"},
		{"probe timeout longer than period", []edit{set("spec.failover.probeTimeout", "2s")},
			"spec.failover.probeTimeout", "spec.failover.probeTimeout must not be longer than spec.failover.probePeriod"},
		{"probe timeout too short", []edit{set("spec.failover.probeTimeout", "1ms")},
			"spec.failover.probeTimeout", "spec.failover.probeTimeout must be between 100ms and 1m"},
		{"failure threshold zero", []edit{set("spec.failover.failureThreshold", int64(0))},
			"spec.failover.failureThreshold", "greater than or equal to 1"},
		{"failure threshold huge", []edit{set("spec.failover.failureThreshold", int64(1000))},
			"spec.failover.failureThreshold", "less than or equal to 100"},
		{"duration that is not one", []edit{set("spec.objectives.rpo", "one minute")},
			"spec.objectives.rpo", "should match"},
		{"RPO zero", []edit{set("spec.objectives.rpo", "0s")},
			"spec.objectives.rpo", "spec.objectives.rpo must be positive"},
		{"RTO zero", []edit{set("spec.objectives.rto", "0m")},
			"spec.objectives.rto", "spec.objectives.rto must be positive"},
		{"lease renewed no faster than it expires", []edit{set("spec.witness.renewInterval", "15s")},
			"spec.witness.renewInterval", "spec.witness.renewInterval must be shorter than spec.witness.leaseDuration"},
		{"lease duration too long", []edit{set("spec.witness.leaseDuration", "1h")},
			"spec.witness.leaseDuration", "spec.witness.leaseDuration must be between 1s and 10m"},
		{"cron schedule with three fields", []edit{set("spec.drills.schedule", "0 3 *")},
			"spec.drills.schedule", "spec.drills.schedule must be a cron expression"},
		{"cron schedule in words", []edit{set("spec.drills.schedule", "every monday")},
			"spec.drills.schedule", "spec.drills.schedule must be a cron expression"},
		{"cluster name not a DNS label", []edit{setListField("spec.clusters", 0, "name", "DC_East"), set("spec.primary", "DC_East")},
			"spec.clusters[0].name", "should match"},
		{"record TTL zero", []edit{func(u *unstructured.Unstructured) {
			dns, _, _ := unstructured.NestedSlice(u.Object, "spec", "traffic", "dns")
			dns[0].(map[string]any)["ttl"] = int64(0)
			_ = unstructured.SetNestedSlice(u.Object, dns, "spec", "traffic", "dns")
		}}, "spec.traffic.dns[0].ttl", "greater than or equal to 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := sample(t, "tandem_v1alpha1_hapair.yaml")
			for _, e := range tc.edits {
				e(obj)
			}
			wantRefused(t, k8s.Create(context.Background(), obj), tc.field, tc.msg)
		})
	}
}

func TestHAPairAutomaticWithoutWitnessNeedsOptIn(t *testing.T) {
	obj := sample(t, "tandem_v1alpha1_hapair.yaml")
	unstructured.RemoveNestedField(obj.Object, "spec", "witness")
	_ = unstructured.SetNestedField(obj.Object, true, "spec", "failover", "allowWithoutWitness")
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatalf("Automatic mode with allowWithoutWitness refused: %v", err)
	}
}

func TestCronScheduleFormsAccepted(t *testing.T) {
	for _, s := range []string{"@daily", "@every 90m", "@every 1h30m", "*/15 * * * *", "0 3 * * MON-FRI", "CRON_TZ=Europe/Berlin 0 3 * * 1"} {
		obj := sample(t, "tandem_v1alpha1_hapair.yaml")
		_ = unstructured.SetNestedField(obj.Object, s, "spec", "drills", "schedule")
		if err := k8s.Create(context.Background(), obj); err != nil {
			t.Errorf("schedule %q refused: %v", s, err)
		}
	}
}

func TestHAPairEpochNeverDecreases(t *testing.T) {
	ctx := context.Background()
	obj := sample(t, "tandem_v1alpha1_hapair.yaml")
	if err := k8s.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	setEpoch := func(e int64) error {
		_ = unstructured.SetNestedField(obj.Object, e, "status", "epoch")
		return k8s.Status().Update(ctx, obj)
	}
	if err := setEpoch(5); err != nil {
		t.Fatalf("raising status.epoch to 5: %v", err)
	}
	if err := setEpoch(5); err != nil {
		t.Fatalf("keeping status.epoch at 5: %v", err)
	}
	wantRefused(t, setEpoch(4), "status", "status.epoch may never decrease")

	unstructured.RemoveNestedField(obj.Object, "status", "epoch")
	wantRefused(t, k8s.Status().Update(ctx, obj), "status", "status.epoch may never decrease")

	got := obj.DeepCopy()
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), got); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := unstructured.NestedInt64(got.Object, "status", "epoch"); e != 5 {
		t.Fatalf("status.epoch is %d after refused writes, want 5", e)
	}
}

func TestSyncPolicyRules(t *testing.T) {
	type edit = func(*unstructured.Unstructured)
	cases := []struct {
		name  string
		edits []edit
		field string
		msg   string
	}{
		{"namespaces by name and selector", []edit{set("spec.namespaces.selector", map[string]any{"matchLabels": map[string]any{"a": "b"}})},
			"spec.namespaces", "spec.namespaces must set exactly one of names or selector"},
		{"namespaces neither", []edit{remove("spec.namespaces.names")},
			"spec.namespaces", "spec.namespaces must set exactly one of names or selector"},
		{"full resync too often", []edit{set("spec.fullResyncInterval", "1s")},
			"spec.fullResyncInterval", "spec.fullResyncInterval must be at least 10s"},
		{"snapshot interval too short", []edit{set("spec.volumes.interval", "100ms")},
			"spec.volumes.interval", "spec.volumes.interval must be at least 1s"},
		{"handle template missing", []edit{set("spec.volumes.handleMapping.mode", "Template"), remove("spec.volumes.handleMapping.template")},
			"spec.volumes.handleMapping.template", "spec.volumes.handleMapping.template is required when mode is Template"},
		{"handle template without the handle", []edit{set("spec.volumes.handleMapping.template", "replica-{{.Name}}")},
			"spec.volumes.handleMapping.template", "spec.volumes.handleMapping.template is required when mode is Template"},
		{"handle template with the handle in a branch never taken", []edit{set("spec.volumes.handleMapping.template", "{{if false}}{{.Handle}}{{end}}")},
			"spec.volumes.handleMapping.template", "must contain {{.Handle}} exactly once, and no placeholder but"},
		{"handle template with the handle twice", []edit{set("spec.volumes.handleMapping.template", "{{.Handle}}{{.Handle}}")},
			"spec.volumes.handleMapping.template", "must contain {{.Handle}} exactly once"},
		{"removing all metadata", []edit{setListField("spec.transforms.removeFields", 0, "paths", []any{"metadata"})},
			"spec.transforms.removeFields[0].paths", "may not remove kind, apiVersion or metadata"},
		{"removing the namespace", []edit{setListField("spec.transforms.removeFields", 0, "paths", []any{"spec.x", "metadata.namespace"})},
			"spec.transforms.removeFields[0].paths", "may not remove kind, apiVersion or metadata"},
		{"removing Tandem's annotations", []edit{setListField("spec.transforms.removeFields", 0, "paths", []any{"metadata.annotations.tandem.dev/source-replicas"})},
			"spec.transforms.removeFields[0].paths", "outside tandem.dev/"},
		{"patch not a JSON array", []edit{setListField("spec.transforms.patches", 0, "patch", `{"op":"remove"}`)},
			"spec.transforms.patches[0].patch", "must be a JSON array of RFC 6902 operations"},
		{"unknown standby mode", []edit{set("spec.standbyMode", "Lukewarm")},
			"spec.standbyMode", "Unsupported value"},
		{"retention zero", []edit{set("spec.volumes.retention", int64(0))},
			"spec.volumes.retention", "greater than or equal to 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := sample(t, "tandem_v1alpha1_syncpolicy.yaml")
			for _, e := range tc.edits {
				e(obj)
			}
			wantRefused(t, k8s.Create(context.Background(), obj), tc.field, tc.msg)
		})
	}
}

func TestSwitchoverCreateRules(t *testing.T) {
	type edit = func(*unstructured.Unstructured)
	drill := map[string]any{"mode": "Isolated"}
	cases := []struct {
		name  string
		edits []edit
		field string
		msg   string
	}{
		{"drill options on a planned switchover", []edit{set("spec.drill", drill)},
			"spec.drill", "spec.drill is only valid when spec.type is Drill"},
		{"holdFor in an isolated drill", []edit{set("spec.type", "Drill"), set("spec.drill", map[string]any{"mode": "Isolated", "holdFor": "1m"})},
			"spec.drill.holdFor", "spec.drill.holdFor is only valid in Live mode"},
		{"check with both http and job", []edit{set("spec.type", "Drill"), set("spec.drill", map[string]any{"checks": []any{map[string]any{
			"name": "both", "http": map[string]any{"url": "http://x/"}, "job": map[string]any{"namespace": "a", "image": "b"}}}})},
			"spec.drill.checks[0]", "spec.drill.checks[] must set exactly one of http or job"},
		{"step timeout too short", []edit{set("spec.stepTimeout", "0s")},
			"spec.stepTimeout", "spec.stepTimeout must be between 1s and 24h"},
		{"check Job timeout beyond a day", []edit{set("spec.type", "Drill"), set("spec.drill", map[string]any{"mode": "Isolated", "checks": []any{map[string]any{
			"name": "smoke", "job": map[string]any{"namespace": "shop", "image": "busybox", "timeout": "48h"}}}})},
			"spec.drill.checks[0].job.timeout", "spec.drill.checks[].job.timeout must be between 1s and 24h"},
		{"unknown type", []edit{set("spec.type", "Teleport")},
			"spec.type", "Unsupported value"},
		{"no target", []edit{remove("spec.targetCluster")},
			"spec.targetCluster", "Required value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := sample(t, "tandem_v1alpha1_switchover.yaml")
			for _, e := range tc.edits {
				e(obj)
			}
			wantRefused(t, k8s.Create(context.Background(), obj), tc.field, tc.msg)
		})
	}
}

// The target must be one of the pair's clusters. That rule crosses objects,
// so it is the ValidatingAdmissionPolicy in config/admission, not a CRD rule.
func TestSwitchoverTargetMustBeAClusterOfThePair(t *testing.T) {
	ctx := context.Background()
	pair := sample(t, "tandem_v1alpha1_hapair.yaml")
	if err := k8s.Create(ctx, pair); err != nil {
		t.Fatal(err)
	}
	// The API server reads policy parameters through an informer, so the
	// new HAPair becomes visible to the policy shortly after it is created.
	var lastErr error
	err := testbed.Poll(ctx, 30*time.Second, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		so := sample(t, "tandem_v1alpha1_switchover.yaml")
		so.SetNamespace(pair.GetNamespace())
		so.SetGenerateName("bad-target-")
		so.SetName("")
		_ = unstructured.SetNestedField(so.Object, "dc-north", "spec", "targetCluster")
		lastErr = k8s.Create(ctx, so)
		return lastErr != nil, nil
	})
	if err != nil {
		t.Fatalf("a Switchover targeting dc-north was still accepted: %v", err)
	}
	wantRefused(t, lastErr, "spec.targetCluster", `"dc-north" is not a cluster of HAPair shop (its clusters are dc-east, dc-west)`)

	good := sample(t, "tandem_v1alpha1_switchover.yaml")
	good.SetNamespace(pair.GetNamespace())
	if err := k8s.Create(ctx, good); err != nil {
		t.Fatalf("a Switchover targeting dc-west was refused: %v", err)
	}
}

// A live pair's clusters cannot be renamed: its role record names them.
func TestHAPairClustersCannotBeRenamed(t *testing.T) {
	ctx := context.Background()
	obj := sample(t, "tandem_v1alpha1_hapair.yaml")
	if err := k8s.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	changed := obj.DeepCopy()
	clusters, _, _ := unstructured.NestedSlice(changed.Object, "spec", "clusters")
	clusters[1].(map[string]any)["name"] = "dc-north"
	_ = unstructured.SetNestedSlice(changed.Object, clusters, "spec", "clusters")
	wantRefused(t, k8s.Update(ctx, changed), "spec.clusters", "spec.clusters[].name cannot change once created")
}

func TestSwitchoverSpecIsImmutableExceptCancel(t *testing.T) {
	ctx := context.Background()
	obj := sample(t, "tandem_v1alpha1_switchover.yaml")
	if err := k8s.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		path  string
		value any
	}{
		{"spec.targetCluster", "dc-east"},
		{"spec.type", "Failover"},
		{"spec.pairRef", "other"},
		{"spec.stepTimeout", "5m"},
		{"spec.reason", "changed my mind"},
		{"spec.drill", map[string]any{"mode": "Isolated"}},
	} {
		changed := obj.DeepCopy()
		set(e.path, e.value)(changed)
		// The message names the field that changed, and only that one.
		err := k8s.Update(ctx, changed)
		wantRefused(t, err, e.path, e.path+" is immutable once created")
		if strings.Count(err.Error(), "is immutable") != 1 {
			t.Errorf("changing %s: %v; want one message", e.path, err)
		}
	}

	_ = unstructured.SetNestedField(obj.Object, true, "spec", "cancel")
	if err := k8s.Update(ctx, obj); err != nil {
		t.Fatalf("setting spec.cancel refused: %v", err)
	}
	_ = unstructured.SetNestedField(obj.Object, false, "spec", "cancel")
	wantRefused(t, k8s.Update(ctx, obj), "spec.cancel", "spec.cancel cannot be unset once set")
}

// Objects built in Go with only the required fields must be accepted: the
// API server fills in the defaults. (A non-pointer metav1.Duration used to
// be sent as "0s" and refused.)
func TestMinimalObjectsFromGoAreAccepted(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	pair := &tandemv1.HAPair{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "minimal"},
		Spec: tandemv1.HAPairSpec{
			Clusters: []tandemv1.ClusterSpec{{Name: "dc-east"}, {Name: "dc-west"}},
			Primary:  "dc-east",
			Witness:  &tandemv1.WitnessSpec{KubeconfigSecretRef: tandemv1.SecretKeyRef{Name: "w"}},
			Drills:   &tandemv1.DrillSchedule{Schedule: "@daily"},
		},
	}
	if err := k8s.Create(ctx, pair); err != nil {
		t.Fatalf("minimal HAPair refused: %v", err)
	}
	if pair.Spec.Failover.ProbePeriod == nil || pair.Spec.Failover.ProbePeriod.Duration != 5*time.Second || pair.Spec.Failover.FailureThreshold != 3 {
		t.Errorf("failover defaults not applied: %+v", pair.Spec.Failover)
	}
	if pair.Spec.Witness.LeaseDuration == nil || pair.Spec.Witness.LeaseDuration.Duration != 15*time.Second {
		t.Errorf("witness defaults not applied: %+v", pair.Spec.Witness)
	}
	policy := &tandemv1.SyncPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "minimal"},
		Spec: tandemv1.SyncPolicySpec{
			Namespaces: tandemv1.NamespaceSelection{Names: []string{"shop"}},
			Volumes:    &tandemv1.VolumeProtection{SnapshotClassName: "csi"},
		},
	}
	if err := k8s.Create(ctx, policy); err != nil {
		t.Fatalf("minimal SyncPolicy refused: %v", err)
	}
	if policy.Spec.FullResyncInterval == nil || policy.Spec.FullResyncInterval.Duration != 5*time.Minute || policy.Spec.StandbyMode != tandemv1.StandbyWarm {
		t.Errorf("defaults not applied: %+v", policy.Spec)
	}
	so := &tandemv1.Switchover{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "minimal"},
		Spec:       tandemv1.SwitchoverSpec{PairRef: "minimal", Type: tandemv1.SwitchoverDrill, TargetCluster: "dc-west", Drill: &tandemv1.DrillOptions{}},
	}
	if err := k8s.Create(ctx, so); err != nil {
		t.Fatalf("minimal Switchover refused: %v", err)
	}
}

// The role record is the fencing token: the active cluster changes only
// with a higher epoch, so two records with one epoch never name two actives.
func TestHAPairActiveClusterChangesOnlyWithAHigherEpoch(t *testing.T) {
	ctx := context.Background()
	obj := sample(t, "tandem_v1alpha1_hapair.yaml")
	obj.SetName("active-rule")
	if err := k8s.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	setRecord := func(active string, e int64) error {
		_ = unstructured.SetNestedField(obj.Object, active, "status", "activeCluster")
		_ = unstructured.SetNestedField(obj.Object, e, "status", "epoch")
		return k8s.Status().Update(ctx, obj)
	}
	if err := setRecord("dc-east", 1); err != nil {
		t.Fatalf("first record: %v", err)
	}
	wantRefused(t, setRecord("dc-west", 1), "status", "status.activeCluster may change only with a higher status.epoch")
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	if err := setRecord("dc-west", 2); err != nil {
		t.Fatalf("promotion at the next epoch: %v", err)
	}
	wantRefused(t, setRecord("dc-east", 1), "status", "status.epoch may never decrease")
}

// The tenant boundary at admission (config/admission/tenancy_policy.yaml):
// in a namespace granted nothing, each field that reaches another
// namespace is refused, naming the field; granted by name, it is accepted;
// and an update that leaves such a field as it was passes after the grant
// is withdrawn (the operator narrows the object instead).
func TestTenancyRules(t *testing.T) {
	ctx := context.Background()
	bare := func(t *testing.T, grant string) string {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("t%d", seq.Add(1))}}
		if grant != "" {
			ns.Annotations = map[string]string{"tandem.dev/sync-namespaces": grant}
		}
		if err := k8s.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
		return ns.Name
	}
	in := func(t *testing.T, file, ns string, edits ...func(*unstructured.Unstructured)) *unstructured.Unstructured {
		obj := sample(t, file)
		obj.SetNamespace(ns)
		for _, e := range edits {
			e(obj)
		}
		return obj
	}
	jobCheck := []any{map[string]any{"name": "smoke", "job": map[string]any{"namespace": "team-b", "image": "registry.example/smoke:1"}}}
	cases := []struct {
		name, file string
		edits      []func(*unstructured.Unstructured)
		field      string
	}{
		{"a policy naming another namespace", "tandem_v1alpha1_syncpolicy.yaml",
			[]func(*unstructured.Unstructured){set("spec.namespaces.names", []any{"team-b"})}, "spec.namespaces.names: namespace team-b"},
		{"a pair routing in another namespace", "tandem_v1alpha1_hapair.yaml",
			[]func(*unstructured.Unstructured){set("spec.traffic.routes", []any{map[string]any{"kind": "Ingress", "namespace": "team-b", "name": "web"}}),
				set("spec.drills.template.checks", []any{})}, "spec.traffic.routes: namespace team-b"},
		{"a pair's drill checking from another namespace", "tandem_v1alpha1_hapair.yaml",
			[]func(*unstructured.Unstructured){set("spec.traffic.routes", []any{}), set("spec.drills.template.checks", jobCheck)},
			"spec.drills.template.checks: a check Job in namespace team-b"},
		{"a drill checking from another namespace", "tandem_v1alpha1_switchover.yaml",
			[]func(*unstructured.Unstructured){set("spec.type", "Drill"), set("spec.drill", map[string]any{"mode": "Isolated", "checks": jobCheck})},
			"spec.drill.checks: a check Job in namespace team-b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := k8s.Create(ctx, in(t, tc.file, bare(t, ""), tc.edits...))
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), "tandem.dev/sync-namespaces") {
				t.Fatalf("want it refused naming %q and the annotation, got %v", tc.field, err)
			}
			if err := k8s.Create(ctx, in(t, tc.file, bare(t, "team-c, team-b"), tc.edits...)); err != nil {
				t.Fatalf("granted team-b by name, it was refused: %v", err)
			}
		})
	}

	// Granted, created, then the grant withdrawn: an edit of another field
	// passes, one that names a new namespace does not.
	ns := bare(t, "team-b")
	policy := in(t, "tandem_v1alpha1_syncpolicy.yaml", ns, set("spec.namespaces.names", []any{"team-b"}))
	if err := k8s.Create(ctx, policy); err != nil {
		t.Fatal(err)
	}
	var nsObj corev1.Namespace
	if err := k8s.Get(ctx, client.ObjectKey{Name: ns}, &nsObj); err != nil {
		t.Fatal(err)
	}
	nsObj.Annotations = nil
	if err := k8s.Update(ctx, &nsObj); err != nil {
		t.Fatal(err)
	}
	err := testbed.Poll(ctx, 30*time.Second, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		probe := in(t, "tandem_v1alpha1_syncpolicy.yaml", ns, set("spec.namespaces.names", []any{"team-b"}))
		probe.SetName("probe-" + fmt.Sprint(seq.Add(1)))
		return apierrors.IsForbidden(k8s.Create(ctx, probe)), nil
	})
	if err != nil {
		t.Fatalf("the withdrawn grant was never enforced: %v", err)
	}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(policy), policy); err != nil {
		t.Fatal(err)
	}
	_ = unstructured.SetNestedField(policy.Object, true, "spec", "suspend")
	if err := k8s.Update(ctx, policy); err != nil {
		t.Fatalf("an edit leaving spec.namespaces as it was: %v", err)
	}
	_ = unstructured.SetNestedStringSlice(policy.Object, []string{"team-b", "team-d"}, "spec", "namespaces", "names")
	if err := k8s.Update(ctx, policy); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "spec.namespaces.names: namespace team-b") {
		t.Fatalf("an edit naming more namespaces: %v; want it refused", err)
	}
}

// TestDNSNamesNeedAGrant: a pair points names through external-dns only
// where its Namespace's tandem.dev/dns-names grants them; an RFC 2136 pair
// brings its own key and needs no grant.
func TestDNSNamesNeedAGrant(t *testing.T) {
	ctx := context.Background()
	withGrant := func(t *testing.T, grant string) string {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("d%d", seq.Add(1))}}
		if grant != "" {
			ns.Annotations = map[string]string{"tandem.dev/dns-names": grant}
		}
		if err := k8s.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
		return ns.Name
	}
	pair := func(t *testing.T, ns, provider string, names ...string) *unstructured.Unstructured {
		obj := sample(t, "tandem_v1alpha1_hapair.yaml")
		obj.SetNamespace(ns)
		var dns []any
		for _, n := range names {
			dns = append(dns, map[string]any{"name": n, "drillName": "drill." + n,
				"targets": []any{map[string]any{"cluster": "dc-east", "values": []any{"192.0.2.10"}}}})
		}
		set("spec.traffic.dns", dns)(obj)
		set("spec.traffic.provider", provider)(obj)
		set("spec.traffic.routes", []any{})(obj)
		set("spec.drills.template.checks", []any{})(obj)
		if provider == "ExternalDNS" {
			unstructured.RemoveNestedField(obj.Object, "spec", "traffic", "rfc2136")
			set("spec.traffic.externalDNS", map[string]any{"verifyServers": []any{"ns1.example.com:53"}})(obj)
		}
		return obj
	}
	cases := []struct {
		name, grant, provider string
		names                 []string
		refused               string // the name the refusal names; "" if admitted
	}{
		{"no grant", "", "ExternalDNS", []string{"shop.example.com"}, "shop.example.com"},
		{"another name granted", "cart.example.com", "ExternalDNS", []string{"shop.example.com"}, "shop.example.com"},
		{"the name granted but not its drill name", "shop.example.com", "ExternalDNS", []string{"shop.example.com"}, "drill.shop.example.com"},
		{"a sibling subtree", "*.team-a.example.com", "ExternalDNS", []string{"shop.evilteam-a.example.com"}, "shop.evilteam-a.example.com"},
		{"names and subtree granted", "shop.example.com, *.shop.example.com.", "ExternalDNS", []string{"shop.example.com."}, ""},
		{"everything granted", "*", "ExternalDNS", []string{"shop.example.com"}, ""},
		{"RFC 2136 needs no grant", "", "RFC2136", []string{"shop.example.com"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := k8s.Create(ctx, pair(t, withGrant(t, tc.grant), tc.provider, tc.names...))
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("want it admitted, got %v", err)
				}
				return
			}
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "spec.traffic.dns: "+tc.refused+" is not granted") || !strings.Contains(err.Error(), "tandem.dev/dns-names") {
				t.Fatalf("want it refused naming spec.traffic.dns, %s and the annotation, got %v", tc.refused, err)
			}
		})
	}
}
