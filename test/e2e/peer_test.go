package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/test/testbed"
)

// dc-east's operator probes dc-west every second; when dc-west goes dark the
// pair reports it after failureThreshold rounds, and again when it returns.
func TestPeerGoingDarkIsDetected(t *testing.T) {
	ctx := context.Background()
	bed, clusters := upBed(t, testbed.UpOptions{Nodes: 1})
	east, west := clusters[testbed.East], clusters[testbed.West]
	installTandem(t, east)
	pairNamespace(t, east, west, "shop",
		&tandemv1.HAPair{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"},
			Spec: tandemv1.HAPairSpec{
				Clusters: []tandemv1.ClusterSpec{
					{Name: testbed.East},
					{Name: testbed.West, KubeconfigSecretRef: &tandemv1.SecretKeyRef{Name: "dc-west-kubeconfig"}},
				},
				Primary: testbed.East,
				Failover: tandemv1.FailoverSpec{
					ProbePeriod:      &metav1.Duration{Duration: time.Second},
					ProbeTimeout:     &metav1.Duration{Duration: 500 * time.Millisecond},
					FailureThreshold: 3,
				},
			},
		})
	op := testbed.StartOperator(t, east, testbed.East)
	if err := op.WaitHealthy(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}

	peer := func(ctx context.Context) (*metav1.Condition, *tandemv1.PeerStatus, error) {
		var pair tandemv1.HAPair
		if err := east.Client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "shop"}, &pair); err != nil {
			return nil, nil, err
		}
		for i := range pair.Status.Conditions {
			if c := &pair.Status.Conditions[i]; c.Type == tandemv1.PeerReachableCondition {
				return c, pair.Status.Peer, nil
			}
		}
		return nil, pair.Status.Peer, fmt.Errorf("no PeerReachable condition: %+v", pair.Status.Conditions)
	}
	waitPeer := func(what string, want metav1.ConditionStatus, minFailures int32) time.Duration {
		start := time.Now()
		if err := testbed.Poll(ctx, 60*time.Second, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
			c, p, err := peer(ctx)
			if err != nil {
				return false, err
			}
			return c.Status == want && p != nil && p.ConsecutiveFailures >= minFailures, fmt.Errorf("%s: %s (peer %+v)", c.Status, c.Message, p)
		}); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, op.Logs())
		}
		return time.Since(start)
	}

	waitPeer("dc-west reachable", metav1.ConditionTrue, 0)
	if err := bed.Stop(ctx, testbed.West); err != nil {
		t.Fatal(err)
	}
	first := waitPeer("the first failed round", metav1.ConditionFalse, 1)
	lost := first + waitPeer("failureThreshold failed rounds", metav1.ConditionFalse, 3)
	t.Logf("dc-west stopped: first failed round seen after %s, 3 failed rounds (the threshold) after %s", first.Round(time.Millisecond), lost.Round(time.Millisecond))
	c, _, _ := peer(ctx)
	t.Logf("PeerReachable: %s", c.Message)

	if err := bed.Start(ctx, testbed.West); err != nil {
		t.Fatal(err)
	}
	back := waitPeer("dc-west reachable again", metav1.ConditionTrue, 0)
	t.Logf("dc-west started: reachable again after %s", back.Round(time.Millisecond))
}
