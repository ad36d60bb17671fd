package volume

import (
	"strings"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

var (
	t0   = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	data = ClaimKey{Namespace: "shop", Name: "data"}
)

func snap(name string, role Role, age time.Duration, ready bool) Snap {
	return Snap{Namespace: "shop", Name: name, Claim: "data", Role: role, Taken: t0.Add(-age), Ready: ready}
}

func names(list []Snap) string {
	var out []string
	for _, s := range list {
		out = append(out, s.Name)
	}
	return strings.Join(out, ",")
}

func keys(list []ClaimKey) string {
	var out []string
	for _, k := range list {
		out = append(out, k.String())
	}
	return strings.Join(out, ",")
}

func TestDecideSchedule(t *testing.T) {
	cases := []struct {
		name    string
		active  []Snap
		standby []Snap
		unbound bool
		take    string
		ship    string
		wake    time.Duration
		rpo     time.Duration
		problem string
	}{
		{name: "first snapshot", take: "shop/data", wake: time.Second, rpo: -1, problem: "no snapshot is usable"},
		{name: "not due yet", active: []Snap{snap("a", RoleSource, 20*time.Second, true)},
			standby: []Snap{snap("a", RoleReplica, 20*time.Second, true)}, wake: 40 * time.Second, rpo: 20 * time.Second},
		{name: "due at the interval", active: []Snap{snap("a", RoleSource, time.Minute, true)},
			standby: []Snap{snap("a", RoleReplica, time.Minute, true)}, take: "shop/data", wake: time.Second, rpo: time.Minute},
		{name: "in flight: no second snapshot", active: []Snap{snap("b", RoleSource, 2*time.Minute, false), snap("a", RoleSource, 3*time.Minute, true)},
			standby: []Snap{snap("a", RoleReplica, 3*time.Minute, true)}, wake: time.Second, rpo: 3 * time.Minute},
		{name: "ready and not shipped", active: []Snap{snap("a", RoleSource, 5*time.Second, true)},
			ship: "a", wake: time.Second, rpo: -1, problem: "no snapshot is usable"},
		{name: "replica in flight keeps the older RPO", active: []Snap{snap("b", RoleSource, 5*time.Second, true), snap("a", RoleSource, 65*time.Second, true)},
			standby: []Snap{snap("b", RoleReplica, 5*time.Second, false), snap("a", RoleReplica, 65*time.Second, true)}, wake: time.Second, rpo: 65 * time.Second},
		{name: "unbound claim", unbound: true, wake: time.Minute, rpo: -1, problem: "not bound"},
		{name: "failed snapshot retried after the back-off", active: []Snap{{Namespace: "shop", Name: "f", Claim: "data", Role: RoleSource, Taken: t0.Add(-11 * time.Second), Err: "disk full"}},
			take: "shop/data", wake: time.Second, rpo: -1, problem: "snapshot f failed: disk full"},
		{name: "failed snapshot waits for the back-off", active: []Snap{{Namespace: "shop", Name: "f", Claim: "data", Role: RoleSource, Taken: t0.Add(-4 * time.Second), Err: "disk full"}},
			wake: 6 * time.Second, rpo: -1, problem: "snapshot f failed: disk full"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Decide(Input{Now: t0, Interval: time.Minute, Retention: 3, Claims: []ClaimKey{data},
				Unbound: map[ClaimKey]bool{data: c.unbound}, Active: c.active, Standby: c.standby})
			if got := keys(p.Take); got != c.take {
				t.Errorf("take = %q, want %q", got, c.take)
			}
			if got := names(p.Ship); got != c.ship {
				t.Errorf("ship = %q, want %q", got, c.ship)
			}
			if p.Wake != c.wake {
				t.Errorf("wake = %s, want %s", p.Wake, c.wake)
			}
			st := p.Claims[0]
			if st.RPO != c.rpo {
				t.Errorf("rpo = %s, want %s", st.RPO, c.rpo)
			}
			if !strings.Contains(st.Problem, c.problem) || (c.problem == "" && st.Problem != "") {
				t.Errorf("problem = %q, want %q", st.Problem, c.problem)
			}
		})
	}
}

func TestDecideRetention(t *testing.T) {
	active := []Snap{
		snap("s5", RoleSource, 1*time.Second, false), // in flight: kept
		snap("s4", RoleSource, 10*time.Second, true),
		snap("s3", RoleSource, 20*time.Second, true),
		snap("s2", RoleSource, 30*time.Second, false), // never ready, superseded
		snap("s1", RoleSource, 40*time.Second, true),  // past retention
		snap("r9", RoleReplica, 90*time.Second, true), // from the other direction
		snap("r8", RoleReplica, 95*time.Second, true),
		snap("r7", RoleReplica, 99*time.Second, true),
		snap("k1", RoleKept, 999*time.Second, true),
	}
	used := snap("s0", RoleSource, 50*time.Second, true)
	used.InUse = true
	active = append(active, used)
	standby := []Snap{
		snap("s4", RoleReplica, 10*time.Second, true),
		snap("s3", RoleReplica, 20*time.Second, true),
		snap("s1", RoleReplica, 40*time.Second, true),
	}
	p := Decide(Input{Now: t0, Interval: time.Minute, Retention: 2, Claims: []ClaimKey{data}, Active: active, Standby: standby})
	if got, want := names(p.DeleteActive), "s2,s1,r7"; got != want {
		t.Errorf("deleted on the active side %q, want %q (never s0, in use by a restore, nor k1, kept)", got, want)
	}
	if got, want := names(p.DeleteStandby), "s1"; got != want {
		t.Errorf("deleted on the standby %q, want %q", got, want)
	}
}

func TestDecideClaimGone(t *testing.T) {
	other := ClaimKey{Namespace: "shop", Name: "other"}
	active := []Snap{snap("s1", RoleSource, time.Second, true), snap("x", RoleReplica, time.Hour, true)}
	active[1].Claim = "old-replica"
	standby := []Snap{snap("s1", RoleReplica, time.Second, true)}
	p := Decide(Input{Now: t0, Interval: time.Minute, Retention: 3, Claims: []ClaimKey{other}, Active: active, Standby: standby})
	if got := names(p.DeleteActive); got != "s1" {
		t.Errorf("deleted on the active side %q, want s1: the PVC is no longer protected; a replica from the other direction stays", got)
	}
	if got := names(p.DeleteStandby); got != "s1" {
		t.Errorf("deleted on the standby %q, want s1", got)
	}
}

func TestStandbyHandle(t *testing.T) {
	vs := &snapv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "data-snap-1"}}
	cases := []struct {
		mapping tandemv1.HandleMapping
		want    string
		err     string
	}{
		{mapping: tandemv1.HandleMapping{}, want: "snap-123"},
		{mapping: tandemv1.HandleMapping{Mode: "Same"}, want: "snap-123"},
		{mapping: tandemv1.HandleMapping{Mode: "Template", Template: "replica-{{.Handle}}"}, want: "replica-snap-123"},
		{mapping: tandemv1.HandleMapping{Mode: "Template", Template: "dr/{{.Namespace}}/{{.Handle}}"}, want: "dr/shop/snap-123"},
		{mapping: tandemv1.HandleMapping{Mode: "Template", Template: "{{.Handle"}, err: "spec.volumes.handleMapping.template"},
		{mapping: tandemv1.HandleMapping{Mode: "Template", Template: "{{.Nope}}{{.Handle}}"}, err: "spec.volumes.handleMapping.template"},
		// A handle hidden in a branch never taken would map every
		// snapshot to one handle; a doubled one, and loops, are refused
		// the same way.
		{mapping: tandemv1.HandleMapping{Mode: "Template", Template: "{{if false}}{{.Handle}}{{end}}"}, err: "exactly once"},
		{mapping: tandemv1.HandleMapping{Mode: "Template", Template: "{{.Handle}}-{{.Handle}}"}, err: "exactly once"},
		{mapping: tandemv1.HandleMapping{Mode: "Template", Template: "{{range .}}{{range .}}{{end}}{{end}}{{.Handle}}"}, err: "exactly once"},
	}
	for _, c := range cases {
		got, err := StandbyHandle(c.mapping, "snap-123", vs)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%+v: error %v, want one naming %s", c.mapping, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%+v: %q, %v; want %q", c.mapping, got, err, c.want)
		}
	}
}

func TestToSnapReplicaUsesSourceTime(t *testing.T) {
	taken := t0.Add(-time.Minute)
	vs := &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "shop", Name: "data-snap-1", CreationTimestamp: metav1.NewTime(t0),
			Labels:      map[string]string{RoleLabel: string(RoleReplica)},
			Annotations: map[string]string{ClaimAnnotation: "data", TakenAnnotation: taken.Format(time.RFC3339Nano)},
		},
		Status: &snapv1.VolumeSnapshotStatus{ReadyToUse: ptr.To(true), CreationTime: ptr.To(metav1.NewTime(t0))},
	}
	s := ToSnap(vs, map[string]bool{"shop/data-snap-1": true})
	if !s.Taken.Equal(taken) || !s.Ready || !s.InUse || s.Key() != data {
		t.Errorf("ToSnap = %+v; want taken %s (the source's), ready, in use, claim shop/data", s, taken)
	}
}
