package replicate

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

func object(apiVersion, kind, ns, name string, labels map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetLabels(labels)
	return u
}

// An include entry with names or its own selector chooses its kind's
// objects in place of spec.selector: a vendor's unlabelled CRDs by name,
// its ClusterRoles by the vendor's label, while the rest still follows the
// policy's selector.
func TestIncludeEntriesChooseTheirObjects(t *testing.T) {
	spec := tandemv1.SyncPolicySpec{
		Namespaces: tandemv1.NamespaceSelection{Names: []string{"monitoring"}},
		Selector:   &metav1.LabelSelector{MatchLabels: map[string]string{"app": "shop"}},
		Resources: tandemv1.ResourceFilter{Include: []tandemv1.KindSelection{
			{GroupKind: tandemv1.GroupKind{Kind: "ConfigMap"}},
			{GroupKind: tandemv1.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}, Names: []string{"prometheuses.monitoring.coreos.com"}},
			{GroupKind: tandemv1.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"},
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/part-of": "kube-prometheus"}}},
			{GroupKind: tandemv1.GroupKind{Group: "apiregistration.k8s.io", Kind: "APIService"}, Names: []string{"v1beta1.metrics.k8s.io"}},
		}},
	}
	s, err := newSelector(spec)
	if err != nil {
		t.Fatal(err)
	}
	ns := func(string) (map[string]string, bool) { return nil, true }
	for _, tc := range []struct {
		obj  *unstructured.Unstructured
		want bool
	}{
		{object("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "prometheuses.monitoring.coreos.com", nil), true},
		{object("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "certificates.cert-manager.io", nil), false},
		{object("rbac.authorization.k8s.io/v1", "ClusterRole", "", "prometheus-k8s", map[string]string{"app.kubernetes.io/part-of": "kube-prometheus"}), true},
		{object("rbac.authorization.k8s.io/v1", "ClusterRole", "", "admin", map[string]string{"app": "shop"}), false},
		{object("apiregistration.k8s.io/v1", "APIService", "", "v1beta1.metrics.k8s.io", nil), true},
		{object("apiregistration.k8s.io/v1", "APIService", "", "v1.apps", nil), false},
		{object("v1", "ConfigMap", "monitoring", "flags", map[string]string{"app": "shop"}), true},
		{object("v1", "ConfigMap", "monitoring", "other", nil), false},
		{object("v1", "ConfigMap", "kube-system", "flags", map[string]string{"app": "shop"}), false},
	} {
		if got := s.selects(tc.obj, nil, ns); got != tc.want {
			t.Errorf("%s %s: selected %v, want %v", tc.obj.GetKind(), tc.obj.GetName(), got, tc.want)
		}
	}
	// A plain entry next to a narrowed one of the same kind adds the
	// kind's objects that match spec.selector.
	spec.Resources.Include = append(spec.Resources.Include, tandemv1.KindSelection{GroupKind: tandemv1.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}})
	if s, err = newSelector(spec); err != nil {
		t.Fatal(err)
	}
	if !s.selects(object("rbac.authorization.k8s.io/v1", "ClusterRole", "", "shop-reader", map[string]string{"app": "shop"}), nil, ns) {
		t.Error("a ClusterRole matching spec.selector is left out although a plain entry includes the kind")
	}
	apiservices := schema.GroupResource{Group: "apiregistration.k8s.io", Resource: "apiservices"}
	if !namedOnly(spec.Resources, apiservices, "APIService") {
		t.Error("an APIService named in include is not discovered")
	}
	if namedOnly(tandemv1.ResourceFilter{Include: []tandemv1.KindSelection{{GroupKind: tandemv1.GroupKind{Group: "apiregistration.k8s.io", Kind: "APIService"}}}}, apiservices, "APIService") {
		t.Error("APIServices included without names would copy the cluster's own")
	}
}
