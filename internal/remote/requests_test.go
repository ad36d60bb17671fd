package remote

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestAddressPolicyRefusesWhatOnlyTheOperatorReaches(t *testing.T) {
	allow, err := ParsePrefixes([]string{"127.0.0.0/8", "10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	deny, err := ParsePrefixes([]string{"10.96.0.0/12"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		policy AddressPolicy
		url    string
		err    string
	}{
		{AddressPolicy{}, "http://127.0.0.1:8081/healthz", "127.0.0.1 is a loopback address, refused unless the operator's --allow-request-cidrs names it"},
		{AddressPolicy{}, "http://localhost:8081/healthz", "loopback"},
		{AddressPolicy{}, "http://[::1]/", "loopback"},
		{AddressPolicy{}, "http://[::ffff:127.0.0.1]/", "loopback"},
		{AddressPolicy{}, "http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"},
		{AddressPolicy{}, "http://[fe80::1]/", "link-local"},
		{AddressPolicy{}, "http://0.0.0.0:8081/", "unspecified"},
		{AddressPolicy{}, "ftp://10.0.0.1/", `scheme "ftp"`},
		{AddressPolicy{Denied: deny}, "http://10.96.0.10/", "10.96.0.10 is in 10.96.0.0/12, which the operator's --deny-request-cidrs refuses"},
		{AddressPolicy{Allowed: allow, Denied: deny}, "http://127.0.0.1:9/", ""},
		{AddressPolicy{}, "http://10.244.2.1:8080/records/order-1", ""},
		{AddressPolicy{}, "https://shop.example.com/healthz", ""},
	}
	for _, c := range cases {
		err := c.policy.CheckURL(c.url)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v, want it allowed", c.url, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: %v, want %q", c.url, err, c.err)
		}
	}
}

// Against a real server on loopback: refused by default, before any
// request and also at the dial (a name resolving to loopback); reached when
// allowed, without following its redirect.
func TestRequestsReachOnlyAllowedAddresses(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	ctx := context.Background()

	var refused Peers
	if err := refused.CheckHTTP(ctx, srv.URL+"/ok", 0, time.Second); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("default policy: %v, want loopback refused", err)
	}
	// What a name resolving to loopback meets: the dial's own check.
	if err := checkHTTP(ctx, AddressPolicy{}.HTTPClient(), srv.URL+"/ok", 0, time.Second); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("dialling loopback: %v, want it refused", err)
	}
	if hits != 0 {
		t.Fatalf("%d requests reached the server through a refusing policy", hits)
	}

	allowed := Peers{Addresses: AddressPolicy{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}}
	if err := allowed.CheckHTTP(ctx, srv.URL+"/ok", 0, time.Second); err != nil {
		t.Fatalf("allowed: %v", err)
	}
	err := allowed.CheckHTTP(ctx, srv.URL+"/moved", 0, time.Second)
	if err == nil || !strings.Contains(err.Error(), "answered 302 to http://169.254.169.254/latest/meta-data/ (redirects are not followed)") {
		t.Fatalf("redirect: %v, want the 302 reported and not followed", err)
	}
	if hits != 2 {
		t.Fatalf("%d requests, want 2 (the redirect not followed)", hits)
	}
}
