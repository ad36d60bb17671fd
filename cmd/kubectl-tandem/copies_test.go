package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tandem-dev/tandem/internal/replicate"
)

// The objects a standby holds for pair copies/shop: two copies the sync
// applied (one created, one adopted) and what looks like them without
// being one: the EndpointSlice and Endpoints the cluster made from the
// copied Service, an object written by hand with copied marks, and a copy
// of another namespace's pair of the same name.
func setupCopies(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	c := server.Client
	marks := func(ns string) map[string]string {
		return map[string]string{replicate.PairLabel: "shop", replicate.PairNamespaceLabel: ns, replicate.PolicyLabel: "app"}
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "copies"}}); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	applied := func(name string, ann map[string]string, labels map[string]string) {
		cm := &corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "copies", Name: name, Labels: labels, Annotations: ann},
		}
		if err := c.Patch(ctx, cm, client.Apply, client.FieldOwner(replicate.FieldManager), client.ForceOwnership); err != nil {
			t.Fatal(err)
		}
	}
	applied("created", map[string]string{replicate.HashAnnotation: "abc", replicate.CreatedAnnotation: "true"}, marks("copies"))
	applied("adopted", map[string]string{replicate.HashAnnotation: "abc"}, marks("copies"))
	applied("other-pair", map[string]string{replicate.HashAnnotation: "abc"}, marks("elsewhere"))

	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "copies", Name: "web", Labels: marks("copies")},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	handmade := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "copies", Name: "handmade", Labels: marks("copies"),
		Annotations: map[string]string{replicate.HashAnnotation: "abc"}}}
	endpoints := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "copies", Name: "web", Labels: marks("copies")}}
	for _, o := range []client.Object{svc, handmade, endpoints} {
		if err := c.Create(ctx, o); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(svc), svc); err != nil {
		t.Fatal(err)
	}
	sliceLabels := marks("copies")
	sliceLabels[discoveryv1.LabelServiceName] = "web"
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "copies", Name: "web-x1", Labels: sliceLabels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "web", UID: svc.UID, Controller: ptr.To(true)}}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	if err := c.Create(ctx, slice); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
}

func TestCopiesTellsCopiesFromDerivedObjects(t *testing.T) {
	setupCopies(t)
	got := runPlugin(t, "copies", "shop", "-n", "copies")
	want := `KIND       NAMESPACE  NAME     POLICY  CREATED
ConfigMap  copies     adopted  app     adopted
ConfigMap  copies     created  app     yes
`
	if got != want {
		t.Fatalf("kubectl tandem copies printed:\n%s\nwant:\n%s", got, want)
	}

	got = runPlugin(t, "copies", "shop", "-n", "copies", "--derived")
	for _, line := range []string{
		"EndpointSlice.discovery.k8s.io  copies     web-x1   app     no    made by Service web",
		"ConfigMap                       copies     handmade  app     no    not applied by field manager tandem",
		"Endpoints                       copies     web      app     no    labels inherited: no tandem.dev/source-hash",
	} {
		fields := strings.Fields(line)
		found := false
		for _, l := range strings.Split(got, "\n") {
			if strings.Join(strings.Fields(l), " ") == strings.Join(fields, " ") {
				found = true
			}
		}
		if !found {
			t.Errorf("--derived does not list %q:\n%s", strings.Join(fields, " "), got)
		}
	}
	if strings.Contains(got, "other-pair") {
		t.Errorf("another namespace's pair of the same name is listed:\n%s", got)
	}

	var marked []replicate.Marked
	if err := json.Unmarshal([]byte(runPlugin(t, "copies", "shop", "-n", "copies", "--derived", "-o", "json")), &marked); err != nil {
		t.Fatal(err)
	}
	copies := 0
	for _, m := range marked {
		if m.Copy {
			copies++
		}
	}
	if copies != 2 || len(marked) != 6 {
		t.Fatalf("-o json: %d copies of %d objects, want 2 of 6 (the Service too): %+v", copies, len(marked), marked)
	}
}

func TestCopiesRefusesAnUnknownOutput(t *testing.T) {
	if _, err := runPluginErr("copies", "shop", "-n", "copies", "-o", "wide"); err == nil || !strings.Contains(err.Error(), `--output "wide"`) {
		t.Fatalf("error = %v, want one naming --output", err)
	}
}
