package chart

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// promtool runs the pinned promtool (make promtool) in dir.
func promtool(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	bin := pinnedTool(t, "promtool", "PROMTOOL")
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &out
	err := cmd.Run()
	return out.String(), err
}

// ruleFile writes the rendered PrometheusRule's groups as a Prometheus
// rule file in dir, the way the Prometheus operator hands them over.
func ruleFile(t *testing.T, dir string, args ...string) string {
	t.Helper()
	spec, _, _ := unstructured.NestedMap(renderedOne(t, "PrometheusRule", args...).Object, "spec")
	data, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Prometheus itself accepts every rule: promtool parses the expressions
// and templates as Prometheus would load them.
func TestPromtoolAcceptsTheRules(t *testing.T) {
	dir := t.TempDir()
	ruleFile(t, dir, "-f", filepath.Join(chart, "ci", "full-values.yaml"))
	if out, err := promtool(t, dir, "check", "rules", "rules.yaml"); err != nil || !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

// The alerts fire on the series that should fire them, and stay quiet on
// the ones that should not, in promtool's own rule tests: both sides
// Active, a drill overdue (counted from the status-backed timestamp, so
// an operator restart does not silence it), a PVC without a copy, two
// builds.
func TestAlertsFireWhenTheyShould(t *testing.T) {
	dir := t.TempDir()
	ruleFile(t, dir, "-f", filepath.Join(chart, "ci", "full-values.yaml"))
	const runbook = "https://github.com/tandem-dev/tandem/blob/main/docs/runbooks.md#"
	tests := `rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
- interval: 1m
  input_series:
  - series: 'tandem_pair_local_role{namespace="shop",pair="shop",role="Active",datacenter="dc-east"}'
    values: '1x10'
  - series: 'tandem_pair_local_role{namespace="shop",pair="shop",role="Active",datacenter="dc-west"}'
    values: '0 0 0 1x7'
  - series: 'tandem_volume_protected{namespace="shop",pair="shop",claim_namespace="shop",claim="orders"}'
    values: '0x20'
  - series: 'tandem_volume_protected{namespace="shop",pair="shop",claim_namespace="shop",claim="cache"}'
    values: '1x20'
  alert_rule_test:
  - eval_time: 2m
    alertname: TandemBothSidesActive
  - eval_time: 5m
    alertname: TandemBothSidesActive
    exp_alerts:
    - exp_labels: {severity: critical, namespace: shop, pair: shop}
      exp_annotations:
        summary: "shop/shop: both data centers report localRole Active"
        runbook_url: "` + runbook + `tandembothsidesactive"
  - eval_time: 15m
    alertname: TandemVolumeUnprotected
    exp_alerts:
    - exp_labels: {severity: warning, namespace: shop, pair: shop, claim_namespace: shop, claim: orders}
      exp_annotations:
        summary: "shop/shop: PVC shop/orders has no snapshot usable on the standby"
        runbook_url: "` + runbook + `tandemvolumeunprotected"
- interval: 1h
  input_series:
  # The last passed drill at t=0, as the operator exports it from
  # status.lastPassedDrill every round.
  - series: 'tandem_drill_last_success_timestamp_seconds{namespace="shop",pair="shop"}'
    values: '0x200'
  alert_rule_test:
  - eval_time: 191h
    alertname: TandemDrillOverdue
  - eval_time: 193h
    alertname: TandemDrillOverdue
    exp_alerts:
    - exp_labels: {severity: warning, namespace: shop, pair: shop}
      exp_annotations:
        summary: "shop/shop: no drill has passed for 192h"
        runbook_url: "` + runbook + `tandemdrilloverdue"
- interval: 5m
  input_series:
  - series: 'tandem_build_info{version="v0.4.0",revision="a1",goversion="go1.26.8",datacenter="dc-east"}'
    values: '1x20'
  - series: 'tandem_build_info{version="v0.5.0",revision="b2",goversion="go1.26.8",datacenter="dc-west"}'
    values: '1x20'
  alert_rule_test:
  - eval_time: 45m
    alertname: TandemVersionSkew
    exp_alerts:
    - exp_labels: {severity: warning}
      exp_annotations:
        summary: "Tandem operators run 2 different builds: upgrade both data centers to the same release"
        runbook_url: "` + runbook + `tandemversionskew"
  - eval_time: 45m
    alertname: TandemOperatorAbsent
`
	if err := os.WriteFile(filepath.Join(dir, "tests.yaml"), []byte(tests), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := promtool(t, dir, "test", "rules", "tests.yaml"); err != nil || !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}
