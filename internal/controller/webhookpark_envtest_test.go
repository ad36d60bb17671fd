package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/controller"
	"github.com/tandem-dev/tandem/internal/replicate"
)

// guardApp is an application that serves its own validating webhook: a
// Deployment behind it, and a configuration that refuses, while nothing
// answers, every labelled ConfigMap created in its namespace. The backend
// is an address where nothing listens (127.0.0.1:1): the API server's call
// fails at once, as it does for a Service whose pods are parked, and no
// packet leaves the machine.
const guardApp = `
apiVersion: v1
kind: Namespace
metadata:
  name: NS
  annotations: {tandem.dev/sync-cluster-kinds: ValidatingWebhookConfiguration.admissionregistration.k8s.io}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: guard, namespace: NS}
spec:
  replicas: 2
  selector: {matchLabels: {app: guard}}
  template:
    metadata: {labels: {app: guard}}
    spec: {containers: [{name: guard, image: registry.example/guard:1}]}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: guard-NS}
webhooks:
- name: configmaps.guard.tandem.test
  clientConfig: {url: "https://127.0.0.1:1/validate"}
  rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}]
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: NS}}
  objectSelector: {matchLabels: {guarded: "true"}}
  failurePolicy: Fail
  sideEffects: None
  admissionReviewVersions: [v1]
  timeoutSeconds: 2
`

var admissionGVK = schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfiguration"}

// A copied webhook whose backend is parked must not make the standby
// refuse writes: the warm copy matches nothing and keeps its rules in an
// annotation. Parking a side parks its webhooks with its workloads; unparking
// restores the rules only once the workloads behind them are Available.
func TestWebhooksParkWithTheirWorkloads(t *testing.T) {
	ctx := context.Background()
	ns := "webhook-park"
	kc, err := west.Kubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	apply(t, east.Client, ns, guardApp+`---`+pairOfApp+`---
apiVersion: tandem.dev/v1alpha1
kind: SyncPolicy
metadata: {name: app, namespace: NS}
spec:
  namespaces: {names: [NS]}
  resources:
    include:
    - {group: apps, kind: Deployment}
    - {kind: ConfigMap}
    - {group: admissionregistration.k8s.io, kind: ValidatingWebhookConfiguration, names: [guard-NS]}`)
	kubeconfigSecret(t, ns, "dc-west-kubeconfig", kc)

	hook := "guard-" + ns
	rulesOn := func(c client.Client) (rules []any, parked bool, err error) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(admissionGVK)
		if err := c.Get(ctx, client.ObjectKey{Name: hook}, u); err != nil {
			return nil, false, err
		}
		hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
		if len(hooks) != 1 {
			return nil, false, fmt.Errorf("%d webhooks", len(hooks))
		}
		rules, _ = hooks[0].(map[string]any)["rules"].([]any)
		_, parked = u.GetAnnotations()[replicate.WebhookRulesAnnotation]
		return rules, parked, nil
	}
	guarded := func(c client.Client, name string) error {
		return c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"guarded": "true"}}})
	}

	waitFor(t, "dc-west holds the webhook copy parked", func(context.Context) (bool, error) {
		rules, parked, err := rulesOn(west.Client)
		return err == nil && parked && len(rules) == 0, fmt.Errorf("rules %v, parked %v: %v", rules, parked, err)
	})
	if err := guarded(west.Client, "on-standby"); err != nil {
		t.Fatalf("dc-west refused a write the parked webhook would match: %v", err)
	}
	// The same configuration unparked, with nothing serving it, refuses.
	if err := guarded(east.Client, "refused"); err == nil || !strings.Contains(err.Error(), "configmaps.guard.tandem.test") {
		t.Fatalf("dc-east accepted a write its live webhook cannot answer for (%v): the test shows nothing", err)
	}

	pair := &tandemv1.HAPair{}
	if err := east.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, pair); err != nil {
		t.Fatal(err)
	}
	w := controller.Workloads{Policies: east.Client}
	if n, err := w.Park(ctx, east.Client, pair); err != nil || n != 2 {
		t.Fatalf("parking dc-east: %d changed, %v; want the Deployment and the webhook", n, err)
	}
	if rules, parked, err := rulesOn(east.Client); err != nil || !parked || len(rules) != 0 {
		t.Fatalf("dc-east's webhook after parking: rules %v, parked %v, %v", rules, parked, err)
	}
	if err := guarded(east.Client, "while-parked"); err != nil {
		t.Fatalf("dc-east refused a write with its webhook parked: %v", err)
	}

	run, err := w.Unpark(ctx, east.Client, pair)
	if err != nil {
		t.Fatal(err)
	}
	if rules, parked, _ := rulesOn(east.Client); !parked || len(rules) != 0 {
		t.Fatalf("the webhook came back (rules %v) before its Deployment was Available", rules)
	}
	if !strings.Contains(strings.Join(run.Waiting(), ","), hook) {
		t.Fatalf("waiting for %v; want the webhook named while its backend starts", run.Waiting())
	}

	dep := &appsv1.Deployment{}
	if err := east.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "guard"}, dep); err != nil {
		t.Fatal(err)
	}
	if *dep.Spec.Replicas != 2 {
		t.Fatalf("unparked Deployment runs %d replicas, want 2", *dep.Spec.Replicas)
	}
	// No controller manager runs here: report the Deployment Available.
	dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation, Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, UpdatedReplicas: 2}
	if err := east.Client.Status().Update(ctx, dep); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Unpark(ctx, east.Client, pair); err != nil {
		t.Fatal(err)
	}
	if rules, parked, err := rulesOn(east.Client); err != nil || parked || len(rules) != 1 {
		t.Fatalf("the webhook after its Deployment is Available: rules %v, parked %v, %v; want its rule back", rules, parked, err)
	}
	if err := guarded(east.Client, "refused-again"); err == nil {
		t.Fatal("dc-east accepted a write its restored webhook cannot answer for")
	}
	if run, err := w.Unpark(ctx, east.Client, pair); err != nil || len(run.Waiting()) != 0 {
		t.Fatalf("a third unpark waits for %v (%v); want nothing", run.Waiting(), err)
	}
	// The copy stays parked on dc-west throughout.
	if rules, parked, err := rulesOn(west.Client); err != nil || !parked || len(rules) != 0 {
		t.Fatalf("dc-west's copy: rules %v, parked %v, %v", rules, parked, err)
	}
}
