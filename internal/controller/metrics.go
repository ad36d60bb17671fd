package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

var (
	pairEpoch = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tandem_pair_epoch",
		Help: "The epoch of the pair's role record on this cluster.",
	}, []string{"namespace", "pair"})
	pairRole = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tandem_pair_local_role",
		Help: "1 for the role this cluster has in the pair (Active, Standby or Fenced), 0 for the others.",
	}, []string{"namespace", "pair", "role"})
	roleChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tandem_pair_role_changes_total",
		Help: "Role changes of this cluster in the pair, by the role it took.",
	}, []string{"namespace", "pair", "role"})
	activeLost = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tandem_pair_active_lost",
		Help: "1 while this standby has declared the active side lost (failureThreshold failed probe rounds), else 0.",
	}, []string{"namespace", "pair"})
)

func init() {
	metrics.Registry.MustRegister(pairEpoch, pairRole, roleChanges, activeLost)
}

// recordRoleMetrics exports the role record after a reconcile.
func recordRoleMetrics(obj, before *tandemv1.HAPair, lost bool) {
	ns, name := obj.Namespace, obj.Name
	pairEpoch.WithLabelValues(ns, name).Set(float64(obj.Status.Epoch))
	for _, r := range []tandemv1.Role{tandemv1.RoleActive, tandemv1.RoleStandby, tandemv1.RoleFenced} {
		v := 0.0
		if obj.Status.LocalRole == r {
			v = 1
		}
		pairRole.WithLabelValues(ns, name, string(r)).Set(v)
	}
	if obj.Status.LocalRole != "" && obj.Status.LocalRole != before.Status.LocalRole {
		roleChanges.WithLabelValues(ns, name, string(obj.Status.LocalRole)).Inc()
	}
	v := 0.0
	if lost {
		v = 1
	}
	activeLost.WithLabelValues(ns, name).Set(v)
}

// forgetRoleMetrics drops a deleted pair's series.
func forgetRoleMetrics(namespace, name string) {
	labels := prometheus.Labels{"namespace": namespace, "pair": name}
	pairEpoch.DeletePartialMatch(labels)
	pairRole.DeletePartialMatch(labels)
	roleChanges.DeletePartialMatch(labels)
	activeLost.DeletePartialMatch(labels)
}
