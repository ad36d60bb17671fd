// Package volume protects the data of PVCs selected by a SyncPolicy with
// spec.volumes: CSI VolumeSnapshots taken on the active side every interval,
// made usable on the standby as pre-provisioned snapshots, pruned on both
// sides, restored into PVCs on promotion, and kept when a demoted side's
// volumes are retired.
//
// plan.go is the pure part: given the protected claims and the snapshots on
// both sides at one instant, what to take, ship and delete, and each
// claim's RPO. protect.go carries a plan out against the two clusters.
package volume

import (
	"sort"
	"time"
)

// Role says what a Tandem VolumeSnapshot is.
type Role string

const (
	// RoleSource is a snapshot of a PVC on the side that took it.
	RoleSource Role = "source"
	// RoleReplica is the pre-provisioned copy of a source snapshot on the
	// other side.
	RoleReplica Role = "replica"
	// RoleKept is a snapshot of a retired PVC (a demoted side's data, or a
	// leftover a restore replaced). Tandem never deletes it.
	RoleKept Role = "kept"
)

// ClaimKey names a PVC; snapshots of it carry the same key on both sides.
type ClaimKey struct {
	Namespace, Name string
}

func (k ClaimKey) String() string { return k.Namespace + "/" + k.Name }

// Snap is what planning needs to know of one Tandem VolumeSnapshot.
type Snap struct {
	Namespace, Name string
	Claim           string
	Role            Role
	// Taken is when the data was captured: the source snapshot's creation
	// time (on a replica, the source's, carried in an annotation).
	Taken time.Time
	Ready bool
	// Err is the snapshot's error message, if it has one.
	Err string
	// Final names the Switchover whose final snapshot this is.
	Final string
	// InUse: a PVC still being restored from it names it as its source.
	InUse bool
}

// Key is the claim the snapshot is of.
func (s Snap) Key() ClaimKey { return ClaimKey{Namespace: s.Namespace, Name: s.Claim} }

// pending: neither ready nor failed yet.
func (s Snap) pending() bool { return !s.Ready && s.Err == "" }

// Input is one planning instant.
type Input struct {
	Now       time.Time
	Interval  time.Duration
	Retention int
	// Claims are the protected PVCs on the active side.
	Claims []ClaimKey
	// Unbound are claims that cannot be snapshotted yet.
	Unbound map[ClaimKey]bool
	// Active and Standby are Tandem's snapshots of this pair on each side.
	Active, Standby []Snap
}

// ClaimState is one claim's protection at the planning instant.
type ClaimState struct {
	Key ClaimKey
	// NewestSnapshot is when the newest ready snapshot on the active side
	// was taken; zero when there is none.
	NewestSnapshot time.Time
	// NewestReplica is when the data of the newest snapshot usable on the
	// standby was taken; zero when there is none.
	NewestReplica time.Time
	// RPO is the age of NewestReplica: what a failover now would lose.
	// Negative when there is no usable replica.
	RPO time.Duration
	// Problem says what is wrong, empty when nothing is.
	Problem string
}

// Plan is what to do now.
type Plan struct {
	// Take lists the claims due for a snapshot.
	Take []ClaimKey
	// Ship lists ready source snapshots to make usable on the standby.
	Ship []Snap
	// DeleteActive and DeleteStandby are snapshots past retention, failed
	// attempts and snapshots of claims no longer protected.
	DeleteActive, DeleteStandby []Snap
	Claims                      []ClaimState
	// Wake is when planning should run again.
	Wake time.Duration
}

// retryAfter bounds the wait before a failed snapshot is taken again.
const retryAfter = 10 * time.Second

// pollWhilePending is how often snapshots in flight are looked at.
const pollWhilePending = time.Second

// Decide plans one instant. It is pure: the same input gives the same plan.
func Decide(in Input) Plan {
	retention := max(in.Retention, 1)
	active := group(in.Active)
	standby := group(in.Standby)
	p := Plan{Wake: in.Interval}
	wake := func(d time.Duration) { p.Wake = max(0, min(p.Wake, d)) }

	claims := map[ClaimKey]bool{}
	for _, k := range in.Claims {
		claims[k] = true
		src := active[k][RoleSource]
		rep := standby[k][RoleReplica]
		st := ClaimState{Key: k, RPO: -1}

		newestReady := firstReady(src)
		if newestReady != nil {
			st.NewestSnapshot = newestReady.Taken
		}
		if r := firstReady(rep); r != nil {
			st.NewestReplica = r.Taken
			st.RPO = max(0, in.Now.Sub(r.Taken))
		}

		inFlight := len(src) > 0 && src[0].pending()
		switch {
		case in.Unbound[k]:
			st.Problem = "the PVC is not bound yet"
		case inFlight:
			wake(pollWhilePending)
		case len(src) == 0:
			p.Take = append(p.Take, k)
			wake(pollWhilePending)
		case src[0].Err != "":
			st.Problem = "snapshot " + src[0].Name + " failed: " + src[0].Err
			if due := src[0].Taken.Add(min(retryAfter, in.Interval)); !in.Now.Before(due) {
				// Retry with a new snapshot; the failed one goes, so
				// failures never pile up.
				p.Take = append(p.Take, k)
				if !src[0].InUse {
					p.DeleteActive = append(p.DeleteActive, src[0])
				}
				wake(pollWhilePending)
			} else {
				wake(due.Sub(in.Now))
			}
		default:
			due := src[0].Taken.Add(in.Interval)
			if !in.Now.Before(due) {
				p.Take = append(p.Take, k)
				wake(pollWhilePending)
			} else {
				wake(due.Sub(in.Now))
			}
		}

		if newestReady != nil {
			if r := byName(rep, newestReady.Name); r == nil {
				p.Ship = append(p.Ship, *newestReady)
				wake(pollWhilePending)
			} else if r.pending() {
				wake(pollWhilePending)
			} else if r.Err != "" && st.Problem == "" {
				st.Problem = "the standby's copy " + r.Name + " is not usable: " + r.Err
			}
		}
		if st.Problem == "" && st.RPO < 0 {
			st.Problem = "no snapshot is usable on the standby yet"
		}
		p.Claims = append(p.Claims, st)
	}

	for _, k := range sortedKeys(active, standby) {
		if !claims[k] && len(active[k][RoleSource]) > 0 {
			// Protected from here before and no longer: the PVC was
			// deleted or left the policy. Its snapshots go on both sides.
			p.DeleteActive = append(p.DeleteActive, unused(active[k][RoleSource])...)
			p.DeleteStandby = append(p.DeleteStandby, unused(standby[k][RoleReplica])...)
			continue
		}
		for _, role := range []Role{RoleSource, RoleReplica} {
			p.DeleteActive = append(p.DeleteActive, pastRetention(active[k][role], retention)...)
			p.DeleteStandby = append(p.DeleteStandby, pastRetention(standby[k][role], retention)...)
		}
	}
	return p
}

// group sorts snapshots by claim and role, newest first.
func group(snaps []Snap) map[ClaimKey]map[Role][]Snap {
	out := map[ClaimKey]map[Role][]Snap{}
	for _, s := range snaps {
		k := s.Key()
		if out[k] == nil {
			out[k] = map[Role][]Snap{}
		}
		out[k][s.Role] = append(out[k][s.Role], s)
	}
	for _, roles := range out {
		for _, list := range roles {
			sort.SliceStable(list, func(i, j int) bool {
				if !list[i].Taken.Equal(list[j].Taken) {
					return list[i].Taken.After(list[j].Taken)
				}
				return list[i].Name > list[j].Name
			})
		}
	}
	return out
}

func firstReady(list []Snap) *Snap {
	for i := range list {
		if list[i].Ready {
			return &list[i]
		}
	}
	return nil
}

func byName(list []Snap, name string) *Snap {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

// pastRetention keeps the newest n ready snapshots and those not ready that
// are newer than all of them (in flight, or failed and visible until the
// retry); older ones that never became ready are superseded. A snapshot a
// restore uses is never deleted.
func pastRetention(list []Snap, n int) []Snap {
	var out []Snap
	ready := 0
	for _, s := range list {
		if s.Ready {
			ready++
		}
		if (ready > n || (!s.Ready && ready > 0)) && !s.InUse {
			out = append(out, s)
		}
	}
	return out
}

func unused(list []Snap) []Snap {
	var out []Snap
	for _, s := range list {
		if !s.InUse {
			out = append(out, s)
		}
	}
	return out
}

func sortedKeys(maps ...map[ClaimKey]map[Role][]Snap) []ClaimKey {
	seen := map[ClaimKey]bool{}
	var keys []ClaimKey
	for _, m := range maps {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	return keys
}
