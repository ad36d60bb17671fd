package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SwitchoverType is what kind of move a Switchover makes.
// +kubebuilder:validation:Enum=Planned;Failover;Drill
type SwitchoverType string

const (
	// SwitchoverPlanned moves the service while both sides are up, with no
	// data loss.
	SwitchoverPlanned SwitchoverType = "Planned"
	// SwitchoverFailover promotes the standby because the active side is
	// lost.
	SwitchoverFailover SwitchoverType = "Failover"
	// SwitchoverDrill rehearses a switchover and measures it.
	SwitchoverDrill SwitchoverType = "Drill"
)

// SwitchoverPhase is where a Switchover is in its life.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed;RolledBack;Cancelled
type SwitchoverPhase string

const (
	// PhasePending has not started yet.
	PhasePending SwitchoverPhase = "Pending"
	// PhaseRunning is moving the service.
	PhaseRunning SwitchoverPhase = "Running"
	// PhaseSucceeded finished; the target is active (or the drill passed).
	PhaseSucceeded SwitchoverPhase = "Succeeded"
	// PhaseFailed stopped on an error that needs a person.
	PhaseFailed SwitchoverPhase = "Failed"
	// PhaseRolledBack failed before traffic moved and restored the old
	// active side.
	PhaseRolledBack SwitchoverPhase = "RolledBack"
	// PhaseCancelled was stopped on request at a safe point.
	PhaseCancelled SwitchoverPhase = "Cancelled"
)

// StepPhase is where one step is.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed;Skipped
type StepPhase string

const (
	// StepPending has not started.
	StepPending StepPhase = "Pending"
	// StepRunning has been recorded and is acting.
	StepRunning StepPhase = "Running"
	// StepSucceeded finished.
	StepSucceeded StepPhase = "Succeeded"
	// StepFailed stopped the switchover.
	StepFailed StepPhase = "Failed"
	// StepSkipped had nothing to do (its capability is not configured); the
	// message says why.
	StepSkipped StepPhase = "Skipped"
)

// DrillMode is how a drill touches the pair.
// +kubebuilder:validation:Enum=Isolated;Live
type DrillMode string

const (
	// DrillIsolated brings the standby copy up without touching production
	// traffic or roles.
	DrillIsolated DrillMode = "Isolated"
	// DrillLive does a planned switchover and switches back after HoldFor.
	DrillLive DrillMode = "Live"
)

// SwitchoverSpec asks to move a pair's service. It cannot change once
// created, except to set cancel.
//
// Each field is immutable on its own, so the message names the one that
// changed.
// +kubebuilder:validation:XValidation:rule="self.pairRef == oldSelf.pairRef",message="spec.pairRef is immutable once created; create a new Switchover instead",fieldPath=".pairRef"
// +kubebuilder:validation:XValidation:rule="self.type == oldSelf.type",message="spec.type is immutable once created; create a new Switchover instead",fieldPath=".type"
// +kubebuilder:validation:XValidation:rule="self.targetCluster == oldSelf.targetCluster",message="spec.targetCluster is immutable once created; create a new Switchover instead",fieldPath=".targetCluster"
// +kubebuilder:validation:XValidation:rule="has(self.stepTimeout) == has(oldSelf.stepTimeout) && (!has(self.stepTimeout) || duration(self.stepTimeout) == duration(oldSelf.stepTimeout))",message="spec.stepTimeout is immutable once created; create a new Switchover instead",fieldPath=".stepTimeout"
// +kubebuilder:validation:XValidation:rule="has(self.drill) == has(oldSelf.drill)",message="spec.drill is immutable once created; create a new Switchover instead",fieldPath=".drill"
// +kubebuilder:validation:XValidation:rule="has(self.reason) == has(oldSelf.reason) && (!has(self.reason) || self.reason == oldSelf.reason)",message="spec.reason is immutable once created; create a new Switchover instead",fieldPath=".reason"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.cancel) || !oldSelf.cancel || (has(self.cancel) && self.cancel)",message="spec.cancel cannot be unset once set",fieldPath=".cancel"
// +kubebuilder:validation:XValidation:rule="!has(self.drill) || self.type == 'Drill'",message="spec.drill is only valid when spec.type is Drill",fieldPath=".drill"
type SwitchoverSpec struct {
	// PairRef is the name of the HAPair, in the same namespace, to move.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	PairRef string `json:"pairRef"`

	// Type Planned moves a healthy pair with no data loss; Failover
	// promotes the standby of a pair whose active side is lost; Drill
	// rehearses.
	Type SwitchoverType `json:"type"`

	// TargetCluster is the cluster that is to become active (for a drill:
	// the cluster the rehearsal runs on). It must be one of the pair's
	// clusters.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	TargetCluster string `json:"targetCluster"`

	// StepTimeout bounds each step.
	// +kubebuilder:default="2m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="spec.stepTimeout must be between 1s and 24h"
	// +optional
	StepTimeout *metav1.Duration `json:"stepTimeout,omitempty"`

	// Drill options, for type Drill.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.drill is immutable once created; create a new Switchover instead"
	// +optional
	Drill *DrillOptions `json:"drill,omitempty"`

	// Reason is a free-text note for the audit trail (who asked and why).
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Reason string `json:"reason,omitempty"`

	// Cancel asks a running Switchover to stop at the next safe point and
	// return the pair to a consistent state. It cannot be unset.
	// +optional
	Cancel bool `json:"cancel,omitempty"`
}

// DrillOptions say how a rehearsal runs.
//
// +kubebuilder:validation:XValidation:rule="!has(self.holdFor) || (has(self.mode) && self.mode == 'Live')",message="spec.drill.holdFor is only valid in Live mode",fieldPath=".holdFor"
type DrillOptions struct {
	// Mode Isolated brings the standby up beside production; Live does a
	// planned switchover and switches back after HoldFor.
	// +kubebuilder:default=Isolated
	// +optional
	Mode DrillMode `json:"mode,omitempty"`

	// Checks run once the standby copy is up; the drill passes when all
	// pass.
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=name
	// +optional
	Checks []DrillCheck `json:"checks,omitempty"`

	// HoldFor is how long a live drill stays switched over before it
	// switches back.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="spec.drill.holdFor must be positive"
	// +optional
	HoldFor *metav1.Duration `json:"holdFor,omitempty"`

	// PublishDrillNames publishes each DNS record's drillName pointing at the
	// standby while an isolated drill runs.
	// +optional
	PublishDrillNames bool `json:"publishDrillNames,omitempty"`
}

// DrillCheck is one check of a drill: an HTTP request or a Job.
//
// +kubebuilder:validation:XValidation:rule="has(self.http) != has(self.job)",message="spec.drill.checks[] must set exactly one of http or job"
type DrillCheck struct {
	// Name of the check, unique within the drill.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// HTTP sends a GET and expects a status.
	// +optional
	HTTP *HTTPCheck `json:"http,omitempty"`

	// Job runs a Job on the drill's cluster and expects it to complete.
	// +optional
	Job *JobCheck `json:"job,omitempty"`
}

// HTTPCheck is a GET request with an expected status.
type HTTPCheck struct {
	// URL to GET.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'http' || url(self).getScheme() == 'https')",message="spec.drill.checks[].http.url must be an http or https URL"
	URL string `json:"url"`

	// ExpectStatus is the status that passes; any 2xx when unset.
	// +kubebuilder:validation:Minimum=100
	// +kubebuilder:validation:Maximum=599
	// +optional
	ExpectStatus int32 `json:"expectStatus,omitempty"`
}

// JobCheck is a Job run on the drill's cluster.
type JobCheck struct {
	// Namespace to run the Job in.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`

	// Image of the Job's container.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image"`

	// Command of the container.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=atomic
	// +optional
	Command []string `json:"command,omitempty"`

	// ServiceAccountName the Job runs as.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$`
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// Timeout for the Job to complete.
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="spec.drill.checks[].job.timeout must be between 1s and 24h"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// SwitchoverStatus records every step, so a restarted operator resumes
// where it stopped.
type SwitchoverStatus struct {
	// ObservedGeneration is the generation of the spec last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Phase of the Switchover.
	// +optional
	Phase SwitchoverPhase `json:"phase,omitempty"`

	// FromCluster was active when the Switchover started.
	// +optional
	FromCluster string `json:"fromCluster,omitempty"`

	// Epoch the pair reached through this Switchover.
	// +optional
	Epoch int64 `json:"epoch,omitempty"`

	// StartTime is when the first step started (for a failover: when the
	// first failed probe was seen).
	// +optional
	StartTime *metav1.MicroTime `json:"startTime,omitempty"`

	// CompletionTime is when it reached a final phase.
	// +optional
	CompletionTime *metav1.MicroTime `json:"completionTime,omitempty"`

	// Steps in order, each recorded before it acts.
	// +listType=map
	// +listMapKey=name
	// +optional
	Steps []StepStatus `json:"steps,omitempty"`

	// RTO is the measured time from the start (for a failover: the first
	// failed probe) until the workloads are Available and, when
	// spec.traffic has records, every authoritative server answers the new
	// side's targets. Clients follow within the records' TTL after that
	// (report.clientsFollowBy).
	// +optional
	RTO *metav1.Duration `json:"rto,omitempty"`

	// DataLossWindow is the time of changes a failover could not carry:
	// from DataLossSince until the old active side stopped (at the latest
	// when this side took the witness Lease). Unset when the loss cannot be
	// bounded (DataLossUnknown says why).
	// +optional
	DataLossWindow *metav1.Duration `json:"dataLossWindow,omitempty"`

	// DataLossSince is where the window starts: the sync watermark the old
	// active side last left here (every change it made before then is on
	// this side), or the oldest volume snapshot restored when that is
	// older.
	// +optional
	DataLossSince *metav1.MicroTime `json:"dataLossSince,omitempty"`

	// DataLossUnknown says why a failover could not bound its data loss:
	// the old active side never left a sync watermark here.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	DataLossUnknown string `json:"dataLossUnknown,omitempty"`

	// Report of a drill (and of any switchover): results and timings.
	// +optional
	Report *SwitchoverReport `json:"report,omitempty"`

	// Conditions: Ready, Reconciling, Stalled.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// StepStatus is one step of a Switchover.
type StepStatus struct {
	// Name of the step.
	Name string `json:"name"`

	// Phase of the step.
	Phase StepPhase `json:"phase"`

	// StartTime is when the step was recorded as Running.
	// +optional
	StartTime *metav1.MicroTime `json:"startTime,omitempty"`

	// EndTime is when it finished.
	// +optional
	EndTime *metav1.MicroTime `json:"endTime,omitempty"`

	// Message says what the step did, or why it failed or was skipped.
	// +optional
	Message string `json:"message,omitempty"`
}

// SwitchoverReport is the outcome of a Switchover.
type SwitchoverReport struct {
	// Passed is true when every step and check succeeded.
	Passed bool `json:"passed"`

	// Summary is a one-line result.
	// +optional
	Summary string `json:"summary,omitempty"`

	// TimeToReady is from the start to workloads Available on the target.
	// +optional
	TimeToReady *metav1.Duration `json:"timeToReady,omitempty"`

	// TrafficMovedTime is when every authoritative server answered the new
	// target.
	// +optional
	TrafficMovedTime *metav1.Time `json:"trafficMovedTime,omitempty"`

	// ClientsFollowBy is TrafficMovedTime plus the records' TTL: when every
	// client has followed.
	// +optional
	ClientsFollowBy *metav1.Time `json:"clientsFollowBy,omitempty"`

	// Checks are the drill's check results.
	// +listType=map
	// +listMapKey=name
	// +optional
	Checks []CheckResult `json:"checks,omitempty"`
}

// CheckResult is the outcome of one drill check.
type CheckResult struct {
	// Name of the check.
	Name string `json:"name"`
	// Passed is true when the check passed.
	Passed bool `json:"passed"`
	// Message says what was seen.
	// +optional
	Message string `json:"message,omitempty"`
	// Duration the check took.
	// +optional
	Duration *metav1.Duration `json:"duration,omitempty"`
}

// Switchover moves a pair's service to its other cluster: planned, as a
// failover, or as a rehearsal.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=so,categories=tandem
// +kubebuilder:printcolumn:name="Pair",type=string,JSONPath=`.spec.pairRef`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetCluster`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="RTO",type=string,JSONPath=`.status.rto`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Switchover struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SwitchoverSpec   `json:"spec,omitempty"`
	Status SwitchoverStatus `json:"status,omitempty"`

	// undecodable is set when the stored object did not decode (decode.go).
	undecodable *DecodeError `json:"-"`
}

// GetConditions returns the status conditions.
func (in *Switchover) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions replaces the status conditions.
func (in *Switchover) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }

// SetObservedGeneration records the generation the status describes.
func (in *Switchover) SetObservedGeneration(g int64) { in.Status.ObservedGeneration = g }

// SwitchoverList is a list of Switchovers.
//
// +kubebuilder:object:root=true
type SwitchoverList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Switchover `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Switchover{}, &SwitchoverList{})
}
