package traffic_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/traffic"
	"github.com/tandem-dev/tandem/test/testbed"
)

// Against a real API server with the Gateway API's CRDs: disabling the
// pair's routes detaches an Ingress from its class and an HTTPRoute from
// its Gateway, enabling restores exactly what they had, a repeat changes
// nothing, and a route that does not exist is named.
func TestSetRoutesOnARealAPIServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := testbed.StartAPIServer(ctx, "routes")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Env.Stop() })
	c := srv.Client
	if err := testbed.InstallGatewayAPICRDs(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("nginx"), DefaultBackend: &networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}
	route := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"namespace": "shop", "name": "web"},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": "public", "sectionName": "https"}},
			"hostnames":  []any{"shop.example.com"},
		},
	}}
	for _, obj := range []client.Object{ing, route} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatalf("creating %T: %v", obj, err)
		}
	}
	routes := []tandemv1.RouteRef{{Kind: "Ingress", Namespace: "shop", Name: "web"}, {Kind: "HTTPRoute", Namespace: "shop", Name: "web"}}
	read := func() (string, []any, map[string]string) {
		t.Helper()
		var gotIng networkingv1.Ingress
		if err := c.Get(ctx, client.ObjectKeyFromObject(ing), &gotIng); err != nil {
			t.Fatal(err)
		}
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(route.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(route), got); err != nil {
			t.Fatal(err)
		}
		refs, _, _ := unstructured.NestedSlice(got.Object, "spec", "parentRefs")
		return ptr.Deref(gotIng.Spec.IngressClassName, ""), refs, got.GetLabels()
	}

	changed, missing, err := traffic.SetRoutes(ctx, c, routes, false)
	if err != nil || changed != 2 || len(missing) != 0 {
		t.Fatalf("disabling: %d changed, missing %v, %v", changed, missing, err)
	}
	class, refs, labels := read()
	if class != traffic.ParkedIngressClass || len(refs) != 0 || labels[traffic.RouteLabel] != "true" {
		t.Fatalf("disabled: Ingress class %q, HTTPRoute parentRefs %v, labels %v", class, refs, labels)
	}
	if changed, _, err := traffic.SetRoutes(ctx, c, routes, false); err != nil || changed != 0 {
		t.Fatalf("disabling again changed %d routes (%v); want none", changed, err)
	}
	if changed, _, err := traffic.SetRoutes(ctx, c, routes, true); err != nil || changed != 2 {
		t.Fatalf("enabling: %d changed, %v", changed, err)
	}
	class, refs, _ = read()
	if class != "nginx" || len(refs) != 1 || refs[0].(map[string]any)["name"] != "public" || refs[0].(map[string]any)["sectionName"] != "https" {
		t.Fatalf("enabled: Ingress class %q, HTTPRoute parentRefs %v; want nginx and the Gateway public/https back", class, refs)
	}
	_, missing, err = traffic.SetRoutes(ctx, c, append(routes, tandemv1.RouteRef{Kind: "Ingress", Namespace: "shop", Name: "gone"}), true)
	if err != nil || len(missing) != 1 || missing[0] != "Ingress shop/gone" {
		t.Fatalf("a missing route: missing %v, %v", missing, err)
	}
}
