package remote

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// Round is one probe round of a peer: its API server's /readyz and the HTTP
// endpoints configured for it (by URL). A nil error is a success.
type Round struct {
	API       error
	Endpoints map[string]error
}

// Failed says whether the round counts as failed under the policy, and why.
// Any: a failed API server or any failed endpoint fails the round. All: the
// round fails only when the API server and every endpoint failed; a peer
// whose API is down while its service still answers is not lost.
func (r Round) Failed(policy tandemv1.ProbePolicy) (bool, string) {
	var failed []string
	if r.API != nil {
		failed = append(failed, "/readyz: "+r.API.Error())
	}
	urls := make([]string, 0, len(r.Endpoints))
	for u := range r.Endpoints {
		urls = append(urls, u)
	}
	sort.Strings(urls)
	for _, u := range urls {
		if err := r.Endpoints[u]; err != nil {
			failed = append(failed, u+": "+err.Error())
		}
	}
	total := 1 + len(r.Endpoints)
	if policy == tandemv1.ProbePolicyAll {
		return len(failed) == total, strings.Join(failed, "; ")
	}
	return len(failed) > 0, strings.Join(failed, "; ")
}

// Health is what the probes have shown of a peer so far.
type Health struct {
	ConsecutiveFailures int
	LastProbe           time.Time
	LastSuccess         time.Time
	// FirstFailure is when the current run of failed rounds began; zero
	// while the peer answers. A failover's RTO is measured from it.
	FirstFailure time.Time
	// LastError says what failed in the last failed round.
	LastError string
	// Unauthorized is true when the peer refused the credentials: retrying
	// will not help until the kubeconfig Secret changes.
	Unauthorized bool
}

// Next is the health after one more round, observed at now.
func (h Health) Next(r Round, policy tandemv1.ProbePolicy, now time.Time) Health {
	h.LastProbe = now
	h.Unauthorized = errors.Is(r.API, ErrUnauthorized)
	if failed, why := r.Failed(policy); failed {
		if h.ConsecutiveFailures == 0 {
			h.FirstFailure = now
		}
		h.ConsecutiveFailures++
		h.LastError = why
		return h
	}
	h.ConsecutiveFailures = 0
	h.FirstFailure = time.Time{}
	h.LastError = ""
	h.LastSuccess = now
	return h
}

// Reachable says whether the last round succeeded.
func (h Health) Reachable() bool { return !h.LastProbe.IsZero() && h.ConsecutiveFailures == 0 }

// Lost says whether the peer has failed threshold rounds in a row: the
// moment a standby declares the active side lost.
func (h Health) Lost(threshold int32) bool {
	return threshold > 0 && h.ConsecutiveFailures >= int(threshold)
}

// Describe says in one line what the probes see.
func (h Health) Describe(peer string) string {
	switch {
	case h.LastProbe.IsZero():
		return fmt.Sprintf("%s not probed yet", peer)
	case h.ConsecutiveFailures == 0:
		return fmt.Sprintf("%s answers its probes", peer)
	case h.Unauthorized:
		return fmt.Sprintf("%s refuses the kubeconfig's credentials (%d rounds); update the kubeconfig Secret", peer, h.ConsecutiveFailures)
	default:
		since := "never answered"
		if !h.LastSuccess.IsZero() {
			since = "last answered " + h.LastProbe.Sub(h.LastSuccess).Round(time.Second).String() + " before the last probe"
		}
		return fmt.Sprintf("%d consecutive probe rounds of %s failed (%s): %s", h.ConsecutiveFailures, peer, since, h.LastError)
	}
}

// ErrUnauthorized is a probe refused for its credentials.
var ErrUnauthorized = errors.New("unauthorized")
