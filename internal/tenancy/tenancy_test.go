package tenancy

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

func ns(ann map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Annotations: ann}}
}

var clusterScoped = func(gk schema.GroupKind) bool {
	return gk.Kind == "ClusterRole" || gk.Kind == "CustomResourceDefinition"
}

func TestNarrow(t *testing.T) {
	crd := tandemv1.KindSelection{GroupKind: tandemv1.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}}
	role := tandemv1.KindSelection{GroupKind: tandemv1.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}}
	deploy := tandemv1.KindSelection{GroupKind: tandemv1.GroupKind{Group: "apps", Kind: "Deployment"}}
	cases := []struct {
		name       string
		ann        map[string]string
		spec       tandemv1.SyncPolicySpec
		wantNames  []string
		selects    map[string]bool // namespace -> selected by the narrowed spec's selector
		wantKinds  int
		wantDenied []string
	}{
		{name: "own namespace needs no grant",
			spec:      tandemv1.SyncPolicySpec{Namespaces: tandemv1.NamespaceSelection{Names: []string{"team-a"}}},
			wantNames: []string{"team-a"}},
		{name: "another namespace is dropped without a grant",
			spec:       tandemv1.SyncPolicySpec{Namespaces: tandemv1.NamespaceSelection{Names: []string{"team-a", "kube-system"}}},
			wantNames:  []string{"team-a"},
			wantDenied: []string{"spec.namespaces.names[1]: namespace kube-system is not granted"}},
		{name: "only other namespaces: nothing selected",
			spec:       tandemv1.SyncPolicySpec{Namespaces: tandemv1.NamespaceSelection{Names: []string{"team-b"}}},
			selects:    map[string]bool{"team-a": false, "team-b": false},
			wantDenied: []string{"spec.namespaces.names[0]"}},
		{name: "granted by name",
			ann:       map[string]string{NamespacesAnnotation: "team-b, team-c"},
			spec:      tandemv1.SyncPolicySpec{Namespaces: tandemv1.NamespaceSelection{Names: []string{"team-a", "team-b"}}},
			wantNames: []string{"team-a", "team-b"}},
		{name: "a selector is limited to the granted namespaces",
			ann: map[string]string{NamespacesAnnotation: "team-b"},
			spec: tandemv1.SyncPolicySpec{Namespaces: tandemv1.NamespaceSelection{Selector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"shop": "yes"}}}},
			selects: map[string]bool{"team-a": true, "team-b": true, "kube-system": false}},
		{name: "a selector with every namespace granted",
			ann: map[string]string{NamespacesAnnotation: "*"},
			spec: tandemv1.SyncPolicySpec{Namespaces: tandemv1.NamespaceSelection{Selector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"shop": "yes"}}}},
			selects: map[string]bool{"team-a": true, "kube-system": true}},
		{name: "cluster-scoped kinds need a grant, namespaced ones do not",
			spec: tandemv1.SyncPolicySpec{Namespaces: tandemv1.NamespaceSelection{Names: []string{"team-a"}},
				Resources: tandemv1.ResourceFilter{Include: []tandemv1.KindSelection{deploy, crd, role}}},
			wantNames: []string{"team-a"}, wantKinds: 1,
			wantDenied: []string{"spec.resources.include[1]: CustomResourceDefinition.apiextensions.k8s.io is cluster-scoped",
				"spec.resources.include[2]"}},
		{name: "granted kind and granted group",
			ann: map[string]string{ClusterKindsAnnotation: "CustomResourceDefinition.apiextensions.k8s.io,*.rbac.authorization.k8s.io"},
			spec: tandemv1.SyncPolicySpec{Namespaces: tandemv1.NamespaceSelection{Names: []string{"team-a"}},
				Resources: tandemv1.ResourceFilter{Include: []tandemv1.KindSelection{deploy, crd, role}}},
			wantNames: []string{"team-a"}, wantKinds: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Of("team-a", ns(tc.ann))
			if err != nil {
				t.Fatal(err)
			}
			got, denied := g.Narrow(tc.spec, clusterScoped)
			if strings.Join(got.Namespaces.Names, ",") != strings.Join(tc.wantNames, ",") {
				t.Errorf("names %v, want %v", got.Namespaces.Names, tc.wantNames)
			}
			for n, want := range tc.selects {
				sel, err := metav1.LabelSelectorAsSelector(got.Namespaces.Selector)
				if err != nil {
					t.Fatal(err)
				}
				if sel.Matches(labels.Set{"shop": "yes", namespaceNameLabel: n}) != want {
					t.Errorf("namespace %s selected: %v, want %v (selector %v)", n, !want, want, sel)
				}
			}
			if tc.wantKinds > 0 && len(got.Resources.Include) != tc.wantKinds {
				t.Errorf("include %v, want %d kinds", got.Resources.Include, tc.wantKinds)
			}
			if len(denied) != len(tc.wantDenied) {
				t.Fatalf("denied %q, want %d", denied, len(tc.wantDenied))
			}
			for i, want := range tc.wantDenied {
				if !strings.Contains(denied[i], want) {
					t.Errorf("denied[%d] = %q, want it to say %q", i, denied[i], want)
				}
			}
			if tc.spec.Namespaces.Selector != nil && len(tc.spec.Namespaces.Selector.MatchExpressions) > 0 {
				t.Error("Narrow changed the spec it was given")
			}
		})
	}
}

func TestMalformedGrantsAreNamed(t *testing.T) {
	for _, ann := range []map[string]string{
		{NamespacesAnnotation: "team-b,Team_C"},
		{ClusterKindsAnnotation: "clusterroles"},
		{ClusterKindsAnnotation: "ClusterRole.rbac.authorization.k8s.io/v1"},
		{DNSNamesAnnotation: "shop.example.com, http://x.example.com"},
	} {
		g, err := Of("team-a", ns(ann))
		if err == nil || !strings.Contains(err.Error(), "Namespace team-a") {
			t.Errorf("%v: err %v, want one naming the Namespace", ann, err)
		}
		if g.Namespace("Team_C") || g.DNSName("http://x.example.com") || g.ClusterKind(schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}) {
			t.Errorf("%v: a malformed entry granted something", ann)
		}
	}
}

func TestDNSNames(t *testing.T) {
	cases := []struct {
		grant string
		name  string
		want  bool
	}{
		{"", "shop.example.com", false},
		{"shop.example.com", "shop.example.com", true},
		{"shop.example.com", "shop.example.com.", true},
		{"Shop.Example.com.", "shop.example.com", true},
		{"shop.example.com", "cart.example.com", false},
		{"shop.example.com", "x.shop.example.com", false},
		{"*.team-a.example.com", "shop.team-a.example.com", true},
		{"*.team-a.example.com", "*.shop.team-a.example.com", true},
		{"*.team-a.example.com", "team-a.example.com", false},
		{"*.team-a.example.com", "evilteam-a.example.com", false},
		{"*.team-a.example.com", "shop.team-b.example.com", false},
		{"cart.example.com, *.team-a.example.com", "cart.example.com", true},
		{"*", "anything.example.org", true},
	}
	for _, tc := range cases {
		g, err := Of("team-a", ns(map[string]string{DNSNamesAnnotation: tc.grant}))
		if err != nil {
			t.Fatalf("grant %q: %v", tc.grant, err)
		}
		if got := g.DNSName(tc.name); got != tc.want {
			t.Errorf("grant %q, name %q: DNSName = %v, want %v", tc.grant, tc.name, got, tc.want)
		}
	}
}
