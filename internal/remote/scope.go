package remote

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ScopedClient is a client whose rights on namespaced kinds are Roles in
// the namespaces of Scope only (--namespaces, on this cluster and the
// peer): a List across all namespaces, which those rights refuse, becomes
// one List per namespace of the scope. An empty Scope is the whole
// cluster, and the client lists as it always does.
type ScopedClient struct {
	client.Client
	Scope []string
}

// List lists obj's kind in the scope's namespaces when no namespace is
// asked for and the kind is namespaced; otherwise as the client does.
func (c ScopedClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	var lo client.ListOptions
	lo.ApplyOptions(opts)
	if len(c.Scope) == 0 || lo.Namespace != "" {
		return c.Client.List(ctx, list, opts...)
	}
	gvk, err := c.GroupVersionKindFor(list)
	if err != nil {
		return err
	}
	gvk.Kind = strings.TrimSuffix(gvk.Kind, "List")
	m, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil || m.Scope.Name() != meta.RESTScopeNameNamespace {
		return c.Client.List(ctx, list, opts...)
	}
	var items []runtime.Object
	for _, ns := range c.Scope {
		page, ok := list.DeepCopyObject().(client.ObjectList)
		if !ok {
			return fmt.Errorf("listing %s: cannot copy the list", gvk.Kind)
		}
		if err := c.Client.List(ctx, page, append(opts, client.InNamespace(ns))...); err != nil {
			return fmt.Errorf("listing %s in namespace %s: %w", gvk.Kind, ns, err)
		}
		got, err := meta.ExtractList(page)
		if err != nil {
			return err
		}
		items = append(items, got...)
	}
	return meta.SetList(list, items)
}
