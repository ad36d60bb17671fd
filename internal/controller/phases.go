package controller

import (
	"context"
	"errors"

	ctrl "sigs.k8s.io/controller-runtime"
)

// errStopPhases ends a reconcile's phase list early without an error: the
// pair may not act (fenced, ambiguous roles, role not confirmed). A phase
// returns it, with the result it wants, instead of setting a flag.
var errStopPhases = errors.New("stop the phases")

// phase is one step of a reconcile. Its result only asks to be called
// back: the phases that follow still run.
type phase[S any] func(context.Context, S) (ctrl.Result, error)

// runPhases runs the phases in order, as Cluster API's doReconcile does:
// their results are merged (the soonest requeue wins), and only an error or
// errStopPhases ends the list. A phase that asks to be called back in 5 s
// (a PVC that could not be retired) must not keep the traffic and drill
// phases from running.
func runPhases[S any](ctx context.Context, s S, phases ...phase[S]) (ctrl.Result, error) {
	var res ctrl.Result
	for _, p := range phases {
		r, err := p(ctx, s)
		res = soonest(res, r)
		switch {
		case errors.Is(err, errStopPhases):
			return res, nil
		case err != nil:
			return ctrl.Result{}, err
		}
	}
	return res, nil
}

// soonest merges two results: the lowest non-zero requeue.
func soonest(a, b ctrl.Result) ctrl.Result {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.RequeueAfter < a.RequeueAfter:
		return b
	}
	return a
}
