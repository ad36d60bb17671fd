package fence

import (
	"testing"
	"time"
)

func TestNewestPicksTheHighestEpoch(t *testing.T) {
	east1 := Record{Active: "dc-east", Epoch: 1}
	west2 := Record{Active: "dc-west", Epoch: 2}
	for _, tc := range []struct {
		name      string
		in        []Sighting
		want      Record
		ok, ambig bool
	}{
		{name: "nothing known", in: []Sighting{{"local", Record{}}, {"peer", Record{}}}},
		{name: "only local", in: []Sighting{{"local", east1}}, want: east1, ok: true},
		{name: "peer is newer", in: []Sighting{{"local", east1}, {"peer", west2}}, want: west2, ok: true},
		{name: "witness is newer", in: []Sighting{{"local", east1}, {"peer", Record{}}, {"witness", west2}}, want: west2, ok: true},
		{name: "local is newer", in: []Sighting{{"local", west2}, {"peer", east1}}, want: west2, ok: true},
		{name: "agree", in: []Sighting{{"local", west2}, {"peer", west2}, {"witness", west2}}, want: west2, ok: true},
		{name: "same epoch, two actives", in: []Sighting{{"local", east1}, {"peer", Record{Active: "dc-west", Epoch: 1}}}, ambig: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := Newest(tc.in...)
			if (err != nil) != tc.ambig {
				t.Fatalf("err = %v, want ambiguous %v", err, tc.ambig)
			}
			if ok != tc.ok || got.Record != tc.want {
				t.Fatalf("Newest = %v %v, want %v %v", got.Record, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestALowerEpochNeverSupersedes(t *testing.T) {
	for _, tc := range []struct {
		next, current Record
		want          bool
	}{
		{Record{"dc-west", 2}, Record{"dc-east", 1}, true},
		{Record{"dc-east", 1}, Record{"dc-west", 2}, false},
		{Record{"dc-east", 1}, Record{"dc-east", 1}, true},
		{Record{"dc-west", 1}, Record{"dc-east", 1}, false},
		{Record{"dc-east", 1}, Record{}, true},
		{Record{}, Record{"dc-east", 1}, false},
	} {
		if got := Supersedes(tc.next, tc.current); got != tc.want {
			t.Errorf("Supersedes(%v, %v) = %v, want %v", tc.next, tc.current, got, tc.want)
		}
	}
}

func TestMustFenceOnlyWhenNeitherLeaseNorPeerWithinTheDuration(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	lease := 15 * time.Second
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	for _, tc := range []struct {
		name                string
		lastRenew, lastPeer time.Time
		want                bool
	}{
		{"both recent", ago(time.Second), ago(time.Second), false},
		{"lease renewed, peer gone", ago(time.Second), ago(time.Hour), false},
		{"witness gone, peer answers", ago(time.Hour), ago(2 * time.Second), false},
		{"both gone longer than the lease", ago(16 * time.Second), ago(16 * time.Second), true},
		{"both gone exactly the lease", ago(lease), ago(lease), false},
		{"restarted, never renewed, peer gone", time.Time{}, time.Time{}, true},
		{"restarted, never renewed, peer answers", time.Time{}, ago(time.Second), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := MustFence(now, tc.lastRenew, tc.lastPeer, lease); got != tc.want {
				t.Fatalf("MustFence = %v, want %v", got, tc.want)
			}
		})
	}
}
