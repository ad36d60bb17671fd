package controller

import (
	"runtime"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/metrics"
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
