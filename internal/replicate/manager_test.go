package replicate_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/replicate"
)

const gadgetCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Gadget, plural: gadgets, singular: gadget, listKind: GadgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`

// A CRD installed on the active side after the sync started becomes a kind
// the sync copies, without restarting the operator.
func TestManagerPicksUpKindsInstalledLater(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, err := replicate.NewManager(active.Config, nil, func(replicate.Key) {}, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	m.RediscoverEvery = time.Millisecond
	done := make(chan struct{})
	go func() { _ = m.Start(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	ns := "shop-later"
	create(t, active.Client, decode(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}")...)
	key := replicate.Key{Namespace: "default", Pair: "shop", Policy: "later"}
	spec := tandemv1.SyncPolicySpec{
		Namespaces: tandemv1.NamespaceSelection{Names: []string{ns}},
		Resources:  tandemv1.ResourceFilter{Include: []tandemv1.KindSelection{{GroupKind: tandemv1.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}}}},
	}
	ensure := func() {
		if err := m.Ensure(ctx, key, spec, standby.Config, nil, "same"); err != nil {
			t.Fatal(err)
		}
	}
	ensure()
	waitStandby(t, "the first pass", func() (bool, error) {
		st, ok := m.Status(key)
		return ok && !st.LastFullSync.IsZero(), nil
	})

	create(t, active.Client, decode(t, gadgetCRD)...)
	gadgetGVK := schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Gadget"}
	waitStandby(t, "the Gadget CRD is served on the active side", func() (bool, error) {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Gadget",
			"metadata": map[string]any{"name": "g1", "namespace": ns}}}
		err := active.Client.Create(context.Background(), u)
		return err == nil, err
	})
	waitStandby(t, "the custom resource of the new kind reached the standby", func() (bool, error) {
		ensure() // what every HAPair reconcile does
		_, err := getStandby(t, gadgetGVK, ns, "g1")
		return err == nil, err
	})
}
