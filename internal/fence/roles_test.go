package fence

import (
	"errors"
	"testing"
	"time"
)

// The rows of docs/failure-model.md's failure table, as the side that acts
// sees them, each through the decision functions the controller calls.

var (
	east1 = Record{Active: "dc-east", Epoch: 1}
	west2 = Record{Active: "dc-west", Epoch: 2}
	east2 = Record{Active: "dc-east", Epoch: 2}
)

func rec(r Record) *Record { return &r }

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    View
		want RoleDecision
	}{
		{
			name: "new pair, primary, the peer answered it has none: claim",
			v:    View{Local: "dc-east", Primary: "dc-east", PeerAnswered: true},
			want: RoleDecision{Action: Claim, Record: east1},
		},
		{
			name: "new pair, primary, the witness answered: claim after taking the Lease",
			v:    View{Local: "dc-east", Primary: "dc-east", Lease: &Record{}},
			want: RoleDecision{Action: Claim, Record: east1, AcquireLease: true},
		},
		{
			name: "new pair whose primary reaches neither its peer nor the witness: RoleUnconfirmed",
			v:    View{Local: "dc-east", Primary: "dc-east"},
			want: RoleDecision{Action: Unconfirmed},
		},
		{
			name: "new pair, not the primary: the standby of the first record, unconfirmed or not",
			v:    View{Local: "dc-west", Primary: "dc-east"},
			want: RoleDecision{Action: Follow, Record: east1},
		},
		{
			name: "pair re-created on the old active side: it learns the newer record from the peer and stays standby",
			v:    View{Local: "dc-east", Primary: "dc-east", Peer: rec(west2), PeerAnswered: true},
			want: RoleDecision{Action: Follow, Record: west2, Source: "dc-west's record"},
		},
		{
			name: "active side, records agree: hold",
			v:    View{Local: "dc-east", Primary: "dc-east", Record: east1, Role: RoleActive, Peer: rec(east1), PeerAnswered: true, Lease: rec(east1)},
			want: RoleDecision{Action: Hold, Record: east1},
		},
		{
			name: "old active side comes back and sees the peer's higher epoch: demote",
			v:    View{Local: "dc-east", Primary: "dc-east", Record: east1, Role: RoleActive, Peer: rec(west2), PeerAnswered: true},
			want: RoleDecision{Action: Follow, Record: west2, Source: "dc-west's record", Demote: true},
		},
		{
			name: "old active side comes back and only the witness shows the higher epoch: demote",
			v:    View{Local: "dc-east", Primary: "dc-east", Record: east1, Role: RoleActive, Lease: rec(west2)},
			want: RoleDecision{Action: Follow, Record: west2, Source: SourceWitness, Demote: true},
		},
		{
			name: "a fenced side sees the higher epoch: it demotes too",
			v:    View{Local: "dc-east", Primary: "dc-east", Record: east1, Role: RoleFenced, Lease: rec(west2)},
			want: RoleDecision{Action: Follow, Record: west2, Source: SourceWitness, Demote: true},
		},
		{
			name: "standby adopts a newer record without demoting",
			v:    View{Local: "dc-east", Primary: "dc-east", Record: east1, Role: RoleStandby, Peer: rec(west2), PeerAnswered: true},
			want: RoleDecision{Action: Follow, Record: west2, Source: "dc-west's record"},
		},
		{
			name: "a higher epoch naming this side is not adopted: only its Switchover promotes",
			v:    View{Local: "dc-east", Primary: "dc-west", Record: Record{Active: "dc-west", Epoch: 1}, Role: RoleStandby, Lease: rec(east2)},
			want: RoleDecision{Action: Follow, Record: Record{Active: "dc-west", Epoch: 1}},
		},
		{
			name: "both sides Active at the same epoch: refuse",
			v:    View{Local: "dc-east", Primary: "dc-east", Record: east2, Role: RoleActive, Peer: rec(west2), PeerAnswered: true},
			want: RoleDecision{Action: Refuse, Record: east2},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Decide(tc.v, "dc-west")
			if (got.Conflict != nil) != (tc.want.Action == Refuse) {
				t.Fatalf("conflict %v for action %v", got.Conflict, got.Action)
			}
			got.Conflict = nil
			if got != tc.want {
				t.Fatalf("Decide = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDecideHold(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	const lease = 4 * time.Second
	recent, old := now.Add(-time.Second), now.Add(-lease-time.Second)
	unanswered := errors.New("the witness does not answer")
	for _, tc := range []struct {
		name string
		in   HoldInput
		want HoldDecision
	}{
		{name: "no witness: serve", in: HoldInput{Role: RoleActive}, want: HoldDecision{Action: Serve}},
		{name: "Lease renewed: serve", in: HoldInput{Witness: true, Role: RoleActive, LastRenew: recent, LastPeerContact: recent}, want: HoldDecision{Action: Serve}},
		{
			name: "witness down, sites connected: serve while the peer answers (WitnessUnreachable)",
			in:   HoldInput{Witness: true, Role: RoleActive, LastRenew: old, LastPeerContact: recent, RenewErr: unanswered},
			want: HoldDecision{Action: ServeWithoutWitness},
		},
		{
			name: "network cut, both reach the witness: the active side keeps renewing and serves",
			in:   HoldInput{Witness: true, Role: RoleActive, LastRenew: recent, LastPeerContact: old},
			want: HoldDecision{Action: Serve},
		},
		{
			name: "active side also loses the witness: fence after the lease duration",
			in:   HoldInput{Witness: true, Role: RoleActive, LastRenew: old, LastPeerContact: old, RenewErr: unanswered},
			want: HoldDecision{Action: Fence},
		},
		{
			name: "restarted operator in the middle of an outage has renewed nothing: fence at once",
			in:   HoldInput{Witness: true, Role: RoleActive, RenewErr: unanswered},
			want: HoldDecision{Action: Fence},
		},
		{
			name: "fenced, the peer is back but not the witness: stay fenced",
			in:   HoldInput{Witness: true, Role: RoleFenced, LastRenew: old, LastPeerContact: recent, RenewErr: unanswered},
			want: HoldDecision{Action: StayFenced},
		},
		{
			name: "fenced, the witness confirms the Lease: unfence",
			in:   HoldInput{Witness: true, Role: RoleFenced, LastRenew: recent, LastPeerContact: old},
			want: HoldDecision{Action: Unfence},
		},
		{
			name: "the Lease was taken at a higher epoch: yield and demote",
			in:   HoldInput{Local: "dc-east", Witness: true, Role: RoleActive, LastRenew: recent, RenewErr: &SupersededError{Holder: "dc-west", Epoch: 2}},
			want: HoldDecision{Action: Yield, Superseded: west2, Demote: true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Now, tc.in.LeaseDuration = now, lease
			if got := DecideHold(tc.in); got != tc.want {
				t.Fatalf("DecideHold = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDecideTakeover(t *testing.T) {
	held := &HeldError{Holder: "dc-east", Epoch: 1, Remaining: time.Second}
	for _, tc := range []struct {
		name     string
		in       TakeoverInput
		leaseErr error
		want     TakeoverAction
	}{
		{name: "the active side answers: watch", in: TakeoverInput{Role: RoleStandby, Automatic: true, Witness: true, WitnessAnswered: true}, want: Watch},
		{name: "the active side decides nothing of this kind", in: TakeoverInput{Role: RoleActive, Lost: true, Automatic: true}, want: Watch},
		{name: "active data center dies, Manual: ActiveLost, nothing moves", in: TakeoverInput{Role: RoleStandby, Lost: true, Witness: true, WitnessAnswered: true}, want: ReportLost},
		{name: "network cut, no witness, Manual: ActiveLost, nothing moves", in: TakeoverInput{Role: RoleStandby, Lost: true}, want: ReportLost},
		{name: "active data center dies, Automatic, witness: the Lease is taken, then the Failover", in: TakeoverInput{Role: RoleStandby, Lost: true, Automatic: true, Witness: true, WitnessAnswered: true}, want: StartFailover},
		{name: "network cut, both reach the witness: the Lease is still renewed (LeaseHeld)", in: TakeoverInput{Role: RoleStandby, Lost: true, Automatic: true, Witness: true, WitnessAnswered: true}, leaseErr: held, want: LeaseStillHeld},
		{name: "the witness answers but the write fails: wait for it", in: TakeoverInput{Role: RoleStandby, Lost: true, Automatic: true, Witness: true, WitnessAnswered: true}, leaseErr: errors.New("timeout"), want: WaitForWitness},
		{name: "active side lost and the witness down: never promote without it", in: TakeoverInput{Role: RoleStandby, Lost: true, Automatic: true, Witness: true}, want: WaitForWitness},
		{name: "Automatic without a witness (allowWithoutWitness): the Failover at once", in: TakeoverInput{Role: RoleStandby, Lost: true, Automatic: true}, want: StartFailover},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := DecideTakeover(tc.in)
			if got == TakeLease {
				got = AfterTakeLease(tc.leaseErr)
			}
			if got != tc.want {
				t.Fatalf("takeover = %v, want %v", got, tc.want)
			}
		})
	}
}
