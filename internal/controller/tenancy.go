package controller

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/tenancy"
	"github.com/tandem-dev/tandem/internal/traffic"
)

// grantOf reads what the platform team granted the policies and pairs of
// namespace ns (internal/tenancy). It fails only when the Namespace cannot
// be read; a malformed grant comes back as invalid, for the caller to
// report, with the grant reaching only what it lists well-formed.
func grantOf(ctx context.Context, c client.Reader, ns string) (g tenancy.Grant, invalid, err error) {
	var obj corev1.Namespace
	if err := c.Get(ctx, client.ObjectKey{Name: ns}, &obj); err != nil {
		if !apierrors.IsNotFound(err) {
			return tenancy.Grant{}, nil, fmt.Errorf("reading Namespace %s for its grant: %w", ns, err)
		}
		g, invalid = tenancy.Of(ns, nil)
		return g, invalid, nil
	}
	g, invalid = tenancy.Of(ns, &obj)
	return g, invalid, nil
}

// withinGrant narrows each policy's spec to its namespace's grant, so
// nothing the caller does with them (copy, park, fence, snapshot, retire)
// reaches beyond it, and returns what was left out, each naming its field.
// Policies are namespaced, and a pair refers only to its own namespace's.
func withinGrant(ctx context.Context, c client.Reader, policies []tandemv1.SyncPolicy) ([]tandemv1.SyncPolicy, []string, error) {
	if len(policies) == 0 {
		return policies, nil, nil
	}
	g, invalid, err := grantOf(ctx, c, policies[0].Namespace)
	if err != nil {
		return nil, nil, err
	}
	var denied []string
	if invalid != nil {
		denied = append(denied, invalid.Error())
	}
	scoped := clusterScopedBy(c)
	out := make([]tandemv1.SyncPolicy, len(policies))
	for i := range policies {
		out[i] = policies[i]
		var d []string
		out[i].Spec, d = g.Narrow(policies[i].Spec, scoped)
		for _, m := range d {
			denied = append(denied, "SyncPolicy "+policies[i].Name+": "+m)
		}
	}
	return out, denied, nil
}

// deniedOf is what the policy's status says its grant leaves out: what
// withinGrant drops, and the namespaces its selector matches beyond the
// grant. Only the policy's own reconcile needs the second, which lists
// Namespaces, so the readers that narrow (the sync, parking, fencing) do
// not pay for it.
func deniedOf(ctx context.Context, c client.Reader, policy *tandemv1.SyncPolicy) ([]string, error) {
	_, denied, err := withinGrant(ctx, c, []tandemv1.SyncPolicy{*policy})
	if err != nil {
		return nil, err
	}
	sel := policy.Spec.Namespaces
	if sel.Selector == nil || len(sel.Names) > 0 {
		return denied, nil
	}
	g, _, err := grantOf(ctx, c, policy.Namespace)
	if err != nil {
		return nil, err
	}
	beyond, err := selectedBeyond(ctx, c, g, sel.Selector)
	if err != nil || beyond == "" {
		return denied, err
	}
	return append(denied, "SyncPolicy "+policy.Name+": "+beyond), nil
}

// selectedBeyond names the namespaces a policy's namespace selector matches
// that its grant leaves out: Narrow limits the selector to the grant
// silently, and a team must learn why a namespace it labelled is not
// copied.
func selectedBeyond(ctx context.Context, c client.Reader, g tenancy.Grant, sel *metav1.LabelSelector) (string, error) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return fmt.Sprintf("spec.namespaces.selector: %v", err), nil
	}
	var list corev1.NamespaceList
	if err := c.List(ctx, &list, client.MatchingLabelsSelector{Selector: s}); err != nil {
		return "", fmt.Errorf("listing the namespaces spec.namespaces.selector matches: %w", err)
	}
	var left []string
	for _, ns := range list.Items {
		if !g.Namespace(ns.Name) {
			left = append(left, ns.Name)
		}
	}
	if len(left) == 0 {
		return "", nil
	}
	sort.Strings(left)
	shown := strings.Join(left[:min(len(left), 3)], ", ")
	if len(left) > 3 {
		shown += fmt.Sprintf(" and %d more", len(left)-3)
	}
	return fmt.Sprintf("spec.namespaces.selector matches namespace %s, not granted to the policies of namespace %s (a cluster admin grants it with the annotation %s on Namespace %s); left out",
		shown, g.Own, tenancy.NamespacesAnnotation, g.Own), nil
}

// clusterScopedBy says from c's REST mapper whether a kind is
// cluster-scoped; a kind the mapper does not know, or a reader without a
// mapper, counts as cluster-scoped: denied unless granted.
func clusterScopedBy(c client.Reader) func(schema.GroupKind) bool {
	mc, ok := c.(interface{ RESTMapper() meta.RESTMapper })
	return func(gk schema.GroupKind) bool {
		if !ok {
			return true
		}
		m, err := mc.RESTMapper().RESTMapping(gk)
		return err != nil || m.Scope.Name() == meta.RESTScopeNameRoot
	}
}

// routesWithinGrant returns the pair's routes in namespaces its namespace
// is granted; a route elsewhere is never enabled or disabled (admission
// refuses it; this holds when the grant was withdrawn later).
func routesWithinGrant(ctx context.Context, c client.Reader, pair *tandemv1.HAPair) ([]tandemv1.RouteRef, error) {
	if pair.Spec.Traffic == nil || len(pair.Spec.Traffic.Routes) == 0 {
		return nil, nil
	}
	g, _, err := grantOf(ctx, c, pair.Namespace)
	if err != nil {
		return nil, err
	}
	var out []tandemv1.RouteRef
	for _, rt := range pair.Spec.Traffic.Routes {
		if g.Namespace(rt.Namespace) {
			out = append(out, rt)
		}
	}
	return out, nil
}

// DrillChecksAnnotation on a ServiceAccount lends it to drill check Jobs
// ("true"). A check Job is a pod the operator creates for whoever may
// write a Switchover or a pair's drill template: naming a ServiceAccount
// must not hand them its rights unless whoever manages it agreed.
const DrillChecksAnnotation = "tandem.dev/drill-checks"

// checkJobAllowed refuses a check Job whose ServiceAccount was not lent to
// drill checks, on the cluster c reaches (where the Job runs), or whose
// image has none of the prefixes the operator allows.
func checkJobAllowed(ctx context.Context, c client.Reader, cluster, check string, job *tandemv1.JobCheck, images []string) error {
	field := "spec.drill.checks[" + check + "].job"
	if len(images) > 0 && !slices.ContainsFunc(images, func(p string) bool { return strings.HasPrefix(job.Image, p) }) {
		return fmt.Errorf("%s.image %s is not one the operator runs (--check-job-images: %s)", field, job.Image, strings.Join(images, ", "))
	}
	if job.ServiceAccountName == "" {
		return nil
	}
	var sa corev1.ServiceAccount
	if err := c.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: job.ServiceAccountName}, &sa); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("%s.serviceAccountName: ServiceAccount %s/%s does not exist on %s", field, job.Namespace, job.ServiceAccountName, cluster)
		}
		return fmt.Errorf("reading ServiceAccount %s/%s on %s: %w", job.Namespace, job.ServiceAccountName, cluster, err)
	}
	if sa.Annotations[DrillChecksAnnotation] != "true" {
		return fmt.Errorf("%s.serviceAccountName: ServiceAccount %s/%s on %s is not lent to drill checks (annotation %s: \"true\", set by whoever manages it); the check did not run",
			field, job.Namespace, job.ServiceAccountName, cluster, DrillChecksAnnotation)
	}
	return nil
}

// jobNamespaceGranted refuses a drill's check Job in a namespace the
// Switchover's namespace is not granted.
func jobNamespaceGranted(ctx context.Context, c client.Reader, own, ns string) error {
	g, _, err := grantOf(ctx, c, own)
	if err != nil {
		return err
	}
	if !g.Namespace(ns) {
		return fmt.Errorf("spec.drill.checks: a check Job in namespace %s is not granted to namespace %s (a cluster admin grants it with the annotation %s on Namespace %s)",
			ns, own, tenancy.NamespacesAnnotation, own)
	}
	return nil
}

// dnsBeyondGrant names the first of cfg's record and drill names that the
// pair's namespace is not granted (tenancy.DNSNamesAnnotation), or "" when
// all are. Only external-dns needs the grant: its flip instances serve
// every namespace under one owner id, while an RFC 2136 pair brings its
// own TSIG key. Removing a name needs no grant, so only publishing and
// flipping ask.
func dnsBeyondGrant(ctx context.Context, c client.Reader, cfg traffic.Config) (string, error) {
	if cfg.RFC2136() || !cfg.HasDNS() {
		return "", nil
	}
	g, invalid, err := grantOf(ctx, c, cfg.Namespace)
	if err != nil {
		return "", err
	}
	for _, rec := range cfg.Records {
		for _, name := range []string{rec.Name, rec.DrillName} {
			if name == "" || g.DNSName(name) {
				continue
			}
			msg := fmt.Sprintf("spec.traffic.dns[%s]: %s is not granted to the pairs of namespace %s (a cluster admin grants it with the annotation %s on Namespace %s)",
				rec.Name, name, cfg.Namespace, tenancy.DNSNamesAnnotation, cfg.Namespace)
			if invalid != nil {
				msg += "; " + invalid.Error()
			}
			return msg, nil
		}
	}
	return "", nil
}
