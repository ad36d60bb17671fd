package controller_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/controller"
	"github.com/tandem-dev/tandem/internal/fence"
	"github.com/tandem-dev/tandem/internal/remote"
	"github.com/tandem-dev/tandem/internal/replicate"
	"github.com/tandem-dev/tandem/test/testbed"
)

// dc-east runs the controllers; dc-west is the standby, reached through a
// kubeconfig Secret the way a real pair is.
var east, west *testbed.APIServer

func TestMain(m *testing.M) {
	if os.Getenv("DEBUGLOG") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	} else {
		ctrl.SetLogger(logr.Discard())
	}
	ctx, cancel := context.WithCancel(context.Background())
	servers, err := testbed.StartAPIServers(ctx, "dc-east", "dc-west")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	east, west = servers[0], servers[1]
	done, err := startManager(ctx)
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	cancel()
	if done != nil {
		<-done
	}
	for _, s := range servers {
		_ = s.Stop()
	}
	os.Exit(code)
}

func startManager(ctx context.Context) (chan struct{}, error) {
	mgr, err := ctrl.NewManager(east.Config, ctrl.Options{
		Scheme:  testbed.Scheme(),
		Metrics: metricsserver.Options{BindAddress: "0"},
	})
	if err != nil {
		return nil, err
	}
	pairEvents := make(chan event.GenericEvent, 100)
	policyEvents := make(chan event.GenericEvent, 100)
	syncs, err := replicate.NewManager(east.Config, nil, func(k replicate.Key) {
		pairEvents <- event.GenericEvent{Object: &tandemv1.HAPair{ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: k.Pair}}}
		policyEvents <- event.GenericEvent{Object: &tandemv1.SyncPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: k.Policy}}}
	}, ctrl.Log.WithName("sync"))
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(syncs); err != nil {
		return nil, err
	}
	rec := mgr.GetEventRecorder("tandem-operator")
	if err := controller.SetupIndexes(ctx, mgr); err != nil {
		return nil, err
	}
	peers, witness := &remote.Peers{Scheme: testbed.Scheme()}, &fence.Witness{}
	if err := (&controller.HAPairReconciler{Client: mgr.GetClient(), ClusterName: "dc-east", Syncs: syncs,
		Peers: peers, Witness: witness,
		Kubeconfig: remote.Policy{}, Events: rec, SyncEvents: pairEvents}).SetupWithManager(mgr); err != nil {
		return nil, err
	}
	if err := (&controller.SyncPolicyReconciler{Client: mgr.GetClient(), ClusterName: "dc-east", Syncs: syncs,
		Events: rec, SyncEvents: policyEvents}).SetupWithManager(mgr); err != nil {
		return nil, err
	}
	if err := (&controller.SwitchoverReconciler{Client: mgr.GetClient(), ClusterName: "dc-east", LocalConfig: east.Config,
		Peers: peers, Witness: witness, Syncs: syncs, Events: rec}).SetupWithManager(mgr); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	return done, nil
}

func apply(t *testing.T, c client.Client, ns, docs string) {
	t.Helper()
	for _, u := range testbed.MustDecode(t, strings.ReplaceAll(docs, "NS", ns)) {
		if err := c.Create(context.Background(), u); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
}

func kubeconfigSecret(t *testing.T, ns, name string, data []byte) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{"kubeconfig": data}}
	if err := east.Client.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

// pairOfApp is the HAPair "shop" of namespace NS, dc-east primary,
// syncing SyncPolicy "app" to dc-west.
const pairOfApp = `
apiVersion: tandem.dev/v1alpha1
kind: HAPair
metadata: {name: shop, namespace: NS}
spec:
  clusters:
  - name: dc-east
  - name: dc-west
    kubeconfigSecretRef: {name: dc-west-kubeconfig}
  primary: dc-east
  syncPolicyRefs: [{name: app}]
`

const pairAndPolicy = `
apiVersion: v1
kind: Namespace
metadata: {name: NS}
---` + pairOfApp + `---
apiVersion: tandem.dev/v1alpha1
kind: SyncPolicy
metadata: {name: app, namespace: NS}
spec:
  namespaces: {names: [NS]}
`

const app = `
apiVersion: v1
kind: ConfigMap
metadata: {name: config, namespace: NS}
data: {SITE: east}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: NS}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: web
      containers: [{name: web, image: registry.example/web:1, envFrom: [{configMapRef: {name: config}}]}]
`

// kstatusIs waits until cli-utils' kstatus reads the object on the API
// server as want, its message containing says: what Flux, Argo CD and
// kstatus-based pipelines would see.
func kstatusIs(t *testing.T, c client.Client, obj client.Object, want kstatus.Status, says string) {
	t.Helper()
	gvk, err := c.GroupVersionKindFor(obj)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, fmt.Sprintf("%s %s reads %s in kstatus", gvk.Kind, obj.GetName(), want), func(ctx context.Context) (bool, error) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), u); err != nil {
			return false, err
		}
		res, err := kstatus.Compute(u)
		if err != nil {
			return false, err
		}
		return res.Status == want && strings.Contains(res.Message, says), fmt.Errorf("kstatus %s: %s", res.Status, res.Message)
	})
}

func waitFor(t *testing.T, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	if err := testbed.Poll(context.Background(), 45*time.Second, 100*time.Millisecond, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitPair waits until the HAPair "shop" of ns has a condition of condType
// for which ok holds, and returns the pair and that condition.
func waitPair(t *testing.T, ns, condType, what string, ok func(*tandemv1.HAPair, *metav1.Condition) bool) (*tandemv1.HAPair, *metav1.Condition) {
	t.Helper()
	var pair tandemv1.HAPair
	waitFor(t, what, func(ctx context.Context) (bool, error) {
		if err := east.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, &pair); err != nil {
			return false, err
		}
		c := condition(pair.Status.Conditions, condType)
		return c != nil && ok(&pair, c), fmt.Errorf("conditions %+v, peer %+v", pair.Status.Conditions, pair.Status.Peer)
	})
	return &pair, condition(pair.Status.Conditions, condType)
}

func condition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

func TestActiveSideSyncsThePairAndReports(t *testing.T) {
	ctx := context.Background()
	ns := "shop-sync"
	kc, err := west.Kubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	apply(t, east.Client, ns, "apiVersion: v1\nkind: Namespace\nmetadata: {name: NS}")
	kubeconfigSecret(t, ns, "dc-west-kubeconfig", kc)
	apply(t, east.Client, ns, app)
	apply(t, east.Client, ns, pairAndPolicy)

	pair, _ := waitPair(t, ns, tandemv1.SyncedCondition, "the HAPair reports Synced=True", func(_ *tandemv1.HAPair, c *metav1.Condition) bool {
		return c.Status == metav1.ConditionTrue
	})
	if pair.Status.ActiveCluster != "dc-east" || pair.Status.StandbyCluster != "dc-west" || pair.Status.LocalRole != tandemv1.RoleActive {
		t.Errorf("roles: active %q standby %q local %q", pair.Status.ActiveCluster, pair.Status.StandbyCluster, pair.Status.LocalRole)
	}
	// The active side grants its pods' fence sidecars the right to serve
	// (a pair without a witness: for the default 15s from each round).
	waitFor(t, "the active side's serving Lease grants dc-east", func(ctx context.Context) (bool, error) {
		var l coordinationv1.Lease
		if err := east.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: fence.ServingLeaseName("shop")}, &l); err != nil {
			return false, err
		}
		ok := l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == "dc-east" && l.Spec.LeaseDurationSeconds != nil && *l.Spec.LeaseDurationSeconds == 15 &&
			l.Spec.RenewTime != nil && time.Since(l.Spec.RenewTime.Time) < 15*time.Second
		return ok, fmt.Errorf("serving Lease %+v", l.Spec)
	})
	if s := pair.Status.Sync; s == nil || s.Selected != 4 || s.InSync != 4 || s.LastFullSync == nil {
		t.Errorf("sync summary = %+v, want 4 selected and in sync (Namespace, ConfigMap, ServiceAccount, Deployment)", s)
	}
	if c := condition(pair.Status.Conditions, tandemv1.PeerReachableCondition); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("PeerReachable = %+v, want True", c)
	}
	if p := pair.Status.Peer; p == nil || p.Cluster != "dc-west" || !p.Reachable || p.LastProbeTime == nil || p.ConsecutiveFailures != 0 {
		t.Errorf("status.peer = %+v", p)
	}
	ready := condition(pair.Status.Conditions, tandemv1.ReadyCondition)
	if ready == nil || ready.Status != metav1.ConditionTrue || !strings.Contains(ready.Message, "in sync on dc-west") {
		t.Errorf("Ready = %+v; want True, saying the copies are in sync", ready)
	}
	if tr := condition(pair.Status.Conditions, tandemv1.TrafficReadyCondition); tr == nil || tr.Reason != tandemv1.NoTrafficReason {
		t.Errorf("TrafficReady = %+v; want reason %s for a pair without spec.traffic", tr, tandemv1.NoTrafficReason)
	}

	var policy tandemv1.SyncPolicy
	waitFor(t, "the SyncPolicy reports its plan and copies", func(ctx context.Context) (bool, error) {
		if err := east.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &policy); err != nil {
			return false, err
		}
		return policy.Status.InSync == 4, fmt.Errorf("status: %+v", policy.Status)
	})
	if policy.Status.Waves != 3 {
		t.Errorf("waves = %d, want 3 (Namespace; ConfigMap and ServiceAccount; Deployment)", policy.Status.Waves)
	}
	if c := condition(policy.Status.Conditions, tandemv1.PlanValidCondition); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("PlanValid = %+v", c)
	}
	kstatusIs(t, east.Client, pair, kstatus.CurrentStatus, "")
	kstatusIs(t, east.Client, &policy, kstatus.CurrentStatus, "")

	// The peer's kubeconfig Secret sits in the synced namespace but is never
	// copied: it belongs to this side.
	var secret corev1.Secret
	if err := west.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "dc-west-kubeconfig"}, &secret); !apierrors.IsNotFound(err) {
		t.Errorf("the kubeconfig Secret was copied to the standby (err %v)", err)
	}

	// The copy is on dc-west, warm.
	var d unstructured.Unstructured
	d.SetAPIVersion("apps/v1")
	d.SetKind("Deployment")
	if err := west.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &d); err != nil {
		t.Fatalf("the Deployment is not on dc-west: %v", err)
	}
	if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r != 0 || d.GetAnnotations()[replicate.ReplicasAnnotation] != "2" {
		t.Errorf("dc-west Deployment: replicas %d, annotation %q", r, d.GetAnnotations()[replicate.ReplicasAnnotation])
	}
}

func TestCycleIsReportedOnThePolicy(t *testing.T) {
	ns := "shop-cycle"
	kc, err := west.Kubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	apply(t, east.Client, ns, "apiVersion: v1\nkind: Namespace\nmetadata: {name: NS}")
	kubeconfigSecret(t, ns, "dc-west-kubeconfig", kc)
	apply(t, east.Client, ns, `
apiVersion: v1
kind: ConfigMap
metadata: {name: chicken, namespace: NS, annotations: {tandem.dev/depends-on: configmap/egg}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: egg, namespace: NS, annotations: {tandem.dev/depends-on: configmap/chicken}}`)
	apply(t, east.Client, ns, pairAndPolicy)

	var policy tandemv1.SyncPolicy
	waitFor(t, "PlanValid=False names the cycle", func(ctx context.Context) (bool, error) {
		if err := east.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &policy); err != nil {
			return false, err
		}
		c := condition(policy.Status.Conditions, tandemv1.PlanValidCondition)
		return c != nil && c.Status == metav1.ConditionFalse, fmt.Errorf("conditions: %+v", policy.Status.Conditions)
	})
	c := condition(policy.Status.Conditions, tandemv1.PlanValidCondition)
	want := "cycle between ConfigMap " + ns + "/chicken, ConfigMap " + ns + "/egg"
	if c.Reason != tandemv1.PlanCycleReason || !strings.Contains(c.Message, want) {
		t.Fatalf("PlanValid = %s: %s; want reason %s naming %q", c.Reason, c.Message, tandemv1.PlanCycleReason, want)
	}
	kstatusIs(t, east.Client, &policy, kstatus.FailedStatus, want)
	var cm corev1.ConfigMap
	if err := west.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "chicken"}, &cm); !apierrors.IsNotFound(err) {
		t.Fatalf("an object on a cycle reached the standby (err %v)", err)
	}
}

func TestBadKubeconfigSecretIsReported(t *testing.T) {
	ns := "shop-badkc"
	apply(t, east.Client, ns, "apiVersion: v1\nkind: Namespace\nmetadata: {name: NS}")
	kubeconfigSecret(t, ns, "dc-west-kubeconfig", []byte(`apiVersion: v1
kind: Config
current-context: w
clusters: [{name: w, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: w, context: {cluster: w, user: u}}]
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/steal-secrets}}}]`))
	apply(t, east.Client, ns, pairAndPolicy)
	_, c := waitPair(t, ns, tandemv1.SyncedCondition, "Synced names the kubeconfig problem", func(_ *tandemv1.HAPair, c *metav1.Condition) bool {
		return c.Reason == tandemv1.PeerKubeconfigInvalidReason
	})
	if !strings.Contains(c.Message, "kubeconfig Secret "+ns+"/dc-west-kubeconfig") || !strings.Contains(c.Message, "exec credential plugin") {
		t.Fatalf("Synced message %q does not name the Secret and the problem", c.Message)
	}
	kstatusIs(t, east.Client, &tandemv1.HAPair{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}}, kstatus.FailedStatus, "kubeconfig Secret "+ns+"/dc-west-kubeconfig")
}

// Switchovers that cannot run fail fast with a message saying why: a pair
// that does not exist, and a Planned switchover whose target does not
// answer. Nothing is touched: the workloads keep running.
func TestSwitchoversThatCannotRunFailFast(t *testing.T) {
	ns := "shop-switch"
	apply(t, east.Client, ns, "apiVersion: v1\nkind: Namespace\nmetadata: {name: NS}")
	kubeconfigSecret(t, ns, "dc-west-kubeconfig", []byte(`apiVersion: v1
kind: Config
current-context: w
clusters: [{name: w, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: w, context: {cluster: w, user: u}}]
users: [{name: u, user: {token: t}}]`))
	apply(t, east.Client, ns, pairAndPolicy+app)
	waitPair(t, ns, tandemv1.PeerReachableCondition, "the pair sees its peer unreachable", func(_ *tandemv1.HAPair, c *metav1.Condition) bool {
		return c.Status == metav1.ConditionFalse
	})
	cases := []struct {
		name, pair, reason, says string
	}{
		{"no-pair", "nope", tandemv1.InvalidSpecReason, "spec.pairRef: HAPair " + ns + "/nope does not exist"},
		{"peer-down", "shop", tandemv1.PreconditionFailedReason, "dc-west cannot be reached"},
		{"to-itself", "shop", tandemv1.PreconditionFailedReason, "spec.targetCluster dc-east is the cluster this switchover runs on"},
	}
	for _, tc := range cases {
		so := &tandemv1.Switchover{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tc.name},
			Spec:       tandemv1.SwitchoverSpec{PairRef: tc.pair, Type: tandemv1.SwitchoverPlanned, TargetCluster: map[bool]string{true: "dc-east", false: "dc-west"}[tc.name == "to-itself"]},
		}
		if err := east.Client.Create(context.Background(), so); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		waitFor(t, tc.name+" fails fast", func(ctx context.Context) (bool, error) {
			if err := east.Client.Get(ctx, client.ObjectKeyFromObject(so), so); err != nil {
				return false, err
			}
			c := condition(so.Status.Conditions, tandemv1.ReadyCondition)
			return so.Status.Phase == tandemv1.PhaseFailed && c != nil && c.Reason == tc.reason && strings.Contains(c.Message, tc.says),
				fmt.Errorf("phase %s, conditions %+v", so.Status.Phase, so.Status.Conditions)
		})
		t.Logf("%s: Failed after %s: %s", tc.name, time.Since(start).Round(time.Millisecond), condition(so.Status.Conditions, tandemv1.ReadyCondition).Message)
		kstatusIs(t, east.Client, so, kstatus.FailedStatus, tc.says)
	}
	var web appsv1.Deployment
	if err := east.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, &web); err != nil || *web.Spec.Replicas != 2 {
		t.Fatalf("web after the refused switchovers: %v replicas, %v", web.Spec.Replicas, err)
	}
}

// A peer that does not answer makes PeerReachable False after the probe
// rounds fail, with what failed; fixing the kubeconfig Secret reconnects.
func TestUnreachablePeerIsReportedAndRecovers(t *testing.T) {
	ctx := context.Background()
	ns := "shop-dead"
	good, err := west.Kubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := clientcmd.Load(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range raw.Clusters {
		c.Server = fmt.Sprintf("https://127.0.0.1:%d", port)
	}
	dead, err := clientcmd.Write(*raw)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, east.Client, ns, "apiVersion: v1\nkind: Namespace\nmetadata: {name: NS}")
	kubeconfigSecret(t, ns, "dc-west-kubeconfig", dead)
	apply(t, east.Client, ns, `
apiVersion: tandem.dev/v1alpha1
kind: HAPair
metadata: {name: shop, namespace: NS}
spec:
  clusters:
  - name: dc-east
  - name: dc-west
    kubeconfigSecretRef: {name: dc-west-kubeconfig}
  primary: dc-east
  failover: {probePeriod: 1s, probeTimeout: 500ms, failureThreshold: 2}
`)

	pair, c := waitPair(t, ns, tandemv1.PeerReachableCondition, "PeerReachable=False after failed rounds", func(p *tandemv1.HAPair, c *metav1.Condition) bool {
		return c.Status == metav1.ConditionFalse && p.Status.Peer != nil && p.Status.Peer.ConsecutiveFailures >= 2
	})
	if c.Reason != tandemv1.PeerUnreachableReason || !strings.Contains(c.Message, "probe rounds of dc-west failed (never answered): /readyz:") {
		t.Errorf("PeerReachable = %s: %s", c.Reason, c.Message)
	}
	if r := condition(pair.Status.Conditions, tandemv1.ReadyCondition); r == nil || r.Status != metav1.ConditionFalse {
		t.Errorf("Ready = %+v, want False while the peer is unreachable", r)
	}

	var secret corev1.Secret
	if err := east.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "dc-west-kubeconfig"}, &secret); err != nil {
		t.Fatal(err)
	}
	secret.Data["kubeconfig"] = good
	if err := east.Client.Update(ctx, &secret); err != nil {
		t.Fatal(err)
	}
	waitPair(t, ns, tandemv1.PeerReachableCondition, "PeerReachable=True after the Secret was fixed", func(p *tandemv1.HAPair, c *metav1.Condition) bool {
		return c.Status == metav1.ConditionTrue && p.Status.Peer != nil && p.Status.Peer.LastSuccessTime != nil
	})
}
