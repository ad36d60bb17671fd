package fence

import (
	"errors"
	"time"
)

// The role decisions of one side, as pure functions of what that side knows
// in a round: its own record, the peer's, the witness Lease, the peer's
// health and the clock. The controller gathers the inputs, calls these and
// carries out the answer; nothing here reads a cluster. A decision that
// depends on the outcome of a write (taking or renewing the Lease) is split
// in two: the first call says to write, the second takes the write's result.

// Role is what a side currently does. The values are those of the HAPair's
// status.localRole.
type Role string

const (
	RoleActive  Role = "Active"
	RoleStandby Role = "Standby"
	RoleFenced  Role = "Fenced"
)

// View is what one side knows of the pair's roles in a round.
type View struct {
	// Local is this cluster, Primary the pair's spec.primary.
	Local, Primary string
	// Record is this cluster's role record; Role what it currently does
	// (empty before the first decision).
	Record Record
	Role   Role
	// Peer is the peer's record when the peer answered with its copy of
	// the pair; PeerAnswered is also true when it answered that it has
	// none.
	Peer         *Record
	PeerAnswered bool
	// Lease is the witness Lease when the witness answered; nil without a
	// witness or when it does not answer.
	Lease *Record
}

// RoleAction is what a side does with its role record.
type RoleAction int

const (
	// Refuse: two sources show different active clusters at the same
	// epoch. Act on nothing until a person or a higher epoch settles it.
	Refuse RoleAction = iota
	// Claim: no record exists anywhere and this cluster is the primary:
	// write the first record naming it, after taking the witness Lease
	// when AcquireLease is set (a failure makes it Unconfirmed).
	Claim
	// Unconfirmed: this cluster is the primary, but neither the peer nor
	// the witness could confirm that no record exists elsewhere.
	Unconfirmed
	// Follow: the record names the other cluster; this side is the
	// standby. Demote is set when it served until now and must stop.
	Follow
	// Hold: the record names this cluster; Hold decides whether it keeps
	// serving.
	Hold
)

// RoleDecision is the outcome of Decide.
type RoleDecision struct {
	Action RoleAction
	// Record is the record this side writes: adopted from Source, the
	// first one, or its own unchanged.
	Record Record
	// Source names where an adopted record was read; empty when this
	// side's own record stands.
	Source string
	// Demote: this side served until now and the newer record names the
	// other cluster, so it stops its workloads and traffic.
	Demote bool
	// AcquireLease: take the witness Lease before claiming.
	AcquireLease bool
	// Conflict is the ambiguity behind Refuse.
	Conflict error
}

// Sources of records, as messages name them.
const (
	SourceLocal   = "this cluster's record"
	SourceWitness = "the witness Lease"
)

// Decide settles a side's role record. The newest epoch wins: a record at
// a higher epoch naming the other cluster is adopted at once. A higher
// epoch naming this cluster is not: promotion belongs to the Switchover
// that took that epoch, because promoting also restores the workloads.
func Decide(v View, peerName string) RoleDecision {
	sightings := []Sighting{{Source: SourceLocal, Record: v.Record}}
	if v.Peer != nil {
		sightings = append(sightings, Sighting{Source: peerName + "'s record", Record: *v.Peer})
	}
	if v.Lease != nil {
		sightings = append(sightings, Sighting{Source: SourceWitness, Record: *v.Lease})
	}
	newest, known, err := Newest(sightings...)
	switch {
	case err != nil:
		return RoleDecision{Action: Refuse, Record: v.Record, Conflict: err}
	case !known:
		return decideFirst(v)
	}
	d := RoleDecision{Record: v.Record}
	if !v.Record.Known() || (newest.Record.Epoch > v.Record.Epoch && newest.Record.Active != v.Local) {
		d.Record, d.Source = newest.Record, newest.Source
		d.Demote = v.serving() && newest.Record.Active != v.Local
	}
	if d.Record.Active == v.Local {
		d.Action = Hold
	} else {
		d.Action = Follow
	}
	return d
}

// serving says whether this side served until now: its record names it
// and it was not already the standby.
func (v View) serving() bool {
	return v.Record.Active == v.Local && v.Role != RoleStandby
}

// decideFirst is the first record of a new pair: spec.primary active at
// epoch 1. The primary claims Active only when the peer or the witness
// confirmed there is no record yet, so a pair re-created on one side never
// overrides what the other side has done since.
func decideFirst(v View) RoleDecision {
	first := Record{Active: v.Primary, Epoch: 1}
	switch {
	case first.Active != v.Local:
		return RoleDecision{Action: Follow, Record: first}
	case !v.PeerAnswered && v.Lease == nil:
		return RoleDecision{Action: Unconfirmed}
	}
	return RoleDecision{Action: Claim, Record: first, AcquireLease: v.Lease != nil}
}

// HoldInput is what the active side knows when it keeps its claim.
type HoldInput struct {
	// Local is this cluster.
	Local string
	Now   time.Time
	// Witness is set when the pair has one.
	Witness bool
	Role    Role
	// LastRenew is this process's last successful renewal of the Lease,
	// LastPeerContact its last successful probe round of the peer; zero
	// when none since the process started.
	LastRenew, LastPeerContact time.Time
	LeaseDuration              time.Duration
	// RenewErr is the outcome of this round's renewal (nil when it
	// succeeded or was not due). A *SupersededError means the Lease was
	// taken at a higher epoch.
	RenewErr error
}

// HoldAction is what the active side does with its claim.
type HoldAction int

const (
	// Serve: the claim stands.
	Serve HoldAction = iota
	// ServeWithoutWitness: the claim stands while the peer answers, but
	// the Lease could not be renewed.
	ServeWithoutWitness
	// Yield: the Lease was taken at a higher epoch; adopt it and demote.
	Yield
	// Fence: neither the Lease nor the peer within the lease duration;
	// stop serving.
	Fence
	// StayFenced: fenced, and the witness has not confirmed the Lease yet.
	StayFenced
	// Unfence: fenced, and the witness confirmed this side still holds the
	// Lease; serve again.
	Unfence
)

// HoldDecision is the outcome of DecideHold.
type HoldDecision struct {
	Action HoldAction
	// Superseded is the record that took the Lease, for Yield; Demote is
	// set when this side served until now and must stop.
	Superseded Record
	Demote     bool
}

// DecideHold keeps or gives up the active side's claim: it fences itself
// when it has held neither the Lease nor contact with its peer for the
// lease duration (the Patroni rule). A fenced side serves again only once
// the witness confirms it still holds the Lease: the peer alone could be in
// the middle of taking it.
func DecideHold(in HoldInput) HoldDecision {
	if !in.Witness {
		return HoldDecision{Action: Serve}
	}
	var superseded *SupersededError
	if errors.As(in.RenewErr, &superseded) {
		rec := Record{Active: superseded.Holder, Epoch: superseded.Epoch}
		return HoldDecision{Action: Yield, Superseded: rec, Demote: in.Role != RoleStandby && rec.Active != in.Local}
	}
	fenced := in.Role == RoleFenced
	switch {
	case MustFence(in.Now, in.LastRenew, in.LastPeerContact, in.LeaseDuration):
		return HoldDecision{Action: Fence}
	case fenced && in.RenewErr != nil:
		return HoldDecision{Action: StayFenced}
	case fenced:
		return HoldDecision{Action: Unfence}
	case in.RenewErr != nil:
		return HoldDecision{Action: ServeWithoutWitness}
	}
	return HoldDecision{Action: Serve}
}

// TakeoverInput is what the standby knows of the active side.
type TakeoverInput struct {
	Role Role
	// Lost: the active side failed failureThreshold probe rounds.
	Lost bool
	// Automatic: spec.failover.mode is Automatic.
	Automatic bool
	// Witness: the pair has one; WitnessAnswered: it answered this round.
	Witness, WitnessAnswered bool
}

// TakeoverAction is what the standby does about the active side.
type TakeoverAction int

const (
	// Watch: nothing to do; the active side is there (or this side is not
	// the standby).
	Watch TakeoverAction = iota
	// ReportLost: the active side is lost and the mode is Manual; a
	// person applies the Failover.
	ReportLost
	// WaitForWitness: only the witness's Lease proves the active side
	// cannot still be serving, and it does not answer.
	WaitForWitness
	// TakeLease: take the witness Lease at the next epoch; AfterTakeLease
	// says what follows.
	TakeLease
	// StartFailover: create the Failover Switchover.
	StartFailover
	// LeaseStillHeld: the active side still renews the Lease (a partition
	// between the sites, both reaching the witness).
	LeaseStillHeld
)

// DecideTakeover is the standby's watch on the active side.
func DecideTakeover(in TakeoverInput) TakeoverAction {
	switch {
	case in.Role != RoleStandby || !in.Lost:
		return Watch
	case !in.Automatic:
		return ReportLost
	case !in.Witness:
		return StartFailover
	case !in.WitnessAnswered:
		return WaitForWitness
	}
	return TakeLease
}

// AfterTakeLease is what follows an attempt to take the Lease: the
// Failover when it was taken, a wait otherwise.
func AfterTakeLease(err error) TakeoverAction {
	switch {
	case err == nil:
		return StartFailover
	case IsHeld(err):
		return LeaseStillHeld
	}
	return WaitForWitness
}
