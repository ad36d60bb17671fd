package controller

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/traffic"
)

// reconcileTraffic keeps the pair's records and routes with this side's
// role and reports where each record points at the authoritative servers.
//
// The active side publishes records that no server answers yet (the flip
// endpoint, or RFC 2136 updates). It never overwrites a record that
// answers the other cluster's targets: only a switchover step, after the
// epoch moved, takes a name over. That is what keeps a side that wrongly
// believes itself active (a restarted old side that has not seen the new
// epoch yet) from flipping a name back. The standby withdraws its
// endpoints and disables its routes. While a switchover of the pair runs,
// its steps own the traffic and this phase only observes.
func (r *HAPairReconciler) reconcileTraffic(ctx context.Context, s *hapairScope) (ctrl.Result, error) {
	pair := s.pair
	t := pair.Spec.Traffic
	if t == nil || (len(t.DNS) == 0 && len(t.Routes) == 0) {
		pair.Status.Traffic = nil
		traffic.Forget(pair.Namespace, pair.Name)
		setCondition(pair, tandemv1.TrafficReadyCondition, metav1.ConditionTrue, tandemv1.NoTrafficReason, "spec.traffic configures no DNS record or route")
		return ctrl.Result{}, nil
	}
	cfg, err := traffic.Load(ctx, r.reader(), pair)
	if err != nil {
		setCondition(pair, tandemv1.TrafficReadyCondition, metav1.ConditionFalse, tandemv1.DNSUpdateFailedReason, err.Error())
		return ctrl.Result{}, nil
	}
	// Names beyond the grant are not published; the standby still
	// withdraws, which needs no grant.
	beyond, err := dnsBeyondGrant(ctx, r.reader(), cfg)
	if err != nil {
		return ctrl.Result{}, err
	}
	busy, err := r.busyWith(ctx, pair)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(busy) == 0 && pair.Status.LocalRole == tandemv1.RoleStandby {
		// A planned switchover or a drill runs on the active side and
		// writes this side's endpoints and routes (FlipTraffic,
		// PublishDrillName): the standby must not withdraw them under it.
		busy, err = r.peerBusyWith(ctx, s)
		if err != nil {
			// Withdrawing can wait for the next round.
			busy = []string{s.peer.Name + "'s Switchovers (unreadable: " + err.Error() + ")"}
		}
	}
	// One round of queries serves both the status and what the active side
	// publishes, bounded like a probe round: an unanswering DNS server must
	// not hold up the next round's fencing check.
	rctx, cancel := context.WithTimeout(ctx, probeTimeout(pair))
	seen := traffic.Observe(rctx, cfg)
	var acted error
	if len(busy) == 0 {
		switch pair.Status.LocalRole {
		case tandemv1.RoleActive:
			if beyond == "" {
				acted = r.publishTraffic(rctx, cfg, pair, seen)
			}
		case tandemv1.RoleStandby:
			acted = withdrawTraffic(rctx, r.Client, cfg, pair, true)
		}
	}
	cancel()
	traffic.RecordSeen(cfg, pair.Status.ActiveCluster, seen)
	now := metav1.NewTime(r.now())
	records := make([]tandemv1.DNSRecordStatus, len(seen))
	for i, x := range seen {
		records[i] = tandemv1.DNSRecordStatus{Name: x.Name, Cluster: x.Cluster, Answer: x.Answer, Message: x.Message, ObservedTime: &now}
	}
	pair.Status.Traffic = &tandemv1.TrafficStatus{Records: records}
	setTrafficReady(pair, cfg, seen, acted, busy)
	if beyond != "" {
		setCondition(pair, tandemv1.TrafficReadyCondition, metav1.ConditionFalse, tandemv1.NotGrantedReason, beyond+"; the names are not published")
	}
	return ctrl.Result{}, nil
}

// peerBusyWith lists the pair's unfinished Switchovers on the peer, when
// it answers; none when it does not (then nothing there writes here).
func (r *HAPairReconciler) peerBusyWith(ctx context.Context, s *hapairScope) ([]string, error) {
	if s.peerClient == nil || s.peerLacksAPI {
		return nil, nil
	}
	var list tandemv1.SwitchoverList
	if err := s.peerClient.List(ctx, &list, client.InNamespace(s.pair.Namespace)); err != nil {
		return nil, fmt.Errorf("listing Switchovers in %s on %s: %w", s.pair.Namespace, s.peer.Name, err)
	}
	running := unfinishedOf(list.Items, s.pair.Name)
	var out []string
	for _, so := range running {
		out = append(out, s.peer.Name+"/"+so.Name)
	}
	return out, nil
}

// publishTraffic is the active side's share: routes enabled, and records
// that no server answers yet (as seen this round) published: RFC 2136
// updates, or the flip endpoint until the servers answer it (then it goes,
// as after a flip).
func (r *HAPairReconciler) publishTraffic(ctx context.Context, cfg traffic.Config, pair *tandemv1.HAPair, seen []traffic.Seen) error {
	routes, err := routesWithinGrant(ctx, r.Client, pair)
	if err != nil {
		return err
	}
	if _, _, err := traffic.SetRoutes(ctx, r.Client, routes, true); err != nil {
		return routesError{err}
	}
	if !cfg.HasDNS() {
		return nil
	}
	recs, err := traffic.AllDesired(cfg, r.ClusterName)
	if err != nil {
		return err
	}
	var absent []traffic.Record
	here := true
	for i, rec := range recs {
		x := seen[i]
		if x.Absent {
			absent = append(absent, rec)
		}
		here = here && x.Cluster == r.ClusterName && len(x.Unreachable) == 0
	}
	if cfg.RFC2136() {
		return traffic.Point(ctx, cfg, absent)
	}
	if len(absent) > 0 {
		// Only the names nobody answers: the flip endpoint never carries
		// a name that answers the other side, outside a switchover.
		return traffic.Apply(ctx, r.Client, traffic.Endpoint(cfg, traffic.Flip, absent))
	}
	if here {
		return traffic.RemoveEndpoint(ctx, r.Client, cfg, traffic.Flip)
	}
	return nil
}

// withdrawTraffic is what a side that does not serve does: its routes
// disabled, and any flip endpoint it has left deleted, so it can never move
// a name. The records themselves are left alone: the side that took over
// points them elsewhere, and a delete racing that update would leave the
// name answering nothing. drills says whether a leftover drill endpoint
// goes too (no drill runs).
func withdrawTraffic(ctx context.Context, c client.Client, cfg traffic.Config, pair *tandemv1.HAPair, drills bool) error {
	routes, err := routesWithinGrant(ctx, c, pair)
	if err != nil {
		return err
	}
	if _, _, err := traffic.SetRoutes(ctx, c, routes, false); err != nil {
		return routesError{err}
	}
	if cfg.RFC2136() {
		return nil
	}
	kinds := []string{traffic.Flip}
	if drills {
		kinds = append(kinds, traffic.Drill)
	}
	for _, kind := range kinds {
		if err := traffic.RemoveEndpoint(ctx, c, cfg, kind); err != nil {
			return err
		}
	}
	return nil
}

// routesError is a route that could not be enabled or disabled, as
// opposed to a DNS record that could not be published.
type routesError struct{ err error }

func (e routesError) Error() string { return e.err.Error() }
func (e routesError) Unwrap() error { return e.err }

// stopServingTraffic withdraws this side's traffic when it demotes or
// fences itself; it reads the configuration itself, as the traffic phase
// does not run then.
func (r *HAPairReconciler) stopServingTraffic(ctx context.Context, pair *tandemv1.HAPair) error {
	return stopServingTraffic(ctx, r.Client, r.reader(), pair)
}

// stopServingTraffic withdraws the pair's traffic on the cluster c writes
// (and reader reads): its routes disabled, its flip endpoint deleted.
func stopServingTraffic(ctx context.Context, c client.Client, reader client.Reader, pair *tandemv1.HAPair) error {
	if pair.Spec.Traffic == nil {
		return nil
	}
	// Withdrawing needs no TSIG key (RFC 2136 records are left alone), so
	// a Secret that cannot be read does not stop it.
	cfg, _ := traffic.Load(ctx, reader, pair)
	return withdrawTraffic(ctx, c, cfg, pair, false)
}

// count is "1 thing" or "n things".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
