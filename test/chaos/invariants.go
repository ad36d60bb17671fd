package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Side is what one data center showed in one sample: its pair's status and
// its copy of the app.
type Side struct {
	// Reachable is false when the sample could not read the side (a dark
	// data center): nobody reaches its app either.
	Reachable bool
	Role      string
	Active    string
	Epoch     int64
	// Replicas the app's Deployment asks for, and how many are Available.
	Replicas, Available int32
	// Probed says the run asked the app itself (a real app on a real
	// node, at the data center's address), and Answers what it found: a
	// client got an answer from this side's app, whatever its API server
	// said or whether it could be read at all.
	Probed, Answers bool
	// Lapsed says the side's pods serve through the fence sidecar and its
	// serving Lease had run out when it was read: whatever its record
	// says, it cannot serve.
	Lapsed bool
}

// Serving is true when the side's app runs and can answer clients: when
// the app itself was asked, its answer; otherwise its Deployment, read
// through the side's API server.
func (s Side) Serving() bool {
	if s.Probed {
		return s.Answers
	}
	return s.Reachable && s.Replicas > 0 && s.Available > 0
}

// ClaimsActive is true when the side says it is active (a fenced side says
// Fenced, and a side whose fence sidecars' grant lapsed is fenced whatever
// its record, which nobody can correct while its operator is dead).
func (s Side) ClaimsActive() bool { return s.Reachable && s.Role == "Active" && !s.Lapsed }

// Sample of both data centers, in the order of Topology.DCs.
type Sample struct {
	At    time.Time
	Sides [2]Side
}

// Write is one change a client made on a side that said it was Active, and
// the side acknowledged.
type Write struct {
	Seq         int
	Side        string
	Sent, Acked time.Time
}

// Failover is a Failover Switchover as its status reported it.
type Failover struct {
	Name, From, To, Phase string
	Start                 time.Time
	// Window is the data-loss window it reported, from Since; HasWindow is
	// false when it reported none (Unknown says why). A failover that
	// reports no Since counts its window back from Start.
	Window    time.Duration
	Since     time.Time
	HasWindow bool
	Unknown   string
	// Why is, for one that did not succeed, the step that failed and what
	// it said, so the report explains it without the cluster.
	Why string
}

// span is the stretch of time the failover says changes may be lost in.
func (f Failover) span() (from, to time.Time) {
	if f.Since.IsZero() {
		return f.Start.Add(-f.Window), f.Start
	}
	return f.Since, f.Since.Add(f.Window)
}

// covers reports whether the write falls inside the failover's window.
func (f Failover) covers(w Write) bool {
	from, to := f.span()
	return f.HasWindow && f.Window >= 0 && !w.Acked.Before(from) && !w.Sent.After(to)
}

// Planned is a Planned Switchover the schedule asked for.
type Planned struct {
	Name, From, To, Phase string
	Start, End            time.Time
}

// Applied is an event of the schedule and when it took effect.
type Applied struct {
	Event
	At  time.Time
	Err string
}

// Run is everything a schedule's run recorded.
type Run struct {
	Topology Topology
	Seed     int64
	Duration time.Duration
	Events   []Applied
	Samples  []Sample
	Writes   []Write
	// Present are the writes found on the final active side at the end.
	Present   map[int]bool
	Failovers []Failover
	Planned   []Planned
	// Settled is how long after the last repair the pair was settled (one
	// Active, one Standby, agreeing, Synced, no Switchover running); zero
	// with SettleError set when it was not within the bound.
	Settled     time.Duration
	SettleBound time.Duration
	SettleError string
}

// Window is a stretch of samples in which a predicate held, with the last
// event applied before it started.
type Window struct {
	From, To time.Time
	After    Kind
}

// Length of the window.
func (w Window) Length() time.Duration { return w.To.Sub(w.From) }

// LostWrite is an acknowledged write missing at the end.
type LostWrite struct {
	Write
	// Failover whose window covers it; empty when none does.
	Failover string
	// Reason a write outside every window was lost, as far as the samples
	// tell.
	Reason string
}

// Report is what a run found, checked against the mission's promises.
type Report struct {
	Run         Run
	BothActive  []Window
	BothServing []Window
	NoneServing []Window
	Lost        []LostWrite
}

// Analyze checks the run.
func Analyze(run Run) Report {
	r := Report{Run: run}
	r.BothActive = windows(run, func(s Sample) bool { return s.Sides[0].ClaimsActive() && s.Sides[1].ClaimsActive() })
	r.BothServing = windows(run, func(s Sample) bool { return s.Sides[0].Serving() && s.Sides[1].Serving() })
	r.NoneServing = windows(run, func(s Sample) bool { return !s.Sides[0].Serving() && !s.Sides[1].Serving() })
	for _, w := range run.Writes {
		if run.Present[w.Seq] {
			continue
		}
		lost := LostWrite{Write: w}
		for _, f := range run.Failovers {
			if f.From == w.Side && f.Phase == "Succeeded" && f.covers(w) {
				lost.Failover = f.Name
				break
			}
		}
		if lost.Failover == "" {
			lost.Reason = r.why(w)
		}
		r.Lost = append(r.Lost, lost)
	}
	return r
}

// why a write outside every reported window was lost, from what the
// samples and the switchovers show around it.
func (r Report) why(w Write) string {
	for _, p := range r.Run.Planned {
		if p.From == w.Side && !p.Start.IsZero() && !w.Acked.Before(p.Start) && (p.End.IsZero() || !w.Sent.After(p.End)) {
			return fmt.Sprintf("accepted by %s during Planned Switchover %s (%s)", w.Side, p.Name, p.Phase)
		}
	}
	for _, b := range r.BothActive {
		if !w.Acked.Before(b.From) && !w.Sent.After(b.To) {
			return fmt.Sprintf("accepted by %s while both sides said Active", w.Side)
		}
	}
	for _, f := range r.Run.Failovers {
		if f.From != w.Side || f.Phase != "Succeeded" {
			continue
		}
		from, to := f.span()
		switch {
		case !f.HasWindow && f.Unknown != "":
			return fmt.Sprintf("Failover %s reported its window unknown (%s)", f.Name, f.Unknown)
		case !f.HasWindow:
			return fmt.Sprintf("Failover %s reported no data-loss window", f.Name)
		case f.Window < 0:
			return fmt.Sprintf("Failover %s reported a negative window (%s)", f.Name, f.Window)
		case w.Sent.After(to) && w.Sent.Before(to.Add(2*time.Minute)):
			return fmt.Sprintf("accepted by %s %s after the %s window of Failover %s ended", w.Side, w.Sent.Sub(to).Round(time.Millisecond), f.Window, f.Name)
		case w.Acked.Before(from) && w.Acked.After(from.Add(-10*time.Minute)):
			return fmt.Sprintf("%s before the %s window of Failover %s", from.Sub(w.Acked).Round(time.Millisecond), f.Window, f.Name)
		}
	}
	return "outside every reported data-loss window"
}

// windows returns the stretches of consecutive samples where pred holds.
// A stretch runs from its first sample to the first sample after it.
func windows(run Run, pred func(Sample) bool) []Window {
	var out []Window
	var open *Window
	for _, s := range run.Samples {
		switch {
		case pred(s) && open == nil:
			open = &Window{From: s.At, After: lastEventBefore(run.Events, s.At)}
		case !pred(s) && open != nil:
			open.To = s.At
			out = append(out, *open)
			open = nil
		}
	}
	if open != nil {
		open.To = run.Samples[len(run.Samples)-1].At
		out = append(out, *open)
	}
	return out
}

func lastEventBefore(events []Applied, at time.Time) Kind {
	var k Kind
	for _, e := range events {
		if e.At.After(at) {
			break
		}
		k = e.Kind
	}
	return k
}

func total(ws []Window) (sum, longest time.Duration) {
	for _, w := range ws {
		sum += w.Length()
		if w.Length() > longest {
			longest = w.Length()
		}
	}
	return sum, longest
}

// Violations are the broken promises, one line each; none means the run
// kept every one.
func (r Report) Violations() []string {
	var v []string
	if sum, _ := total(r.BothServing); len(r.BothServing) > 0 {
		v = append(v, fmt.Sprintf("both sides served for %s in %d windows (first at %s, after %s)",
			sum.Round(time.Millisecond), len(r.BothServing), r.offset(r.BothServing[0].From), r.BothServing[0].After))
	}
	if sum, _ := total(r.BothActive); len(r.BothActive) > 0 {
		v = append(v, fmt.Sprintf("both sides said Active for %s in %d windows (first at %s, after %s)",
			sum.Round(time.Millisecond), len(r.BothActive), r.offset(r.BothActive[0].From), r.BothActive[0].After))
	}
	// Lost writes are grouped by their reason: one line per stretch of
	// writes a single cause lost.
	var group []LostWrite
	flush := func() {
		if len(group) == 0 {
			return
		}
		first, last := group[0], group[len(group)-1]
		if len(group) == 1 {
			v = append(v, fmt.Sprintf("write %d, acknowledged by %s at %s, is lost: %s", first.Seq, first.Side, r.offset(first.Acked), first.Reason))
		} else {
			v = append(v, fmt.Sprintf("%d writes acknowledged by %s from %s to %s are lost: %s", len(group), first.Side, r.offset(first.Acked), r.offset(last.Acked), first.Reason))
		}
		group = group[:0]
	}
	for _, l := range r.Lost {
		if l.Failover != "" {
			continue
		}
		if len(group) > 0 && (group[0].Reason != l.Reason || group[0].Side != l.Side) {
			flush()
		}
		group = append(group, l)
	}
	flush()
	if r.Run.SettleError != "" {
		v = append(v, fmt.Sprintf("not settled within %s of the last repair: %s", r.Run.SettleBound, r.Run.SettleError))
	}
	return v
}

func (r Report) start() time.Time {
	if len(r.Run.Samples) > 0 {
		return r.Run.Samples[0].At
	}
	return time.Time{}
}

func (r Report) offset(t time.Time) string {
	return "+" + t.Sub(r.start()).Round(100*time.Millisecond).String()
}

// Print writes the run's figures: what happened, and every promise with
// what was measured against it.
func (r Report) Print(w io.Writer) {
	run := r.Run
	fmt.Fprintf(w, "fault schedule: seed %d, %s, %d events\n", run.Seed, run.Duration, len(run.Events))
	kinds := map[Kind]int{}
	for _, e := range run.Events {
		kinds[e.Kind]++
	}
	var ks []string
	for k, n := range kinds {
		ks = append(ks, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(ks)
	fmt.Fprintf(w, "  events: %s\n", strings.Join(ks, ", "))
	var span time.Duration
	if len(run.Samples) > 1 {
		span = run.Samples[len(run.Samples)-1].At.Sub(run.Samples[0].At)
	}
	fmt.Fprintf(w, "  samples: %d over %s\n", len(run.Samples), span.Round(time.Second))
	sum, longest := total(r.BothServing)
	fmt.Fprintf(w, "  both sides serving: %s in %d windows (longest %s)\n", sum.Round(time.Millisecond), len(r.BothServing), longest.Round(time.Millisecond))
	sum, longest = total(r.BothActive)
	fmt.Fprintf(w, "  both sides Active: %s in %d windows (longest %s)\n", sum.Round(time.Millisecond), len(r.BothActive), longest.Round(time.Millisecond))
	sum, longest = total(r.NoneServing)
	fmt.Fprintf(w, "  no side serving: %s in %d windows (longest %s)\n", sum.Round(time.Millisecond), len(r.NoneServing), longest.Round(time.Millisecond))
	byKind := map[Kind]time.Duration{}
	for _, nw := range r.NoneServing {
		if nw.Length() > byKind[nw.After] {
			byKind[nw.After] = nw.Length()
		}
	}
	ks = ks[:0]
	for k, d := range byKind {
		ks = append(ks, fmt.Sprintf("%s %s", k, d.Round(100*time.Millisecond)))
	}
	sort.Strings(ks)
	if len(ks) > 0 {
		fmt.Fprintf(w, "    longest by the event before it: %s\n", strings.Join(ks, ", "))
	}
	inWindow := 0
	for _, l := range r.Lost {
		if l.Failover != "" {
			inWindow++
		}
	}
	fmt.Fprintf(w, "  writes acknowledged: %d, lost: %d (%d inside the window their failover reported, %d outside)\n",
		len(run.Writes), len(r.Lost), inWindow, len(r.Lost)-inWindow)
	for _, f := range run.Failovers {
		window := "no window"
		switch {
		case f.HasWindow && !f.Since.IsZero():
			window = fmt.Sprintf("window %s from %s", f.Window, r.offset(f.Since))
		case f.HasWindow:
			window = "window " + f.Window.String()
		case f.Unknown != "":
			window = "window unknown"
		}
		n := 0
		for _, l := range r.Lost {
			if l.Failover == f.Name {
				n++
			}
		}
		fmt.Fprintf(w, "  failover %s (%s -> %s, %s) at %s: %s, %d lost writes inside it\n", f.Name, f.From, f.To, f.Phase, r.offset(f.Start), window, n)
		if f.Why != "" {
			fmt.Fprintf(w, "    why: %s\n", f.Why)
		}
	}
	for _, p := range run.Planned {
		fmt.Fprintf(w, "  planned %s (%s -> %s): %s", p.Name, p.From, p.To, p.Phase)
		if !p.End.IsZero() && !p.Start.IsZero() {
			fmt.Fprintf(w, " in %s", p.End.Sub(p.Start).Round(time.Millisecond))
		}
		fmt.Fprintln(w)
	}
	if run.SettleError == "" {
		fmt.Fprintf(w, "  settled %s after the last repair (bound %s)\n", run.Settled.Round(100*time.Millisecond), run.SettleBound)
	}
	v := r.Violations()
	if len(v) == 0 {
		fmt.Fprintln(w, "  every promise kept")
		return
	}
	fmt.Fprintf(w, "  %d promises broken:\n", len(v))
	const max = 20
	for i, line := range v {
		if i == max {
			fmt.Fprintf(w, "    ... and %d more\n", len(v)-max)
			break
		}
		fmt.Fprintf(w, "    %s\n", line)
	}
}

// Timeline writes the run as it unfolded: every event, and every sample in
// which either side showed something new (reachability, role, record, the
// app's replicas), so that a broken promise can be read back in order.
func (r Report) Timeline(w io.Writer) {
	run := r.Run
	side := func(s Side) string {
		if !s.Reachable {
			return "unreachable"
		}
		return fmt.Sprintf("%-7s %s@%d app %d/%d", s.Role, s.Active, s.Epoch, s.Available, s.Replicas)
	}
	events := run.Events
	var last [2]string
	for _, s := range run.Samples {
		for len(events) > 0 && !events[0].At.After(s.At) {
			e := events[0]
			line := fmt.Sprintf("%10s  == %s %s", r.offset(e.At), e.Kind, e.Target)
			if e.Err != "" {
				line += ": " + e.Err
			}
			fmt.Fprintln(w, line)
			events = events[1:]
		}
		now := [2]string{side(s.Sides[0]), side(s.Sides[1])}
		if now != last {
			fmt.Fprintf(w, "%10s  %s: %-36s %s: %s\n", r.offset(s.At), run.Topology.DCs[0], now[0], run.Topology.DCs[1], now[1])
			last = now
		}
	}
}
