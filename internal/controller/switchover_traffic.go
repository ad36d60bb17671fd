package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/switchover"
	"github.com/tandem-dev/tandem/internal/traffic"
)

// trafficPoll is how often a flip re-checks the authoritative servers: the
// time traffic moved is measured to about this precision.
const trafficPoll = 250 * time.Millisecond

// dnsTraffic is the default switchover.Traffic: it moves the pair's DNS
// records (external-dns DNSEndpoints or RFC 2136 updates) and routes, and
// verifies the records at every authoritative server.
type dnsTraffic struct {
	// reader reads the TSIG Secret on the cluster the switchover runs on.
	reader client.Reader
}

// +kubebuilder:rbac:groups=externaldns.k8s.io,resources=dnsendpoints,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;patch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;patch

// Flip points every record at m.To and waits until every server answers
// it. Each call is one round, safe to repeat: records already pointing at
// m.To are not updated again.
//
// With external-dns the target's flip endpoint carries the records to its
// flip instance of external-dns, which shares the names' owner id with the
// other side's: a dead old side does not block the flip. Once every server
// answers, the flip endpoint goes, on both sides, so no endpoint is left
// that could move the names again (docs/traffic.md).
func (t dnsTraffic) Flip(ctx context.Context, m switchover.Move) (switchover.Result, error) {
	cfg, err := traffic.Load(ctx, t.reader, m.Pair)
	if err != nil {
		return switchover.Failed(err.Error() + "; no record was changed"), nil
	}
	if beyond, err := dnsBeyondGrant(ctx, t.reader, cfg); err != nil {
		return t.wait(m, err.Error()), nil
	} else if beyond != "" {
		return switchover.Failed(beyond + "; no record was changed"), nil
	}
	if !cfg.HasDNS() {
		routesMsg, err := flipRoutes(ctx, m)
		if err != nil {
			return switchover.Result{}, err
		}
		if routesMsg == "" {
			return switchover.Skipped("spec.traffic configures no DNS record or route"), nil
		}
		return switchover.Succeeded(strings.TrimPrefix(routesMsg, "; ")), nil
	}
	recs, err := traffic.AllDesired(cfg, m.To)
	if err != nil {
		return switchover.Failed(err.Error() + "; no record was changed"), nil
	}
	res, done := t.publish(ctx, m, cfg, recs, traffic.Flip)
	if !done {
		return res, nil
	}
	moved := time.Now()
	// Routes follow the records, so a flip the servers never confirm
	// leaves them where they were.
	routesMsg, err := flipRoutes(ctx, m)
	if err != nil {
		return switchover.Result{}, err
	}
	if !cfg.RFC2136() {
		// The flip endpoint has done its work and must not outlive the
		// flip: left behind, it could move the names again some day. One
		// the old side may have left from an earlier flip goes too.
		for _, side := range []string{m.To, m.From} {
			if c := m.On(side); c != nil {
				if err := traffic.RemoveEndpoint(ctx, c, cfg, traffic.Flip); err != nil {
					return switchover.Result{}, err
				}
			}
		}
	}
	// The running step: FlipTraffic, or the RollBack pointing records back.
	started := currentStepStart(m.Switchover, moved)
	traffic.ObserveFlip(cfg, moved.Sub(started))
	ttl := traffic.MaxTTL(cfg)
	rep := m.Switchover.Status.Report
	if rep == nil {
		rep = &tandemv1.SwitchoverReport{}
		m.Switchover.Status.Report = rep
	}
	rep.TrafficMovedTime = &metav1.Time{Time: moved}
	rep.ClientsFollowBy = &metav1.Time{Time: moved.Add(ttl)}
	msg := fmt.Sprintf("%s %s's targets %s after the step started; clients follow within the TTL of %s%s",
		answerAt(cfg), m.To, moved.Sub(started).Round(time.Millisecond), ttl, routesMsg)
	return switchover.Succeeded(msg), nil
}

// publish writes recs pointing at m.To (as the endpoint of kind on m.To,
// or as RFC 2136 updates) and reports whether every server answers them. Until
// then it returns the Result to wait with, or to fail with once
// spec.traffic.verifyTimeout has passed since the step started.
func (t dnsTraffic) publish(ctx context.Context, m switchover.Move, cfg traffic.Config, recs []traffic.Record, kind string) (switchover.Result, bool) {
	if cfg.RFC2136() {
		if err := traffic.Point(ctx, cfg, recs); err != nil {
			var refused *traffic.RefusedError
			if errors.As(err, &refused) {
				return switchover.Failed(err.Error() + "; the records were not changed"), false
			}
			return t.wait(m, err.Error()), false
		}
	} else {
		to := m.On(m.To)
		if to == nil {
			return t.wait(m, fmt.Sprintf("cannot reach %s to write its DNSEndpoint", m.To)), false
		}
		err := traffic.Apply(ctx, to, traffic.Endpoint(cfg, kind, recs))
		switch {
		case errors.Is(err, traffic.ErrNoDNSEndpointCRD):
			return switchover.Failed(m.To + ": " + err.Error()), false
		case err != nil:
			return t.wait(m, err.Error()), false
		}
	}
	if pending := traffic.Pending(ctx, cfg, recs); len(pending) > 0 {
		return t.wait(m, strings.Join(pending, "; ")), false
	}
	return switchover.Result{}, true
}

// wait is the Result of a flip still waiting: Waiting, or Failed once the
// verify timeout has passed since the step started.
func (t dnsTraffic) wait(m switchover.Move, why string) switchover.Result {
	limit := 2 * time.Minute
	if tr := m.Pair.Spec.Traffic; tr != nil && tr.VerifyTimeout != nil && tr.VerifyTimeout.Duration > 0 {
		limit = tr.VerifyTimeout.Duration
	}
	now := time.Now()
	if started := currentStepStart(m.Switchover, now); now.Sub(started) > limit {
		return switchover.Failed(fmt.Sprintf("after %s (spec.traffic.verifyTimeout): %s", limit, why))
	}
	return switchover.Waiting(why, trafficPoll)
}

// PublishDrill publishes the drill names pointing at the standby.
func (t dnsTraffic) PublishDrill(ctx context.Context, m switchover.Move) (switchover.Result, error) {
	cfg, err := traffic.Load(ctx, t.reader, m.Pair)
	if err != nil {
		return switchover.Failed(err.Error()), nil
	}
	if beyond, err := dnsBeyondGrant(ctx, t.reader, cfg); err != nil {
		return t.wait(m, err.Error()), nil
	} else if beyond != "" {
		return switchover.Failed(beyond + "; the drill names were not published"), nil
	}
	recs, err := traffic.DrillRecords(cfg, m.To)
	if err != nil {
		return switchover.Failed(err.Error()), nil
	}
	if len(recs) == 0 {
		return switchover.Skipped("no record in spec.traffic.dns has a drillName"), nil
	}
	res, done := t.publish(ctx, m, cfg, recs, traffic.Drill)
	if !done {
		return res, nil
	}
	return switchover.Succeeded(fmt.Sprintf("%s %s with %s's targets; the production names were not touched", answerAt(cfg), names(recs), m.To)), nil
}

// WithdrawDrill removes the drill names and waits until no server answers
// them.
func (t dnsTraffic) WithdrawDrill(ctx context.Context, m switchover.Move) (switchover.Result, error) {
	cfg, err := traffic.Load(ctx, t.reader, m.Pair)
	if err != nil {
		return switchover.Failed(err.Error()), nil
	}
	recs, err := traffic.DrillRecords(cfg, m.To)
	if err != nil || len(recs) == 0 {
		return switchover.Skipped("no drill name to remove"), nil
	}
	if cfg.RFC2136() {
		if err := traffic.Remove(ctx, cfg, recs); err != nil {
			return t.wait(m, err.Error()), nil
		}
	} else {
		to := m.On(m.To)
		if to == nil {
			return t.wait(m, fmt.Sprintf("cannot reach %s to delete its drill DNSEndpoint", m.To)), nil
		}
		if err := traffic.RemoveEndpoint(ctx, to, cfg, traffic.Drill); err != nil {
			return switchover.Result{}, err
		}
	}
	if left := traffic.Gone(ctx, cfg, recs); len(left) > 0 {
		return t.wait(m, strings.Join(left, "; ")), nil
	}
	return switchover.Succeeded(fmt.Sprintf("%s %s no more", answerAt(cfg), names(recs))), nil
}

// answerAt is the subject and verb of a verified answer: which servers
// answer.
func answerAt(cfg traffic.Config) string {
	if len(cfg.Servers) == 1 {
		return "the authoritative server " + cfg.Servers[0] + " answers"
	}
	return fmt.Sprintf("all %d authoritative servers (%s) answer", len(cfg.Servers), strings.Join(cfg.Servers, ", "))
}

func names(recs []traffic.Record) string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Name
	}
	return strings.Join(out, ", ")
}

// currentStepStart is when the running step started, or def.
func currentStepStart(so *tandemv1.Switchover, def time.Time) time.Time {
	for _, st := range so.Status.Steps {
		if st.Phase == tandemv1.StepRunning && st.StartTime != nil {
			return st.StartTime.Time
		}
	}
	return def
}

// flipTraffic runs the FlipTraffic step and, once it succeeded, extends
// the RTO to the time traffic moved at the authoritative servers when that
// came after the workloads were Available (the end of step available): the
// service has recovered only when both hold. The step's end and the longer
// RTO go into the same status patch, so a repeat never counts twice.
func (r *SwitchoverReconciler) flipTraffic(ctx context.Context, s *switchoverScope, available string) (switchover.Result, error) {
	res, err := r.traffic().Flip(ctx, r.move(s))
	if err != nil || res.Phase != tandemv1.StepSucceeded {
		return res, err
	}
	rep, st := s.obj.Status.Report, findStep(s.obj, available)
	if rep == nil || rep.TrafficMovedTime == nil || s.obj.Status.RTO == nil || st == nil || st.EndTime == nil {
		return res, nil
	}
	if d := rep.TrafficMovedTime.Sub(st.EndTime.Time); d > 0 {
		s.obj.Status.RTO = &metav1.Duration{Duration: (s.obj.Status.RTO.Duration + d).Round(time.Millisecond)}
	}
	return res, nil
}

// flipTrafficAfter is the FlipTraffic step of a switchover type whose
// workloads became Available in step available.
func (r *SwitchoverReconciler) flipTrafficAfter(available string) func(context.Context, *switchoverScope) (switchover.Result, error) {
	return func(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
		return r.flipTraffic(ctx, s, available)
	}
}

// flipRoutes enables spec.traffic.routes on m.To and disables them on
// m.From when it answers (a side that does not disables its own when it
// rejoins as the standby).
func flipRoutes(ctx context.Context, m switchover.Move) (string, error) {
	routes, err := routesWithinGrant(ctx, m.Local, m.Pair)
	if err != nil {
		return "", err
	}
	if len(routes) == 0 {
		return "", nil
	}
	to := m.On(m.To)
	if to == nil {
		return "", fmt.Errorf("cannot reach %s to enable its routes", m.To)
	}
	_, missing, err := traffic.SetRoutes(ctx, to, routes, true)
	if err != nil {
		return "", err
	}
	msg := fmt.Sprintf("; %s enabled on %s", count(len(routes)-len(missing), "route", "routes"), m.To)
	if len(missing) > 0 {
		msg += " (not there: " + firstN(missing, 3) + ")"
	}
	if from := m.On(m.From); from != nil {
		if _, _, err := traffic.SetRoutes(ctx, from, routes, false); err != nil {
			return "", err
		}
		msg += ", disabled on " + m.From
	} else {
		msg += fmt.Sprintf(", disabled on %s by its operator when it rejoins", m.From)
	}
	return msg, nil
}
