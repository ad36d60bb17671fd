package replicate

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	appliedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tandem_sync_objects_applied_total",
		Help: "Objects applied to the standby (created, updated or repaired).",
	}, []string{"namespace", "pair", "policy"})

	applyErrorsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tandem_sync_apply_errors_total",
		Help: "Failed applies of objects to the standby.",
	}, []string{"namespace", "pair", "policy"})

	prunedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tandem_sync_objects_pruned_total",
		Help: "Copies deleted from the standby because their source was deleted or deselected.",
	}, []string{"namespace", "pair", "policy"})

	objectsGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tandem_sync_objects",
		Help: "Objects of a policy by state (selected, in_sync, out_of_sync, failed) after the last full pass.",
	}, []string{"namespace", "pair", "policy", "state"})

	lagSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tandem_sync_lag_seconds",
		Help:    "Time from a change observed on the active cluster to its copy applied on the standby.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"namespace", "pair", "policy"})

	planSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tandem_sync_plan_build_seconds",
		Help:    "Time to build the dependency plan of a policy.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
	}, []string{"namespace", "pair", "policy"})

	fullPassSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tandem_sync_full_pass_seconds",
		Help:    "Duration of a full pass: select, plan, apply what changed or drifted, prune.",
		Buckets: prometheus.ExponentialBuckets(0.01, 3, 10),
	}, []string{"namespace", "pair", "policy"})
)

func init() {
	metrics.Registry.MustRegister(appliedTotal, applyErrorsTotal, prunedTotal, objectsGauge, lagSeconds, planSeconds, fullPassSeconds)
}
