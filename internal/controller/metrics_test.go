package controller

import (
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// The operator's build is on /metrics, so an alert can see two sites
// running different builds.
func TestBuildInfoIsExported(t *testing.T) {
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "tandem_build_info" {
			continue
		}
		if len(f.Metric) != 1 || f.Metric[0].GetGauge().GetValue() != 1 {
			t.Fatalf("tandem_build_info: %v", f.Metric)
		}
		labels := map[string]string{}
		for _, l := range f.Metric[0].Label {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["goversion"] != runtime.Version() || labels["version"] == "" || labels["revision"] == "" {
			t.Fatalf("tandem_build_info labels %v; want goversion %s and a version and revision", labels, runtime.Version())
		}
		return
	}
	t.Fatal("tandem_build_info is not registered")
}

// The drill gauges come from the pair's status, so an operator that just
// started (nothing recorded in this process) exports the last drill and
// the last passed one; the standby side exports neither.
func TestDrillMetricsComeFromStatus(t *testing.T) {
	passedAt := metav1.NewTime(time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC))
	failedAt := metav1.NewTime(passedAt.Add(24 * time.Hour))
	pair := &tandemv1.HAPair{ObjectMeta: metav1.ObjectMeta{Namespace: "drills", Name: "shop"}, Status: tandemv1.HAPairStatus{
		LocalRole:       tandemv1.RoleActive,
		LastDrill:       &tandemv1.SwitchoverSummary{Name: "drill-2", Phase: tandemv1.PhaseFailed, CompletionTime: &failedAt},
		LastPassedDrill: &tandemv1.SwitchoverSummary{Name: "drill-1", Phase: tandemv1.PhaseSucceeded, CompletionTime: &passedAt},
	}}
	recordDrillMetrics(pair)
	if got := testutil.ToFloat64(drillSuccess.WithLabelValues("drills", "shop")); got != 0 {
		t.Fatalf("tandem_drill_success = %v after a failed drill, want 0", got)
	}
	if got := testutil.ToFloat64(drillLastSuccess.WithLabelValues("drills", "shop")); got != float64(passedAt.Unix()) {
		t.Fatalf("tandem_drill_last_success_timestamp_seconds = %v, want %d (drill-1)", got, passedAt.Unix())
	}
	pair.Status.LocalRole = tandemv1.RoleStandby
	recordDrillMetrics(pair)
	// Deleting reports whether the series was there.
	if drillSuccess.DeleteLabelValues("drills", "shop") || drillLastSuccess.DeleteLabelValues("drills", "shop") {
		t.Fatal("the standby side exports drill series, want none")
	}
}

// The witness gauges follow the status of the round: up with the Lease's
// expiry while it answers, down without an expiry when it does not, and
// nothing for a pair without a witness.
func TestWitnessMetrics(t *testing.T) {
	renewed := metav1.NewTime(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	pair := &tandemv1.HAPair{ObjectMeta: metav1.ObjectMeta{Namespace: "witness", Name: "shop"},
		Spec:   tandemv1.HAPairSpec{Witness: &tandemv1.WitnessSpec{LeaseDuration: &metav1.Duration{Duration: 4 * time.Second}}},
		Status: tandemv1.HAPairStatus{Witness: &tandemv1.WitnessStatus{Reachable: true, Holder: "dc-east", Epoch: 3, RenewTime: &renewed}}}
	recordWitnessMetrics(pair)
	if got := testutil.ToFloat64(witnessUp.WithLabelValues("witness", "shop")); got != 1 {
		t.Fatalf("tandem_witness_up = %v, want 1", got)
	}
	if got := testutil.ToFloat64(witnessExpiry.WithLabelValues("witness", "shop", "dc-east")); got != float64(renewed.Add(4*time.Second).Unix()) {
		t.Fatalf("tandem_witness_lease_expiry_timestamp_seconds = %v, want the renewal + 4s", got)
	}
	pair.Status.Witness = &tandemv1.WitnessStatus{Message: "The witness does not answer: timeout"}
	recordWitnessMetrics(pair)
	if got := testutil.ToFloat64(witnessUp.WithLabelValues("witness", "shop")); got != 0 {
		t.Fatalf("tandem_witness_up = %v while it does not answer, want 0", got)
	}
	if witnessExpiry.DeleteLabelValues("witness", "shop", "dc-east") {
		t.Fatal("an expiry is exported while the witness does not answer")
	}
	pair.Spec.Witness, pair.Status.Witness = nil, nil
	recordWitnessMetrics(pair)
	if witnessUp.DeleteLabelValues("witness", "shop") {
		t.Fatal("tandem_witness_up is exported for a pair without a witness")
	}
}
