// Package fence keeps two data centers from serving at once. The epoch is
// the fencing token: every promotion takes the next one, and a role record
// with a lower epoch never overwrites a higher one. The optional witness
// cluster breaks ties under a partition through a Lease that only the
// active side renews.
package fence

import (
	"fmt"
	"time"
)

// Record is a cluster's role record for a pair: which cluster is active,
// and the epoch that made it so. The zero Record is "not known yet".
type Record struct {
	Active string
	Epoch  int64
}

// Known says whether the record was ever written.
func (r Record) Known() bool { return r.Epoch > 0 }

func (r Record) String() string {
	if !r.Known() {
		return "no role record"
	}
	return fmt.Sprintf("%s active at epoch %d", r.Active, r.Epoch)
}

// Sighting is a record and where it was read (this cluster, the peer, the
// witness Lease), for messages.
type Sighting struct {
	Source string
	Record Record
}

// AmbiguousError is two records with the same epoch and different active
// clusters. Epochs are taken one at a time through the witness or by a
// single switchover, so this means a record was written by hand or by a
// bug; the controller refuses to act on it.
type AmbiguousError struct {
	A, B Sighting
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%s says %s but %s says %s, at the same epoch", e.A.Source, e.A.Record, e.B.Source, e.B.Record)
}

// Newest returns the sighting with the highest epoch. Unknown records are
// ignored; with none known, ok is false.
func Newest(sightings ...Sighting) (newest Sighting, ok bool, err error) {
	for _, s := range sightings {
		switch {
		case !s.Record.Known():
		case !ok || s.Record.Epoch > newest.Record.Epoch:
			newest, ok = s, true
		case s.Record.Epoch == newest.Record.Epoch && s.Record.Active != newest.Record.Active:
			return Sighting{}, false, &AmbiguousError{A: newest, B: s}
		}
	}
	return newest, ok, nil
}

// Supersedes says whether next may replace current: only a higher epoch
// does, or the same record again.
func Supersedes(next, current Record) bool {
	return next.Epoch > current.Epoch || next == current
}

// MustFence says whether an active side must stop serving: it has renewed
// the witness Lease and reached its peer neither within the lease duration.
// A zero time (not since this process started) counts as too long ago, so
// an operator restarted in the middle of an outage fences at once rather
// than trusting a lease it cannot see: the standby may already have taken
// it.
func MustFence(now, lastRenew, lastPeerContact time.Time, leaseDuration time.Duration) bool {
	recent := func(t time.Time) bool { return !t.IsZero() && now.Sub(t) <= leaseDuration }
	return !recent(lastRenew) && !recent(lastPeerContact)
}
