package controller

import "testing"

func TestDecideMirror(t *testing.T) {
	for _, tc := range []struct {
		name             string
		local, localMark string
		peerExists       bool
		peer, peerMark   string
		localActive      bool
		want             mirrorAction
		conflict         bool
	}{
		{name: "peer has none", local: "a", want: mirrorCreate},
		{name: "in sync", local: "a", localMark: "a", peerExists: true, peer: "a", peerMark: "a", want: mirrorNothing},
		{name: "equal but unmarked", local: "a", peerExists: true, peer: "a", want: mirrorMark},
		{name: "changed here", local: "b", localMark: "a", peerExists: true, peer: "a", peerMark: "a", want: mirrorPush},
		{name: "changed there", local: "a", localMark: "a", peerExists: true, peer: "b", peerMark: "a", want: mirrorPull},
		{name: "changed on standby side, seen from the standby", local: "b", localMark: "a", peerExists: true, peer: "a", peerMark: "a", localActive: false, want: mirrorPush},
		{name: "both changed, this side active", local: "b", localMark: "a", peerExists: true, peer: "c", peerMark: "a", localActive: true, want: mirrorPush, conflict: true},
		{name: "both changed, peer active", local: "b", localMark: "a", peerExists: true, peer: "c", peerMark: "a", want: mirrorPull, conflict: true},
		{name: "both applied separately, never mirrored", local: "b", peerExists: true, peer: "c", localActive: true, want: mirrorPush, conflict: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, conflict := decideMirror(tc.local, tc.localMark, tc.peerExists, tc.peer, tc.peerMark, tc.localActive)
			if got != tc.want || conflict != tc.conflict {
				t.Fatalf("decideMirror = %v, %v; want %v, %v", got, conflict, tc.want, tc.conflict)
			}
		})
	}
}

// Both operators decide alone; for any concurrent edit they must pick the
// same spec, or they would swap specs forever.
func TestBothSidesPickTheSameSpecUnderConcurrentEdits(t *testing.T) {
	for _, eastActive := range []bool{true, false} {
		fromEast, _ := decideMirror("east-edit", "base", true, "west-edit", "base", eastActive)
		fromWest, _ := decideMirror("west-edit", "base", true, "east-edit", "base", !eastActive)
		winnerEast := map[mirrorAction]string{mirrorPush: "east-edit", mirrorPull: "west-edit"}[fromEast]
		winnerWest := map[mirrorAction]string{mirrorPush: "west-edit", mirrorPull: "east-edit"}[fromWest]
		if winnerEast != winnerWest || winnerEast == "" {
			t.Fatalf("east active=%v: east keeps %q, west keeps %q", eastActive, winnerEast, winnerWest)
		}
	}
}
