// Package chart tests the Helm chart: helm lint, helm template with the
// default and the full values, and the rendered manifests applied with a
// server-side dry run to a real kube-apiserver.
package chart

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/tandem-dev/tandem/test/testbed"
)

var (
	server *testbed.APIServer
	chart  = filepath.Join(testbed.RepoRoot(), "charts", "tandem")
)

// monitoringCRDs stand in for the Prometheus operator's, so the dry run
// can accept a ServiceMonitor and a PrometheusRule.
const monitoringCRDs = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  names: {kind: ServiceMonitor, plural: servicemonitors}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: prometheusrules.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  names: {kind: PrometheusRule, plural: prometheusrules}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
`

func TestMain(m *testing.M) {
	s, err := testbed.StartAPIServer(context.Background(), "chart")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server = s
	code := m.Run()
	_ = s.Stop()
	os.Exit(code)
}

// pinnedTool is the path of a tool the Makefile builds into bin/ (make
// NAME), or the one the environment variable env names.
func pinnedTool(t *testing.T, name, env string) string {
	t.Helper()
	bin := os.Getenv(env)
	if bin == "" {
		bin = filepath.Join(testbed.RepoRoot(), "bin", name)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is not built: run `make %s` (or set %s): %v", name, name, env, err)
	}
	return bin
}

func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := pinnedTool(t, "helm", "HELM")
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String() + errOut.String(), err
	}
	return out.String(), nil
}

func render(t *testing.T, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := helm(t, append([]string{"template", "tandem", chart, "--namespace", "tandem-system", "--include-crds", "--kube-version", "1.37.1"}, args...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, out)
	}
	objs, err := testbed.Decode(out)
	if err != nil {
		t.Fatalf("decoding the rendered chart: %v", err)
	}
	return objs
}

func TestLint(t *testing.T) {
	for _, args := range [][]string{{"--set", "clusterName=dc-east"}, {"-f", filepath.Join(chart, "ci", "full-values.yaml")}} {
		if out, err := helm(t, append([]string{"lint", chart, "--strict"}, args...)...); err != nil {
			t.Fatalf("helm lint %v: %v\n%s", args, err, out)
		}
	}
	// Without clusterName, or with one that is not a DNS label, the schema
	// refuses the values and names the field.
	for _, args := range [][]string{nil, {"--set", "clusterName=DC_East"}} {
		out, err := helm(t, append([]string{"lint", chart}, args...)...)
		if err == nil || !strings.Contains(out, "clusterName") {
			t.Fatalf("helm lint %v accepted the values or did not name clusterName: %v\n%s", args, err, out)
		}
	}
}

// The rendered chart, default and full, is accepted by a real API server.
func TestRenderedManifestsPassAServerSideDryRun(t *testing.T) {
	ctx := context.Background()
	for _, u := range testbed.MustDecode(t, monitoringCRDs) {
		if err := testbed.Apply(ctx, server.Client, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{"tandem-system", "shop"} {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind("Namespace")
		u.SetName(ns)
		if err := testbed.Apply(ctx, server.Client, u); err != nil {
			t.Fatal(err)
		}
	}
	for name, args := range map[string][]string{
		"default":    {"--set", "clusterName=dc-east"},
		"full":       {"-f", filepath.Join(chart, "ci", "full-values.yaml")},
		"namespaced": {"--set", "clusterName=dc-east", "--set", "rbac.namespaces={shop}"},
	} {
		objs := render(t, args...)
		kinds := map[string]int{}
		for _, u := range objs {
			kinds[u.GetKind()]++
			err := server.Client.Patch(ctx, u, client.Apply, client.FieldOwner("chart-test"), client.ForceOwnership, client.DryRunAll)
			if err != nil {
				t.Errorf("%s values: the API server refused %s %s: %v", name, u.GetKind(), u.GetName(), err)
			}
		}
		t.Logf("%s values: %d objects dry-run applied: %v", name, len(objs), kinds)
		if kinds["CustomResourceDefinition"] != 3 || kinds["Deployment"] != 1 || kinds["ValidatingAdmissionPolicy"] != 2 { // switchover-target and tenancy
			t.Fatalf("%s values rendered %v", name, kinds)
		}
		if name == "full" && (kinds["ServiceMonitor"] != 1 || kinds["PrometheusRule"] != 1 || kinds["Secret"] != 1 || kinds["ConfigMap"] != 1) {
			t.Fatalf("full values rendered %v", kinds)
		}
	}
}

// renderedOne is the one object of kind the chart renders with args.
func renderedOne(t *testing.T, kind string, args ...string) *unstructured.Unstructured {
	t.Helper()
	for _, u := range render(t, args...) {
		if u.GetKind() == kind {
			return u
		}
	}
	t.Fatalf("no %s rendered", kind)
	return nil
}

func find[T any](t *testing.T, objs []*unstructured.Unstructured, kind, name string) *T {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() == kind && u.GetName() == name {
			var out T
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &out); err != nil {
				t.Fatal(err)
			}
			return &out
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return nil
}

// The operator runs under the restricted pod security profile, with the
// cluster name the values give.
func TestDeploymentIsRestricted(t *testing.T) {
	d := find[appsv1.Deployment](t, render(t, "--set", "clusterName=dc-east"), "Deployment", "tandem-operator")
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	sc := c.SecurityContext
	switch {
	case pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot:
		t.Fatal("the pod may run as root")
	case pod.SecurityContext.SeccompProfile == nil || pod.SecurityContext.SeccompProfile.Type != "RuntimeDefault":
		t.Fatal("no RuntimeDefault seccomp profile")
	case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Fatal("the root filesystem is writable")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Fatal("privilege escalation is allowed")
	case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL":
		t.Fatal("capabilities are not all dropped")
	}
	if !strings.Contains(strings.Join(c.Args, " "), "--cluster-name=dc-east") {
		t.Fatalf("args %v", c.Args)
	}
	if strings.Contains(strings.Join(c.Args, " "), "request-cidrs") {
		t.Fatalf("args %v: address rules by default", c.Args)
	}
}

// The platform team's address rules for probes and drill checks reach the
// operator's flags.
func TestRequestAddressRulesReachTheOperator(t *testing.T) {
	d := find[appsv1.Deployment](t, render(t, "--set", "clusterName=dc-east",
		"--set", "operator.requests.allowCIDRs={127.0.0.0/8}", "--set", "operator.requests.denyCIDRs={10.96.0.0/12,10.244.0.0/16}",
		"--set", "operator.checkJobImages={registry.example/checks/}"),
		"Deployment", "tandem-operator")
	args := strings.Join(d.Spec.Template.Spec.Containers[0].Args, " ")
	for _, want := range []string{"--allow-request-cidrs=127.0.0.0/8", "--deny-request-cidrs=10.96.0.0/12,10.244.0.0/16", "--allow-kubeconfig-proxy=false", "--check-job-images=registry.example/checks/"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %s lack %s", args, want)
		}
	}
}

// The chart's ClusterRole is the kustomize base's (generated from the
// kubebuilder markers), and narrowing rbac drops every wildcard.
func TestRBACMatchesTheKustomizeBaseAndNarrows(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testbed.RepoRoot(), "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var base rbacv1.ClusterRole
	if err := yaml.Unmarshal(data, &base); err != nil {
		t.Fatal(err)
	}
	chartRole := find[rbacv1.ClusterRole](t, render(t, "--set", "clusterName=dc-east"), "ClusterRole", "tandem-operator")
	want, _ := yaml.Marshal(normalise(base.Rules))
	got, _ := yaml.Marshal(normalise(chartRole.Rules))
	if !bytes.Equal(want, got) {
		t.Fatalf("the chart's rules differ from config/rbac/role.yaml:\nchart:\n%s\nbase:\n%s", got, want)
	}
	narrow := find[rbacv1.ClusterRole](t, render(t, "-f", filepath.Join(chart, "ci", "full-values.yaml")), "ClusterRole", "tandem-operator")
	for _, r := range narrow.Rules {
		for _, v := range append(append(append([]string{}, r.APIGroups...), r.Resources...), r.Verbs...) {
			if v == "*" {
				t.Fatalf("rbac.readAll=false still renders a wildcard: %+v", r)
			}
		}
	}
}

// With rbac.namespaces the rules of both identities are split by scope:
// every verb on every resource of config/rbac (but the read-all rule) is
// granted exactly where the API server says the resource lives, the
// ClusterRoles by resources it serves cluster-scoped, the Roles in each
// listed namespace by namespaced ones, and no ClusterRole reaches Secrets.
func TestRBACNamespacesSplitsTheRulesByScope(t *testing.T) {
	if ns, known := servedNamespaced(t, "", "secrets"); !known || !ns {
		t.Fatal("the API server's mapper does not know Secrets as namespaced: the scope checks below would check nothing")
	}
	if ns, known := servedNamespaced(t, "admissionregistration.k8s.io", "validatingadmissionpolicies"); !known || ns {
		t.Fatal("the API server's mapper does not know ValidatingAdmissionPolicies as cluster-scoped")
	}
	objs := render(t, "--set", "clusterName=dc-east", "--set", "rbac.namespaces={shop,shop-db}")
	for _, id := range []struct{ name, base string }{{"tandem-operator", "role.yaml"}, {"tandem-peer", "peer_role.yaml"}} {
		data, err := os.ReadFile(filepath.Join(testbed.RepoRoot(), "config", "rbac", id.base))
		if err != nil {
			t.Fatal(err)
		}
		var base rbacv1.ClusterRole
		if err := yaml.Unmarshal(data, &base); err != nil {
			t.Fatal(err)
		}
		cluster := find[rbacv1.ClusterRole](t, objs, "ClusterRole", id.name)
		granted := map[string]bool{} // group/resource/verb
		for _, r := range cluster.Rules {
			for _, res := range r.Resources {
				if res == "*" || res == "secrets" {
					t.Errorf("ClusterRole %s grants %v on %s with rbac.namespaces", id.name, r.Verbs, res)
				}
				if namespaced, known := servedNamespaced(t, r.APIGroups[0], res); known && namespaced {
					t.Errorf("ClusterRole %s grants the namespaced %s.%s cluster-wide", id.name, res, r.APIGroups[0])
				}
				for _, v := range r.Verbs {
					granted[r.APIGroups[0]+"/"+res+"/"+v] = true
				}
			}
		}
		for _, ns := range []string{"shop", "shop-db"} {
			var role *rbacv1.Role
			for _, u := range objs {
				if u.GetKind() == "Role" && u.GetName() == id.name && u.GetNamespace() == ns {
					role = find[rbacv1.Role](t, []*unstructured.Unstructured{u}, "Role", id.name)
				}
			}
			if role == nil {
				t.Fatalf("no Role %s in namespace %s", id.name, ns)
			}
			inNS := maps.Clone(granted)
			for _, r := range role.Rules {
				for _, res := range r.Resources {
					if namespaced, known := servedNamespaced(t, r.APIGroups[0], res); known && !namespaced {
						t.Errorf("Role %s/%s names the cluster-scoped %s.%s, which a Role cannot grant", ns, id.name, res, r.APIGroups[0])
					}
					for _, v := range r.Verbs {
						inNS[r.APIGroups[0]+"/"+res+"/"+v] = true
					}
				}
			}
			for _, r := range base.Rules {
				for _, g := range r.APIGroups {
					for _, res := range r.Resources {
						for _, v := range r.Verbs {
							if g != "*" && !inNS[g+"/"+res+"/"+v] {
								t.Errorf("%s: config/rbac/%s grants %s on %s.%s, the split rules in %s do not", id.name, id.base, v, res, g, ns)
							}
						}
					}
				}
			}
		}
	}
	dep := find[appsv1.Deployment](t, objs, "Deployment", "tandem-operator")
	if !slices.Contains(dep.Spec.Template.Spec.Containers[0].Args, "--namespaces=shop,shop-db") {
		t.Fatalf("the operator is not told its namespaces: args %v", dep.Spec.Template.Spec.Containers[0].Args)
	}
}

// servedNamespaced says whether the test API server serves resource of
// group as namespaced, and whether it serves it at all (CRDs the bare
// server lacks, such as VolumeSnapshots, are not known).
func servedNamespaced(t *testing.T, group, resource string) (namespaced, known bool) {
	t.Helper()
	base, _, _ := strings.Cut(resource, "/")
	gvk, err := server.Client.RESTMapper().KindFor(schema.GroupVersionResource{Group: group, Resource: base})
	if err != nil {
		return false, false
	}
	m, err := server.Client.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return false, false
	}
	return m.Scope.Name() == meta.RESTScopeNameNamespace, true
}

// normalise orders rules so two lists with the same rules compare equal.
func normalise(rules []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rules {
		b, _ := yaml.Marshal(r)
		out = append(out, string(b))
	}
	sort.Strings(out)
	return out
}

// Scraped series keep the pair's namespace (not the operator's) and say
// which data center they come from.
func TestServiceMonitorKeepsThePairNamespaceAndNamesTheDataCenter(t *testing.T) {
	sm := renderedOne(t, "ServiceMonitor", "-f", filepath.Join(chart, "ci", "full-values.yaml"), "--set", "clusterName=dc-west")
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(endpoints) != 1 {
		t.Fatalf("endpoints: %v", endpoints)
	}
	ep := endpoints[0].(map[string]any)
	if ep["honorLabels"] != true {
		t.Errorf("honorLabels = %v; want true, or Prometheus overwrites the pair's namespace label with the operator's", ep["honorLabels"])
	}
	relabel, _ := ep["relabelings"].([]any)
	if len(relabel) != 1 || relabel[0].(map[string]any)["targetLabel"] != "datacenter" || relabel[0].(map[string]any)["replacement"] != "dc-west" {
		t.Errorf("relabelings = %v; want datacenter=dc-west", relabel)
	}
}

// Every alert links to its own runbook section, and the section exists.
func TestEveryAlertHasARunbook(t *testing.T) {
	runbooks, err := os.ReadFile(filepath.Join(chart, "..", "..", "docs", "runbooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	rule := renderedOne(t, "PrometheusRule", "-f", filepath.Join(chart, "ci", "full-values.yaml"))
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	alerts := 0
	var names []string
	for _, g := range groups {
		group, _, _ := unstructured.NestedString(g.(map[string]any), "name")
		names = append(names, group)
		if group != "tandem" {
			continue // the user's own (metrics.prometheusRule.additionalGroups)
		}
		rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, r := range rules {
			name, _, _ := unstructured.NestedString(r.(map[string]any), "alert")
			url, _, _ := unstructured.NestedString(r.(map[string]any), "annotations", "runbook_url")
			alerts++
			if !strings.HasSuffix(url, "docs/runbooks.md#"+strings.ToLower(name)) {
				t.Errorf("alert %s: runbook_url %q, want docs/runbooks.md#%s", name, url, strings.ToLower(name))
			}
			if !strings.Contains(string(runbooks), "\n### "+name+"\n") {
				t.Errorf("alert %s has no section \"### %s\" in docs/runbooks.md", name, name)
			}
		}
	}
	if alerts == 0 {
		t.Fatal("the PrometheusRule has no alerts")
	}
	// The full values add a group of the user's own, after Tandem's.
	if strings.Join(names, ",") != "tandem,shop-dr" {
		t.Fatalf("rule groups %v, want tandem then the user's shop-dr", names)
	}
}

// What a DR operator needs from the values reaches the pod: a priority
// class (not preempted on the surviving side), spread constraints (with
// the release templated in), extra labels, flags and environment, the
// image by digest, the ServiceAccount's annotations; a PodDisruptionBudget
// with more than one replica and none with one.
func TestDRValuesReachTheDeployment(t *testing.T) {
	objs := render(t, "-f", filepath.Join(chart, "ci", "full-values.yaml"))
	d := find[appsv1.Deployment](t, objs, "Deployment", "tandem-operator")
	pod, c := d.Spec.Template.Spec, d.Spec.Template.Spec.Containers[0]
	switch {
	case pod.PriorityClassName != "system-cluster-critical":
		t.Errorf("priorityClassName %q", pod.PriorityClassName)
	case len(pod.TopologySpreadConstraints) != 1 || pod.TopologySpreadConstraints[0].LabelSelector.MatchLabels["app.kubernetes.io/instance"] != "tandem":
		t.Errorf("topologySpreadConstraints %+v, want the release name templated in", pod.TopologySpreadConstraints)
	case d.Spec.Template.Labels["example.com/cost-center"] != "dr" || d.Spec.Selector.MatchLabels["example.com/cost-center"] != "":
		t.Errorf("pod labels %v, selector %v: podLabels belong on the pod only", d.Spec.Template.Labels, d.Spec.Selector.MatchLabels)
	case c.Image != "registry.example.com/tandem-operator@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef":
		t.Errorf("image %q, want it by digest", c.Image)
	case c.Args[len(c.Args)-1] != "--zap-stacktrace-level=panic":
		t.Errorf("args %v, want extraArgs last", c.Args)
	case len(c.Env) != 1 || c.Env[0].Name != "GOMEMLIMIT" || c.Env[0].Value != "400MiB":
		t.Errorf("env %+v", c.Env)
	}
	sa := find[corev1.ServiceAccount](t, objs, "ServiceAccount", "tandem-operator")
	if sa.Annotations["eks.amazonaws.com/role-arn"] == "" {
		t.Errorf("ServiceAccount annotations %v", sa.Annotations)
	}
	pdb := find[policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget", "tandem-operator")
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.Selector.MatchLabels["app.kubernetes.io/component"] != "operator" {
		t.Errorf("PodDisruptionBudget %+v", pdb.Spec)
	}
	for _, u := range render(t, "--set", "clusterName=dc-east", "--set", "replicaCount=1") {
		if u.GetKind() == "PodDisruptionBudget" {
			t.Fatal("a PodDisruptionBudget for a single replica would block every node drain")
		}
	}
}

// The schema refuses what it does not know, naming the key, so a typo in
// the values is an error rather than a setting silently ignored.
func TestSchemaRefusesUnknownAndBadValues(t *testing.T) {
	for _, c := range []struct {
		set, says string
	}{
		{"replicaCont=3", "'replicaCont' not allowed"},
		{"operator.syncWorker=3", "'syncWorker' not allowed"},
		{"podDisruptionBudget.minAvailable=1", "'minAvailable' not allowed"},
		{"image.digest=latest", "image/digest"},
		{"extraArgs[0]=-v=4", "extraArgs/0"},
	} {
		out, err := helm(t, "template", "tandem", chart, "--set", "clusterName=dc-east", "--set", c.set)
		if err == nil || !strings.Contains(out, c.says) {
			t.Errorf("--set %s: %v, want an error naming %q:\n%s", c.set, err, c.says, out)
		}
	}
}

// The chart's peer ClusterRole is config/rbac/peer_role.yaml (the one
// TestThePeerRoleIsEnoughToSync proves), bound to the tandem-peer
// ServiceAccount, plus the kinds the values add; peer.create=false makes
// none of it.
func TestPeerRoleMatchesTheKustomizeBase(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testbed.RepoRoot(), "config", "rbac", "peer_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var base rbacv1.ClusterRole
	if err := yaml.Unmarshal(data, &base); err != nil {
		t.Fatal(err)
	}
	objs := render(t, "--set", "clusterName=dc-east")
	role := find[rbacv1.ClusterRole](t, objs, "ClusterRole", "tandem-peer")
	want, _ := yaml.Marshal(normalise(base.Rules))
	got, _ := yaml.Marshal(normalise(role.Rules))
	if !bytes.Equal(want, got) {
		t.Fatalf("the chart's peer rules differ from config/rbac/peer_role.yaml:\nchart:\n%s\nbase:\n%s", got, want)
	}
	binding := find[rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding", "tandem-peer")
	if binding.RoleRef.Name != "tandem-peer" || len(binding.Subjects) != 1 || binding.Subjects[0].Name != "tandem-peer" {
		t.Fatalf("binding %+v", binding)
	}
	find[corev1.ServiceAccount](t, objs, "ServiceAccount", "tandem-peer")

	more := find[rbacv1.ClusterRole](t, render(t, "--set", "clusterName=dc-east",
		"--set", "peer.syncResources[0].apiGroups={monitoring.coreos.com}", "--set", "peer.syncResources[0].resources={servicemonitors}"),
		"ClusterRole", "tandem-peer")
	last := more.Rules[len(more.Rules)-1]
	if len(more.Rules) != len(base.Rules)+1 || last.APIGroups[0] != "monitoring.coreos.com" || last.Resources[0] != "servicemonitors" ||
		!slices.Contains(last.Verbs, "create") || !slices.Contains(last.Verbs, "delete") {
		t.Fatalf("with peer.syncResources, last rule %+v of %d", last, len(more.Rules))
	}
	for _, u := range render(t, "--set", "clusterName=dc-east", "--set", "peer.create=false") {
		if strings.HasPrefix(u.GetName(), "tandem-peer") {
			t.Fatalf("peer.create=false rendered %s %s", u.GetKind(), u.GetName())
		}
	}
}
