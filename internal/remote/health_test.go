package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

var refused = errors.New("connection refused")

func TestRoundFailed(t *testing.T) {
	cases := []struct {
		name   string
		round  Round
		policy tandemv1.ProbePolicy
		failed bool
		why    string
	}{
		{"api ok, no endpoints", Round{}, tandemv1.ProbePolicyAny, false, ""},
		{"api down, no endpoints, any", Round{API: refused}, tandemv1.ProbePolicyAny, true, "/readyz: connection refused"},
		{"api down, no endpoints, all", Round{API: refused}, tandemv1.ProbePolicyAll, true, "/readyz: connection refused"},
		{"one endpoint down, any", Round{Endpoints: map[string]error{"http://a": nil, "http://b": refused}}, tandemv1.ProbePolicyAny, true, "http://b: connection refused"},
		{"one endpoint down, all", Round{Endpoints: map[string]error{"http://a": nil, "http://b": refused}}, tandemv1.ProbePolicyAll, false, "http://b: connection refused"},
		{"api down but service answers, all", Round{API: refused, Endpoints: map[string]error{"http://a": nil}}, tandemv1.ProbePolicyAll, false, "/readyz: connection refused"},
		{"everything down, all", Round{API: refused, Endpoints: map[string]error{"http://b": refused, "http://a": refused}}, tandemv1.ProbePolicyAll, true,
			"/readyz: connection refused; http://a: connection refused; http://b: connection refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			failed, why := tc.round.Failed(tc.policy)
			if failed != tc.failed || why != tc.why {
				t.Fatalf("Failed = %v, %q; want %v, %q", failed, why, tc.failed, tc.why)
			}
		})
	}
}

// The threshold logic with an injected clock: the peer is lost after
// exactly threshold failed rounds in a row, and one success resets it.
func TestHealthThreshold(t *testing.T) {
	start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	const period = 5 * time.Second
	rounds := []struct {
		ok       bool
		wantLost bool
		// firstFailure is the round the current run of failures began,
		// -1 while the peer answers.
		firstFailure int
	}{
		{true, false, -1}, {false, false, 1}, {false, false, 1}, {false, true, 1}, {false, true, 1}, {true, false, -1}, {false, false, 6},
	}
	var h Health
	for i, r := range rounds {
		now := start.Add(time.Duration(i) * period)
		round := Round{}
		if !r.ok {
			round.API = refused
		}
		h = h.Next(round, tandemv1.ProbePolicyAny, now)
		if got := h.Lost(3); got != r.wantLost {
			t.Fatalf("round %d: lost = %v, want %v (health %+v)", i, got, r.wantLost, h)
		}
		if h.Reachable() != r.ok {
			t.Fatalf("round %d: reachable = %v", i, h.Reachable())
		}
		if r.firstFailure < 0 && !h.FirstFailure.IsZero() || r.firstFailure >= 0 && !h.FirstFailure.Equal(start.Add(time.Duration(r.firstFailure)*period)) {
			t.Fatalf("round %d: first failure %s, want round %d", i, h.FirstFailure, r.firstFailure)
		}
		if !h.LastProbe.Equal(now) {
			t.Fatalf("round %d: last probe %s, want %s", i, h.LastProbe, now)
		}
	}
	if want := start.Add(5 * period); !h.LastSuccess.Equal(want) {
		t.Fatalf("last success %s, want %s", h.LastSuccess, want)
	}
}

func TestHealthDescribe(t *testing.T) {
	start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	var h Health
	if got := h.Describe("dc-west"); got != "dc-west not probed yet" {
		t.Fatal(got)
	}
	h = h.Next(Round{}, tandemv1.ProbePolicyAny, start)
	for i := 1; i <= 3; i++ {
		h = h.Next(Round{API: refused}, tandemv1.ProbePolicyAny, start.Add(time.Duration(i)*time.Second))
	}
	want := "3 consecutive probe rounds of dc-west failed (last answered 3s before the last probe): /readyz: connection refused"
	if got := h.Describe("dc-west"); got != want {
		t.Fatalf("Describe = %q, want %q", got, want)
	}
	h = h.Next(Round{API: fmt.Errorf("GET /readyz: %w", ErrUnauthorized)}, tandemv1.ProbePolicyAny, start.Add(4*time.Second))
	if !h.Unauthorized || !strings.Contains(h.Describe("dc-west"), "refuses the kubeconfig's credentials") {
		t.Fatalf("unauthorized not reported: %+v / %s", h, h.Describe("dc-west"))
	}
	if !h.Lost(3) {
		t.Fatal("an unauthorized round still counts as failed")
	}
}

// A failed check says what the endpoint answered, its first line only.
func TestCheckHTTPQuotesTheAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			return
		}
		http.Error(w, "record \"order-7\" not found on dc-west\nsecond line", http.StatusNotFound)
	}))
	defer srv.Close()
	if err := checkHTTP(context.Background(), srv.Client(), srv.URL+"/ok", 0, time.Second); err != nil {
		t.Fatalf("a 200 failed the check: %v", err)
	}
	err := checkHTTP(context.Background(), srv.Client(), srv.URL+"/orders/7", 0, time.Second)
	if err == nil || err.Error() != `answered 404: record "order-7" not found on dc-west` {
		t.Fatalf("error = %v", err)
	}
	err = checkHTTP(context.Background(), srv.Client(), srv.URL+"/orders/7", 200, time.Second)
	if err == nil || err.Error() != `answered 404, want 200: record "order-7" not found on dc-west` {
		t.Fatalf("error = %v", err)
	}
}
