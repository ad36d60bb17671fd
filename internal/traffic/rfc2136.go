// Package traffic points a pair's DNS names at the active cluster. This
// file is the RFC 2136 path: TSIG-signed dynamic updates sent to a data
// center's own authoritative servers, and direct (non-recursive) queries
// that verify what each server answers.
package traffic

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// TSIG is a transaction signature key. Secret is base64, as tsig-keygen
// prints it; it never appears in an error.
type TSIG struct {
	Name      string
	Algorithm string // hmac-sha256 when empty
	Secret    string
}

func (k TSIG) algorithm() string {
	if k.Algorithm == "" {
		return dns.HmacSHA256
	}
	return dns.Fqdn(strings.ToLower(k.Algorithm))
}

// Record is a DNS name and what it should answer.
type Record struct {
	Name string
	// Type is "A", "AAAA" or "CNAME".
	Type    string
	Targets []string
	TTL     uint32
}

func (r Record) qtype() (uint16, error) {
	switch strings.ToUpper(r.Type) {
	case "A", "":
		return dns.TypeA, nil
	case "AAAA":
		return dns.TypeAAAA, nil
	case "CNAME":
		return dns.TypeCNAME, nil
	}
	return 0, fmt.Errorf("record %s: type %q is not supported (A, AAAA or CNAME)", r.Name, r.Type)
}

// RefusedError is an update the server answered with an error code.
type RefusedError struct {
	Server, Name, Rcode string
}

func (e *RefusedError) Error() string {
	hint := ""
	switch e.Rcode {
	case "NOTAUTH":
		hint = ": the server did not accept the TSIG key (wrong key name, secret or algorithm), or is not authoritative for the zone"
	case "REFUSED":
		hint = ": the zone does not allow updates with this key"
	case "NOTZONE":
		hint = ": the name is not in the zone"
	}
	return fmt.Sprintf("DNS server %s refused the update of %s with %s%s", e.Server, e.Name, e.Rcode, hint)
}

// Update replaces the record's RRset in zone at server (host:port) with
// its targets, in one TSIG-signed RFC 2136 message: the old answers are
// removed and the new ones added atomically, so the name never answers
// nothing in between.
func Update(ctx context.Context, server, zone string, rec Record, key TSIG) error {
	qtype, err := rec.qtype()
	if err != nil {
		return err
	}
	if len(rec.Targets) == 0 {
		return fmt.Errorf("record %s: no targets", rec.Name)
	}
	if qtype == dns.TypeCNAME && len(rec.Targets) != 1 {
		return fmt.Errorf("record %s: a CNAME has exactly one target, not %d", rec.Name, len(rec.Targets))
	}
	name := dns.Fqdn(rec.Name)
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(zone))
	m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: qtype, Class: dns.ClassINET}}})
	var rrs []dns.RR
	for _, t := range rec.Targets {
		rr, err := newRR(name, qtype, rec.TTL, t)
		if err != nil {
			return err
		}
		rrs = append(rrs, rr)
	}
	m.Insert(rrs)
	return send(ctx, server, name, m, key)
}

// Delete removes the record's RRset from zone at server: the name then
// answers nothing for that type. Deleting a name that has no such record
// succeeds.
func Delete(ctx context.Context, server, zone string, rec Record, key TSIG) error {
	qtype, err := rec.qtype()
	if err != nil {
		return err
	}
	name := dns.Fqdn(rec.Name)
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(zone))
	m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: qtype, Class: dns.ClassINET}}})
	return send(ctx, server, name, m, key)
}

// send signs the update m with key and sends it to server over TCP.
func send(ctx context.Context, server, name string, m *dns.Msg, key TSIG) error {
	m.SetTsig(dns.Fqdn(key.Name), key.algorithm(), 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", TsigSecret: map[string]string{dns.Fqdn(key.Name): key.Secret}, Timeout: timeout(ctx)}
	resp, _, err := c.ExchangeContext(ctx, m, server)
	if err != nil {
		if errors.Is(err, dns.ErrAuth) || errors.Is(err, dns.ErrSig) || errors.Is(err, dns.ErrSecret) || errors.Is(err, dns.ErrKeyAlg) {
			// The server answered with a TSIG error (BADSIG, BADKEY): its
			// reply is unsigned, which the client reports as bad authentication.
			return &RefusedError{Server: server, Name: name, Rcode: "NOTAUTH"}
		}
		return fmt.Errorf("sending the update of %s to DNS server %s: %w", name, server, err)
	}
	if resp.Rcode != dns.RcodeSuccess {
		return &RefusedError{Server: server, Name: name, Rcode: dns.RcodeToString[resp.Rcode]}
	}
	return nil
}

func newRR(name string, qtype uint16, ttl uint32, target string) (dns.RR, error) {
	hdr := dns.RR_Header{Name: name, Rrtype: qtype, Class: dns.ClassINET, Ttl: ttl}
	switch qtype {
	case dns.TypeA:
		ip := net.ParseIP(target).To4()
		if ip == nil {
			return nil, fmt.Errorf("record %s: target %q is not an IPv4 address", name, target)
		}
		return &dns.A{Hdr: hdr, A: ip}, nil
	case dns.TypeAAAA:
		ip := net.ParseIP(target)
		if ip == nil || ip.To4() != nil {
			return nil, fmt.Errorf("record %s: target %q is not an IPv6 address", name, target)
		}
		return &dns.AAAA{Hdr: hdr, AAAA: ip}, nil
	default:
		return &dns.CNAME{Hdr: hdr, Target: dns.Fqdn(target)}, nil
	}
}

// Answer asks server (host:port) directly, without recursion, what name
// answers for type typ ("A", "AAAA" or "CNAME"), sorted; no answer is an empty
// list, not an error.
func Answer(ctx context.Context, server, name, typ string) ([]string, error) {
	qtype, err := Record{Name: name, Type: typ}.qtype()
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = false
	c := &dns.Client{Net: "udp", Timeout: timeout(ctx)}
	resp, _, err := c.ExchangeContext(ctx, m, server)
	if err != nil {
		return nil, fmt.Errorf("asking DNS server %s for %s %s: %w", server, typ, name, err)
	}
	if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("DNS server %s answered %s for %s %s", server, dns.RcodeToString[resp.Rcode], typ, name)
	}
	var out []string
	for _, rr := range resp.Answer {
		switch v := rr.(type) {
		case *dns.A:
			if qtype == dns.TypeA {
				out = append(out, v.A.String())
			}
		case *dns.AAAA:
			if qtype == dns.TypeAAAA {
				out = append(out, v.AAAA.String())
			}
		case *dns.CNAME:
			if qtype == dns.TypeCNAME {
				out = append(out, strings.TrimSuffix(v.Target, "."))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// Answers reports whether server answers exactly the record's targets.
func Answers(ctx context.Context, server string, rec Record) (bool, []string, error) {
	got, err := Answer(ctx, server, rec.Name, rec.Type)
	if err != nil {
		return false, nil, err
	}
	want := make([]string, len(rec.Targets))
	for i, t := range rec.Targets {
		want[i] = strings.TrimSuffix(t, ".")
	}
	sort.Strings(want)
	return strings.Join(got, ",") == strings.Join(want, ","), got, nil
}

func timeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return 5 * time.Second
}
