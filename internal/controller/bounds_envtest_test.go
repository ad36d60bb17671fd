package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/controller"
)

// A JSON patch that would move a copy into another namespace, a patch bomb
// and a patch that is no JSON patch at all pass admission (CEL cannot read
// the JSON), so the operator refuses them: the policy's PlanValid names
// each patch, the objects they match are not copied (nothing lands in the
// other namespace), and the rest of the policy is.
func TestPatchesBeyondTheirBoundsAreRefused(t *testing.T) {
	ctx := context.Background()
	ns := "patch-bounds"
	kc, err := west.Kubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	bomb := `[{"op":"add","path":"/data/b","value":"` + strings.Repeat("x", 1000) + `"}` +
		strings.Repeat(`,{"op":"copy","from":"/data","path":"/data/c"}`, 60) + `]`
	apply(t, east.Client, ns, `
apiVersion: v1
kind: Namespace
metadata: {name: NS}
---`+pairOfApp+`---
apiVersion: tandem.dev/v1alpha1
kind: SyncPolicy
metadata: {name: app, namespace: NS}
spec:
  namespaces: {names: [NS]}
  transforms:
    patches:
    - target: {kind: ConfigMap, name: escape}
      patch: '[{"op":"replace","path":"/metadata/namespace","value":"default"}]'
    - target: {kind: ConfigMap, name: bomb}
      patch: '`+bomb+`'
    - target: {kind: ConfigMap, name: nothing}
      patch: '[{"op": "replace"]'
---
apiVersion: v1
kind: ConfigMap
metadata: {name: escape, namespace: NS}
data: {a: b}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: bomb, namespace: NS}
data: {a: b}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config, namespace: NS}
data: {a: b}`)
	kubeconfigSecret(t, ns, "dc-west-kubeconfig", kc)

	waitFor(t, "the unpatched ConfigMap reaches dc-west", func(ctx context.Context) (bool, error) {
		return west.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "config"}, &corev1.ConfigMap{}) == nil, nil
	})
	policy := &tandemv1.SyncPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}}
	kstatusIs(t, east.Client, policy, kstatus.FailedStatus, "spec.transforms.patches[0].patch: operation 0 (replace \"/metadata/namespace\"): metadata is the sync's")
	if err := east.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy); err != nil {
		t.Fatal(err)
	}
	msg := condition(policy.Status.Conditions, tandemv1.PlanValidCondition).Message
	if !strings.Contains(msg, "spec.transforms.patches[2].patch: not an RFC 6902 JSON patch") {
		t.Errorf("PlanValid %q does not name the patch that is not one", msg)
	}
	// The bomb decodes: it is refused where it is applied, on its object.
	waitFor(t, "the bomb's object fails, naming the copy limit", func(ctx context.Context) (bool, error) {
		if err := east.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy); err != nil {
			return false, err
		}
		for _, f := range policy.Status.Failures {
			if strings.HasSuffix(f.Object, "/bomb") && strings.Contains(f.Message, "spec.transforms.patches[1]") && strings.Contains(f.Message, "262144") {
				return true, nil
			}
		}
		return false, fmt.Errorf("failures %+v", policy.Status.Failures)
	})
	for _, key := range []client.ObjectKey{{Namespace: "default", Name: "escape"}, {Namespace: ns, Name: "escape"}, {Namespace: ns, Name: "bomb"}} {
		if err := west.Client.Get(ctx, key, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
			t.Errorf("ConfigMap %s on dc-west: %v, want it not copied", key, err)
		}
	}
}

// Probe endpoints the operator refuses (its own loopback, the cloud's
// metadata address) are not probed: the pair says which, naming the field,
// and the peer is still judged by what may be probed, never failed for it.
func TestProbeEndpointsTheOperatorRefusesAreNamed(t *testing.T) {
	ns := "probe-bounds"
	kc, err := west.Kubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	apply(t, east.Client, ns, `
apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: tandem.dev/v1alpha1
kind: HAPair
metadata: {name: shop, namespace: NS}
spec:
  clusters:
  - name: dc-east
  - name: dc-west
    kubeconfigSecretRef: {name: dc-west-kubeconfig}
  primary: dc-east
  failover:
    endpoints:
    - {cluster: dc-west, url: "http://127.0.0.1:8081/healthz"}
    - {cluster: dc-west, url: "http://169.254.169.254/latest/meta-data/"}`)
	kubeconfigSecret(t, ns, "dc-west-kubeconfig", kc)
	pair, _ := waitPair(t, ns, tandemv1.PeerReachableCondition, "the peer is probed", func(_ *tandemv1.HAPair, c *metav1.Condition) bool {
		return c.Status == metav1.ConditionTrue
	})
	kstatusIs(t, east.Client, pair, kstatus.FailedStatus,
		"spec.failover.endpoints[0].url: 127.0.0.1 is a loopback address, refused unless the operator's --allow-request-cidrs names it; "+
			"spec.failover.endpoints[1].url: 169.254.169.254 is a link-local address")
}

// A drill's check Job runs as a ServiceAccount only when whoever manages
// it lent it to drill checks, and only an image the operator allows: the
// Job is a pod the operator creates for whoever writes the Switchover.
func TestACheckJobBorrowsNoServiceAccountAndRunsOnlyAllowedImages(t *testing.T) {
	ctx := context.Background()
	ns := "check-jobs"
	apply(t, west.Client, ns, `
apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: deployer, namespace: NS}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: smoke, namespace: NS, annotations: {tandem.dev/drill-checks: "true"}}`)
	job := func(sa, image string) *tandemv1.JobCheck {
		return &tandemv1.JobCheck{Namespace: ns, ServiceAccountName: sa, Image: image}
	}
	images := []string{"registry.example/checks/"}
	cases := []struct {
		job *tandemv1.JobCheck
		err string
	}{
		{job("deployer", "registry.example/checks/smoke:1"), `spec.drill.checks[smoke].job.serviceAccountName: ServiceAccount check-jobs/deployer on dc-west is not lent to drill checks (annotation tandem.dev/drill-checks: "true"`},
		{job("nobody", "registry.example/checks/smoke:1"), "ServiceAccount check-jobs/nobody does not exist on dc-west"},
		{job("smoke", "docker.io/library/alpine:3"), "spec.drill.checks[smoke].job.image docker.io/library/alpine:3 is not one the operator runs (--check-job-images: registry.example/checks/)"},
		{job("smoke", "registry.example/checks/smoke:1"), ""},
		{job("", "registry.example/checks/smoke:1"), ""},
	}
	for _, c := range cases {
		err := controller.CheckJobAllowed(ctx, west.Client, "dc-west", "smoke", c.job, images)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%+v: %v, want it allowed", c.job, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%+v: %v, want %q", c.job, err, c.err)
		}
	}
	if err := controller.CheckJobAllowed(ctx, west.Client, "dc-west", "smoke", job("", "docker.io/library/alpine:3"), nil); err != nil {
		t.Errorf("without --check-job-images any image runs: %v", err)
	}
}
