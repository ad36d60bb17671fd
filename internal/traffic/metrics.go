package traffic

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	flipSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tandem_traffic_flip_duration_seconds",
		Help:    "Time from the start of a FlipTraffic step until every authoritative server answered the new targets.",
		Buckets: prometheus.ExponentialBuckets(0.25, 2, 12),
	}, []string{"namespace", "pair", "provider"})
	verifyFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tandem_dns_verification_failures_total",
		Help: "Queries of an authoritative server, made to verify or observe a record, that got no answer.",
	}, []string{"namespace", "pair", "server"})
	recordAtActive = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tandem_dns_record_at_active",
		Help: "1 when every authoritative server answers the record with the active cluster's targets, 0 otherwise.",
	}, []string{"namespace", "pair", "record"})
)

func init() {
	metrics.Registry.MustRegister(flipSeconds, verifyFailures, recordAtActive)
}

// ObserveFlip records how long a flip took.
func ObserveFlip(cfg Config, d time.Duration) {
	flipSeconds.WithLabelValues(cfg.Namespace, cfg.Pair, string(cfg.Provider)).Observe(d.Seconds())
}

// RecordSeen exports whether each record points at the active cluster.
func RecordSeen(cfg Config, active string, seen []Seen) {
	recordAtActive.DeletePartialMatch(prometheus.Labels{"namespace": cfg.Namespace, "pair": cfg.Pair})
	for _, s := range seen {
		v := 0.0
		if s.Cluster == active && len(s.Unreachable) == 0 {
			v = 1
		}
		recordAtActive.WithLabelValues(cfg.Namespace, cfg.Pair, s.Name).Set(v)
	}
}

// Forget drops a pair's series.
func Forget(namespace, pair string) {
	l := prometheus.Labels{"namespace": namespace, "pair": pair}
	recordAtActive.DeletePartialMatch(l)
	verifyFailures.DeletePartialMatch(l)
	flipSeconds.DeletePartialMatch(l)
}
