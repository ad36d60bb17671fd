package controller

import (
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/traffic"
)

// TrafficReady says where the records point as the servers answer, and
// Ready follows it when a name does not lead to the active side.
func TestTrafficReadyCondition(t *testing.T) {
	servers := traffic.Config{Servers: []string{"ns1:53", "ns2:53"}, Records: []tandemv1.DNSRecord{{Name: "shop.example.com"}}}
	at := func(cluster string, unreachable ...string) []traffic.Seen {
		return []traffic.Seen{{Name: "shop.example.com", Cluster: cluster, Answer: []string{"192.0.2.10"}, Unreachable: unreachable,
			Message: map[bool]string{true: "not answering: ns2:53 timed out"}[len(unreachable) > 0]}}
	}
	cases := []struct {
		name   string
		cfg    traffic.Config
		seen   []traffic.Seen
		acted  error
		busy   []string
		status metav1.ConditionStatus
		reason string
		says   string
		ready  metav1.ConditionStatus
	}{
		{"at the active side", servers, at("dc-east"), nil, nil,
			metav1.ConditionTrue, tandemv1.PointsAtActiveReason, "1 record answers dc-east's targets at every authoritative server", metav1.ConditionTrue},
		{"at the standby", servers, at("dc-west"), nil, nil,
			metav1.ConditionFalse, tandemv1.PointsElsewhereReason, "dc-east is active but shop.example.com answers dc-west's targets", metav1.ConditionFalse},
		{"at the standby while a switchover runs", servers, at("dc-west"), nil, []string{"to-west"},
			metav1.ConditionUnknown, tandemv1.ProgressingReason, "while Switchover to-west runs", metav1.ConditionTrue},
		{"a server does not answer", servers, at("dc-east", "ns2:53"), nil, nil,
			metav1.ConditionUnknown, tandemv1.DNSNotVerifiedReason, "not answering: ns2:53", metav1.ConditionTrue},
		{"neither cluster's values", servers, []traffic.Seen{{Name: "shop.example.com", Answer: []string{"10.9.9.9"}, Message: "the servers answer [10.9.9.9], which are no cluster's targets"}}, nil, nil,
			metav1.ConditionFalse, tandemv1.PointsElsewhereReason, "which are no cluster's targets", metav1.ConditionFalse},
		{"a refused update", servers, nil, &traffic.RefusedError{Server: "ns1:53", Name: "shop.example.com.", Rcode: "NOTAUTH"}, nil,
			metav1.ConditionFalse, tandemv1.DNSUpdateFailedReason, "did not accept the TSIG key", metav1.ConditionFalse},
		{"a route that cannot be patched", servers, at("dc-east"), routesError{errors.New("enabling Ingress shop/web: forbidden")}, nil,
			metav1.ConditionFalse, tandemv1.RoutesFailedReason, "enabling Ingress shop/web", metav1.ConditionFalse},
		{"no DNSEndpoint CRD", servers, at("dc-west"), errors.New("the cluster does not serve externaldns.k8s.io/v1alpha1 DNSEndpoint"), nil,
			metav1.ConditionFalse, tandemv1.DNSUpdateFailedReason, "does not serve externaldns.k8s.io/v1alpha1 DNSEndpoint", metav1.ConditionFalse},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pair := &tandemv1.HAPair{Spec: tandemv1.HAPairSpec{Traffic: &tandemv1.TrafficSpec{DNS: servers.Records}},
				Status: tandemv1.HAPairStatus{ActiveCluster: "dc-east", LocalRole: tandemv1.RoleActive}}
			setCondition(pair, tandemv1.SyncedCondition, metav1.ConditionTrue, tandemv1.SucceededReason, "3 objects in sync on dc-west")
			setTrafficReady(pair, c.cfg, c.seen, c.acted, c.busy)
			got := findCondition(pair, tandemv1.TrafficReadyCondition)
			if got == nil || got.Status != c.status || got.Reason != c.reason || !strings.Contains(got.Message, c.says) {
				t.Fatalf("TrafficReady = %+v; want %s %s saying %q", got, c.status, c.reason, c.says)
			}
			setHAPairSummary(pair, nil)
			if ready := findCondition(pair, tandemv1.ReadyCondition); ready == nil || ready.Status != c.ready {
				t.Fatalf("Ready = %+v; want %s", ready, c.ready)
			}
		})
	}
}
