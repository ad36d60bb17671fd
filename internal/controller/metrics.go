package controller

import (
	"runtime/debug"

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

	witnessUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tandem_witness_up",
		Help: "1 when this round read the pair's witness Lease, 0 when the witness did not answer; absent for a pair without a witness.",
	}, []string{"namespace", "pair"})
	witnessExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tandem_witness_lease_expiry_timestamp_seconds",
		Help: "Unix time the witness Lease runs out unless renewed (its last renewal plus its duration), as this cluster last read it; the holder is a label.",
	}, []string{"namespace", "pair", "holder"})

	// buildInfo lets an alert see the two sites run different builds: a
	// version skew between them is a failure of its own (a field one side
	// writes that the other does not know).
	buildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tandem_build_info",
		Help: "Always 1; the labels name the operator's build: its module version, the VCS revision it was built from, and the Go version.",
	}, []string{"version", "revision", "goversion"})
)

func init() {
	metrics.Registry.MustRegister(pairEpoch, pairRole, roleChanges, activeLost, witnessUp, witnessExpiry, buildInfo)
	version, revision, goVersion := build()
	buildInfo.WithLabelValues(version, revision, goVersion).Set(1)
}

// build is this binary's module version, VCS revision (with "-dirty" when
// built from a modified tree) and Go version, from the build information
// the Go toolchain embeds; "unknown" where it recorded none.
func build() (version, revision, goVersion string) {
	version, revision, goVersion = "unknown", "unknown", "unknown"
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return version, revision, goVersion
	}
	version, goVersion = info.Main.Version, info.GoVersion
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && revision != "unknown" {
		revision += "-dirty"
	}
	return version, revision, goVersion
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

// recordWitnessMetrics exports what this round read of the witness, from
// the status it wrote: whether it answered, and when the Lease it saw runs
// out (the time left is that minus time(), computed where it is read).
func recordWitnessMetrics(pair *tandemv1.HAPair) {
	labels := prometheus.Labels{"namespace": pair.Namespace, "pair": pair.Name}
	witnessExpiry.DeletePartialMatch(labels)
	w := pair.Status.Witness
	if pair.Spec.Witness == nil || w == nil {
		witnessUp.DeletePartialMatch(labels)
		return
	}
	up := 0.0
	if w.Reachable {
		up = 1
	}
	witnessUp.With(labels).Set(up)
	if w.Reachable && w.Holder != "" && w.RenewTime != nil {
		expiry := w.RenewTime.Add(leaseRef(pair).Duration)
		witnessExpiry.WithLabelValues(pair.Namespace, pair.Name, w.Holder).Set(float64(expiry.Unix()))
	}
}

// forgetRoleMetrics drops a deleted pair's series.
func forgetRoleMetrics(namespace, name string) {
	labels := prometheus.Labels{"namespace": namespace, "pair": name}
	pairEpoch.DeletePartialMatch(labels)
	pairRole.DeletePartialMatch(labels)
	roleChanges.DeletePartialMatch(labels)
	activeLost.DeletePartialMatch(labels)
	witnessUp.DeletePartialMatch(labels)
	witnessExpiry.DeletePartialMatch(labels)
	drillSuccess.DeletePartialMatch(labels)
	drillLastSuccess.DeletePartialMatch(labels)
}
