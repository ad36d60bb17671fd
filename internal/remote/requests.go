package remote

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Requests Tandem makes for users. Probe endpoints (spec.failover.endpoints)
// and drill HTTP checks (spec.drill.checks[].http) are GETs from the
// operator's pod to URLs a namespace's user wrote. Left open, they reach
// what only that pod can: its own loopback (the metrics and health ports),
// the cloud's metadata service on a link-local address, whatever a platform
// team keeps off the users' reach.

// AddressPolicy says which addresses those requests may reach. Its zero
// value refuses loopback, link-local, unspecified and multicast addresses.
type AddressPolicy struct {
	// Allowed are reached even when of a refused kind
	// (--allow-request-cidrs): a test bed's 127.0.0.0/8.
	Allowed []netip.Prefix
	// Denied are never reached (--deny-request-cidrs): the cluster's pod
	// and service networks, say.
	Denied []netip.Prefix
}

// ParsePrefixes reads CIDRs (a flag's list).
func ParsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range cidrs {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Check says why a request may not reach a; nil when it may.
func (p AddressPolicy) Check(a netip.Addr) error {
	a = a.Unmap()
	for _, pre := range p.Allowed {
		if pre.Contains(a) {
			return nil
		}
	}
	for _, pre := range p.Denied {
		if pre.Contains(a) {
			return fmt.Errorf("%s is in %s, which the operator's --deny-request-cidrs refuses", a, pre)
		}
	}
	var kind string
	switch {
	case a.IsLoopback():
		kind = "a loopback"
	case a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast():
		kind = "a link-local"
	case a.IsUnspecified():
		kind = "an unspecified"
	case a.IsMulticast():
		kind = "a multicast"
	default:
		return nil
	}
	return fmt.Errorf("%s is %s address, refused unless the operator's --allow-request-cidrs names it", a, kind)
}

// CheckURL refuses, before any request, a URL that is not http or https or
// whose host is a refused address written out (or localhost). A name is
// checked when it is dialled, on the address it resolves to.
func (p AddressPolicy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q: only http and https", u.Scheme)
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return p.Check(netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return p.Check(a)
	}
	return nil
}

// HTTPClient is the client for these requests. It dials only addresses
// the policy allows, checked on the address it connects to, so a name
// resolving to a refused address is refused too; it uses no proxy (a
// proxy's address is not the target's) and follows no redirect (a 3xx is
// the answer). Answers are read only as far as CheckHTTP quotes them.
func (p AddressPolicy) HTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 30 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return err
		}
		return p.Check(ap.Addr())
	}}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = dialer.DialContext
	return &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}
