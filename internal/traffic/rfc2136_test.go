package traffic_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/internal/traffic"
	"github.com/tandem-dev/tandem/test/testbed"
)

// Against a real BIND: a signed update moves the name and the server
// answers the new targets; a wrong key is refused with a message that says
// so, names no secret, and leaves the record as it was.
func TestRFC2136UpdatesAgainstBIND(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bind, err := testbed.StartBIND(t.TempDir(), "tandem.test", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bind.Stop)
	key := traffic.TSIG{Name: bind.KeyName, Secret: bind.Secret}

	east := traffic.Record{Name: "shop.tandem.test", Type: "A", Targets: []string{"10.0.1.10", "10.0.1.11"}, TTL: 5}
	if err := traffic.Update(ctx, bind.Addr, bind.Zone, east, key); err != nil {
		t.Fatal(err)
	}
	if ok, got, err := traffic.Answers(ctx, bind.Addr, east); err != nil || !ok {
		t.Fatalf("BIND answers %v (%v), want %v", got, err, east.Targets)
	}
	// The flip replaces the whole RRset in one message.
	west := traffic.Record{Name: "shop.tandem.test", Type: "A", Targets: []string{"10.0.2.10"}, TTL: 5}
	if err := traffic.Update(ctx, bind.Addr, bind.Zone, west, key); err != nil {
		t.Fatal(err)
	}
	if ok, got, err := traffic.Answers(ctx, bind.Addr, west); err != nil || !ok {
		t.Fatalf("after the flip BIND answers %v (%v), want only %v", got, err, west.Targets)
	}

	wrong := traffic.TSIG{Name: bind.KeyName, Secret: "d3JvbmcgLSBub3QgdGhlIHpvbmUncyBrZXkgYXQgYWxsIQ=="}
	err = traffic.Update(ctx, bind.Addr, bind.Zone, east, wrong)
	var refused *traffic.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "TSIG key") || strings.Contains(err.Error(), wrong.Secret) {
		t.Fatalf("an update with the wrong key: %v; want a refusal naming the TSIG key and not its secret", err)
	}
	if ok, got, err := traffic.Answers(ctx, bind.Addr, west); err != nil || !ok {
		t.Fatalf("after a refused update BIND answers %v (%v), want it unchanged: %v", got, err, west.Targets)
	}

	alias := traffic.Record{Name: "www.tandem.test", Type: "CNAME", Targets: []string{"shop-west.example.com"}, TTL: 5}
	if err := traffic.Update(ctx, bind.Addr, bind.Zone, alias, key); err != nil {
		t.Fatal(err)
	}
	if ok, got, err := traffic.Answers(ctx, bind.Addr, alias); err != nil || !ok {
		t.Fatalf("CNAME: BIND answers %v (%v)", got, err)
	}
	if err := traffic.Update(ctx, bind.Addr, bind.Zone, traffic.Record{Name: "x.tandem.test", Type: "A", Targets: []string{"not-an-ip"}}, key); err == nil || !strings.Contains(err.Error(), "not an IPv4 address") {
		t.Fatalf("a bad target: %v", err)
	}

	// IPv6: an AAAA RRset moves the same way, and an IPv4 address is no
	// AAAA value.
	v6 := traffic.Record{Name: "shop.tandem.test", Type: "AAAA", Targets: []string{"fd00:1::10", "fd00:1::11"}, TTL: 5}
	if err := traffic.Update(ctx, bind.Addr, bind.Zone, v6, key); err != nil {
		t.Fatal(err)
	}
	v6West := traffic.Record{Name: "shop.tandem.test", Type: "AAAA", Targets: []string{"fd00:2::10"}, TTL: 5}
	if err := traffic.Update(ctx, bind.Addr, bind.Zone, v6West, key); err != nil {
		t.Fatal(err)
	}
	if ok, got, err := traffic.Answers(ctx, bind.Addr, v6West); err != nil || !ok {
		t.Fatalf("AAAA after the flip: BIND answers %v (%v), want only %v", got, err, v6West.Targets)
	}
	if ok, got, err := traffic.Answers(ctx, bind.Addr, west); err != nil || !ok {
		t.Fatalf("the A RRset of the same name after the AAAA flip: %v (%v), want it untouched: %v", got, err, west.Targets)
	}
	if err := traffic.Update(ctx, bind.Addr, bind.Zone, traffic.Record{Name: "x.tandem.test", Type: "AAAA", Targets: []string{"10.0.2.10"}}, key); err == nil || !strings.Contains(err.Error(), "not an IPv6 address") {
		t.Fatalf("an IPv4 target for AAAA: %v", err)
	}
}
