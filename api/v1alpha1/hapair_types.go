package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Role is what a data center currently does for a pair.
// +kubebuilder:validation:Enum=Active;Standby;Fenced
type Role string

const (
	// RoleActive serves the workloads and the traffic.
	RoleActive Role = "Active"
	// RoleStandby holds a replica of the active side, ready to take over.
	RoleStandby Role = "Standby"
	// RoleFenced has stopped serving because it can no longer prove it is
	// the active side (it lost both its peer and the witness lease).
	RoleFenced Role = "Fenced"
)

// FailoverMode says whether the standby may promote itself.
// +kubebuilder:validation:Enum=Manual;Automatic
type FailoverMode string

const (
	// FailoverManual only reports a lost active side; a person starts the
	// Failover.
	FailoverManual FailoverMode = "Manual"
	// FailoverAutomatic lets the standby start a Failover by itself once the
	// active side is confirmed lost.
	FailoverAutomatic FailoverMode = "Automatic"
)

// ProbePolicy says how endpoint probe results combine.
// +kubebuilder:validation:Enum=Any;All
type ProbePolicy string

const (
	// ProbePolicyAny counts a probe round as failed when any probe fails.
	ProbePolicyAny ProbePolicy = "Any"
	// ProbePolicyAll counts a probe round as failed only when every probe
	// fails.
	ProbePolicyAll ProbePolicy = "All"
)

// DNSProvider is how DNS records are changed.
// +kubebuilder:validation:Enum=ExternalDNS;RFC2136
type DNSProvider string

const (
	// DNSProviderExternalDNS maintains external-dns DNSEndpoint objects.
	DNSProviderExternalDNS DNSProvider = "ExternalDNS"
	// DNSProviderRFC2136 sends TSIG-signed dynamic updates to the
	// authoritative servers directly.
	DNSProviderRFC2136 DNSProvider = "RFC2136"
)

// HAPairSpec describes two data centers that back each other up.
//
// +kubebuilder:validation:XValidation:rule="self.clusters.exists(c, c.name == self.primary)",message="spec.primary must name one of spec.clusters",fieldPath=".primary"
// +kubebuilder:validation:XValidation:rule="!has(self.failover) || !has(self.failover.endpoints) || self.failover.endpoints.all(e, self.clusters.exists(c, c.name == e.cluster))",message="spec.failover.endpoints[].cluster must name one of spec.clusters",fieldPath=".failover.endpoints"
// +kubebuilder:validation:XValidation:rule="!has(self.failover) || !has(self.failover.mode) || self.failover.mode != 'Automatic' || has(self.witness) || (has(self.failover.allowWithoutWitness) && self.failover.allowWithoutWitness)",message="spec.failover.mode Automatic needs spec.witness, or spec.failover.allowWithoutWitness: true to accept the split-brain risk under a network partition",fieldPath=".failover.mode"
// +kubebuilder:validation:XValidation:rule="!has(self.traffic) || !has(self.traffic.dns) || self.traffic.dns.all(r, r.targets.all(t, self.clusters.exists(c, c.name == t.cluster)))",message="spec.traffic.dns[].targets[].cluster must name one of spec.clusters",fieldPath=".traffic.dns"
type HAPairSpec struct {
	// Clusters are the two data centers of the pair. The kubeconfig of each
	// entry is how the other side reaches it; the entry of the cluster an
	// operator runs in needs none there.
	// +kubebuilder:validation:MinItems=2
	// +kubebuilder:validation:MaxItems=2
	// +kubebuilder:validation:XValidation:rule="self.size() == 2 && self[0].name != self[1].name",message="spec.clusters must list exactly two clusters with distinct names"
	// +kubebuilder:validation:XValidation:rule="self.all(c, oldSelf.exists(o, o.name == c.name))",message="spec.clusters[].name cannot change once created: the pair's role record, its Leases and its copy on the peer name the clusters; create a new HAPair to pair other clusters"
	// +listType=map
	// +listMapKey=name
	Clusters []ClusterSpec `json:"clusters"`

	// Primary is the cluster that is active when the pair is first created.
	// Later the active cluster is recorded in status and in the role record,
	// not here.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Primary string `json:"primary"`

	// SyncPolicyRefs name the SyncPolicies, in the same namespace, that say
	// what is copied from the active side to the standby.
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	// +optional
	SyncPolicyRefs []LocalObjectReference `json:"syncPolicyRefs,omitempty"`

	// Witness is an optional third cluster, ideally in a third site, that
	// breaks ties: the active side holds a Lease there, and the standby may
	// promote itself only after taking that Lease.
	// +optional
	Witness *WitnessSpec `json:"witness,omitempty"`

	// Failover says how the active side's health is checked and whether the
	// standby promotes itself.
	// +kubebuilder:default={}
	// +optional
	Failover FailoverSpec `json:"failover,omitempty"`

	// Traffic says which DNS records and routes follow the active side.
	// +optional
	Traffic *TrafficSpec `json:"traffic,omitempty"`

	// Drills schedules rehearsals of a switchover.
	// +optional
	Drills *DrillSchedule `json:"drills,omitempty"`

	// Objectives are the recovery targets the pair is measured against.
	// +optional
	Objectives *Objectives `json:"objectives,omitempty"`

	// Suspend stops the controller from acting on the pair (no sync, no
	// automatic failover, no drills). Status is still reported.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// ClusterSpec is one data center of a pair.
type ClusterSpec struct {
	// Name of the data center, the same as the --cluster-name of the
	// operator running there.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// KubeconfigSecretRef names the Secret holding a kubeconfig for this
	// cluster, used by the operator on the other side. Key defaults to
	// "kubeconfig".
	// +optional
	KubeconfigSecretRef *SecretKeyRef `json:"kubeconfigSecretRef,omitempty"`
}

// WitnessSpec is the tie-breaker cluster.
//
// +kubebuilder:validation:XValidation:rule="!has(self.renewInterval) || !has(self.leaseDuration) || duration(self.renewInterval) < duration(self.leaseDuration)",message="spec.witness.renewInterval must be shorter than spec.witness.leaseDuration",fieldPath=".renewInterval"
type WitnessSpec struct {
	// KubeconfigSecretRef names the Secret holding a kubeconfig for the
	// witness cluster. Key defaults to "kubeconfig".
	KubeconfigSecretRef SecretKeyRef `json:"kubeconfigSecretRef"`

	// Namespace on the witness cluster where the pair's Lease lives.
	// +kubebuilder:default=tandem-system
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// LeaseDuration is how long the active side's claim holds without a
	// renewal. An active side that can renew neither the lease nor reach its
	// peer for this long fences itself.
	// +kubebuilder:default="15s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('10m')",message="spec.witness.leaseDuration must be between 1s and 10m"
	// +optional
	LeaseDuration *metav1.Duration `json:"leaseDuration,omitempty"`

	// RenewInterval is how often the active side renews the lease.
	// +kubebuilder:default="5s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="spec.witness.renewInterval must be positive"
	// +optional
	RenewInterval *metav1.Duration `json:"renewInterval,omitempty"`
}

// DataPlaneFence is what stops a side's pods when no operator runs there.
type DataPlaneFence string

const (
	DataPlaneFenceNone    DataPlaneFence = "None"
	DataPlaneFenceSidecar DataPlaneFence = "Sidecar"
)

// FailoverSpec is how the active side's health is judged.
//
// +kubebuilder:validation:XValidation:rule="!has(self.probeTimeout) || !has(self.probePeriod) || duration(self.probeTimeout) <= duration(self.probePeriod)",message="spec.failover.probeTimeout must not be longer than spec.failover.probePeriod",fieldPath=".probeTimeout"
type FailoverSpec struct {
	// Mode Manual only reports a lost active side; Automatic starts a
	// Failover Switchover by itself.
	// +kubebuilder:default=Manual
	// +optional
	Mode FailoverMode `json:"mode,omitempty"`

	// AllowWithoutWitness accepts Automatic mode without a witness. Under a
	// network partition both sides may then believe the other is gone; only
	// set it when the network between the sites cannot partition without
	// one side dying.
	// +optional
	AllowWithoutWitness bool `json:"allowWithoutWitness,omitempty"`

	// DataPlaneFence says what stops this pair's pods when no operator
	// runs. None: nothing but the operator (the default). Sidecar: every
	// protected pod serves through Tandem's fence sidecar
	// (`tandem-operator fence`), which serves only while the side's
	// serving Lease is renewed; then a standby may also take over (once the
	// witness Lease expired) from an active side that answers but whose
	// serving Lease lapsed: its operator is dead and its pods serve nothing.
	// +kubebuilder:validation:Enum=None;Sidecar
	// +kubebuilder:default=None
	// +optional
	DataPlaneFence DataPlaneFence `json:"dataPlaneFence,omitempty"`

	// ProbePeriod is the time between two probe rounds.
	// +kubebuilder:default="5s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('5m')",message="spec.failover.probePeriod must be between 1s and 5m"
	// +optional
	ProbePeriod *metav1.Duration `json:"probePeriod,omitempty"`

	// ProbeTimeout bounds one probe.
	// +kubebuilder:default="2s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('1m')",message="spec.failover.probeTimeout must be between 100ms and 1m"
	// +optional
	ProbeTimeout *metav1.Duration `json:"probeTimeout,omitempty"`

	// FailureThreshold is how many consecutive failed probe rounds declare
	// the active side lost.
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	FailureThreshold int32 `json:"failureThreshold,omitempty"`

	// ProbePolicy says whether a round fails when any probe fails or only
	// when all of them do.
	// +kubebuilder:default=Any
	// +optional
	ProbePolicy ProbePolicy `json:"probePolicy,omitempty"`

	// Endpoints are HTTP endpoints probed per cluster, besides the cluster's
	// API server.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	Endpoints []ProbeEndpoint `json:"endpoints,omitempty"`
}

// ProbeEndpoint is one HTTP health endpoint of a cluster.
type ProbeEndpoint struct {
	// Cluster the endpoint belongs to.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Cluster string `json:"cluster"`

	// URL probed with GET.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'http' || url(self).getScheme() == 'https')",message="spec.failover.endpoints[].url must be an http or https URL"
	URL string `json:"url"`

	// ExpectStatus is the HTTP status that counts as healthy; any 2xx when
	// unset.
	// +kubebuilder:validation:Minimum=100
	// +kubebuilder:validation:Maximum=599
	// +optional
	ExpectStatus int32 `json:"expectStatus,omitempty"`
}

// TrafficSpec is what follows the active side.
//
// +kubebuilder:validation:XValidation:rule="!has(self.rfc2136) || !has(self.dns) || self.dns.all(r, (r.name.endsWith('.') ? r.name : r.name + '.') == (self.rfc2136.zone.endsWith('.') ? self.rfc2136.zone : self.rfc2136.zone + '.') || (r.name.endsWith('.') ? r.name : r.name + '.').endsWith('.' + (self.rfc2136.zone.endsWith('.') ? self.rfc2136.zone : self.rfc2136.zone + '.')))",message="spec.traffic.dns[].name must be in spec.traffic.rfc2136.zone",fieldPath=".dns"
// +kubebuilder:validation:XValidation:rule="!has(self.rfc2136) || !has(self.dns) || self.dns.all(r, !has(r.drillName) || size(r.drillName) == 0 || (r.drillName.endsWith('.') ? r.drillName : r.drillName + '.').endsWith('.' + (self.rfc2136.zone.endsWith('.') ? self.rfc2136.zone : self.rfc2136.zone + '.')))",message="spec.traffic.dns[].drillName must be in spec.traffic.rfc2136.zone",fieldPath=".dns"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'RFC2136' || has(self.rfc2136)",message="spec.traffic.rfc2136 is required when spec.traffic.provider is RFC2136",fieldPath=".rfc2136"
// +kubebuilder:validation:XValidation:rule="!has(self.dns) || size(self.dns) == 0 || (has(self.provider) && self.provider == 'RFC2136') || has(self.externalDNS)",message="spec.traffic.externalDNS.verifyServers is required for DNS records with the ExternalDNS provider: Tandem verifies every flip there",fieldPath=".externalDNS"
type TrafficSpec struct {
	// Provider changes the DNS records: ExternalDNS (DNSEndpoint objects
	// read by external-dns) or RFC2136 (dynamic updates sent by Tandem).
	// +kubebuilder:default=ExternalDNS
	// +optional
	Provider DNSProvider `json:"provider,omitempty"`

	// DNS records that answer with the active cluster's targets.
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	// +optional
	DNS []DNSRecord `json:"dns,omitempty"`

	// RFC2136 is where dynamic updates go when provider is RFC2136.
	// +optional
	RFC2136 *RFC2136Spec `json:"rfc2136,omitempty"`

	// ExternalDNS configures the ExternalDNS provider.
	// +optional
	ExternalDNS *ExternalDNSSpec `json:"externalDNS,omitempty"`

	// VerifyTimeout bounds how long a flip waits for every authoritative
	// server to answer the new targets before the step fails.
	// +kubebuilder:default="2m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('1h')",message="spec.traffic.verifyTimeout must be between 1s and 1h"
	// +optional
	VerifyTimeout *metav1.Duration `json:"verifyTimeout,omitempty"`

	// Routes are enabled only on the active side, so a global load balancer
	// health-checking each site's entry point sees only the active one.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	Routes []RouteRef `json:"routes,omitempty"`
}

// DNSRecord is a name that follows the active side.
//
// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type != 'A' || self.targets.all(t, t.values.all(v, isIP(v) && ip(v).family() == 4))",message="spec.traffic.dns[].targets[].values of an A record must be IPv4 addresses",fieldPath=".targets"
// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type != 'AAAA' || self.targets.all(t, t.values.all(v, isIP(v) && ip(v).family() == 6))",message="spec.traffic.dns[].targets[].values of an AAAA record must be IPv6 addresses",fieldPath=".targets"
// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type != 'CNAME' || self.targets.all(t, size(t.values) == 1 && t.values[0].matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?[.])*[a-z0-9]([-a-z0-9]*[a-z0-9])?[.]?$'))",message="spec.traffic.dns[].targets[].values of a CNAME record must be one host name",fieldPath=".targets"
type DNSRecord struct {
	// Name is the fully qualified record name, e.g. shop.example.com.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^([a-z0-9*]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?\.?$`
	Name string `json:"name"`

	// Type of the record.
	// +kubebuilder:validation:Enum=A;AAAA;CNAME
	// +kubebuilder:default=A
	// +optional
	Type string `json:"type,omitempty"`

	// TTL of the record in seconds. Clients follow a flip after at most this
	// long, so it is part of the real RTO.
	// +kubebuilder:default=30
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	// +optional
	TTL int64 `json:"ttl,omitempty"`

	// Targets per cluster: the addresses (A, AAAA) or name (CNAME) the record
	// answers with while that cluster is active.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=2
	// +listType=map
	// +listMapKey=cluster
	Targets []ClusterTargets `json:"targets"`

	// DrillName, when set, is published pointing at the standby during an
	// isolated drill and removed afterwards; the production name is not
	// touched.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^(([a-z0-9*]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?\.?)?$`
	// +optional
	DrillName string `json:"drillName,omitempty"`
}

// ClusterTargets are a record's values while one cluster is active.
type ClusterTargets struct {
	// Cluster the values belong to.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Cluster string `json:"cluster"`

	// Values of the record: IPv4 addresses for A, IPv6 addresses for AAAA,
	// one host name for CNAME.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=atomic
	Values []string `json:"values"`
}

// ExternalDNSSpec says how Tandem works with the external-dns instance of
// each data center (docs/traffic.md has the settings they need).
type ExternalDNSSpec struct {
	// VerifyServers are host:port addresses of the zone's authoritative
	// servers. A flip is done when every one of them answers the new
	// targets, queried directly; the active side publishes only names none
	// of them answers yet.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:Pattern=`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?):[0-9]{1,5}$`
	// +listType=set
	VerifyServers []string `json:"verifyServers"`
}

// RFC2136Spec is a set of authoritative servers that accept TSIG-signed
// dynamic updates.
type RFC2136Spec struct {
	// Servers are host:port addresses of the authoritative servers. Every one
	// of them must answer the new target before a flip counts as done.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:Pattern=`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?):[0-9]{1,5}$`
	// +listType=set
	Servers []string `json:"servers"`

	// Zone the records belong to, e.g. example.com.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?\.?$`
	Zone string `json:"zone"`

	// TSIGKeyName is the name of the TSIG key.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	TSIGKeyName string `json:"tsigKeyName"`

	// TSIGAlgorithm of the key.
	// +kubebuilder:validation:Enum=hmac-sha256;hmac-sha384;hmac-sha512
	// +kubebuilder:default=hmac-sha256
	// +optional
	TSIGAlgorithm string `json:"tsigAlgorithm,omitempty"`

	// TSIGSecretRef names the Secret key holding the base64 TSIG secret.
	TSIGSecretRef SecretKeyRef `json:"tsigSecretRef"`
}

// RouteRef names an Ingress or Gateway API HTTPRoute.
type RouteRef struct {
	// Kind of the route.
	// +kubebuilder:validation:Enum=Ingress;HTTPRoute
	Kind string `json:"kind"`

	// Namespace of the route.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`

	// Name of the route.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// DrillSchedule runs rehearsals on a cron schedule, the way a CronJob runs
// Jobs: each firing creates a Switchover of type Drill.
type DrillSchedule struct {
	// Schedule in cron format: five fields, a descriptor such as @daily, or
	// @every <duration>, optionally prefixed by CRON_TZ=<zone>.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^(CRON_TZ=[A-Za-z0-9_+/-]+[ ]+)?(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every[ ]+([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+|[-0-9A-Za-z*,/?]+([ ]+[-0-9A-Za-z*,/?]+){4})$')",message="spec.drills.schedule must be a cron expression with five fields, a descriptor like @daily, or @every <duration>"
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('@every') || duration(self.substring(6).trim()) >= duration('10s')",message="spec.drills.schedule: @every must be at least 10s apart"
	Schedule string `json:"schedule"`

	// Suspend stops new drills from being created; running ones finish.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// Template is the drill each firing runs.
	// +kubebuilder:default={}
	// +optional
	Template DrillOptions `json:"template,omitempty"`

	// SuccessfulHistoryLimit is how many succeeded drills are kept.
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	SuccessfulHistoryLimit *int32 `json:"successfulHistoryLimit,omitempty"`

	// FailedHistoryLimit is how many failed drills are kept.
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	FailedHistoryLimit *int32 `json:"failedHistoryLimit,omitempty"`
}

// Objectives are the recovery targets of a pair.
type Objectives struct {
	// RPO is the most data, in time, the pair may lose in a failover.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="spec.objectives.rpo must be positive"
	// +optional
	RPO *metav1.Duration `json:"rpo,omitempty"`

	// RTO is the longest the service may be down in a failover.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="spec.objectives.rto must be positive"
	// +optional
	RTO *metav1.Duration `json:"rto,omitempty"`
}

// HAPairStatus is what the operator on this side observes of the pair.
//
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.epoch) || (has(self.epoch) && self.epoch >= oldSelf.epoch)",message="status.epoch may never decrease"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.activeCluster) || (has(self.activeCluster) && self.activeCluster == oldSelf.activeCluster) || (has(self.epoch) && (!has(oldSelf.epoch) || self.epoch > oldSelf.epoch))",message="status.activeCluster may change only with a higher status.epoch"
type HAPairStatus struct {
	// ObservedGeneration is the generation of the spec last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// ActiveCluster is the cluster that serves, as this side knows it.
	// Together with Epoch it is this cluster's role record for the pair.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	ActiveCluster string `json:"activeCluster,omitempty"`

	// StandbyCluster is the other cluster of the pair.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	StandbyCluster string `json:"standbyCluster,omitempty"`

	// Epoch is the fencing token of the current active side. It only grows:
	// every promotion takes the next epoch, and a role written with a lower
	// epoch never overwrites a higher one.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Epoch int64 `json:"epoch,omitempty"`

	// LocalRole is what the cluster this status was written in does.
	// +optional
	LocalRole Role `json:"localRole,omitempty"`

	// Peer is what this side sees of the other cluster.
	// +optional
	Peer *PeerStatus `json:"peer,omitempty"`

	// Witness is what this side sees of the witness.
	// +optional
	Witness *WitnessStatus `json:"witness,omitempty"`

	// Sync summarises the object replication.
	// +optional
	Sync *SyncSummary `json:"sync,omitempty"`

	// Volumes summarises the volume snapshot replication.
	// +optional
	Volumes *VolumeSummary `json:"volumes,omitempty"`

	// Traffic says where each record points, as seen at the authoritative
	// servers.
	// +optional
	Traffic *TrafficStatus `json:"traffic,omitempty"`

	// LastSwitchover is the most recent switchover or failover.
	// +optional
	LastSwitchover *SwitchoverSummary `json:"lastSwitchover,omitempty"`

	// NextDrill is when the next scheduled drill fires.
	// +optional
	NextDrill *metav1.Time `json:"nextDrill,omitempty"`

	// LastDrillScheduleTime is the schedule slot the last scheduled drill
	// was created for.
	// +optional
	LastDrillScheduleTime *metav1.Time `json:"lastDrillScheduleTime,omitempty"`

	// LastDrill is the most recent finished drill.
	// +optional
	LastDrill *SwitchoverSummary `json:"lastDrill,omitempty"`

	// LastPassedDrill is the most recent drill that passed. The drill
	// metrics (and the chart's TandemDrillOverdue alert) are set from it
	// every round, so they survive an operator restart.
	// +optional
	LastPassedDrill *SwitchoverSummary `json:"lastPassedDrill,omitempty"`

	// Conditions: Ready, Reconciling, Stalled, PeerReachable, Synced,
	// VolumesProtected, TrafficReady, Degraded.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PeerStatus is the health of a remote cluster as seen from here.
type PeerStatus struct {
	// Cluster is the name of the remote cluster.
	// +optional
	Cluster string `json:"cluster,omitempty"`

	// Reachable is true when the last probe round succeeded.
	// +optional
	Reachable bool `json:"reachable,omitempty"`

	// ConsecutiveFailures counts failed probe rounds since the last success.
	// +optional
	ConsecutiveFailures int32 `json:"consecutiveFailures,omitempty"`

	// LastProbeTime is when the last probe round finished. While neither
	// reachability nor the failure count changes it is written at most
	// every 30 seconds, not every round.
	// +optional
	LastProbeTime *metav1.Time `json:"lastProbeTime,omitempty"`

	// LastSuccessTime is when a probe round last succeeded (written with
	// lastProbeTime).
	// +optional
	LastSuccessTime *metav1.Time `json:"lastSuccessTime,omitempty"`
}

// WitnessStatus is the state of the witness Lease.
type WitnessStatus struct {
	// Reachable is true when the witness answered the last request.
	// +optional
	Reachable bool `json:"reachable,omitempty"`

	// Holder is the cluster holding the Lease.
	// +optional
	Holder string `json:"holder,omitempty"`

	// Epoch recorded with the Lease.
	// +optional
	Epoch int64 `json:"epoch,omitempty"`

	// RenewTime is when the Lease was last renewed.
	// +optional
	RenewTime *metav1.Time `json:"renewTime,omitempty"`

	// Message says what the last request to the witness found.
	// +optional
	Message string `json:"message,omitempty"`
}

// SyncSummary counts replicated objects.
type SyncSummary struct {
	// Selected objects on the active side.
	// +optional
	Selected int32 `json:"selected,omitempty"`

	// InSync copies whose content matches the source.
	// +optional
	InSync int32 `json:"inSync,omitempty"`

	// OutOfSync copies that differ from or are missing on the standby.
	// +optional
	OutOfSync int32 `json:"outOfSync,omitempty"`

	// Failed objects whose last apply failed.
	// +optional
	Failed int32 `json:"failed,omitempty"`

	// LastFullSync is when every copy was last verified.
	// +optional
	LastFullSync *metav1.Time `json:"lastFullSync,omitempty"`

	// Lag is the time from a change on the active side to its copy on the
	// standby, for the most recent change.
	// +optional
	Lag *metav1.Duration `json:"lag,omitempty"`
}

// VolumeSummary summarises volume protection.
type VolumeSummary struct {
	// ProtectedPVCs is the number of PVCs with snapshot replication.
	// +optional
	ProtectedPVCs int32 `json:"protectedPVCs,omitempty"`

	// NewestReplicatedSnapshot is the creation time of the oldest among the
	// newest snapshots usable on the standby, one per PVC.
	// +optional
	NewestReplicatedSnapshot *metav1.Time `json:"newestReplicatedSnapshot,omitempty"`

	// CurrentRPO is the age of that snapshot: the data a failover now would
	// lose.
	// +optional
	CurrentRPO *metav1.Duration `json:"currentRPO,omitempty"`

	// Claims is the protection of each PVC, as the active side sees it.
	// +listType=map
	// +listMapKey=namespace
	// +listMapKey=name
	// +optional
	Claims []ClaimProtection `json:"claims,omitempty"`

	// Kept lists the snapshots this cluster keeps of PVCs it retired: data
	// written on this side that a failover could not carry over. Tandem
	// never deletes them; restore one into a new PVC to recover the writes,
	// and delete it when done.
	// +listType=map
	// +listMapKey=namespace
	// +listMapKey=name
	// +optional
	Kept []KeptSnapshot `json:"kept,omitempty"`
}

// ClaimProtection is the protection of one PVC.
type ClaimProtection struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`

	// NewestSnapshot is when the newest ready snapshot on the active side
	// was taken.
	// +optional
	NewestSnapshot *metav1.Time `json:"newestSnapshot,omitempty"`

	// NewestReplica is when the data of the newest snapshot usable on the
	// standby was taken.
	// +optional
	NewestReplica *metav1.Time `json:"newestReplica,omitempty"`

	// RPO is the age of NewestReplica; unset while no snapshot is usable
	// on the standby.
	// +optional
	RPO *metav1.Duration `json:"rpo,omitempty"`

	// Message says what is wrong with this PVC's protection, if anything.
	// +optional
	Message string `json:"message,omitempty"`
}

// KeptSnapshot is a VolumeSnapshot of a retired PVC.
type KeptSnapshot struct {
	Namespace string `json:"namespace"`
	// Name of the VolumeSnapshot.
	Name string `json:"name"`
	// Claim is the PVC whose data it holds.
	Claim string `json:"claim"`
	// Reason it was taken.
	// +optional
	Reason string `json:"reason,omitempty"`
	// CreationTime of the snapshot.
	CreationTime metav1.Time `json:"creationTime"`
	// ReadyToUse says whether a PVC can be restored from it.
	ReadyToUse bool `json:"readyToUse"`
}

// TrafficStatus is where the pair's traffic points.
type TrafficStatus struct {
	// Records are the DNS records and the cluster each points to.
	// +listType=map
	// +listMapKey=name
	// +optional
	Records []DNSRecordStatus `json:"records,omitempty"`
}

// DNSRecordStatus is where one record points.
type DNSRecordStatus struct {
	// Name of the record.
	Name string `json:"name"`

	// Cluster whose targets the authoritative servers answer with, empty
	// when they disagree or answer with neither.
	// +optional
	Cluster string `json:"cluster,omitempty"`

	// Answer is what the servers answered, when they agree.
	// +listType=atomic
	// +optional
	Answer []string `json:"answer,omitempty"`

	// Message says why Cluster is empty: servers that disagree, do not
	// answer, or answer with values neither cluster has.
	// +optional
	Message string `json:"message,omitempty"`

	// ObservedTime is when the servers were last queried.
	// +optional
	ObservedTime *metav1.Time `json:"observedTime,omitempty"`
}

// SwitchoverSummary is a short record of one Switchover.
type SwitchoverSummary struct {
	// Name of the Switchover.
	Name string `json:"name"`

	// Type of the Switchover.
	// +optional
	Type SwitchoverType `json:"type,omitempty"`

	// Phase the Switchover ended in.
	// +optional
	Phase SwitchoverPhase `json:"phase,omitempty"`

	// CompletionTime is when it finished.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// RTO is the measured recovery time.
	// +optional
	RTO *metav1.Duration `json:"rto,omitempty"`
}

// HAPair is two data centers, one active and one standby, with how the
// standby is kept ready and how the service moves between them.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=hap;pair,categories=tandem
// +kubebuilder:printcolumn:name="Active",type=string,JSONPath=`.status.activeCluster`
// +kubebuilder:printcolumn:name="Standby",type=string,JSONPath=`.status.standbyCluster`
// +kubebuilder:printcolumn:name="Epoch",type=integer,JSONPath=`.status.epoch`
// +kubebuilder:printcolumn:name="RPO",type=string,JSONPath=`.status.volumes.currentRPO`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type HAPair struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   HAPairSpec   `json:"spec,omitempty"`
	Status HAPairStatus `json:"status,omitempty"`

	// undecodable is set when the stored object did not decode (decode.go).
	undecodable *DecodeError `json:"-"`
}

// GetConditions returns the status conditions.
func (in *HAPair) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions replaces the status conditions.
func (in *HAPair) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }

// SetObservedGeneration records the generation the status describes.
func (in *HAPair) SetObservedGeneration(g int64) { in.Status.ObservedGeneration = g }

// HAPairList is a list of HAPairs.
//
// +kubebuilder:object:root=true
type HAPairList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HAPair `json:"items"`
}

func init() {
	SchemeBuilder.Register(&HAPair{}, &HAPairList{})
}
