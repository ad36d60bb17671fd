package chaos

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

var topo = Topology{DCs: [2]string{"dc-east", "dc-west"}, Witness: "witness"}

func TestTheSeedAloneDecidesTheSchedule(t *testing.T) {
	o := Options{Seed: 7, Duration: 30 * time.Minute}
	a, b := NewSchedule(topo, o), NewSchedule(topo, o)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two schedules from seed 7 differ")
	}
	o.Seed = 8
	if reflect.DeepEqual(a, NewSchedule(topo, o)) {
		t.Fatal("seeds 7 and 8 gave the same schedule")
	}
}

// Every schedule, replayed, keeps to its rules: events fit what is broken,
// no fault outlives the age bound by more than one gap, at most two at
// once, planned switchovers only on a healthy pair, every kind of fault
// appears in a long schedule, and the last event heals everything.
func TestSchedulesKeepTheirRules(t *testing.T) {
	seen := map[Kind]bool{}
	for seed := int64(1); seed <= 20; seed++ {
		o := Options{Seed: seed, Duration: 30 * time.Minute}.withDefaults()
		events := NewSchedule(topo, o)
		f := faults{dark: map[string]time.Duration{}, killed: map[string]time.Duration{}, cut: map[string]time.Duration{}}
		var last time.Duration
		for i, e := range events {
			seen[e.Kind] = true
			if gap := e.At - last; i < len(events)-1 && (gap < o.MinGap || gap > o.MaxGap) {
				t.Fatalf("seed %d: %s comes %s after the previous event", seed, e, gap)
			}
			last = e.At
			switch e.Kind {
			case StopDC:
				if len(f.dark) > 0 {
					t.Fatalf("seed %d: %s while %v is dark", seed, e, f.dark)
				}
			case KillOperator, CrashLoop:
				if _, dark := f.dark[e.Target]; dark {
					t.Fatalf("seed %d: %s in a dark data center", seed, e)
				}
			case StartDC:
				if _, dark := f.dark[e.Target]; !dark {
					t.Fatalf("seed %d: %s that is not dark", seed, e)
				}
			case PlannedSwitchover:
				if f.count() > 0 {
					t.Fatalf("seed %d: %s with faults %+v", seed, e, f)
				}
			}
			apply(topo, f, e)
			if f.count() > o.MaxFaults {
				t.Fatalf("seed %d: %d faults at once after %s", seed, f.count(), e)
			}
			if _, age, ok := f.oldest(e.At); ok && age > o.MaxFaultAge+o.MaxGap {
				t.Fatalf("seed %d: a fault is %s old at %s", seed, age, e)
			}
		}
		if end := events[len(events)-1]; end.Kind != HealAll || end.At != o.Duration {
			t.Fatalf("seed %d ends with %s", seed, end)
		}
	}
	for _, k := range []Kind{StopDC, StartDC, KillOperator, RestartOperator, CrashLoop, CutLink, Partition, HealLink, PlannedSwitchover} {
		if !seen[k] {
			t.Errorf("no schedule of 20 seeds has a %s", k)
		}
	}
}

// samples builds a run sampled every 100ms from a list of (duration, east,
// west) stretches.
func samples(start time.Time, stretches ...stretch) []Sample {
	var out []Sample
	at := start
	for _, s := range stretches {
		for end := at.Add(s.d); at.Before(end); at = at.Add(100 * time.Millisecond) {
			out = append(out, Sample{At: at, Sides: [2]Side{s.east, s.west}})
		}
	}
	return append(out, Sample{At: at, Sides: out[len(out)-1].Sides})
}

type stretch struct {
	d          time.Duration
	east, west Side
}

var (
	active  = Side{Reachable: true, Role: "Active", Replicas: 2, Available: 2}
	standby = Side{Reachable: true, Role: "Standby"}
	dark    = Side{}
	fenced  = Side{Reachable: true, Role: "Fenced"}
)

func TestTwoServingSidesAreMeasuredAndReported(t *testing.T) {
	t0 := time.Unix(1000, 0)
	run := Run{Topology: topo, Samples: samples(t0,
		stretch{10 * time.Second, active, standby},
		stretch{5 * time.Second, dark, standby},
		stretch{3 * time.Second, dark, active},
		stretch{1500 * time.Millisecond, active, active},
		stretch{10 * time.Second, standby, active},
	), Events: []Applied{{Event: Event{Kind: StopDC}, At: t0.Add(10 * time.Second)}, {Event: Event{Kind: StartDC}, At: t0.Add(17 * time.Second)}}}
	r := Analyze(run)
	if len(r.BothActive) != 1 || r.BothActive[0].Length() != 1500*time.Millisecond || r.BothActive[0].After != StartDC {
		t.Fatalf("both Active: %+v", r.BothActive)
	}
	if len(r.BothServing) != 1 || r.BothServing[0].Length() != 1500*time.Millisecond {
		t.Fatalf("both serving: %+v", r.BothServing)
	}
	if len(r.NoneServing) != 1 || r.NoneServing[0].Length() != 5*time.Second || r.NoneServing[0].After != StopDC {
		t.Fatalf("none serving: %+v", r.NoneServing)
	}
	v := r.Violations()
	if len(v) != 2 || !strings.Contains(v[0], "both sides served for 1.5s") || !strings.Contains(v[1], "both sides said Active for 1.5s") {
		t.Fatalf("violations: %q", v)
	}

	// A fenced side is not active, and a side without replicas does not serve.
	run.Samples = samples(t0, stretch{time.Second, fenced, active}, stretch{time.Second, Side{Reachable: true, Role: "Active"}, active})
	if r := Analyze(run); len(r.BothActive) != 1 || len(r.BothServing) != 0 {
		t.Fatalf("both Active %+v, both serving %+v", r.BothActive, r.BothServing)
	}
}

func TestLostWritesAreCheckedAgainstTheWindowTheirFailoverReported(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	write := func(seq int, side string, d time.Duration) Write {
		return Write{Seq: seq, Side: side, Sent: at(d), Acked: at(d + 10*time.Millisecond)}
	}
	run := Run{
		Topology: topo,
		Samples:  samples(t0, stretch{20 * time.Second, active, standby}, stretch{20 * time.Second, dark, active}),
		Writes: []Write{
			write(1, "dc-east", 1*time.Second),  // present
			write(3, "dc-east", 5*time.Second),  // lost, older than the window
			write(2, "dc-east", 15*time.Second), // lost inside the window [14s, 20s]
			write(4, "dc-west", 30*time.Second), // present
			write(5, "dc-west", 35*time.Second), // lost, no failover from dc-west
		},
		Present: map[int]bool{1: true, 4: true},
		Failovers: []Failover{{Name: "shop-failover-2", From: "dc-east", To: "dc-west", Phase: "Succeeded",
			Start: at(20 * time.Second), Window: 6 * time.Second, HasWindow: true}},
		SettleBound: time.Minute,
	}
	r := Analyze(run)
	if len(r.Lost) != 3 || r.Lost[0].Failover != "" || r.Lost[1].Failover != "shop-failover-2" || r.Lost[2].Failover != "" {
		t.Fatalf("lost: %+v", r.Lost)
	}
	v := r.Violations()
	if len(v) != 2 || !strings.Contains(v[0], "write 3") || !strings.Contains(v[0], "8.99s before the 6s window") ||
		!strings.Contains(v[1], "write 5") {
		t.Fatalf("violations: %q", v)
	}

	// A failover that reports no window covers nothing, and says so; the
	// writes one cause lost are one line.
	run.Failovers[0].HasWindow = false
	if v := Analyze(run).Violations(); len(v) != 2 || !strings.Contains(v[0], "2 writes acknowledged by dc-east from +5s to +15s are lost: Failover shop-failover-2 reported no data-loss window") {
		t.Fatalf("violations: %q", v)
	}

	// A write the old side accepted during a planned switchover.
	run.Failovers = nil
	run.Planned = []Planned{{Name: "planned-1", From: "dc-west", To: "dc-east", Phase: "Succeeded", Start: at(34 * time.Second), End: at(36 * time.Second)}}
	run.Writes, run.Present = []Write{write(5, "dc-west", 35*time.Second)}, nil
	if v := Analyze(run).Violations(); len(v) != 1 || !strings.Contains(v[0], "during Planned Switchover planned-1") {
		t.Fatalf("violations: %q", v)
	}
}

func TestARunThatDidNotSettleBreaksAPromise(t *testing.T) {
	run := Run{Topology: topo, Samples: samples(time.Unix(1000, 0), stretch{time.Second, active, standby}),
		SettleBound: 2 * time.Minute, SettleError: "dc-east says Synced=Unknown"}
	v := Analyze(run).Violations()
	if len(v) != 1 || !strings.Contains(v[0], "not settled within 2m0s of the last repair: dc-east says Synced=Unknown") {
		t.Fatalf("violations: %q", v)
	}
	var b strings.Builder
	Analyze(run).Print(&b)
	if !strings.Contains(b.String(), "1 promises broken") {
		t.Fatalf("report:\n%s", b.String())
	}
}

// A side whose app was asked serves when it answered, whatever its API
// server said: a thawed node's app answers while its control plane is still
// down, and a Deployment scaled up is not serving until its app answers.
func TestServingIsTheAppsAnswerWhenTheAppWasAsked(t *testing.T) {
	for _, c := range []struct {
		name string
		side Side
		want bool
	}{
		{"simulated, running", Side{Reachable: true, Replicas: 2, Available: 2}, true},
		{"simulated, dark", Side{}, false},
		{"real, answers with its API server down", Side{Probed: true, Answers: true}, true},
		{"real, scaled up but not answering", Side{Reachable: true, Replicas: 1, Available: 1, Probed: true}, false},
	} {
		if got := c.side.Serving(); got != c.want {
			t.Errorf("%s: Serving() = %v, want %v", c.name, got, c.want)
		}
	}
}

// A side whose fence sidecars' grant lapsed cannot serve, whatever its
// record says; without the sidecar its record is what counts.
func TestALapsedGrantIsNotAnActiveSide(t *testing.T) {
	if (Side{Reachable: true, Role: "Active", Lapsed: true}).ClaimsActive() {
		t.Error("a side whose grant lapsed claims Active")
	}
	if !(Side{Reachable: true, Role: "Active"}).ClaimsActive() {
		t.Error("an Active side with a live grant (or no sidecar) does not claim Active")
	}
	if (Side{Reachable: true, Role: "Fenced"}).ClaimsActive() {
		t.Error("a Fenced side claims Active")
	}
}
