// Package chaos is Tandem's fault suite: a seeded schedule of faults across
// two data centers and a witness, samples of what both sides say and run,
// and the mission's promises checked on those samples. The e2e test
// TestFaultSchedule drives it on the test bed (`make chaos`); this package
// holds what is pure logic, so that the schedule and the invariants are
// tested on their own.
package chaos

import (
	"fmt"
	"math/rand"
	"sort"
	"time"
)

// Kind of a scheduled event.
type Kind string

const (
	// StopDC darkens a data center: its control plane, its nodes and its
	// operator stop at once, keeping their state.
	StopDC Kind = "stop-dc"
	// StartDC brings a dark data center back with its state (and its
	// operator, unless that was killed on its own).
	StartDC Kind = "start-dc"
	// KillOperator SIGKILLs a data center's operator and keeps it down.
	KillOperator Kind = "kill-operator"
	// RestartOperator starts a killed operator again.
	RestartOperator Kind = "restart-operator"
	// CrashLoop kills an operator three times in a row, restarting it
	// after each kill: it ends running.
	CrashLoop Kind = "crash-loop"
	// CutLink drops one side's requests to another cluster (one way: the
	// other direction keeps working).
	CutLink Kind = "cut-link"
	// Partition cuts both links between the data centers.
	Partition Kind = "partition"
	// HealLink restores one link.
	HealLink Kind = "heal-link"
	// PlannedSwitchover asks the active side to hand over to the other.
	PlannedSwitchover Kind = "planned-switchover"
	// HealAll ends every fault: the schedule's last event.
	HealAll Kind = "heal-all"
)

// Event is one step of a schedule, At after its start.
type Event struct {
	At     time.Duration
	Kind   Kind
	Target string
}

func (e Event) String() string {
	if e.Target == "" {
		return fmt.Sprintf("%7s %s", e.At.Round(time.Second), e.Kind)
	}
	return fmt.Sprintf("%7s %s %s", e.At.Round(time.Second), e.Kind, e.Target)
}

// Topology names the clusters a schedule acts on.
type Topology struct {
	DCs     [2]string
	Witness string
}

// Link names the path from one cluster's operator to another cluster.
func Link(from, to string) string { return from + "->" + to }

// Links are every path an operator uses: to the peer and to the witness.
func (t Topology) Links() []string {
	a, b := t.DCs[0], t.DCs[1]
	return []string{Link(a, b), Link(b, a), Link(a, t.Witness), Link(b, t.Witness)}
}

// Peer of a data center.
func (t Topology) Peer(dc string) string {
	if dc == t.DCs[0] {
		return t.DCs[1]
	}
	return t.DCs[0]
}

// Options shape a schedule.
type Options struct {
	Seed     int64
	Duration time.Duration
	// Gaps between events are drawn from [MinGap, MaxGap]; 10s and 40s
	// when zero.
	MinGap, MaxGap time.Duration
	// MaxFaults in effect at once; 2 when zero.
	MaxFaults int
	// MaxFaultAge: a fault older than this is repaired by the next event;
	// 75s when zero.
	MaxFaultAge time.Duration
}

func (o Options) withDefaults() Options {
	if o.MinGap == 0 {
		o.MinGap = 10 * time.Second
	}
	if o.MaxGap == 0 {
		o.MaxGap = 40 * time.Second
	}
	if o.MaxFaults == 0 {
		o.MaxFaults = 2
	}
	if o.MaxFaultAge == 0 {
		o.MaxFaultAge = 75 * time.Second
	}
	return o
}

// faults are what is broken at a point of the schedule, each with the time
// it broke. A dark data center's operator is not a fault of its own: it
// comes back with the data center.
type faults struct {
	dark   map[string]time.Duration
	killed map[string]time.Duration
	cut    map[string]time.Duration
}

func (f faults) count() int { return len(f.dark) + len(f.killed) + len(f.cut) }

// oldest returns the repair of the oldest fault and its age at now.
func (f faults) oldest(now time.Duration) (Event, time.Duration, bool) {
	var repairs []Event
	var since []time.Duration
	for dc, at := range f.dark {
		repairs, since = append(repairs, Event{Kind: StartDC, Target: dc}), append(since, at)
	}
	for dc, at := range f.killed {
		repairs, since = append(repairs, Event{Kind: RestartOperator, Target: dc}), append(since, at)
	}
	for l, at := range f.cut {
		repairs, since = append(repairs, Event{Kind: HealLink, Target: l}), append(since, at)
	}
	if len(repairs) == 0 {
		return Event{}, 0, false
	}
	best := 0
	for i := range repairs {
		if since[i] < since[best] || (since[i] == since[best] && repairs[i].Target < repairs[best].Target) {
			best = i
		}
	}
	return repairs[best], now - since[best], true
}

// NewSchedule draws a schedule from the seed: the same seed always gives
// the same events. Each event is a fault or a repair that fits what is
// broken at that point (one dark data center at a time, no operator killed
// in a dark one, links cut only from a data center that runs), at most
// MaxFaults at once, none older than MaxFaultAge, planned switchovers only
// while nothing is broken, and a final HealAll at Duration.
func NewSchedule(topo Topology, o Options) []Event {
	o = o.withDefaults()
	rng := rand.New(rand.NewSource(o.Seed))
	f := faults{dark: map[string]time.Duration{}, killed: map[string]time.Duration{}, cut: map[string]time.Duration{}}
	var events []Event
	gap := func() time.Duration {
		return o.MinGap + time.Duration(rng.Int63n(int64(o.MaxGap-o.MinGap)+1))
	}
	for at := gap(); at < o.Duration; at += gap() {
		var e Event
		if repair, age, ok := f.oldest(at); ok && age >= o.MaxFaultAge {
			e = repair
		} else {
			e = pick(rng, candidates(topo, f, o.MaxFaults))
		}
		e.At = at
		apply(topo, f, e)
		events = append(events, e)
	}
	return append(events, Event{At: o.Duration, Kind: HealAll})
}

type weighted struct {
	e Event
	w int
}

func candidates(topo Topology, f faults, maxFaults int) []weighted {
	var c []weighted
	for dc := range f.dark {
		c = append(c, weighted{Event{Kind: StartDC, Target: dc}, 4})
	}
	for dc := range f.killed {
		c = append(c, weighted{Event{Kind: RestartOperator, Target: dc}, 4})
	}
	for l := range f.cut {
		c = append(c, weighted{Event{Kind: HealLink, Target: l}, 2})
	}
	if f.count() == 0 {
		c = append(c, weighted{Event{Kind: PlannedSwitchover}, 3})
	}
	if f.count() < maxFaults {
		for _, dc := range topo.DCs {
			if _, dark := f.dark[dc]; dark {
				continue
			}
			if len(f.dark) == 0 {
				c = append(c, weighted{Event{Kind: StopDC, Target: dc}, 3})
			}
			if _, killed := f.killed[dc]; !killed {
				c = append(c, weighted{Event{Kind: KillOperator, Target: dc}, 2},
					weighted{Event{Kind: CrashLoop, Target: dc}, 1})
			}
			for _, to := range []string{topo.Peer(dc), topo.Witness} {
				if _, cut := f.cut[Link(dc, to)]; !cut {
					c = append(c, weighted{Event{Kind: CutLink, Target: Link(dc, to)}, 1})
				}
			}
		}
		a, b := topo.DCs[0], topo.DCs[1]
		_, ab := f.cut[Link(a, b)]
		_, ba := f.cut[Link(b, a)]
		if len(f.dark) == 0 && !ab && !ba && f.count() < maxFaults-1 {
			c = append(c, weighted{Event{Kind: Partition, Target: a + "<->" + b}, 2})
		}
	}
	// Map iteration order is random: sort so that the seed alone decides.
	sort.Slice(c, func(i, j int) bool {
		if c[i].e.Kind != c[j].e.Kind {
			return c[i].e.Kind < c[j].e.Kind
		}
		return c[i].e.Target < c[j].e.Target
	})
	return c
}

func pick(rng *rand.Rand, c []weighted) Event {
	total := 0
	for _, w := range c {
		total += w.w
	}
	n := rng.Intn(total)
	for _, w := range c {
		if n < w.w {
			return w.e
		}
		n -= w.w
	}
	return c[len(c)-1].e
}

// apply records what an event breaks or repairs.
func apply(topo Topology, f faults, e Event) {
	switch e.Kind {
	case StopDC:
		f.dark[e.Target] = e.At
	case StartDC:
		delete(f.dark, e.Target)
	case KillOperator:
		f.killed[e.Target] = e.At
	case RestartOperator:
		delete(f.killed, e.Target)
	case CutLink:
		f.cut[e.Target] = e.At
	case Partition:
		a, b := topo.DCs[0], topo.DCs[1]
		f.cut[Link(a, b)], f.cut[Link(b, a)] = e.At, e.At
	case HealLink:
		delete(f.cut, e.Target)
	}
}
