package traffic

import (
	"context"
	"errors"
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

// The DNSEndpoints Tandem writes in the pair's namespace. How the two data
// centers' external-dns instances share the names is in docs/traffic.md:
//
//   - the flip endpoint holds the records with the values of the side that
//     won the epoch, and exists only while a flip is under way: from
//     FlipTraffic (or the first publication of a new pair) until every
//     authoritative server answers it. Only the "flip" instance of
//     external-dns reads it (--label-filter=tandem.dev/dns-flip=true); the
//     flip instances of both data centers share one owner id
//     (--txt-owner-id=tandem) and never delete (--policy=upsert-only).
//     Either side can therefore move a name the other side published, dead
//     or alive, and no side keeps an endpoint that could move it back
//     later. It has the same name on both sides, so the TXT ownership
//     record is the same whoever wrote it, and an update replaces it;
//   - the drill endpoint holds an isolated drill's names, on the standby,
//     read by that data center's ordinary external-dns, which creates them
//     and deletes them with the endpoint.
const (
	// FlipLabel marks the flip endpoint: only the flip instances of
	// external-dns read it, and the ordinary ones must not
	// (--label-filter=tandem.dev/dns-flip!=true), or one of them could
	// create a name under its own owner id first.
	FlipLabel = "tandem.dev/dns-flip"
	// EndpointLabel names the pair an endpoint belongs to. The sync never
	// copies an endpoint carrying it: each side's are its own.
	EndpointLabel = "tandem.dev/dns-endpoint"
	fieldOwner    = "tandem"
)

// Endpoint kinds.
const (
	Flip  = ""
	Drill = "-drill"
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
	if kind == Flip {
		labels[FlipLabel] = "true"
	}
	u.SetLabels(labels)
	_ = unstructured.SetNestedSlice(u.Object, eps, "spec", "endpoints")
	return u
}

// ErrNoDNSEndpointCRD is a cluster that does not serve DNSEndpoints: retrying
// does not help until someone installs external-dns's CRD there.
var ErrNoDNSEndpointCRD = errors.New("the cluster does not serve externaldns.k8s.io/v1alpha1 DNSEndpoint: install external-dns's CRD there (docs/traffic.md)")

// Apply writes an endpoint (server-side apply, so it is the same call
// whether it exists or not). A cluster without the DNSEndpoint CRD is
// ErrNoDNSEndpointCRD.
func Apply(ctx context.Context, c client.Client, obj *unstructured.Unstructured) error {
	err := c.Patch(ctx, obj, client.Apply, client.FieldOwner(fieldOwner), client.ForceOwnership)
	if meta.IsNoMatchError(err) {
		return ErrNoDNSEndpointCRD
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
