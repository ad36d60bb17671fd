package traffic

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DNSEndpointGVK is external-dns's DNSEndpoint. Tandem writes it as
// unstructured: importing external-dns's API module would pull every
// provider's SDK into the operator.
var DNSEndpointGVK = schema.GroupVersionKind{Group: "externaldns.k8s.io", Version: "v1alpha1", Kind: "DNSEndpoint"}

// The DNSEndpoints Tandem keeps in the pair's namespace. How the two data
// centers' external-dns instances hand a name over is in docs/traffic.md:
//
//   - the production endpoint holds the records while this cluster is
//     active; each data center's external-dns owns what it creates under
//     its own --txt-owner-id and leaves records the other side owns alone,
//     so a fenced side's leftover endpoint can never flip a name back;
//   - the takeover endpoint holds the same records, labelled for the
//     second, "takeover" instance of external-dns (--label-filter on the
//     label, --migrate-from-txt-owner=<peer>, --policy=upsert-only). Only
//     the side that won the epoch writes it, only until the servers answer
//     its targets: it moves the ownership of the names to this side even
//     when the old side's external-dns is dead;
//   - the drill endpoint holds the drill names during an isolated drill.
const (
	// TakeoverLabel marks the takeover endpoint; the takeover instance of
	// external-dns reads only endpoints with it (--label-filter).
	TakeoverLabel = "tandem.dev/dns-takeover"
	// EndpointLabel names the pair an endpoint belongs to. The sync never
	// copies an endpoint carrying it: each side's are its own.
	EndpointLabel = "tandem.dev/dns-endpoint"
	fieldOwner    = "tandem"
)

// Endpoint kinds.
const (
	Production = ""
	Takeover   = "-takeover"
	Drill      = "-drill"
)

// EndpointName is the name of the pair's DNSEndpoint of a kind.
func EndpointName(pair, kind string) string { return "tandem-" + pair + kind }

// Endpoint builds the pair's DNSEndpoint of kind holding recs.
func Endpoint(cfg Config, kind string, recs []Record) *unstructured.Unstructured {
	eps := make([]any, 0, len(recs))
	for _, r := range recs {
		targets := make([]any, len(r.Targets))
		for i, t := range r.Targets {
			targets[i] = t
		}
		eps = append(eps, map[string]any{
			"dnsName": r.Name, "recordType": r.Type, "recordTTL": int64(r.TTL), "targets": targets,
		})
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(DNSEndpointGVK)
	u.SetNamespace(cfg.Namespace)
	u.SetName(EndpointName(cfg.Pair, kind))
	labels := map[string]string{EndpointLabel: cfg.Pair}
	if kind == Takeover {
		labels[TakeoverLabel] = "true"
	}
	u.SetLabels(labels)
	_ = unstructured.SetNestedSlice(u.Object, eps, "spec", "endpoints")
	return u
}

// Apply writes an endpoint (server-side apply, so it is the same call
// whether it exists or not). A cluster without the DNSEndpoint CRD is an
// error that says so.
func Apply(ctx context.Context, c client.Client, obj *unstructured.Unstructured) error {
	err := c.Patch(ctx, obj, client.Apply, client.FieldOwner(fieldOwner), client.ForceOwnership) //nolint:staticcheck // unstructured apply
	if meta.IsNoMatchError(err) {
		return fmt.Errorf("the cluster does not serve externaldns.k8s.io/v1alpha1 DNSEndpoint: install external-dns's CRD there (docs/traffic.md)")
	}
	if err != nil {
		return fmt.Errorf("writing DNSEndpoint %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// Remove deletes the pair's endpoint of kind; a missing one (or a
// cluster without the CRD) is fine.
func RemoveEndpoint(ctx context.Context, c client.Client, cfg Config, kind string) error {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(DNSEndpointGVK)
	u.SetNamespace(cfg.Namespace)
	u.SetName(EndpointName(cfg.Pair, kind))
	err := c.Delete(ctx, u)
	if err == nil || apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return nil
	}
	return fmt.Errorf("deleting DNSEndpoint %s/%s: %w", cfg.Namespace, u.GetName(), err)
}

// Read says whether the pair's endpoint of kind exists on the cluster c
// reads and whether external-dns has read its current generation.
func Read(ctx context.Context, c client.Reader, cfg Config, kind string) (exists, read bool, err error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(DNSEndpointGVK)
	err = c.Get(ctx, client.ObjectKey{Namespace: cfg.Namespace, Name: EndpointName(cfg.Pair, kind)}, u)
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	gen, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	return true, gen == u.GetGeneration(), nil
}
