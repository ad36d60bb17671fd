package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StandbyMode is how workloads wait on the standby.
// +kubebuilder:validation:Enum=Warm;Hot
type StandbyMode string

const (
	// StandbyWarm copies workloads with 0 replicas, keeping the source's
	// replica count in an annotation so promotion can restore it.
	StandbyWarm StandbyMode = "Warm"
	// StandbyHot runs workloads on both sides with the source's replicas.
	StandbyHot StandbyMode = "Hot"
)

// SyncPolicySpec says what is copied from the active side to the standby and
// how.
//
// +kubebuilder:validation:XValidation:rule="has(self.namespaces.names) != has(self.namespaces.selector)",message="spec.namespaces must set exactly one of names or selector",fieldPath=".namespaces"
type SyncPolicySpec struct {
	// Namespaces whose objects are copied.
	Namespaces NamespaceSelection `json:"namespaces"`

	// Resources narrows the kinds copied. Every kind found through API
	// discovery is copied unless excluded here or never safe to copy
	// (Events, Leases, EndpointSlices, Pods and ReplicaSets owned by a
	// workload, service-account tokens).
	// +optional
	Resources ResourceFilter `json:"resources,omitempty"`

	// Selector copies only objects with matching labels; without it,
	// every object of the selected kinds and namespaces.
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="spec.selector.matchExpressions[].operator must be In, NotIn, Exists or DoesNotExist"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, !(e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist']) || (e.operator in ['In', 'NotIn']) == (has(e.values) && size(e.values) > 0))",message="spec.selector.matchExpressions[].values are required with In and NotIn, and not allowed with Exists and DoesNotExist"
	// +kubebuilder:validation:XValidation:rule="(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",message="spec.selector must have at least one term; omit it to copy every object"
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// StandbyMode Warm keeps standby workloads at 0 replicas; Hot runs them.
	// +kubebuilder:default=Warm
	// +optional
	StandbyMode StandbyMode `json:"standbyMode,omitempty"`

	// Transforms change objects on their way to the standby.
	// +optional
	Transforms Transforms `json:"transforms,omitempty"`

	// ExtraDependencies are "must exist before" edges no built-in rule sees:
	// each From object waits until its To objects exist on the standby.
	// +kubebuilder:validation:MaxItems=256
	// +listType=atomic
	// +optional
	ExtraDependencies []DependencyEdge `json:"extraDependencies,omitempty"`

	// Volumes turns on snapshot replication of the selected PVCs.
	// +optional
	Volumes *VolumeProtection `json:"volumes,omitempty"`

	// FullResyncInterval is how often every copy is re-verified by content
	// hash and drift repaired.
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s')",message="spec.fullResyncInterval must be at least 10s"
	// +optional
	FullResyncInterval *metav1.Duration `json:"fullResyncInterval,omitempty"`

	// Suspend stops copying; copies already made stay.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// NamespaceSelection picks namespaces by name or by label.
type NamespaceSelection struct {
	// Names of the namespaces.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +listType=set
	// +optional
	Names []string `json:"names,omitempty"`

	// Selector matches namespace labels.
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="spec.namespaces.selector.matchExpressions[].operator must be In, NotIn, Exists or DoesNotExist"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, !(e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist']) || (e.operator in ['In', 'NotIn']) == (has(e.values) && size(e.values) > 0))",message="spec.namespaces.selector.matchExpressions[].values are required with In and NotIn, and not allowed with Exists and DoesNotExist"
	// +kubebuilder:validation:XValidation:rule="(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",message="spec.namespaces.selector must have at least one term: an empty selector selects every namespace"
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// KindSelection is a kind to copy and, optionally, which of its objects.
// With names or a selector, the entry's objects are chosen by them alone:
// spec.selector does not apply to them.
//
// +kubebuilder:validation:XValidation:rule="(!has(self.names) && !has(self.selector)) || self.kind != '*'",message="spec.resources.include[].names and selector need one kind, not *"
type KindSelection struct {
	GroupKind `json:",inline"`

	// Names copies only the objects of the kind with these names (in each
	// selected namespace, for a namespaced kind). RBAC names may hold a
	// colon (system:aggregate-to-view), so only / and % are refused.
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[^/%]+$`
	// +listType=set
	// +optional
	Names []string `json:"names,omitempty"`

	// Selector copies the objects of the kind whose labels match, in place
	// of spec.selector. Its operators and values are checked by the
	// operator (PlanValid), not at admission: CEL over every entry's
	// expressions would exceed the API server's cost budget.
	// +kubebuilder:validation:XValidation:rule="(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",message="spec.resources.include[].selector must have at least one term; omit it for every object"
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// ResourceFilter includes and excludes kinds.
type ResourceFilter struct {
	// Include names kinds to copy. When it names a namespaced kind, only the
	// namespaced kinds it names are copied; otherwise every namespaced kind
	// is. Cluster-scoped kinds (CRDs, ClusterRoles, StorageClasses...) are
	// copied only when named here; Namespaces always come with
	// spec.namespaces. An entry may narrow its kind to some objects by
	// names or by its own selector (a vendor's CRDs carry no label of
	// yours); an APIService is copied only when named so.
	// +kubebuilder:validation:MaxItems=128
	// +listType=atomic
	// +optional
	Include []KindSelection `json:"include,omitempty"`

	// Exclude removes these kinds, after Include.
	// +kubebuilder:validation:MaxItems=128
	// +listType=atomic
	// +optional
	Exclude []GroupKind `json:"exclude,omitempty"`
}

// Transforms change copies on their way to the standby.
type Transforms struct {
	// RemoveFields deletes fields, by JSON path segments joined with dots
	// (e.g. spec.template.spec.nodeSelector), from matching objects.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	RemoveFields []FieldRemoval `json:"removeFields,omitempty"`

	// Patches apply RFC 6902 JSON patches to matching objects.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	Patches []JSONPatchTransform `json:"patches,omitempty"`

	// ImageRegistries rewrite container image prefixes, for a standby site
	// that pulls from its own registry mirror.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	ImageRegistries []Mapping `json:"imageRegistries,omitempty"`

	// StorageClasses rename storage classes of PVCs and volume claim
	// templates.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	StorageClasses []Mapping `json:"storageClasses,omitempty"`
}

// FieldRemoval removes fields from matching objects.
type FieldRemoval struct {
	// Target selects the objects.
	Target ObjectTarget `json:"target"`

	// Paths are dot-separated field paths. Not kind, apiVersion or
	// metadata, which the sync owns, apart from single labels and
	// annotations outside tandem.dev/.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:XValidation:rule="self.all(p, !(p in ['kind', 'apiVersion']) && !(p == 'metadata' || (p.startsWith('metadata.') && !p.matches('^metadata[.](labels|annotations)[.].+'))) && !p.matches('^metadata[.](labels|annotations)[.]tandem[.]'))",message="spec.transforms.removeFields[].paths may not remove kind, apiVersion or metadata, which the sync owns, apart from single labels and annotations outside tandem.dev/"
	// +listType=atomic
	Paths []string `json:"paths"`
}

// JSONPatchTransform applies a JSON patch to matching objects.
type JSONPatchTransform struct {
	// Target selects the objects.
	Target ObjectTarget `json:"target"`

	// Patch is an RFC 6902 JSON patch document (a JSON array of operations).
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=32768
	// +kubebuilder:validation:XValidation:rule="self.startsWith('[')",message="spec.transforms.patches[].patch must be a JSON array of RFC 6902 operations"
	Patch string `json:"patch"`

	// ToCluster limits the patch to copies made to that cluster. A patch
	// that sets a site-specific value (SITE=west) must not be applied when
	// the sync runs the other way after a switchover; give that direction
	// its own patch. Without it the patch applies in both directions.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	ToCluster string `json:"toCluster,omitempty"`
}

// Mapping rewrites a value From to To. Mappings are written from the
// point of view of the pair's spec.primary (From its value, To the other
// cluster's); while the other cluster is active, Tandem applies them the
// other way round, To to From.
type Mapping struct {
	// From is the value on the pair's primary cluster.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	From string `json:"from"`

	// To is the value on the other cluster.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	To string `json:"to"`
}

// DependencyEdge says From must wait until To exists.
type DependencyEdge struct {
	// From is the dependent object.
	From ObjectTarget `json:"from"`
	// To is the object that must exist first.
	To ObjectTarget `json:"to"`
}

// VolumeProtection is snapshot replication of the selected PVCs.
type VolumeProtection struct {
	// Method of protection. Snapshot takes CSI VolumeSnapshots on the active
	// side and makes them usable on the standby.
	// +kubebuilder:validation:Enum=Snapshot
	// +kubebuilder:default=Snapshot
	// +optional
	Method string `json:"method,omitempty"`

	// Interval between two snapshots of a PVC; the RPO cannot be better.
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="spec.volumes.interval must be at least 1s"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// SnapshotClassName is the VolumeSnapshotClass used on the active side.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	SnapshotClassName string `json:"snapshotClassName"`

	// StandbySnapshotClassName is the VolumeSnapshotClass of the
	// pre-provisioned snapshots on the standby; the same name when unset.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$`
	// +optional
	StandbySnapshotClassName string `json:"standbySnapshotClassName,omitempty"`

	// Retention is how many snapshots per PVC are kept on each side.
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	Retention int32 `json:"retention,omitempty"`

	// HandleMapping says how a snapshot handle on the active side is named
	// on the standby's storage.
	// +optional
	HandleMapping HandleMapping `json:"handleMapping,omitempty"`
}

// HandleMapping maps snapshot handles between the sites' storage systems.
//
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Template' || (has(self.template) && self.template.contains('{{.Handle}}'))",message="spec.volumes.handleMapping.template is required when mode is Template and must contain {{.Handle}}",fieldPath=".template"
// +kubebuilder:validation:XValidation:rule="!has(self.template) || (self.template.indexOf('{{.Handle}}') == self.template.lastIndexOf('{{.Handle}}') && !self.template.replace('{{.Handle}}', 'x').replace('{{.Namespace}}', 'x').replace('{{.Name}}', 'x').contains('{{') && !self.template.replace('{{.Handle}}', 'x').replace('{{.Namespace}}', 'x').replace('{{.Name}}', 'x').contains('}}'))",message="spec.volumes.handleMapping.template must contain {{.Handle}} exactly once, and no placeholder but {{.Handle}}, {{.Namespace}} and {{.Name}}",fieldPath=".template"
type HandleMapping struct {
	// Mode Same uses the handle unchanged; Template renders Template.
	// +kubebuilder:validation:Enum=Same;Template
	// +kubebuilder:default=Same
	// +optional
	Mode string `json:"mode,omitempty"`

	// Template is the standby handle with the source's substituted for
	// {{.Handle}}, which it contains exactly once; {{.Namespace}} and
	// {{.Name}} (the VolumeSnapshot's) may also appear. A fixed
	// substitution, not a template language: no loops, no conditions, so
	// every source handle maps to its own standby handle.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Template string `json:"template,omitempty"`
}

// SyncPolicyStatus is what the last sync did.
type SyncPolicyStatus struct {
	// ObservedGeneration is the generation of the spec last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// SyncSummary counts the objects.
	// +optional
	SyncSummary `json:",inline"`

	// Waves is the number of waves of the last plan.
	// +optional
	Waves int32 `json:"waves,omitempty"`

	// Failures name the first few objects whose last apply failed.
	// +kubebuilder:validation:MaxItems=10
	// +listType=atomic
	// +optional
	Failures []ObjectFailure `json:"failures,omitempty"`

	// Conditions: Ready, Reconciling, Stalled, PlanValid, Synced.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ObjectFailure is one object that could not be copied.
type ObjectFailure struct {
	// Object is group/kind namespace/name.
	Object string `json:"object"`
	// Message is the error.
	Message string `json:"message"`
}

// SyncPolicy selects objects on the active side and says how they are copied
// to the standby.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sp,categories=tandem
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.standbyMode`
// +kubebuilder:printcolumn:name="Selected",type=integer,JSONPath=`.status.selected`
// +kubebuilder:printcolumn:name="In-Sync",type=integer,JSONPath=`.status.inSync`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SyncPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SyncPolicySpec   `json:"spec,omitempty"`
	Status SyncPolicyStatus `json:"status,omitempty"`

	// undecodable is set when the stored object did not decode (decode.go).
	undecodable *DecodeError `json:"-"`
}

// GetConditions returns the status conditions.
func (in *SyncPolicy) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions replaces the status conditions.
func (in *SyncPolicy) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }

// SetObservedGeneration records the generation the status describes.
func (in *SyncPolicy) SetObservedGeneration(g int64) { in.Status.ObservedGeneration = g }

// SyncPolicyList is a list of SyncPolicies.
//
// +kubebuilder:object:root=true
type SyncPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SyncPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&SyncPolicy{}, &SyncPolicyList{})
}
