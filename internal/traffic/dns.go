package traffic

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// Config is a pair's spec.traffic made ready to act on: the records, the
// authoritative servers that verify a flip (and take the updates, for
// RFC 2136) and the TSIG key read from its Secret.
type Config struct {
	Namespace, Pair string
	Provider        tandemv1.DNSProvider
	Records         []tandemv1.DNSRecord
	// Servers are queried directly to verify where a record points.
	Servers []string
	// Zone and Key are set for RFC 2136.
	Zone string
	Key  TSIG
}

// HasDNS says whether the pair has any record to point.
func (c Config) HasDNS() bool { return len(c.Records) > 0 }

// RFC2136 says whether Tandem sends the updates itself.
func (c Config) RFC2136() bool { return c.Provider == tandemv1.DNSProviderRFC2136 }

// Load reads a pair's traffic configuration; for RFC 2136 it reads the TSIG
// key from the Secret in the pair's namespace on the cluster r reads. An
// error names the field or the Secret, never the key.
func Load(ctx context.Context, r client.Reader, pair *tandemv1.HAPair) (Config, error) {
	cfg := Config{Namespace: pair.Namespace, Pair: pair.Name, Provider: tandemv1.DNSProviderExternalDNS}
	t := pair.Spec.Traffic
	if t == nil {
		return cfg, nil
	}
	if t.Provider != "" {
		cfg.Provider = t.Provider
	}
	cfg.Records = t.DNS
	if !cfg.RFC2136() {
		if t.ExternalDNS != nil {
			cfg.Servers = t.ExternalDNS.VerifyServers
		}
		return cfg, nil
	}
	spec := t.RFC2136
	if spec == nil {
		return cfg, errors.New("spec.traffic.rfc2136 is required when spec.traffic.provider is RFC2136")
	}
	cfg.Servers, cfg.Zone = spec.Servers, spec.Zone
	ref := spec.TSIGSecretRef
	key := ref.Key
	if key == "" {
		key = "secret"
	}
	var s corev1.Secret
	if err := r.Get(ctx, client.ObjectKey{Namespace: pair.Namespace, Name: ref.Name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return cfg, fmt.Errorf("spec.traffic.rfc2136.tsigSecretRef: Secret %s/%s does not exist", pair.Namespace, ref.Name)
		}
		return cfg, fmt.Errorf("spec.traffic.rfc2136.tsigSecretRef: reading Secret %s/%s: %w", pair.Namespace, ref.Name, err)
	}
	secret := strings.TrimSpace(string(s.Data[key]))
	if secret == "" {
		return cfg, fmt.Errorf("spec.traffic.rfc2136.tsigSecretRef: Secret %s/%s has no key %q", pair.Namespace, ref.Name, key)
	}
	cfg.Key = TSIG{Name: spec.TSIGKeyName, Algorithm: spec.TSIGAlgorithm, Secret: secret}
	for _, rec := range cfg.Records {
		if !inZone(rec.Name, cfg.Zone) {
			return cfg, fmt.Errorf("spec.traffic.dns[%s]: the name is not in zone %s", rec.Name, cfg.Zone)
		}
	}
	return cfg, nil
}

func inZone(name, zone string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	zone = strings.ToLower(strings.TrimSuffix(zone, "."))
	return name == zone || strings.HasSuffix(name, "."+zone)
}

// Desired is what rec answers while cluster is active.
func Desired(rec tandemv1.DNSRecord, cluster string) (Record, error) {
	return desired(rec, rec.Name, cluster)
}

// DrillRecords are the drill names of the records that have one, answering
// with cluster's targets.
func DrillRecords(cfg Config, cluster string) ([]Record, error) {
	var out []Record
	for _, rec := range cfg.Records {
		if rec.DrillName == "" {
			continue
		}
		r, err := desired(rec, rec.DrillName, cluster)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// AllDesired are the records as they answer while cluster is active.
func AllDesired(cfg Config, cluster string) ([]Record, error) {
	out := make([]Record, 0, len(cfg.Records))
	for _, rec := range cfg.Records {
		r, err := Desired(rec, cluster)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// recordType and recordTTL are a record's type and TTL with the API's
// defaults, for a pair created before the API server defaulted them.
func recordType(rec tandemv1.DNSRecord) string {
	if rec.Type == "" {
		return "A"
	}
	return rec.Type
}

func recordTTL(rec tandemv1.DNSRecord) int64 {
	if rec.TTL <= 0 {
		return 30
	}
	return rec.TTL
}

func desired(rec tandemv1.DNSRecord, name, cluster string) (Record, error) {
	for _, t := range rec.Targets {
		if t.Cluster == cluster {
			return Record{Name: strings.TrimSuffix(name, "."), Type: recordType(rec), Targets: t.Values, TTL: uint32(recordTTL(rec))}, nil
		}
	}
	return Record{}, fmt.Errorf("spec.traffic.dns[%s] has no targets for cluster %s", rec.Name, cluster)
}

// MaxTTL is the longest TTL of the records: how long after a flip at the
// servers every client has followed.
func MaxTTL(cfg Config) time.Duration {
	var m int64
	for _, r := range cfg.Records {
		m = max(m, recordTTL(r))
	}
	return time.Duration(m) * time.Second
}

// Seen is where one record points, as every authoritative server answers.
type Seen struct {
	Name string
	// Cluster whose targets every answering server gives; empty when they
	// disagree, answer nothing, or answer values neither cluster has.
	Cluster string
	Answer  []string
	// Unreachable are the servers that did not answer.
	Unreachable []string
	// Absent is true when every server answered, each with no record: the
	// only case in which the active side may publish the name outside a
	// switchover.
	Absent  bool
	Message string
}

// Observe asks every server where each record points.
func Observe(ctx context.Context, cfg Config) []Seen {
	out := make([]Seen, len(cfg.Records))
	var wg sync.WaitGroup
	for i, rec := range cfg.Records {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = observe(ctx, cfg, rec)
		}()
	}
	wg.Wait()
	return out
}

func observe(ctx context.Context, cfg Config, rec tandemv1.DNSRecord) Seen {
	servers := cfg.Servers
	seen := Seen{Name: rec.Name}
	typ := recordType(rec)
	answers := map[string]string{}
	var first []string
	var errs []string
	for _, srv := range servers {
		got, err := Answer(ctx, srv, rec.Name, typ)
		if err != nil {
			verifyFailures.WithLabelValues(cfg.Namespace, cfg.Pair, srv).Inc()
			seen.Unreachable = append(seen.Unreachable, srv)
			errs = append(errs, err.Error())
			continue
		}
		if len(answers) == 0 {
			first = got
		}
		answers[srv] = strings.Join(got, ",")
	}
	switch {
	case len(answers) == 0 && len(servers) == 0:
		seen.Message = "no authoritative server to ask (spec.traffic.externalDNS.verifyServers)"
		return seen
	case len(answers) == 0:
		seen.Message = strings.Join(errs, "; ")
		return seen
	}
	distinct := map[string]bool{}
	for _, a := range answers {
		distinct[a] = true
	}
	if len(distinct) > 1 {
		var parts []string
		for _, srv := range servers {
			if a, ok := answers[srv]; ok {
				parts = append(parts, fmt.Sprintf("%s answers [%s]", srv, a))
			}
		}
		seen.Message = "the servers disagree: " + strings.Join(parts, ", ")
		return seen
	}
	seen.Answer = first
	if len(first) == 0 {
		seen.Message = fmt.Sprintf("the servers answer no %s record", typ)
		seen.Absent = len(errs) == 0
	}
	for _, t := range rec.Targets {
		if sameValues(first, t.Values) {
			seen.Cluster = t.Cluster
		}
	}
	if seen.Cluster == "" && len(first) > 0 {
		seen.Message = fmt.Sprintf("the servers answer [%s], which are no cluster's targets", strings.Join(first, ","))
	}
	if len(errs) > 0 {
		seen.Message = strings.TrimPrefix(seen.Message+"; ", "; ") + "not answering: " + strings.Join(errs, "; ")
	}
	return seen
}

func sameValues(got, want []string) bool {
	w := make([]string, len(want))
	for i, v := range want {
		w[i] = strings.ToLower(strings.TrimSuffix(v, "."))
	}
	sort.Strings(w)
	g := make([]string, len(got))
	for i, v := range got {
		g[i] = strings.ToLower(v)
	}
	return strings.Join(g, ",") == strings.Join(w, ",")
}

// Pending lists, for each record, the servers that do not answer it yet
// (wrong values or no answer); empty when every server answers every
// record. Each server that does not answer counts as a verification
// failure in the metrics.
func Pending(ctx context.Context, cfg Config, recs []Record) []string {
	var out []string
	for _, rec := range recs {
		for _, srv := range cfg.Servers {
			ok, got, err := Answers(ctx, srv, rec)
			switch {
			case err != nil:
				verifyFailures.WithLabelValues(cfg.Namespace, cfg.Pair, srv).Inc()
				out = append(out, err.Error())
			case !ok:
				out = append(out, fmt.Sprintf("%s answers [%s] for %s, not [%s]", srv, strings.Join(got, ","), rec.Name, strings.Join(rec.Targets, ",")))
			}
		}
	}
	return out
}

// Gone lists the servers that still answer one of the names.
func Gone(ctx context.Context, cfg Config, recs []Record) []string {
	var out []string
	for _, rec := range recs {
		for _, srv := range cfg.Servers {
			got, err := Answer(ctx, srv, rec.Name, rec.Type)
			switch {
			case err != nil:
				verifyFailures.WithLabelValues(cfg.Namespace, cfg.Pair, srv).Inc()
				out = append(out, err.Error())
			case len(got) > 0:
				out = append(out, fmt.Sprintf("%s still answers [%s] for %s", srv, strings.Join(got, ","), rec.Name))
			}
		}
	}
	return out
}

// Point sends, to every server that does not answer them yet, the updates
// that make recs answer their targets. A refused update (a wrong TSIG key)
// is returned as a *RefusedError at once; it does not get better by
// retrying.
func Point(ctx context.Context, cfg Config, recs []Record) error {
	return eachServer(cfg, recs, func(srv string, rec Record) error {
		if ok, _, err := Answers(ctx, srv, rec); err == nil && ok {
			return nil
		}
		return Update(ctx, srv, cfg.Zone, rec, cfg.Key)
	})
}

// Remove deletes recs at every server.
func Remove(ctx context.Context, cfg Config, recs []Record) error {
	return eachServer(cfg, recs, func(srv string, rec Record) error {
		return Delete(ctx, srv, cfg.Zone, rec, cfg.Key)
	})
}

// eachServer sends one update per record and server. A refused update
// ends it at once (a wrong key does not get better); other errors are
// collected and the rest still sent.
func eachServer(cfg Config, recs []Record, send func(srv string, rec Record) error) error {
	var errs []error
	for _, rec := range recs {
		for _, srv := range cfg.Servers {
			if err := send(srv, rec); err != nil {
				var refused *RefusedError
				if errors.As(err, &refused) {
					return err
				}
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
