package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
)

// A standby whose volume phase asks to be called back (a PVC it could not
// retire) still runs its traffic and drill phases; only an error or the
// stop sentinel ends the list, and the soonest requeue wins.
func TestPhasesAfterARequeueStillRun(t *testing.T) {
	var ran []string
	fake := func(name string, res ctrl.Result, err error) phase[*struct{}] {
		return func(context.Context, *struct{}) (ctrl.Result, error) {
			ran = append(ran, name)
			return res, err
		}
	}
	ok := ctrl.Result{}
	for _, tc := range []struct {
		name    string
		phases  []phase[*struct{}]
		wantRan []string
		want    ctrl.Result
		wantErr bool
	}{
		{
			name: "the volume phase asks to be called back in 5s",
			phases: []phase[*struct{}]{
				fake("roles", ok, nil),
				fake("volumes", ctrl.Result{RequeueAfter: 5 * time.Second}, nil),
				fake("traffic", ok, nil),
				fake("drills", ctrl.Result{RequeueAfter: time.Minute}, nil),
			},
			wantRan: []string{"roles", "volumes", "traffic", "drills"},
			want:    ctrl.Result{RequeueAfter: 5 * time.Second},
		},
		{
			name: "fenced: the roles phase stops the list with its requeue",
			phases: []phase[*struct{}]{
				fake("volumes", ctrl.Result{RequeueAfter: 5 * time.Second}, nil),
				fake("roles", ctrl.Result{RequeueAfter: time.Second}, errStopPhases),
				fake("traffic", ok, nil),
			},
			wantRan: []string{"volumes", "roles"},
			want:    ctrl.Result{RequeueAfter: time.Second},
		},
		{
			name: "an error ends the list",
			phases: []phase[*struct{}]{
				fake("peer", ok, errors.New("boom")),
				fake("roles", ok, nil),
			},
			wantRan: []string{"peer"},
			wantErr: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ran = nil
			got, err := runPhases(context.Background(), &struct{}{}, tc.phases...)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("runPhases = %+v, %v; want %+v, error %v", got, err, tc.want, tc.wantErr)
			}
			if len(ran) != len(tc.wantRan) {
				t.Fatalf("ran %v, want %v", ran, tc.wantRan)
			}
			for i := range ran {
				if ran[i] != tc.wantRan[i] {
					t.Fatalf("ran %v, want %v", ran, tc.wantRan)
				}
			}
		})
	}
}
