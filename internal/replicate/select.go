package replicate

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/plan"
	"github.com/tandem-dev/tandem/internal/traffic"
)

// Kind is a kind found through discovery on the active cluster.
type Kind struct {
	GVR        schema.GroupVersionResource
	GVK        schema.GroupVersionKind
	Namespaced bool
}

// neverCopied are resources whose objects belong to the cluster they live in:
// copying them would be wrong (events, leases, endpoints, nodes, volumes) or
// is handled elsewhere (VolumeSnapshots: the volume protection; Tandem's own
// kinds: the pair mirroring).
var neverCopied = map[schema.GroupResource]bool{
	{Resource: "events"}:                                                             true,
	{Group: "events.k8s.io", Resource: "events"}:                                     true,
	{Group: "coordination.k8s.io", Resource: "leases"}:                               true,
	{Resource: "endpoints"}:                                                          true,
	{Group: "discovery.k8s.io", Resource: "endpointslices"}:                          true,
	{Resource: "nodes"}:                                                              true,
	{Resource: "persistentvolumes"}:                                                  true,
	{Resource: "componentstatuses"}:                                                  true,
	{Resource: "bindings"}:                                                           true,
	{Group: "apps", Resource: "controllerrevisions"}:                                 true,
	{Group: "storage.k8s.io", Resource: "volumeattachments"}:                         true,
	{Group: "storage.k8s.io", Resource: "csinodes"}:                                  true,
	{Group: "storage.k8s.io", Resource: "csistoragecapacities"}:                      true,
	{Group: "certificates.k8s.io", Resource: "certificatesigningrequests"}:           true,
	{Group: "flowcontrol.apiserver.k8s.io", Resource: "flowschemas"}:                 true,
	{Group: "flowcontrol.apiserver.k8s.io", Resource: "prioritylevelconfigurations"}: true,
	{Group: "apiregistration.k8s.io", Resource: "apiservices"}:                       true,
	{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshots"}:                  true,
	{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshotcontents"}:           true,
	{Group: "internal.apiserver.k8s.io", Resource: "storageversions"}:                true,
	{Group: "resource.k8s.io", Resource: "resourceslices"}:                           true,
}

// DiscoverKinds lists the kinds a policy copies: every listable, watchable,
// creatable kind of the active cluster, minus the ones never copied and the
// policy's exclusions. Include limits the namespaced kinds when it names any
// namespaced kind. Cluster-scoped kinds are copied only when included by
// name (a policy selects namespaces; copying every ClusterRole of the cluster
// would be a surprise), except Namespaces, which come with the policy's
// namespaces.
func DiscoverKinds(dc discovery.DiscoveryInterface, spec tandemv1.SyncPolicySpec) ([]Kind, error) {
	lists, err := discovery.ServerPreferredResources(dc)
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("discovering the API of the active cluster: %w", err)
	}
	// A partly failing discovery (an aggregated API down) still yields the
	// groups that answered; copying those beats copying nothing.
	var candidates []Kind
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			gr := schema.GroupResource{Group: gv.Group, Resource: r.Name}
			if (neverCopied[gr] && !namedOnly(spec.Resources, gr, r.Kind)) || gv.Group == tandemv1.GroupVersion.Group || strings.Contains(r.Name, "/") {
				continue
			}
			if !hasVerbs(r.Verbs, "list", "watch", "create", "patch") {
				continue
			}
			candidates = append(candidates, Kind{GVR: gv.WithResource(r.Name), GVK: gv.WithKind(r.Kind), Namespaced: r.Namespaced})
		}
	}
	limitNamespaced := false
	for _, k := range candidates {
		for _, in := range spec.Resources.Include {
			if k.Namespaced && gkMatches(in.GroupKind, k.GVK.GroupKind()) {
				limitNamespaced = true
			}
		}
	}
	var kinds []Kind
	for _, k := range candidates {
		if kindSelected(spec.Resources, k.GVK.GroupKind(), k.Namespaced, limitNamespaced) {
			kinds = append(kinds, k)
		}
	}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i].GVR.String() < kinds[j].GVR.String() })
	return kinds, nil
}

func kindSelected(f tandemv1.ResourceFilter, gk schema.GroupKind, namespaced, limitNamespaced bool) bool {
	for _, x := range f.Exclude {
		if gkMatches(x, gk) {
			return false
		}
	}
	if gk.Group == "" && gk.Kind == "Namespace" {
		return true
	}
	included := false
	for _, in := range f.Include {
		// A wildcard kind never pulls in a group's cluster-scoped kinds.
		if gkMatches(in.GroupKind, gk) && (namespaced || in.Kind != "*") {
			included = true
		}
	}
	if namespaced && !limitNamespaced {
		return true
	}
	return included
}

// namedOnly says whether an include entry names objects of a kind the sync
// otherwise never copies: APIServices, which register an API served by a
// Service of the application (metrics-server's v1beta1.metrics.k8s.io),
// belong to it, but the cluster's own (v1.apps, ...) must not be copied.
func namedOnly(f tandemv1.ResourceFilter, gr schema.GroupResource, kind string) bool {
	if gr != (schema.GroupResource{Group: "apiregistration.k8s.io", Resource: "apiservices"}) {
		return false
	}
	for _, in := range f.Include {
		if in.Group == gr.Group && in.Kind == kind && len(in.Names) > 0 {
			return true
		}
	}
	return false
}

func gkMatches(x tandemv1.GroupKind, gk schema.GroupKind) bool {
	return x.Group == gk.Group && (x.Kind == "*" || x.Kind == gk.Kind)
}

func hasVerbs(verbs metav1.Verbs, want ...string) bool {
	have := map[string]bool{}
	for _, v := range verbs {
		have[v] = true
	}
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}

// selector decides which objects of the selected kinds a policy copies.
type selector struct {
	names      map[string]bool // namespaces by name, when set
	nsSelector labels.Selector // namespaces by label, when set
	objects    labels.Selector // the policy's label selector; Everything when unset
	// byKind are the include entries that choose their kind's objects
	// themselves, by names or a selector, in place of objects.
	byKind map[schema.GroupKind][]kindFilter
	// claimsBySnapshot: the policy protects its PVCs with snapshots, so
	// the standby gets them from internal/volume on promotion, never as
	// empty copies (a Warm standby holds no bound PVC it does not need).
	claimsBySnapshot bool
}

// CheckSelection reports a selector of spec the sync cannot use (an
// include entry's, whose operators admission does not check), naming its
// field.
func CheckSelection(spec tandemv1.SyncPolicySpec) error {
	_, err := newSelector(spec)
	return err
}

// kindFilter is one include entry's choice of objects: every condition it
// sets must hold.
type kindFilter struct {
	names map[string]bool
	sel   labels.Selector
}

func (f kindFilter) matches(obj metav1.Object) bool {
	return (f.names == nil || f.names[obj.GetName()]) && (f.sel == nil || f.sel.Matches(labels.Set(obj.GetLabels())))
}

func newSelector(spec tandemv1.SyncPolicySpec) (*selector, error) {
	s := &selector{objects: labels.Everything(), claimsBySnapshot: spec.Volumes != nil, byKind: map[schema.GroupKind][]kindFilter{}}
	var plain []schema.GroupKind
	for i, in := range spec.Resources.Include {
		if len(in.Names) == 0 && in.Selector == nil {
			plain = append(plain, schema.GroupKind{Group: in.Group, Kind: in.Kind})
			continue
		}
		var f kindFilter
		if len(in.Names) > 0 {
			f.names = map[string]bool{}
			for _, n := range in.Names {
				f.names[n] = true
			}
		}
		if in.Selector != nil {
			sel, err := metav1.LabelSelectorAsSelector(in.Selector)
			if err != nil {
				return nil, fmt.Errorf("spec.resources.include[%d].selector: %w", i, err)
			}
			f.sel = sel
		}
		gk := schema.GroupKind{Group: in.Group, Kind: in.Kind}
		s.byKind[gk] = append(s.byKind[gk], f)
	}
	if len(spec.Namespaces.Names) > 0 {
		s.names = map[string]bool{}
		for _, n := range spec.Namespaces.Names {
			s.names[n] = true
		}
	}
	if spec.Namespaces.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(spec.Namespaces.Selector)
		if err != nil {
			return nil, fmt.Errorf("spec.namespaces.selector: %w", err)
		}
		s.nsSelector = sel
	}
	if spec.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(spec.Selector)
		if err != nil {
			return nil, fmt.Errorf("spec.selector: %w", err)
		}
		s.objects = sel
	}
	// A plain entry of a kind that also has a narrowed one keeps its
	// meaning: the kind's objects that match spec.selector.
	for _, gk := range plain {
		if _, ok := s.byKind[gk]; ok {
			s.byKind[gk] = append(s.byKind[gk], kindFilter{sel: s.objects})
		}
	}
	return s, nil
}

// namespaceSelected says whether a namespace, given its labels, is selected.
func (s *selector) namespaceSelected(name string, nsLabels map[string]string) bool {
	if s.names != nil {
		return s.names[name]
	}
	return s.nsSelector != nil && s.nsSelector.Matches(labels.Set(nsLabels))
}

// selects says whether the policy copies obj; nsLabels looks up the labels
// of a namespace of the active cluster.
func (s *selector) selects(obj *unstructured.Unstructured, exclude map[plan.Ref]bool, nsLabels func(string) (map[string]string, bool)) bool {
	if skipReason(obj) != "" || exclude[plan.RefOf(obj)] {
		return false
	}
	gvk := obj.GroupVersionKind()
	if gvk.Group == "" && gvk.Kind == "Namespace" {
		return s.namespaceSelected(obj.GetName(), obj.GetLabels())
	}
	if s.claimsBySnapshot && gvk.Group == "" && gvk.Kind == "PersistentVolumeClaim" {
		return false
	}
	return s.inScope(obj, gvk.GroupKind(), nsLabels)
}

// inScope says whether a namespaced object is in the policy's namespaces
// and matches its label selector, or the names or selector of an include
// entry of its kind that has them.
func (s *selector) inScope(obj metav1.Object, gk schema.GroupKind, nsLabels func(string) (map[string]string, bool)) bool {
	if ns := obj.GetNamespace(); ns != "" {
		l, exists := nsLabels(ns)
		if !exists || !s.namespaceSelected(ns, l) {
			return false
		}
	}
	if filters, ok := s.byKind[gk]; ok {
		return slices.ContainsFunc(filters, func(f kindFilter) bool { return f.matches(obj) })
	}
	return s.objects.Matches(labels.Set(obj.GetLabels()))
}

// ClaimFilter says which PVCs a policy protects with snapshots: those in
// its namespaces and matching its selector, not made by a drill. A PVC
// being deleted still matches: callers decide what that means.
type ClaimFilter struct{ sel *selector }

// NewClaimFilter returns the PVC filter of a policy.
func NewClaimFilter(spec tandemv1.SyncPolicySpec) (*ClaimFilter, error) {
	sel, err := newSelector(spec)
	if err != nil {
		return nil, err
	}
	return &ClaimFilter{sel: sel}, nil
}

// Protects says whether the policy protects pvc.
func (f *ClaimFilter) Protects(pvc metav1.Object, nsLabels func(string) (map[string]string, bool)) bool {
	if _, drill := pvc.GetLabels()[DrillLabel]; drill {
		return false
	}
	return f.sel.inScope(pvc, schema.GroupKind{Kind: "PersistentVolumeClaim"}, nsLabels)
}

// DrillLabel marks what a drill creates on the standby (its check Jobs):
// it belongs to the drill, never to the copied application.
const DrillLabel = "tandem.dev/drill"

// skipReason says why an object of a selected kind is never copied, or "".
// InstallationLabel is set by the chart on everything it installs, to the
// data center's name.
const InstallationLabel = "tandem.dev/cluster"

func skipReason(obj *unstructured.Unstructured) string {
	if obj.GetDeletionTimestamp() != nil {
		return "being deleted"
	}
	// The owner recreates its children on the standby; a copy would fight
	// it.
	if o := metav1.GetControllerOfNoCopy(obj); o != nil {
		return "owned by " + o.Kind + " " + o.Name
	}
	if _, ok := obj.GetLabels()[DrillLabel]; ok {
		return "made by a drill"
	}
	if _, ok := obj.GetLabels()[InstallationLabel]; ok {
		// The chart's Roles in an application's namespace (rbac.namespaces)
		// name this data center's identities: the other side has its own.
		return "part of Tandem's installation in this data center"
	}
	gk := obj.GroupVersionKind().GroupKind()
	switch {
	case gk.Group == "" && gk.Kind == "Secret":
		if t, _, _ := unstructured.NestedString(obj.Object, "type"); t == "kubernetes.io/service-account-token" {
			return "service account token"
		}
	case gk.Group == "" && gk.Kind == "ConfigMap" && obj.GetName() == "kube-root-ca.crt":
		return "created by every cluster"
	case gk.Group == "" && gk.Kind == "ServiceAccount" && obj.GetName() == "default":
		return "created by every cluster"
	case gk.Group == traffic.DNSEndpointGVK.Group && gk.Kind == traffic.DNSEndpointGVK.Kind && obj.GetLabels()[traffic.EndpointLabel] != "":
		return "a pair's DNS records, which each side keeps for itself"
	case gk.Group == "apiextensions.k8s.io" && gk.Kind == "CustomResourceDefinition":
		if g, _, _ := unstructured.NestedString(obj.Object, "spec", "group"); g == tandemv1.GroupVersion.Group {
			return "Tandem's own API, installed with the operator"
		}
	}
	return ""
}

// PairSecrets are the Secrets a pair refers to. Each belongs to one side (a
// kubeconfig for the other cluster, a TSIG key), so they are never copied,
// whatever a policy selects.
func PairSecrets(pair *tandemv1.HAPair) map[plan.Ref]bool {
	out := map[plan.Ref]bool{}
	add := func(ref *tandemv1.SecretKeyRef) {
		if ref != nil {
			out[plan.Ref{Kind: "Secret", Namespace: pair.Namespace, Name: ref.Name}] = true
		}
	}
	for i := range pair.Spec.Clusters {
		add(pair.Spec.Clusters[i].KubeconfigSecretRef)
	}
	if pair.Spec.Witness != nil {
		add(&pair.Spec.Witness.KubeconfigSecretRef)
	}
	if pair.Spec.Traffic != nil && pair.Spec.Traffic.RFC2136 != nil {
		add(&pair.Spec.Traffic.RFC2136.TSIGSecretRef)
	}
	return out
}
