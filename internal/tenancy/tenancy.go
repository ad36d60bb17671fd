// Package tenancy is the boundary between the teams that protect their
// applications with Tandem: what the SyncPolicies and HAPairs of a
// namespace may select, copy and act on.
//
// By default a policy reaches only its own namespace, and namespaced kinds
// only. Wider scope is granted by annotations on the policy's Namespace:
// whoever may update Namespaces (in most clusters, only a cluster admin)
// decides, not the namespace's users. The API server refuses a policy that
// names a namespace beyond its grant (config/admission), and the operator
// narrows every policy to its grant again before it copies or acts, so a
// grant withdrawn later takes effect without touching the policy.
package tenancy

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

const (
	// NamespacesAnnotation lists, comma-separated, the namespaces beyond
	// its own that the policies and pairs of the annotated namespace may
	// select and act on; "*" grants every namespace (and so namespace
	// selectors that reach beyond the list).
	NamespacesAnnotation = "tandem.dev/sync-namespaces"
	// ClusterKindsAnnotation lists, comma-separated, the cluster-scoped
	// kinds (Kind.group, "*.group" for a whole group, "*" for all) the
	// policies of the annotated namespace may include.
	ClusterKindsAnnotation = "tandem.dev/sync-cluster-kinds"
	// DNSNamesAnnotation lists, comma-separated, the DNS names the pairs
	// of the annotated namespace may point through external-dns: a name,
	// "*.suffix" for every name below suffix, or "*" for any name. The
	// flip instances of external-dns share one owner id across all
	// namespaces, so without this any pair could take over any name of
	// the zone. RFC 2136 needs no grant: the pair brings its own TSIG
	// key, and the DNS server's update policy bounds what it may change.
	DNSNamesAnnotation = "tandem.dev/dns-names"
)

// namespaceNameLabel is set by the API server on every Namespace to its
// name, and cannot be changed: a selector on it picks namespaces by name.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// Grant is what the policies of one namespace may reach.
type Grant struct {
	// Own is the namespace of the policies: always granted.
	Own          string
	namespaces   []string // beyond Own, sorted
	anyNamespace bool
	kinds        map[schema.GroupKind]bool
	groups       map[string]bool
	anyKind      bool
	dnsNames     []string // lower case, without the final dot; "*.suffix" for a subtree
	anyDNSName   bool
}

// Of reads the grant from the policies' Namespace; a Namespace that cannot
// be read grants nothing beyond itself. A malformed annotation is an error
// naming it, and grants nothing it lists.
func Of(own string, ns *corev1.Namespace) (Grant, error) {
	g := Grant{Own: own, kinds: map[schema.GroupKind]bool{}, groups: map[string]bool{}}
	if ns == nil {
		return g, nil
	}
	var errs []string
	for _, n := range split(ns.Annotations[NamespacesAnnotation]) {
		switch {
		case n == "*":
			g.anyNamespace = true
		case len(validation.IsDNS1123Label(n)) > 0:
			errs = append(errs, fmt.Sprintf("%q is not a namespace name", n))
		case n != own && !slices.Contains(g.namespaces, n):
			g.namespaces = append(g.namespaces, n)
		}
	}
	sort.Strings(g.namespaces)
	for _, k := range split(ns.Annotations[ClusterKindsAnnotation]) {
		gk := schema.ParseGroupKind(k)
		switch {
		case k == "*":
			g.anyKind = true
		case gk.Kind == "*":
			g.groups[gk.Group] = true
		case gk.Kind == "" || strings.ContainsAny(gk.Kind, "/ ") || gk.Kind[0] < 'A' || gk.Kind[0] > 'Z',
			gk.Group != "" && len(validation.IsDNS1123Subdomain(gk.Group)) > 0:
			errs = append(errs, fmt.Sprintf("%q is not Kind.group", k))
		default:
			g.kinds[gk] = true
		}
	}
	for _, d := range split(ns.Annotations[DNSNamesAnnotation]) {
		name := strings.ToLower(strings.TrimSuffix(d, "."))
		switch {
		case name == "*":
			g.anyDNSName = true
		case len(validation.IsDNS1123Subdomain(strings.TrimPrefix(name, "*."))) > 0:
			errs = append(errs, fmt.Sprintf("%q is not a DNS name or *.suffix", d))
		default:
			g.dnsNames = append(g.dnsNames, name)
		}
	}
	sort.Strings(g.dnsNames)
	if len(errs) > 0 {
		return g, fmt.Errorf("annotations of Namespace %s: %s (a kind is written Kind.group, for example ClusterRole.rbac.authorization.k8s.io; a DNS name shop.example.com or *.example.com)", own, strings.Join(errs, "; "))
	}
	return g, nil
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Namespace says whether the grant reaches namespace name.
func (g Grant) Namespace(name string) bool {
	return name == g.Own || g.anyNamespace || slices.Contains(g.namespaces, name)
}

// ClusterKind says whether the grant lets a policy include the
// cluster-scoped kind gk.
func (g Grant) ClusterKind(gk schema.GroupKind) bool {
	return g.anyKind || g.groups[gk.Group] || g.kinds[gk]
}

// DNSName says whether the grant lets a pair point name (a record name,
// which may itself be a wildcard such as *.shop.example.com). A "*.suffix"
// grant covers the names below suffix, not suffix itself.
func (g Grant) DNSName(name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	return g.anyDNSName || slices.ContainsFunc(g.dnsNames, func(d string) bool {
		return d == name || strings.HasPrefix(d, "*.") && strings.HasSuffix(name, d[1:])
	})
}

// String sums the grant up; it changes whenever what is granted does.
func (g Grant) String() string {
	ns := append([]string{g.Own}, g.namespaces...)
	if g.anyNamespace {
		ns = []string{"*"}
	}
	var kinds []string
	for gk := range g.kinds {
		kinds = append(kinds, gk.String())
	}
	for grp := range g.groups {
		kinds = append(kinds, "*."+grp)
	}
	if g.anyKind {
		kinds = []string{"*"}
	}
	sort.Strings(kinds)
	dns := g.dnsNames
	if g.anyDNSName {
		dns = []string{"*"}
	}
	return "namespaces=" + strings.Join(ns, ",") + ";cluster-kinds=" + strings.Join(kinds, ",") + ";dns-names=" + strings.Join(dns, ",")
}

// Narrow returns spec reaching only what the grant allows, and a message
// for each part of it left out, naming the field. Names beyond the grant
// are dropped; a namespace selector is limited to the granted namespaces;
// included kinds that are cluster-scoped and not granted are dropped
// (clusterScoped says; it must say true of a kind it does not know, so a
// CRD created later never slips through). What is left out is neither copied nor
// acted on: not parked, fenced, snapshotted, retired or routed.
func (g Grant) Narrow(spec tandemv1.SyncPolicySpec, clusterScoped func(schema.GroupKind) bool) (tandemv1.SyncPolicySpec, []string) {
	out := *spec.DeepCopy()
	var denied []string
	if names := spec.Namespaces.Names; len(names) > 0 {
		out.Namespaces.Names = nil
		for i, n := range names {
			if g.Namespace(n) {
				out.Namespaces.Names = append(out.Namespaces.Names, n)
				continue
			}
			denied = append(denied, fmt.Sprintf("spec.namespaces.names[%d]: namespace %s is not granted to the policies of namespace %s (a cluster admin grants it with the annotation %s on Namespace %s)",
				i, n, g.Own, NamespacesAnnotation, g.Own))
		}
		if len(out.Namespaces.Names) == 0 {
			// Nothing granted is named: select nothing. Every Namespace
			// has this label, so no namespace matches.
			out.Namespaces.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: namespaceNameLabel, Operator: metav1.LabelSelectorOpDoesNotExist},
			}}
		}
	}
	if out.Namespaces.Selector != nil && len(spec.Namespaces.Names) == 0 && !g.anyNamespace {
		out.Namespaces.Selector.MatchExpressions = append(out.Namespaces.Selector.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: namespaceNameLabel, Operator: metav1.LabelSelectorOpIn, Values: append([]string{g.Own}, g.namespaces...),
		})
	}
	if include := spec.Resources.Include; len(include) > 0 {
		out.Resources.Include = nil
		for i, in := range include {
			gk := schema.GroupKind{Group: in.Group, Kind: in.Kind}
			if in.Kind == "*" || !clusterScoped(gk) || g.ClusterKind(gk) {
				out.Resources.Include = append(out.Resources.Include, in)
				continue
			}
			denied = append(denied, fmt.Sprintf("spec.resources.include[%d]: %s is cluster-scoped (or not served by this cluster) and not granted to the policies of namespace %s (a cluster admin grants it with the annotation %s on Namespace %s)",
				i, gk, g.Own, ClusterKindsAnnotation, g.Own))
		}
	}
	return out, denied
}
