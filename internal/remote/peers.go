package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

var (
	peerUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tandem_peer_up",
		Help: "1 when the last probe round of the peer cluster succeeded, else 0.",
	}, []string{"namespace", "pair", "peer"})
	probeSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tandem_peer_probe_duration_seconds",
		Help:    "Duration of one probe of the peer: its API server's /readyz (target=api) or an HTTP endpoint (target=endpoint).",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"namespace", "pair", "peer", "target"})
	probeFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tandem_peer_probe_failures_total",
		Help: "Failed probes of the peer, by target (api or endpoint).",
	}, []string{"namespace", "pair", "peer", "target"})
)

func init() {
	metrics.Registry.MustRegister(peerUp, probeSeconds, probeFailures)
}

// Peers probes the peer clusters of pairs and remembers what it saw, in
// memory: one entry per pair, shared by the reconciles of that pair.
type Peers struct {
	// Clock is injected by tests; the real clock when nil.
	Clock clock.PassiveClock
	// Addresses bounds what probe endpoints and drill HTTP checks reach
	// (requests.go); its zero value refuses loopback and link-local.
	Addresses AddressPolicy
	// HTTP probes the endpoints and runs the drills' HTTP checks;
	// Addresses.HTTPClient() when nil. It needs no timeout of its own:
	// each request carries its timeout in its context.
	HTTP     *http.Client
	httpOnce sync.Once
	// Scheme of the clients handed out by Client and ClientFor.
	Scheme *runtime.Scheme
	// Scope, when set, is where the peer's clients list namespaced kinds
	// (ScopedClient): the peer identity may be Roles there.
	Scope []string

	mu      sync.Mutex
	state   map[string]*peerState
	clients map[string]client.Client
}

type peerState struct {
	peer        string
	fingerprint string
	config      *rest.Config
	// timeout bounds every request of the clients handed out for the
	// pair: its probe timeout.
	timeout time.Duration
	api     rest.Interface
	health  Health
	// witness reaches the pair's witness cluster, as its kubeconfig
	// Secret last resolved; nil without a witness.
	witness *rest.Config
}

// NotConnectedError is what callers get for a peer that is not connected:
// never probed, or the last probe round failed. It is a state to report
// (PeerReachable Unknown or False), not an error to retry in a loop.
type NotConnectedError struct {
	Peer   string
	Reason string
}

func (e *NotConnectedError) Error() string {
	return fmt.Sprintf("peer %s is not connected: %s", e.Peer, e.Reason)
}

// IsNotConnected reports whether err is a NotConnectedError.
func IsNotConnected(err error) bool {
	var e *NotConnectedError
	return errors.As(err, &e)
}

// Client returns a client for a pair's peer while its last probe round
// succeeded, and NotConnectedError otherwise. Every request it makes is
// bounded by the pair's probe timeout: a partitioned peer must not hold a
// reconcile for the client's full timeout, or the active side would check
// its fencing deadline late.
func (p *Peers) Client(namespace, pair string) (client.Client, error) {
	st := p.get(namespace, pair)
	switch {
	case st == nil || st.health.LastProbe.IsZero():
		return nil, &NotConnectedError{Peer: pair, Reason: "not probed yet"}
	case !st.health.Reachable():
		return nil, &NotConnectedError{Peer: st.peer, Reason: st.health.Describe(st.peer)}
	}
	return p.ClientFor(Bounded(st.config, st.timeout))
}

// Config returns the config a pair's peer was last probed with, reachable
// or not (the sync and the final verification build their own clients from
// it), and NotConnectedError before the first probe.
func (p *Peers) Config(namespace, pair string) (*rest.Config, error) {
	st := p.get(namespace, pair)
	if st == nil || st.health.LastProbe.IsZero() {
		return nil, &NotConnectedError{Peer: pair, Reason: "not probed yet"}
	}
	return st.config, nil
}

// SetWitness records the witness config of a pair, resolved from its
// kubeconfig Secret by the round that probes the peer; Witness hands out
// clients for it, each request bounded by timeout, until the next round.
func (p *Peers) SetWitness(namespace, pair string, cfg *rest.Config, timeout time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == nil {
		p.state = map[string]*peerState{}
	}
	st := p.state[namespace+"/"+pair]
	if st == nil {
		st = &peerState{}
		p.state[namespace+"/"+pair] = st
	}
	st.witness, st.timeout = cfg, timeout
}

// Witness returns a client for a pair's witness, its requests bounded by
// the pair's probe timeout like the peer's, and NotConnectedError while no
// round has resolved its Secret.
func (p *Peers) Witness(namespace, pair string) (client.Client, error) {
	st := p.get(namespace, pair)
	if st == nil || st.witness == nil {
		return nil, &NotConnectedError{Peer: "the witness", Reason: "its kubeconfig Secret was not resolved yet"}
	}
	return p.ClientFor(Bounded(st.witness, st.timeout))
}

func (p *Peers) get(namespace, pair string) *peerState {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.state[namespace+"/"+pair]
	if st == nil {
		return nil
	}
	cp := *st
	return &cp
}

// Bounded is cfg with every request limited to timeout (client-go applies
// it to each HTTP request).
func Bounded(cfg *rest.Config, timeout time.Duration) *rest.Config {
	if timeout <= 0 {
		return cfg
	}
	cp := rest.CopyConfig(cfg)
	cp.Timeout = timeout
	return cp
}

// Health returns the last health of a pair's peer, and false when it was
// never probed by this process.
func (p *Peers) Health(namespace, pair string) (Health, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.state[namespace+"/"+pair]
	if st == nil {
		return Health{}, false
	}
	return st.health, true
}

// ClientFor returns a client for a cluster, one per kubeconfig fingerprint,
// so a changed Secret gets a new client and an unchanged one reuses its
// connections.
func (p *Peers) ClientFor(cfg *rest.Config) (client.Client, error) {
	fp := Fingerprint(cfg) + "/" + cfg.Timeout.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[fp]; ok {
		return c, nil
	}
	var c client.Client
	c, err := client.New(cfg, client.Options{Scheme: p.Scheme})
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", cfg.Host, err)
	}
	if len(p.Scope) > 0 {
		c = ScopedClient{Client: c, Scope: p.Scope}
	}
	if p.clients == nil {
		p.clients = map[string]client.Client{}
	}
	p.clients[fp] = c
	return c, nil
}

// ProbeSpec says how to probe one pair's peer.
type ProbeSpec struct {
	Namespace, Pair, Peer string
	Config                *rest.Config
	Endpoints             []tandemv1.ProbeEndpoint
	Policy                tandemv1.ProbePolicy
	Timeout               time.Duration
	Threshold             int32
	// Period between rounds. A round asked for sooner (a reconcile
	// triggered by something else) returns the last health instead of
	// probing, so failures never pile up faster than one per period and
	// detection takes threshold x period, as documented.
	Period time.Duration
}

// Probe runs one round against the peer and returns its health. A new
// kubeconfig (another fingerprint) starts from a fresh connection and a
// clean count. The connection is dropped after an Unauthorized answer and
// after every threshold failed rounds, so the next round reconnects from
// scratch instead of reusing a dead transport.
func (p *Peers) Probe(ctx context.Context, s ProbeSpec) Health {
	key := s.Namespace + "/" + s.Pair
	fp := Fingerprint(s.Config)
	p.mu.Lock()
	if p.state == nil {
		p.state = map[string]*peerState{}
	}
	st := p.state[key]
	if st == nil || st.fingerprint != fp {
		var witness *rest.Config
		if st != nil {
			witness = st.witness
		}
		st = &peerState{peer: s.Peer, fingerprint: fp, config: s.Config, witness: witness}
		p.state[key] = st
	}
	st.timeout = s.Timeout
	if last := st.health.LastProbe; !last.IsZero() && p.now().Sub(last) < s.Period*9/10 {
		h := st.health
		p.mu.Unlock()
		return h
	}
	api := st.api
	p.mu.Unlock()

	labels := []string{s.Namespace, s.Pair, s.Peer}
	round := Round{Endpoints: map[string]error{}}
	if api == nil {
		var err error
		if api, err = newProbeClient(s.Config); err != nil {
			round.API = err
		}
	}
	if api != nil {
		start := time.Now()
		round.API = probeAPI(ctx, api, s.Timeout)
		probeSeconds.WithLabelValues(append(labels, "api")...).Observe(time.Since(start).Seconds())
	}
	if round.API != nil {
		probeFailures.WithLabelValues(append(labels, "api")...).Inc()
	}
	for _, e := range s.Endpoints {
		start := time.Now()
		err := p.probeEndpoint(ctx, e, s.Timeout)
		probeSeconds.WithLabelValues(append(labels, "endpoint")...).Observe(time.Since(start).Seconds())
		if err != nil {
			probeFailures.WithLabelValues(append(labels, "endpoint")...).Inc()
		}
		round.Endpoints[e.URL] = err
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	st.health = st.health.Next(round, s.Policy, p.now())
	st.api = api
	if st.health.Unauthorized || (s.Threshold > 0 && st.health.ConsecutiveFailures > 0 && st.health.ConsecutiveFailures%int(s.Threshold) == 0) {
		st.api = nil
		p.dropClients(fp)
	}
	up := 0.0
	if st.health.Reachable() {
		up = 1
	}
	peerUp.WithLabelValues(labels...).Set(up)
	return st.health
}

// dropClients forgets the clients of a kubeconfig, whatever their timeout.
func (p *Peers) dropClients(fingerprint string) {
	for k := range p.clients {
		if strings.HasPrefix(k, fingerprint+"/") {
			delete(p.clients, k)
		}
	}
}

// Forget drops what is known of a pair's peer (the pair was deleted).
func (p *Peers) Forget(namespace, pair string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.state, namespace+"/"+pair)
}

func (p *Peers) now() time.Time {
	if p.Clock != nil {
		return p.Clock.Now()
	}
	return time.Now()
}

func newProbeClient(cfg *rest.Config) (rest.Interface, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for the peer: %w", err)
	}
	return dc.RESTClient(), nil
}

func probeAPI(ctx context.Context, api rest.Interface, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := api.Get().AbsPath("/readyz").Do(ctx).Error()
	switch {
	case err == nil:
		return nil
	case apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err):
		return fmt.Errorf("%w: %v", ErrUnauthorized, err)
	default:
		return err
	}
}

func (p *Peers) probeEndpoint(ctx context.Context, e tandemv1.ProbeEndpoint, timeout time.Duration) error {
	return p.CheckHTTP(ctx, e.URL, e.ExpectStatus, timeout)
}

// CheckHTTP GETs url within timeout and checks the answer (checkHTTP),
// within the address policy: a URL it refuses is refused without a
// request. Peer probes and drill checks both use it.
func (p *Peers) CheckHTTP(ctx context.Context, url string, expect int32, timeout time.Duration) error {
	if err := p.Addresses.CheckURL(url); err != nil {
		return err
	}
	p.httpOnce.Do(func() {
		if p.HTTP == nil {
			p.HTTP = p.Addresses.HTTPClient()
		}
	})
	return checkHTTP(ctx, p.HTTP, url, expect, timeout)
}

// checkHTTP GETs url with c within timeout and checks the answer: expect
// when it is set, any 2xx otherwise.
func checkHTTP(ctx context.Context, c *http.Client, url string, expect int32, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if expect != int32(resp.StatusCode) && resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		return fmt.Errorf("answered %d to %.200s (redirects are not followed)", resp.StatusCode, resp.Header.Get("Location"))
	}
	if expect != 0 && resp.StatusCode != int(expect) {
		return fmt.Errorf("answered %d, want %d%s", resp.StatusCode, expect, bodyLine(resp.Body))
	}
	if expect == 0 && (resp.StatusCode < 200 || resp.StatusCode > 299) {
		return fmt.Errorf("answered %d%s", resp.StatusCode, bodyLine(resp.Body))
	}
	return nil
}

// bodyLine is the start of a failed answer's first line, so that a drill's
// report says what the app said ("record order-7 not found") and not only
// its status; at most 160 printable characters.
func bodyLine(body io.Reader) string {
	data, _ := io.ReadAll(io.LimitReader(body, 512))
	line, _, _ := strings.Cut(string(data), "\n")
	line = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, strings.TrimSpace(line))
	if len(line) > 160 {
		line = line[:160] + "…"
	}
	if line == "" {
		return ""
	}
	return ": " + line
}
