package v1alpha1_test

import (
	"context"
	"strings"
	"testing"
)

// The bad inputs of the security review, one or more per family, each
// refused at admission with a message naming its field. (Cron fields out
// of range and unknown time zones pass CEL; the operator names them in
// Ready, reason InvalidSpec.)
func TestBadInputIsRefusedNamingTheField(t *testing.T) {
	at := func(path string, v any) func(map[string]any) {
		return func(u map[string]any) { setPath(u, strings.Split(path, "."), v) }
	}
	const (
		pair   = "tandem_v1alpha1_hapair.yaml"
		policy = "tandem_v1alpha1_syncpolicy.yaml"
		so     = "tandem_v1alpha1_switchover.yaml"
	)
	sel := func(s any) any { return s }
	cases := []struct {
		file, name string
		edit       func(map[string]any)
		field, msg string
	}{
		// Names and references.
		{pair, "a cluster name over 63 characters", at("spec.clusters.1.name", strings.Repeat("a", 64)), "spec.clusters[1].name", "Too long"},
		{pair, "a cluster name with a slash", at("spec.clusters.1.name", "dc/west"), "spec.clusters[1].name", "should match"},
		{pair, "a Secret in another namespace", at("spec.clusters.1.kubeconfigSecretRef.name", "other/secret"), "spec.clusters[1].kubeconfigSecretRef.name", "should match"},
		{pair, "a Secret key with a slash", at("spec.clusters.1.kubeconfigSecretRef.key", "../x"), "spec.clusters[1].kubeconfigSecretRef.key", "should match"},
		{pair, "a policy in another namespace", at("spec.syncPolicyRefs.0.name", "a/b"), "spec.syncPolicyRefs[0].name", "should match"},
		{pair, "a witness namespace that is no name", at("spec.witness.namespace", "Bad_NS"), "spec.witness.namespace", "should match"},
		{pair, "a route in another namespace by name", at("spec.traffic.routes.0.name", "a/b"), "spec.traffic.routes[0].name", "should match"},
		{pair, "a TSIG Secret with a slash", at("spec.traffic.rfc2136.tsigSecretRef.name", "a/b"), "spec.traffic.rfc2136.tsigSecretRef.name", "should match"},
		{pair, "a drill check name with spaces", at("spec.drills.template.checks.0.name", "Bad Name"), "spec.drills.template.checks[0].name", "should match"},
		{so, "a pair in another namespace", at("spec.pairRef", "a/b"), "spec.pairRef", "should match"},
		{so, "a target cluster with a slash", at("spec.targetCluster", "dc/west"), "spec.targetCluster", "should match"},
		{policy, "a namespace name that is no name", at("spec.namespaces.names", []any{"Bad_NS"}), "spec.namespaces.names[0]", "should match"},
		{policy, "a dependency name with a slash", at("spec.extraDependencies.0.to.name", "a/b"), "spec.extraDependencies[0].to.name", "should match"},
		{policy, "a snapshot class with a slash", at("spec.volumes.snapshotClassName", "a/b"), "spec.volumes.snapshotClassName", "should match"},
		// Durations.
		{so, "a step timeout of zero", at("spec.stepTimeout", "0s"), "spec.stepTimeout", "must be between 1s and 24h"},
		{so, "a step timeout that does not parse", at("spec.stepTimeout", "soon"), "spec.stepTimeout", "should match"},
		{pair, "a probe period beyond int64", at("spec.failover.probePeriod", "99999999999999999999h"), "spec.failover.probePeriod", ""},
		{pair, "a negative lease", at("spec.witness.leaseDuration", "-15s"), "spec.witness.leaseDuration", "should match"},
		// Cron.
		{pair, "@every 1s", at("spec.drills.schedule", "@every 1s"), "spec.drills.schedule", "@every must be at least 10s apart"},
		{pair, "a schedule of four fields", at("spec.drills.schedule", "0 3 * *"), "spec.drills.schedule", "must be a cron expression"},
		// DNS.
		{pair, "an A value that is not an address", at("spec.traffic.dns.0.targets.0.values", []any{"not-an-ip"}), "spec.traffic.dns[0].targets", "of an A record must be IPv4 addresses"},
		{pair, "an A value that is IPv6", at("spec.traffic.dns.0.targets.0.values", []any{"2001:db8::1"}), "spec.traffic.dns[0].targets", "IPv4"},
		{pair, "a CNAME with two values", func(u map[string]any) {
			setPath(u, []string{"spec", "traffic", "dns", "0", "type"}, "CNAME")
			setPath(u, []string{"spec", "traffic", "dns", "0", "targets", "0", "values"}, []any{"a.example.com", "b.example.com"})
			setPath(u, []string{"spec", "traffic", "dns", "0", "targets", "1", "values"}, []any{"c.example.com"})
		}, "spec.traffic.dns[0].targets", "of a CNAME record must be one host name"},
		{pair, "a name outside the zone", at("spec.traffic.dns.0.name", "shop.other.org"), "spec.traffic.dns", "must be in spec.traffic.rfc2136.zone"},
		{pair, "a name that only ends like the zone", at("spec.traffic.dns.0.name", "shopexample.com"), "spec.traffic.dns", "must be in spec.traffic.rfc2136.zone"},
		{pair, "a drill name outside the zone", at("spec.traffic.dns.0.drillName", "drill.other.org"), "spec.traffic.dns", "drillName must be in spec.traffic.rfc2136.zone"},
		{pair, "a server without a port", at("spec.traffic.rfc2136.servers", []any{"ns1.example.com"}), "spec.traffic.rfc2136.servers[0]", "should match"},
		{pair, "a zone with a space", at("spec.traffic.rfc2136.zone", "exa mple.com"), "spec.traffic.rfc2136.zone", "should match"},
		{pair, "a TTL of zero", at("spec.traffic.dns.0.ttl", int64(0)), "spec.traffic.dns[0].ttl", "greater than or equal to 1"},
		// Selectors.
		{policy, "an unknown operator", at("spec.selector", sel(map[string]any{"matchExpressions": []any{map[string]any{"key": "a", "operator": "Foo"}}})), "spec.selector", "operator must be In, NotIn, Exists or DoesNotExist"},
		{policy, "In without values", at("spec.selector", map[string]any{"matchExpressions": []any{map[string]any{"key": "a", "operator": "In"}}}), "spec.selector", "values are required with In and NotIn"},
		{policy, "Exists with values", at("spec.selector", map[string]any{"matchExpressions": []any{map[string]any{"key": "a", "operator": "Exists", "values": []any{"x"}}}}), "spec.selector", "not allowed with Exists"},
		{policy, "an empty object selector", at("spec.selector", map[string]any{}), "spec.selector", "must have at least one term; omit it"},
		{policy, "an empty namespace selector", at("spec.namespaces", map[string]any{"selector": map[string]any{}}), "spec.namespaces.selector", "an empty selector selects every namespace"},
		// Kinds and groups.
		{policy, "a lower-case kind", at("spec.resources.include", []any{map[string]any{"kind": "deployment", "group": "apps"}}), "spec.resources.include[0].kind", "should match"},
		{policy, "a group wildcard", at("spec.resources.include", []any{map[string]any{"kind": "Deployment", "group": "*"}}), "spec.resources.include[0].group", "should match"},
		{policy, "a lower-case excluded kind", at("spec.resources.exclude.0.kind", "secret"), "spec.resources.exclude[0].kind", "should match"},
		{policy, "a dependency of lower-case kind", at("spec.extraDependencies.0.from.kind", "deployment"), "spec.extraDependencies[0].from.kind", "should match"},
		{policy, "a dependency in a namespace that is no name", at("spec.extraDependencies.0.from.namespace", "A_B"), "spec.extraDependencies[0].from.namespace", "should match"},
		// Patches, templates, removals.
		{policy, "a patch that is no JSON array", at("spec.transforms.patches", []any{map[string]any{"target": map[string]any{"kind": "ConfigMap"}, "patch": `{"op":"remove"}`}}), "spec.transforms.patches[0].patch", "must be a JSON array"},
		{policy, "a constant handle template", at("spec.volumes.handleMapping.template", "{{if false}}{{.Handle}}{{end}}"), "spec.volumes.handleMapping.template", "exactly once"},
		{policy, "removeFields: [metadata]", at("spec.transforms.removeFields", []any{map[string]any{"target": map[string]any{"kind": "ConfigMap"}, "paths": []any{"metadata"}}}), "spec.transforms.removeFields[0].paths", "may not remove kind, apiVersion or metadata"},
		// URLs.
		{pair, "an endpoint that is not http", at("spec.failover.endpoints.0.url", "ftp://x/"), "spec.failover.endpoints[0].url", "must be an http or https URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := sample(t, tc.file)
			tc.edit(obj.Object)
			wantRefused(t, k8s.Create(context.Background(), obj), tc.field, tc.msg)
		})
	}
}
