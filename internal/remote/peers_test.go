package remote

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// Rounds asked for within a period reuse the last result: extra reconciles
// must not make failures count faster than one per period.
func TestProbeAtMostOncePerPeriod(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	p := &Peers{Clock: clock}
	// Nothing listens on port 1: every probe fails at once.
	spec := ProbeSpec{Namespace: "shop", Pair: "shop", Peer: "dc-west", Config: &rest.Config{Host: "https://127.0.0.1:1"},
		Policy: tandemv1.ProbePolicyAny, Timeout: time.Second, Threshold: 3, Period: 5 * time.Second}
	ctx := context.Background()
	if h := p.Probe(ctx, spec); h.ConsecutiveFailures != 1 {
		t.Fatalf("first round: %+v", h)
	}
	clock.SetTime(clock.Now().Add(time.Second))
	for range 5 {
		if h := p.Probe(ctx, spec); h.ConsecutiveFailures != 1 {
			t.Fatalf("a round 1s after the last was probed: %+v", h)
		}
	}
	clock.SetTime(clock.Now().Add(4 * time.Second))
	if h := p.Probe(ctx, spec); h.ConsecutiveFailures != 2 {
		t.Fatalf("a round a period after the last was not probed: %+v", h)
	}
	// A new kubeconfig starts over.
	spec.Config = &rest.Config{Host: "https://127.0.0.1:2"}
	if h := p.Probe(ctx, spec); h.ConsecutiveFailures != 1 {
		t.Fatalf("a new kubeconfig kept the old count: %+v", h)
	}
}

// Callers asking for the peer's client get a typed NotConnectedError, with
// what the probes saw, while the peer does not answer.
func TestClientOfAPeerThatDoesNotAnswerIsNotConnected(t *testing.T) {
	p := &Peers{}
	if _, err := p.Client("shop", "shop"); !IsNotConnected(err) {
		t.Fatalf("before any probe: %v, want NotConnectedError", err)
	}
	spec := ProbeSpec{Namespace: "shop", Pair: "shop", Peer: "dc-west", Config: &rest.Config{Host: "https://127.0.0.1:1"},
		Policy: tandemv1.ProbePolicyAny, Timeout: time.Second, Threshold: 3, Period: time.Second}
	p.Probe(context.Background(), spec)
	_, err := p.Client("shop", "shop")
	if !IsNotConnected(err) || !strings.Contains(err.Error(), "dc-west") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("after a failed round: %v, want NotConnectedError naming dc-west and the failure", err)
	}
	if h, ok := p.Health("shop", "shop"); !ok || h.ConsecutiveFailures != 1 || h.FirstFailure.IsZero() {
		t.Fatalf("Health = %+v, %v", h, ok)
	}
}
