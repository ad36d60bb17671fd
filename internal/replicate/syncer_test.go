package replicate_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/plan"
	"github.com/tandem-dev/tandem/internal/replicate"
	"github.com/tandem-dev/tandem/test/testbed"
)

// Two real API servers: the active side and the standby.
var active, standby *testbed.APIServer

func TestMain(m *testing.M) {
	servers, err := testbed.StartAPIServers(context.Background(), "active", "standby")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	active, standby = servers[0], servers[1]
	code := m.Run()
	for _, s := range servers {
		_ = s.Stop()
	}
	os.Exit(code)
}

const widgetCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`

// sampleApp is every kind the issue names, in namespace NS.
const sampleApp = `
apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config, namespace: NS}
data: {SITE: east}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: NS}
stringData: {password: s3cret}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: NS}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: NS}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: web-reader, namespace: NS}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: ServiceAccount, name: web, namespace: NS}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: NS}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: web
      containers:
      - name: web
        image: registry.example/web:1
        envFrom: [{configMapRef: {name: config}}, {secretRef: {name: creds}}]
        volumeMounts: [{name: data, mountPath: /data}]
      volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: NS}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: registry.example/db:1, env: [{name: PW, valueFrom: {secretKeyRef: {name: creds, key: password}}}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: NS}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: NS}
spec:
  rules: [{host: shop.example.com, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: NS}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 3
  maxReplicas: 10
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: gizmo, namespace: NS}
spec: {size: 3}
`

func decode(t *testing.T, docs string) []*unstructured.Unstructured {
	t.Helper()
	return testbed.MustDecode(t, docs)
}

func create(t *testing.T, c client.Client, objs ...*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		if err := c.Create(context.Background(), o); client.IgnoreAlreadyExists(err) != nil {
			t.Fatalf("creating %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

func ensureWidgetCRD(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, s := range []*testbed.APIServer{active} {
		create(t, s.Client, decode(t, widgetCRD)...)
		if err := testbed.Poll(ctx, 30*time.Second, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
			crd := &unstructured.Unstructured{}
			crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
			if err := s.Client.Get(ctx, client.ObjectKey{Name: "widgets.example.com"}, crd); err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, c := range conds {
				if m := c.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// run starts a syncer for spec and returns it with the order of applies.
type run struct {
	syncer *replicate.Syncer
	mu     sync.Mutex
	order  []plan.Ref
}

func (r *run) applied() []plan.Ref {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]plan.Ref(nil), r.order...)
}

func startSyncer(t *testing.T, pair, policy string, spec tandemv1.SyncPolicySpec) *run {
	t.Helper()
	r := startSyncerTo(t, standby.Config, pair, policy, spec)
	if err := testbed.Poll(context.Background(), 60*time.Second, 50*time.Millisecond, func(context.Context) (bool, error) {
		return !r.syncer.Status().LastFullSync.IsZero(), nil
	}); err != nil {
		t.Fatalf("no full pass finished: %v", err)
	}
	return r
}

// startSyncerTo starts a syncer that writes to the standby through target
// and does not wait for its first pass.
func startSyncerTo(t *testing.T, target *rest.Config, pair, policy string, spec tandemv1.SyncPolicySpec) *run {
	t.Helper()
	return startSyncerOf(t, target, "default", pair, policy, spec)
}

// startSyncerOf starts the sync of a pair that lives in namespace pairNS.
func startSyncerOf(t *testing.T, target *rest.Config, pairNS, pair, policy string, spec tandemv1.SyncPolicySpec) *run {
	t.Helper()
	if spec.StandbyMode == "" {
		spec.StandbyMode = tandemv1.StandbyWarm
	}
	// A long interval: the test asks for full passes itself.
	spec.FullResyncInterval = &metav1.Duration{Duration: time.Hour}
	dc := discovery.NewDiscoveryClientForConfigOrDie(active.Config)
	kinds, err := replicate.DiscoverKinds(dc, spec)
	if err != nil {
		t.Fatal(err)
	}
	r := &run{}
	informers := replicate.NewSourceInformers(dynamic.NewForConfigOrDie(active.Config), nil)
	s, err := replicate.NewSyncer(replicate.Config{
		Namespace: pairNS, Pair: pair, Policy: policy, Spec: spec, Kinds: kinds,
		Target:    dynamic.NewForConfigOrDie(target),
		Informers: informers,
		OnApplied: func(ref plan.Ref) { r.mu.Lock(); r.order = append(r.order, ref); r.mu.Unlock() },
		Log:       testr.New(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.syncer = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; informers.Stop() })
	return r
}

func getStandby(t *testing.T, gvk schema.GroupVersionKind, ns, name string) (*unstructured.Unstructured, error) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	err := standby.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u)
	return u, err
}

var (
	configMapGVK  = schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	deploymentGVK = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
)

func waitStandby(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	if err := testbed.Poll(context.Background(), 20*time.Second, 20*time.Millisecond, func(context.Context) (bool, error) { return cond() }); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestSampleAppLandsInDependencyOrder(t *testing.T) {
	ensureWidgetCRD(t)
	ns := "shop-order"
	app := decode(t, strings.ReplaceAll(sampleApp, "NS", ns))
	create(t, active.Client, app...)

	r := startSyncer(t, "shop", "apps", tandemv1.SyncPolicySpec{
		Namespaces: tandemv1.NamespaceSelection{Names: []string{ns}},
		Resources:  tandemv1.ResourceFilter{Include: []tandemv1.KindSelection{{GroupKind: tandemv1.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}}}},
	})
	st := r.syncer.Status()
	if len(st.Failures) != 0 || st.Err != nil {
		t.Fatalf("failures %v, err %v", st.Failures, st.Err)
	}

	// Every object of the app is on the standby, and the CRD.
	order := r.applied()
	pos := map[plan.Ref]int{}
	for i, ref := range order {
		pos[ref] = i
	}
	want := append([]*unstructured.Unstructured{}, app...)
	want = append(want, decode(t, widgetCRD)...)
	for _, o := range want {
		ref := plan.RefOf(o)
		if _, ok := pos[ref]; !ok {
			t.Errorf("%s was never applied to the standby; applied: %v", ref, order)
		}
		if _, err := getStandby(t, o.GroupVersionKind(), o.GetNamespace(), o.GetName()); err != nil {
			t.Errorf("%s is not on the standby: %v", ref, err)
		}
	}
	// Every dependency landed before what needs it.
	p := plan.Build(plan.Input{Objects: want})
	for _, e := range p.Edges {
		if pos[e.To] >= pos[e.From] {
			t.Errorf("%s was applied before its dependency %s (%s)", e.From, e.To, e.Reason)
		}
	}
	if len(p.Edges) < 15 {
		t.Fatalf("the sample app has only %d edges; the order check proves little", len(p.Edges))
	}
	t.Logf("applied %d objects in %d waves: %v", len(order), st.Waves, order)

	// Warm standby: workloads at 0 with the source's count kept.
	d, _ := getStandby(t, deploymentGVK, ns, "web")
	if replicas, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); replicas != 0 {
		t.Errorf("standby Deployment has %d replicas, want 0", replicas)
	}
	if got := d.GetAnnotations()[replicate.ReplicasAnnotation]; got != "3" {
		t.Errorf("standby Deployment source-replicas annotation = %q, want 3", got)
	}
	sts, _ := getStandby(t, schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, ns, "db")
	if got := sts.GetAnnotations()[replicate.ReplicasAnnotation]; got != "2" {
		t.Errorf("standby StatefulSet source-replicas annotation = %q, want 2", got)
	}
	if l := d.GetLabels(); l[replicate.PairLabel] != "shop" || l[replicate.PolicyLabel] != "apps" {
		t.Errorf("copy labels = %v", l)
	}
	// The copy of the Secret carries the same data.
	sec, _ := getStandby(t, schema.GroupVersionKind{Version: "v1", Kind: "Secret"}, ns, "creds")
	if pw, _, _ := unstructured.NestedString(sec.Object, "data", "password"); pw != "czNjcmV0" {
		t.Errorf("standby Secret data.password = %q", pw)
	}
}

func TestChangesPropagateArePrunedAndRepaired(t *testing.T) {
	ctx := context.Background()
	ns := "shop-live"
	create(t, active.Client, decode(t, strings.ReplaceAll(`
apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config, namespace: NS}
data: {SITE: east}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: doomed, namespace: NS}
data: {a: b}`, "NS", ns))...)
	// Objects on the standby that Tandem did not create: an unrelated one,
	// and one with the same name as a source object (adopted, never pruned).
	create(t, standby.Client, decode(t, strings.ReplaceAll(`
apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: standby-only, namespace: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: shared, namespace: NS}
data: {owner: standby}`, "NS", ns))...)
	create(t, active.Client, decode(t, strings.ReplaceAll(`
apiVersion: v1
kind: ConfigMap
metadata: {name: shared, namespace: NS}
data: {owner: active}`, "NS", ns))...)

	r := startSyncer(t, "shop", "live", tandemv1.SyncPolicySpec{Namespaces: tandemv1.NamespaceSelection{Names: []string{ns}}})

	// An update on the source appears on the standby.
	cm := &unstructured.Unstructured{}
	cm.SetGroupVersionKind(configMapGVK)
	if err := active.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "config"}, cm); err != nil {
		t.Fatal(err)
	}
	_ = unstructured.SetNestedField(cm.Object, "west", "data", "SITE")
	start := time.Now()
	if err := active.Client.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	waitStandby(t, "the update reached the standby", func() (bool, error) {
		c, err := getStandby(t, configMapGVK, ns, "config")
		v, _, _ := unstructured.NestedString(c.Object, "data", "SITE")
		return v == "west", err
	})
	t.Logf("update propagated in %s", time.Since(start).Round(time.Millisecond))

	// A new object appears; a deleted one is pruned.
	create(t, active.Client, decode(t, strings.ReplaceAll("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fresh, namespace: NS}", "NS", ns))...)
	if err := active.Client.Delete(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "doomed", "namespace": ns}}}); err != nil {
		t.Fatal(err)
	}
	waitStandby(t, "the new object reached the standby", func() (bool, error) {
		_, err := getStandby(t, configMapGVK, ns, "fresh")
		return err == nil, err
	})
	waitStandby(t, "the deleted object was pruned", func() (bool, error) {
		_, err := getStandby(t, configMapGVK, ns, "doomed")
		return apierrors.IsNotFound(err), err
	})

	// The adopted object took the source's content, but deleting its source
	// does not delete it; the unrelated object is never touched.
	waitStandby(t, "the adopted object took the source's content", func() (bool, error) {
		c, err := getStandby(t, configMapGVK, ns, "shared")
		v, _, _ := unstructured.NestedString(c.Object, "data", "owner")
		return v == "active", err
	})
	if err := active.Client.Delete(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "shared", "namespace": ns}}}); err != nil {
		t.Fatal(err)
	}
	// The watch may deliver the deletion after a pass started; ask again
	// until a pass has seen it.
	waitStandby(t, "a full pass after the deletion", func() (bool, error) {
		r.syncer.Resync()
		return r.syncer.Status().Selected == 3, nil
	})
	for _, name := range []string{"shared", "standby-only"} {
		if _, err := getStandby(t, configMapGVK, ns, name); err != nil {
			t.Errorf("%s on the standby was deleted though Tandem did not create it: %v", name, err)
		}
	}

	// A manual edit on the standby copy is repaired by the next full pass.
	c, _ := getStandby(t, configMapGVK, ns, "config")
	_ = unstructured.SetNestedField(c.Object, "tampered", "data", "SITE")
	if err := standby.Client.Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	r.syncer.Resync()
	waitStandby(t, "the drift was repaired", func() (bool, error) {
		c, err := getStandby(t, configMapGVK, ns, "config")
		v, _, _ := unstructured.NestedString(c.Object, "data", "SITE")
		return v == "west", err
	})
}

// Two teams may give their pairs and policies the same names. A full pass
// of one prunes none of the other's copies on a standby they share (CI saw
// a namespace's ConfigMap vanish from the standby while another test's
// pair of the same name ran its pass), and neither adopts the other's.
func TestPairsOfTheSameNameKeepEachOthersCopies(t *testing.T) {
	ctx := context.Background()
	var runs []*run
	for _, team := range []string{"team-a", "team-b"} {
		create(t, active.Client, decode(t, strings.ReplaceAll(`
apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config, namespace: NS}
data: {TEAM: NS}`, "NS", team))...)
		r := startSyncerOf(t, standby.Config, team, "shop", "app", tandemv1.SyncPolicySpec{
			Namespaces: tandemv1.NamespaceSelection{Names: []string{team}}})
		waitStandby(t, team+"'s copy reached the standby", func() (bool, error) {
			c, err := getStandby(t, configMapGVK, team, "config")
			return err == nil && c.GetLabels()[replicate.PairNamespaceLabel] == team, nil
		})
		runs = append(runs, r)
	}
	for _, r := range runs {
		before := r.syncer.Status().LastFullSync
		r.syncer.Resync()
		waitStandby(t, "a full pass", func() (bool, error) { return r.syncer.Status().LastFullSync.After(before), nil })
	}
	for _, team := range []string{"team-a", "team-b"} {
		c, err := getStandby(t, configMapGVK, team, "config")
		if err != nil {
			t.Fatalf("%s's copy was pruned by the other team's pass of the same name: %v", team, err)
		}
		if c.GetAnnotations()[replicate.CreatedAnnotation] != "true" {
			t.Errorf("%s's copy is no longer marked created: %v", team, c.GetAnnotations())
		}
	}
	// Deleting a source still prunes its own copy.
	if err := active.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "config"}}); err != nil {
		t.Fatal(err)
	}
	waitStandby(t, "team-a's copy pruned after its source went", func() (bool, error) {
		_, err := getStandby(t, configMapGVK, "team-a", "config")
		return apierrors.IsNotFound(err), nil
	})
	if _, err := getStandby(t, configMapGVK, "team-b", "config"); err != nil {
		t.Fatalf("team-b's copy went with team-a's: %v", err)
	}
}

// standbyRefuses makes the standby refuse ConfigMaps carrying label, with
// message, through a ValidatingAdmissionPolicy and its binding (both named
// name), and waits until it does: admission policies take effect a moment
// after they are created.
func standbyRefuses(t *testing.T, name, label, message string) {
	t.Helper()
	create(t, standby.Client, decode(t, fmt.Sprintf(`
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: %[1]s}
spec:
  failurePolicy: Fail
  matchConstraints: {resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}]}
  validations: [{expression: "!has(object.metadata.labels) || !('%[2]s' in object.metadata.labels)", message: %[3]q}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: %[1]s}
spec: {policyName: %[1]s, validationActions: [Deny]}`, name, label, message))...)
	probe := decode(t, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe, namespace: default, labels: {%s: x}}", label))[0]
	waitStandby(t, "the standby enforces the policy", func() (bool, error) {
		err := standby.Client.Create(context.Background(), probe.DeepCopy(), client.DryRunAll)
		return err != nil, nil
	})
}

func TestRejectedObjectIsReportedWhileTheRestSyncs(t *testing.T) {
	ns := "shop-reject"
	// The standby refuses ConfigMaps labelled reject=yes; the active side
	// does not.
	standbyRefuses(t, "no-rejects", "reject", "the standby refuses this ConfigMap")
	create(t, active.Client, decode(t, strings.ReplaceAll(`
apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: bad, namespace: NS, labels: {reject: "yes"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: good, namespace: NS}`, "NS", ns))...)

	r := startSyncer(t, "shop", "reject", tandemv1.SyncPolicySpec{Namespaces: tandemv1.NamespaceSelection{Names: []string{ns}}})
	st := r.syncer.Status()
	msg, failed := st.Failures[plan.Ref{Kind: "ConfigMap", Namespace: ns, Name: "bad"}]
	if !failed || !strings.Contains(msg, "the standby refuses this ConfigMap") {
		t.Fatalf("failures = %v, want ConfigMap %s/bad with the standby's message", st.Failures, ns)
	}
	if st.Selected != 3 || st.InSync != 2 || st.OutOfSync != 1 {
		t.Errorf("selected/in sync/out of sync = %d/%d/%d, want 3/2/1", st.Selected, st.InSync, st.OutOfSync)
	}
	if _, err := getStandby(t, configMapGVK, ns, "good"); err != nil {
		t.Errorf("the good ConfigMap did not sync: %v", err)
	}
	if fl := st.FailureList(); len(fl) != 1 || fl[0].Object != "ConfigMap "+ns+"/bad" {
		t.Errorf("failure list = %v", fl)
	}
}

// A full pass's failed apply is retried with back-off: once its cause is
// fixed (here on the standby) it heals in seconds, not at the next full
// pass an hour later, and the counts say so.
func TestFailedApplyOfAFullPassHealsOnceItsCauseIsFixed(t *testing.T) {
	ctx := context.Background()
	ns := "shop-heal"
	standbyRefuses(t, "no-blocked", "blocked", "the standby blocks this ConfigMap")
	create(t, active.Client, decode(t, strings.ReplaceAll(`
apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: held, namespace: NS, labels: {blocked: "yes"}}`, "NS", ns))...)

	r := startSyncer(t, "shop", "heal", tandemv1.SyncPolicySpec{Namespaces: tandemv1.NamespaceSelection{Names: []string{ns}}})
	held := plan.Ref{Kind: "ConfigMap", Namespace: ns, Name: "held"}
	if st := r.syncer.Status(); st.Failures[held] == "" || st.OutOfSync != 1 {
		t.Fatalf("after the first pass: failures %v, out of sync %d; want ConfigMap %s/held failed", st.Failures, st.OutOfSync, ns)
	}
	binding := decode(t, "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {name: no-blocked}")[0]
	if err := standby.Client.Delete(ctx, binding); err != nil {
		t.Fatal(err)
	}
	fixed := time.Now()
	waitStandby(t, "the held ConfigMap reaches the standby", func() (bool, error) {
		_, err := getStandby(t, configMapGVK, ns, "held")
		return err == nil, client.IgnoreNotFound(err)
	})
	healed := time.Since(fixed)
	st := r.syncer.Status()
	if len(st.Failures) != 0 || st.OutOfSync != 0 || st.InSync != st.Selected {
		t.Fatalf("after healing: failures %v, selected/in sync/out of sync %d/%d/%d; want none failed and all in sync",
			st.Failures, st.Selected, st.InSync, st.OutOfSync)
	}
	t.Logf("healed %s after the standby stopped refusing it (full passes an hour apart)", healed.Round(time.Millisecond))
}

// A full pass that could not run because the standby did not answer is
// retried with back-off: once the link is back the objects that existed
// before the syncer started are copied in seconds, not at the next full
// pass an hour later.
func TestFullPassIsRetriedWhenTheStandbyAnswersAgain(t *testing.T) {
	ns := "shop-retry"
	create(t, active.Client, decode(t, strings.ReplaceAll(`
apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: before, namespace: NS}`, "NS", ns))...)
	u, err := url.Parse(standby.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	link, err := testbed.NewLink("standby-"+ns, u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	if err := link.Cut(); err != nil {
		t.Fatal(err)
	}
	target := rest.CopyConfig(standby.Config)
	target.Host = "https://" + link.Addr
	target.Timeout = time.Second
	r := startSyncerTo(t, target, "shop", "retry", tandemv1.SyncPolicySpec{Namespaces: tandemv1.NamespaceSelection{Names: []string{ns}}})
	waitStandby(t, "the first pass fails on the cut link", func() (bool, error) {
		return r.syncer.Status().Err != nil, nil
	})
	time.Sleep(3 * time.Second) // the cut lasts a few retries
	if err := link.Heal(); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	waitStandby(t, "a full pass after the link healed", func() (bool, error) {
		st := r.syncer.Status()
		return st.Err == nil && !st.LastFullSync.IsZero(), nil
	})
	if _, err := getStandby(t, configMapGVK, ns, "before"); err != nil {
		t.Fatalf("the ConfigMap that existed before the syncer started is not on the standby: %v", err)
	}
	t.Logf("first full pass %s after the link healed (full passes an hour apart)", time.Since(healed).Round(time.Millisecond))
}

// The watermark is the time up to which every change on the active cluster
// is on the standby: it stays behind a change the standby refuses, whether
// the object existed before the syncer started or changed after, and moves
// on once the change lands.
func TestWatermarkStaysBehindAChangeTheStandbyLacks(t *testing.T) {
	ctx := context.Background()
	ns := "shop-watermark"
	standbyRefuses(t, "no-stuck", "stuck", "the standby refuses this ConfigMap")
	create(t, active.Client, decode(t, strings.ReplaceAll(`
apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: old, namespace: NS, labels: {stuck: "yes"}}`, "NS", ns))...)
	beforeStart := time.Now()
	r := startSyncer(t, "shop", "watermark", tandemv1.SyncPolicySpec{Namespaces: tandemv1.NamespaceSelection{Names: []string{ns}}})
	if w := r.syncer.Watermark(); w.IsZero() || w.After(beforeStart) {
		t.Fatalf("watermark %s with ConfigMap old (there before the syncer started at %s) refused by the standby; want at most that start",
			w.Format(time.StampMilli), beforeStart.Format(time.StampMilli))
	}
	binding := decode(t, "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {name: no-stuck}")[0]
	if err := standby.Client.Delete(ctx, binding); err != nil {
		t.Fatal(err)
	}
	fixed := time.Now()
	waitStandby(t, "the watermark passes the fix", func() (bool, error) {
		return r.syncer.Watermark().After(fixed), nil
	})
	if _, err := getStandby(t, configMapGVK, ns, "old"); err != nil {
		t.Fatalf("the watermark moved past %s but ConfigMap old is not on the standby: %v", fixed.Format(time.StampMilli), err)
	}

	// A change after the start that the standby refuses holds it too.
	standbyRefuses(t, "no-stuck-again", "again", "the standby refuses this ConfigMap")
	created := time.Now()
	create(t, active.Client, decode(t, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: new, namespace: %s, labels: {again: x}}", ns))...)
	time.Sleep(3 * replicate.WatchAllowance)
	if w := r.syncer.Watermark(); w.After(created) {
		t.Fatalf("watermark %s passed ConfigMap new, created at %s and refused by the standby", w.Format(time.StampMilli), created.Format(time.StampMilli))
	}
}
