package controller

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

var (
	stepSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tandem_switchover_step_duration_seconds",
		Help:    "Duration of one step of a switchover, from recorded Running to recorded end.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
	}, []string{"type", "step"})
	rtoSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tandem_switchover_rto_seconds",
		Help:    "Measured RTO of finished switchovers: to the workloads Available on the new side (from the first failed probe for a failover; time to ready for an isolated drill).",
		Buckets: []float64{.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600},
	}, []string{"type"})
	stepRunningSince = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tandem_switchover_step_start_timestamp_seconds",
		Help: "Unix time the running step of an unfinished switchover started; the series goes away when the step ends.",
	}, []string{"namespace", "switchover", "type", "step"})
	drillSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tandem_drill_success",
		Help: "1 when the pair's last drill passed, 0 when it failed.",
	}, []string{"namespace", "pair"})
	drillLastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tandem_drill_last_success_timestamp_seconds",
		Help: "Unix time of the pair's last drill that passed.",
	}, []string{"namespace", "pair"})
)

func init() {
	metrics.Registry.MustRegister(stepSeconds, rtoSeconds, stepRunningSince, drillSuccess, drillLastSuccess)
}

// recordDrillMetrics sets the drill gauges from the pair's status, every
// round: a restarted operator (or a new leader) exports what the last one
// did, and the overdue alert keeps firing. Only the active side exports
// them: drills run there and are recorded in its status, and the
// standby's record is from when it was last active.
func recordDrillMetrics(pair *tandemv1.HAPair) {
	ns, name := pair.Namespace, pair.Name
	last, passed := pair.Status.LastDrill, pair.Status.LastPassedDrill
	if pair.Status.LocalRole != tandemv1.RoleActive {
		last, passed = nil, nil
	}
	if last == nil {
		drillSuccess.DeleteLabelValues(ns, name)
	} else {
		v := 0.0
		if last.Phase == tandemv1.PhaseSucceeded {
			v = 1
		}
		drillSuccess.WithLabelValues(ns, name).Set(v)
	}
	if passed == nil || passed.CompletionTime == nil {
		drillLastSuccess.DeleteLabelValues(ns, name)
	} else {
		drillLastSuccess.WithLabelValues(ns, name).Set(float64(passed.CompletionTime.Unix()))
	}
}

func logError(ctx context.Context, err error, msg string, kv ...any) {
	log.FromContext(ctx).Error(err, msg, kv...)
}

// recordRunningStep exports which step of a switchover runs, and since
// when, for the "switchover stuck" alert.
func recordRunningStep(obj *tandemv1.Switchover) {
	stepRunningSince.DeletePartialMatch(prometheus.Labels{"namespace": obj.Namespace, "switchover": obj.Name})
	for _, s := range obj.Status.Steps {
		if s.Phase == tandemv1.StepRunning && s.StartTime != nil {
			stepRunningSince.WithLabelValues(obj.Namespace, obj.Name, string(obj.Spec.Type), s.Name).Set(float64(s.StartTime.UnixMilli()) / 1000)
		}
	}
}
