package volume

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	rpoSeconds = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tandem_volume_rpo_seconds",
		Help: "Age of the newest snapshot of a PVC usable on the standby: the data a failover now would lose. Absent while no snapshot is usable there (tandem_volume_protected is 0).",
	}, []string{"namespace", "pair", "claim_namespace", "claim"})
	// protected says what the RPO's absence means, so no sentinel value
	// bends the RPO's graphs and sums.
	protected = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tandem_volume_protected",
		Help: "1 while a snapshot of the PVC is usable on the standby, 0 while none is.",
	}, []string{"namespace", "pair", "claim_namespace", "claim"})
	snapshotDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tandem_volume_snapshot_duration_seconds",
		Help:    "Time from a snapshot's creation to it being ready (stage snapshot, on the active side) or usable on the standby (stage replica).",
		Buckets: prometheus.ExponentialBuckets(0.25, 2, 12),
	}, []string{"namespace", "pair", "stage"})
	snapshotFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tandem_volume_snapshot_failures_total",
		Help: "Failed volume protection actions, by stage (take, ship, restore, retire).",
	}, []string{"namespace", "pair", "stage"})
	rpoObjective = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tandem_volume_rpo_objective_seconds",
		Help: "The pair's spec.objectives.rpo, for alerting on tandem_volume_rpo_seconds; 0 when the pair sets none.",
	}, []string{"namespace", "pair"})
	restoreSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tandem_volume_restore_duration_seconds",
		Help:    "Time a promotion spent restoring the pair's PVCs from snapshots, until all were bound.",
		Buckets: prometheus.ExponentialBuckets(0.25, 2, 12),
	}, []string{"namespace", "pair"})
)

func init() {
	metrics.Registry.MustRegister(rpoSeconds, protected, rpoObjective, snapshotDuration, snapshotFailures, restoreSeconds)
}

// recordRPO exports each claim's RPO and drops claims no longer reported.
func recordRPO(pair PairRef, claims []ClaimState, objective time.Duration) {
	rpoObjective.WithLabelValues(pair.Namespace, pair.Name).Set(objective.Seconds())
	forgetClaims(pair)
	for _, c := range claims {
		labels := []string{pair.Namespace, pair.Name, c.Key.Namespace, c.Key.Name}
		if c.RPO < 0 {
			protected.WithLabelValues(labels...).Set(0)
			continue
		}
		protected.WithLabelValues(labels...).Set(1)
		rpoSeconds.WithLabelValues(labels...).Set(c.RPO.Seconds())
	}
}

// forgetClaims drops the per-PVC series of a pair.
func forgetClaims(pair PairRef) {
	of := prometheus.Labels{"namespace": pair.Namespace, "pair": pair.Name}
	rpoSeconds.DeletePartialMatch(of)
	protected.DeletePartialMatch(of)
}

// Forget drops a pair's RPO series, when it is deleted or stops being the
// active side.
func Forget(pair PairRef) {
	forgetClaims(pair)
	rpoObjective.DeleteLabelValues(pair.Namespace, pair.Name)
}

// ObserveRestore records the time a promotion spent restoring volumes.
func ObserveRestore(pair PairRef, d time.Duration) {
	restoreSeconds.WithLabelValues(pair.Namespace, pair.Name).Observe(d.Seconds())
}
