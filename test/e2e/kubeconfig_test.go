package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/test/testbed"
)

// Kubeconfig Secrets a platform team gets wrong: each pair says what is
// wrong with its Secret in PeerReachable, names the Secret, never prints
// its content, and the operator keeps running.
func TestBadKubeconfigSecretsAreReportedAndNothingCrashes(t *testing.T) {
	ctx := context.Background()
	_, clusters := upBed(t, testbed.UpOptions{Nodes: 1})
	east := clusters[testbed.East]
	installTandem(t, east)
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ns, kubeconfig string
		reason, says   string
	}{
		{ns: "malformed", kubeconfig: "apiVersion: v1\nkind: Config\nclusters: [{{{ not yaml", reason: tandemv1.PeerKubeconfigInvalidReason, says: "kubeconfig Secret malformed/dc-west-kubeconfig"},
		{ns: "nowhere", kubeconfig: fmt.Sprintf(`apiVersion: v1
kind: Config
current-context: w
clusters: [{name: w, cluster: {server: "https://127.0.0.1:%d"}}]
contexts: [{name: w, context: {cluster: w, user: u}}]
users: [{name: u, user: {token: do-not-print-me}}]`, port), reason: tandemv1.PeerUnreachableReason, says: "connection refused"},
		{ns: "exec", kubeconfig: `apiVersion: v1
kind: Config
current-context: w
clusters: [{name: w, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: w, context: {cluster: w, user: u}}]
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/steal-secrets}}}]`,
			reason: tandemv1.PeerKubeconfigInvalidReason, says: "exec credential plugin"},
	}
	for _, c := range cases {
		pairNamespace(t, east, clusters[testbed.West], c.ns)
		secret := &corev1.Secret{}
		if err := east.Client.Get(ctx, clientKey(c.ns, "dc-west-kubeconfig"), secret); err != nil {
			t.Fatal(err)
		}
		secret.Data["kubeconfig"] = []byte(c.kubeconfig)
		if err := east.Client.Update(ctx, secret); err != nil {
			t.Fatal(err)
		}
		pair := &tandemv1.HAPair{
			ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: "shop"},
			Spec: tandemv1.HAPairSpec{
				Clusters: []tandemv1.ClusterSpec{
					{Name: testbed.East},
					{Name: testbed.West, KubeconfigSecretRef: &tandemv1.SecretKeyRef{Name: "dc-west-kubeconfig"}},
				},
				Primary: testbed.East,
				Failover: tandemv1.FailoverSpec{
					ProbePeriod: &metav1.Duration{Duration: time.Second}, ProbeTimeout: &metav1.Duration{Duration: 500 * time.Millisecond}, FailureThreshold: 2,
				},
			},
		}
		if err := east.Client.Create(ctx, pair); err != nil {
			t.Fatal(err)
		}
	}
	op := testbed.StartOperator(t, east, testbed.East)
	if err := op.WaitHealthy(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	pid := op.PID()
	for _, c := range cases {
		if err := testbed.Poll(ctx, time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
			p, err := getPair(ctx, east, c.ns)
			if err != nil {
				return false, err
			}
			cond := findCond(p.Status.Conditions, tandemv1.PeerReachableCondition)
			if cond == nil || cond.Reason != c.reason || !strings.Contains(cond.Message, c.says) {
				return false, fmt.Errorf("PeerReachable %+v", cond)
			}
			ready := findCond(p.Status.Conditions, tandemv1.ReadyCondition)
			if ready == nil || ready.Status == metav1.ConditionTrue {
				return false, fmt.Errorf("Ready %+v", ready)
			}
			for _, cd := range p.Status.Conditions {
				if strings.Contains(cd.Message, "do-not-print-me") {
					t.Fatalf("condition %s prints the Secret's token: %s", cd.Type, cd.Message)
				}
			}
			t.Logf("%s: PeerReachable %s %s: %s", c.ns, cond.Status, cond.Reason, cond.Message)
			return true, nil
		}); err != nil {
			t.Fatalf("pair in %s: %v", c.ns, err)
		}
	}
	if err := op.WaitHealthy(ctx, 5*time.Second); err != nil || op.PID() != pid || !testbed.ProcessAlive(pid) {
		t.Fatalf("the operator did not survive: %v\n%s", err, op.Logs())
	}
	if strings.Contains(op.Logs(), "do-not-print-me") || strings.Contains(op.Logs(), "panic") {
		t.Fatalf("the operator log prints the Secret's token or a panic:\n%s", op.Logs())
	}
}

func clientKey(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }
